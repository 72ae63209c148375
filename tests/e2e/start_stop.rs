//! The core path: start launches a tagged, locked-down instance carrying a
//! single-use JIT config; stop terminates it and removes its runner.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::{AMI, CLIENT_ID, Env, ORG, PAT, REPO, tag};

/// The RunInstances parameters the shim recorded.
fn run_instances_params(env: &Env) -> Vec<Value> {
    env.ec2_calls()
        .into_iter()
        .filter(|c| c["action"] == "RunInstances")
        .map(|c| c["params"].clone())
        .collect()
}

/// The user-data script as the instance receives it (gzipped, which
/// cloud-init unpacks).
fn user_data(params: &Value) -> String {
    use std::io::Read as _;
    let b64 = params["UserData"].as_str().expect("UserData sent");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "user data is gzipped");
    let mut script = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut script)
        .unwrap();
    // cloud-init runs it as a boothook: it strips the mark and executes the
    // rest, which must begin with its interpreter.
    let script = script
        .strip_prefix("#cloud-boothook\n")
        .expect("the user data is a boothook")
        .to_owned();
    assert!(script.starts_with("#!/bin/bash\n"));
    script
}

/// The value of `readonly NAME='...'` in the rendered script.
fn script_setting(script: &str, name: &str) -> String {
    let prefix = format!("readonly {name}='");
    let line = script
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{name} not in user-data"));
    line[prefix.len()..line.len() - 1].replace("'\\''", "'")
}

#[test]
fn start_with_app_launches_a_locked_down_tagged_runner_and_stop_removes_it() {
    let env = Env::start();
    let run = env.start_runner(&[
        ("INPUT_TAGS", "team=ci\ncost-center=42"),
        ("INPUT_LABELS", "gpu,big"),
        ("INPUT_VOLUME_SIZE", "30"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeImages"),
    ]);
    run.assert_ok();
    let label = run.output("label").to_owned();
    let id = run.output("instance-id").to_owned();
    assert!(label.starts_with("ec2-4242-1-build-"), "{label}");
    assert_eq!(run.output("instance-ids"), id);
    assert_eq!(run.output("instance-type"), "c7i.large");
    assert!(run.output("availability-zone").starts_with("us-east-1"));
    assert!(["spot", "on-demand"].contains(&run.output("market")));

    // The instance as a user sees it in the console.
    let instances = env.instances();
    assert_eq!(instances.len(), 1, "exactly one instance");
    let i = &instances[0];
    assert_eq!(i.instance_id(), Some(id.as_str()));
    assert_eq!(
        i.state().and_then(|s| s.name()).map(|n| n.as_str()),
        Some("running")
    );
    assert_eq!(i.image_id(), Some(AMI));
    assert!(i.key_name().is_none(), "no key pair: nobody can log in");
    assert_eq!(
        i.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required"),
        "IMDSv2 required"
    );
    let runner_name = format!("{label}-1");
    for (key, value) in [
        ("ec2-spot-runner:managed", "true"),
        ("ec2-spot-runner:label", label.as_str()),
        ("ec2-spot-runner:runner-name", runner_name.as_str()),
        ("ec2-spot-runner:repository", REPO),
        ("ec2-spot-runner:run-id", "4242"),
        ("ec2-spot-runner:run-attempt", "1"),
        ("ec2-spot-runner:job", "build"),
        ("team", "ci"),
        ("cost-center", "42"),
        ("Name", runner_name.as_str()),
    ] {
        assert_eq!(tag(i, key), Some(value), "tag {key}");
    }
    let created = tag(i, "ec2-spot-runner:created-at").expect("created-at tag");
    chrono::DateTime::parse_from_rfc3339(created).expect("created-at is RFC 3339");

    // What was asked of EC2.
    let launches = run_instances_params(&env);
    assert_eq!(launches.len(), 1);
    let p = &launches[0];
    assert_eq!(p["InstanceInitiatedShutdownBehavior"], "terminate");
    assert_eq!(p["MetadataOptions.HttpTokens"], "required");
    assert_eq!(p["BlockDeviceMapping.1.Ebs.Encrypted"], "true");
    assert_eq!(p["BlockDeviceMapping.1.Ebs.VolumeType"], "gp3");
    assert_eq!(p["BlockDeviceMapping.1.Ebs.VolumeSize"], "30");
    assert_eq!(p["BlockDeviceMapping.1.DeviceName"], "/dev/sda1");
    assert!(p.get("KeyName").is_none());
    assert!(p["ClientToken"].as_str().is_some_and(|t| t.len() == 64));
    let specs: Vec<&str> = [
        "TagSpecification.1.ResourceType",
        "TagSpecification.2.ResourceType",
    ]
    .iter()
    .filter_map(|k| p[*k].as_str())
    .collect();
    assert_eq!(
        specs,
        ["instance", "volume"],
        "instance and volumes tagged at creation"
    );

    // The runner on GitHub, and the single-use credential in user-data.
    let runners = env.runners();
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0]["name"], runner_name.as_str());
    let labels: Vec<&str> = runners[0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    for l in [label.as_str(), "gpu", "big"] {
        assert!(labels.contains(&l), "runner label {l} in {labels:?}");
    }
    let script = user_data(p);
    let jit = script_setting(&script, "JIT_CONFIG");
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&jit)
            .unwrap(),
    )
    .unwrap();
    assert!(
        decoded.contains(&runner_name),
        "the JIT config is this runner's"
    );
    assert!(
        !script.to_lowercase().contains("registration"),
        "no registration token on the instance"
    );
    assert!(!script.contains("config.sh"));
    assert!(
        !env.github_calls().iter().any(|c| c["path"]
            .as_str()
            .is_some_and(|p| p.contains("registration-token"))),
        "a registration token is never even requested"
    );
    // Every secret is masked before it could be printed.
    assert!(
        run.stdout.contains(&format!("::add-mask::{jit}")),
        "JIT config masked"
    );
    assert!(!run.stderr.contains(&jit), "JIT config never logged");
    assert!(run.summary.contains(&id) && run.summary.contains("c7i.large"));

    // stop: the instance is terminated and the runner is gone.
    let stop = env.stop_runner(&label, &[]);
    stop.assert_ok();
    assert!(env.live_instances().is_empty(), "nothing left running");
    assert_eq!(
        env.instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str()),
        Some("terminated")
    );
    assert!(env.runners().is_empty(), "runner deleted");

    // stop again: nothing to do, a warning, success.
    let again = env.stop_runner(&label, &[]);
    again.assert_ok();
    assert!(
        again.stdout.contains("::warning::") && again.all().contains(&label),
        "{}",
        again.all()
    );
}

#[test]
fn client_id_app_auth_and_token_auth_both_work_for_repo_and_org() {
    let env = Env::start();
    // App by client id, organization runner.
    let run = env.start_runner(&[
        ("INPUT_GITHUB_APP_ID", CLIENT_ID),
        ("INPUT_ORGANIZATION", ORG),
    ]);
    run.assert_ok();
    let org_label = run.output("label").to_owned();
    let state = env.github_state();
    let text = state.to_string();
    assert!(
        text.contains(&format!("{org_label}-1")),
        "org runner registered: {text}"
    );
    let calls = env.github_calls();
    assert!(
        calls
            .iter()
            .any(|c| c["path"] == format!("/orgs/{ORG}/actions/runners/generate-jitconfig"))
    );
    assert!(
        calls
            .iter()
            .all(|c| c["user_agent"] == json!(true) || c["user_agent"].is_string()),
        "User-Agent on every call"
    );

    // A personal access token, repository runner.
    let mut cmd = env.command(&["start"]);
    cmd.env("INPUT_GITHUB_TOKEN", PAT)
        .env("INPUT_IMAGE_ID", AMI)
        .env("INPUT_INSTANCE_TYPES", "c6i.large");
    let run = env.finish(cmd);
    run.assert_ok();
    assert!(
        run.stdout.contains(&format!("::add-mask::{PAT}")),
        "token masked"
    );
    assert!(!run.stderr.contains(PAT));
    let repo_label = run.output("label").to_owned();
    assert_eq!(env.live_instances().len(), 2);

    let mut stop = env.command(&["stop"]);
    stop.env("INPUT_GITHUB_TOKEN", PAT)
        .env("INPUT_LABEL", &repo_label);
    env.finish(stop).assert_ok();
    let mut stop = env.command(&["stop"]);
    stop.env("INPUT_GITHUB_TOKEN", PAT)
        .env("INPUT_LABEL", &org_label)
        .env("INPUT_ORGANIZATION", ORG);
    env.finish(stop).assert_ok();
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}

#[test]
fn the_policy_command_prints_exactly_the_six_actions_and_they_suffice() {
    let env = Env::start();
    let doc = env.policy();
    let mut actions: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "ec2:CreateTags",
            "ec2:DescribeInstances",
            "ec2:DescribeSpotPriceHistory",
            "ec2:ModifyVolume",
            "ec2:RunInstances",
            "ec2:TerminateInstances"
        ]
    );
    let unscoped = env.run(&["policy", "--unscoped"], &[]);
    unscoped.assert_ok();
    let plain: Value = serde_json::from_str(&unscoped.stdout).unwrap();
    assert_eq!(plain["Statement"][0]["Resource"], "*");
    assert_eq!(plain["Statement"][0]["Action"].as_array().unwrap().len(), 6);

    // A user holding exactly the scoped policy, with IAM enforced from here
    // on and the shim checking its tag conditions as EC2 does.
    let mut env = env;
    env.act_as("runner-bot", &doc);
    let run = env.start_runner(&[]);
    run.assert_ok();
    // The prices were read and ranked under it, not skipped with a warning.
    assert!(!run.all().contains("::warning::"), "{}", run.all());
    let label = run.output("label").to_owned();
    env.stop_runner(&label, &[("INPUT_START_ID", run.output("start-id"))])
        .assert_ok();
    // The undo of a start that fails after its launch (the runner never
    // comes online) terminates under the same policy.
    let failed = env.start_runner(&[("INPUT_WAIT_FOR", "online"), ("INPUT_TIMEOUT", "10s")]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(failed.error().contains("online"), "{}", failed.error());
    // Cleanup reaps a machine past its lifetime under it too.
    let old = chrono::Utc::now() - chrono::Duration::hours(8);
    let admin_key = ("testing".to_owned(), "testing".to_owned());
    let user_key = std::mem::replace(&mut env.aws_key, admin_key);
    let orphan = env.create_instance(&[
        ("ec2-spot-runner:managed", "true"),
        ("ec2-spot-runner:label", "orphan"),
        ("ec2-spot-runner:runner-name", "orphan-1"),
        ("ec2-spot-runner:created-at", &old.to_rfc3339()),
    ]);
    env.aws_key = user_key;
    env.run_app(&["cleanup"], &[("INPUT_SETTLE", "0s")])
        .assert_ok();
    // Nothing the tool did needed more than the policy: not one call was
    // denied, the optional extras included (an account that alarms on
    // UnauthorizedOperation, as the CIS AWS Foundations Benchmark asks,
    // stays quiet). Every call above went through the IAM evaluator.
    let calls = env.ec2_calls();
    assert!(calls.len() > 6, "{calls:#?}");
    let denied: Vec<&Value> = calls
        .iter()
        .filter(|c| c["error_code"] == "UnauthorizedOperation" || c["error_code"] == "AccessDenied")
        .collect();
    assert!(denied.is_empty(), "denied calls: {denied:#?}");
    env.aws_key = ("testing".into(), "testing".into());
    assert!(env.live_instances().is_empty());
    assert_eq!(env.state_of(&orphan), "terminated");
}

#[test]
fn runner_update_sudo_and_instance_store_reach_the_instance_on_by_default() {
    let env = Env::start();
    env.start_runner(&[]).assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_UPDATE"), "1");
    assert_eq!(script_setting(&script, "RUNNER_SUDO"), "1");
    assert_eq!(script_setting(&script, "INSTANCE_STORE"), "1");
    let env = Env::start();
    env.start_runner(&[
        ("INPUT_RUNNER_UPDATE", "false"),
        ("INPUT_RUNNER_SUDO", "no"),
        ("INPUT_INSTANCE_STORE", "off"),
    ])
    .assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_UPDATE"), "");
    assert_eq!(script_setting(&script, "RUNNER_SUDO"), "");
    assert_eq!(script_setting(&script, "INSTANCE_STORE"), "");
}

#[test]
fn the_newest_runner_release_goes_to_the_instance_and_the_pin_is_the_fallback() {
    let env = Env::start();
    let (x64, arm64) = ("b".repeat(64), "c".repeat(64));
    env.configure_github(json!({"runner_release": {
        "tag_name": "v2.340.0", "draft": false, "prerelease": false,
        "body": format!("- linux-x64 <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->\n- linux-arm64 <!-- BEGIN SHA linux-arm64 -->{arm64}<!-- END SHA linux-arm64 -->")
    }}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.340.0");
    assert_eq!(script_setting(&script, "RUNNER_SHA256_X64"), x64);
    assert_eq!(script_setting(&script, "RUNNER_SHA256_ARM64"), arm64);
    let lookups = |env: &Env| {
        env.github_calls()
            .iter()
            .filter(|c| c["path"] == "/repos/actions/runner/releases/latest")
            .count()
    };
    assert_eq!(lookups(&env), 1);

    // No release to read (a GitHub Enterprise Server without actions/runner):
    // the compiled pin, with a warning that says how old it is.
    let env = Env::start();
    env.configure_github(json!({"runner_release": null}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let warning = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::warning::could not read the newest actions/runner release"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        warning.contains("using the compiled pin 2.338.0, pinned ") && warning.contains("days ago"),
        "{warning}"
    );
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.338.0");

    // A release without an arm64 checksum is not handed to an arm64 machine.
    let env = Env::start();
    env.configure_github(json!({"runner_release": {
        "tag_name": "v2.340.0", "draft": false, "prerelease": false,
        "body": format!("- linux-x64 <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->")
    }}));
    let run = env.start_runner(&[
        ("INPUT_IMAGE_ID", "ami-0e9271c829888680e"),
        ("INPUT_INSTANCE_TYPES", "c7g.large"),
    ]);
    run.assert_ok();
    let warning = warning_with(&run.stdout, "lists no linux-arm64 checksum");
    assert!(
        warning.contains("2.340.0") && warning.contains("using the compiled pin 2.338.0"),
        "{warning}"
    );
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.338.0");

    // runner-version pins the release: nothing is looked up.
    let env = Env::start();
    let run = env.start_runner(&[("INPUT_RUNNER_VERSION", "2.337.0")]);
    run.assert_ok();
    assert_eq!(lookups(&env), 0);
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.337.0");
}

/// Release notes with actions/runner's checksum markers for both Linux packages.
fn runner_notes(x64: &str, arm64: &str) -> String {
    format!(
        "- <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->\n- <!-- BEGIN SHA linux-arm64 -->{arm64}<!-- END SHA linux-arm64 -->"
    )
}

/// How often start asked the stand-in for `path` (with its query, if any).
fn release_calls(env: &Env, path: &str) -> Vec<Value> {
    env.github_calls()
        .into_iter()
        .filter(|c| c["path"] == path)
        .collect()
}

/// The `::warning::` line that mentions `needle`.
fn warning_with<'a>(stdout: &'a str, needle: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with("::warning::") && l.contains(needle))
        .unwrap_or_else(|| panic!("no warning mentioning {needle}:\n{stdout}"))
}

#[test]
fn a_newest_release_whose_package_is_not_uploaded_yet_gives_way_to_the_previous_one() {
    // actions/runner creates the release (checksums in its notes) before it
    // uploads the packages: win-x64 and win-arm64 are up, linux-x64 is under
    // way, and `releases/latest` already names 2.341.0.
    let (new_x64, new_arm64) = ("d".repeat(64), "e".repeat(64));
    let (old_x64, old_arm64) = ("b".repeat(64), "c".repeat(64));
    let releases = |uploaded: u32| {
        json!({"runner_releases": [
            {"tag_name": "v2.341.0", "body": runner_notes(&new_x64, &new_arm64),
             "uploaded": uploaded, "uploading": true},
            {"tag_name": "v2.340.0", "body": runner_notes(&old_x64, &old_arm64)},
        ]})
    };
    let env = Env::start();
    env.configure_github(releases(2));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.340.0");
    assert_eq!(script_setting(&script, "RUNNER_SHA256_X64"), old_x64);
    let warning = warning_with(&run.stdout, "actions-runner-linux-x64-2.341.0.tar.gz");
    assert!(
        warning.contains("2.341.0") && warning.contains("using 2.340.0"),
        "{warning}"
    );
    assert_eq!(
        release_calls(&env, "/repos/actions/runner/releases/latest").len(),
        1
    );
    assert_eq!(
        release_calls(&env, "/repos/actions/runner/releases").len(),
        1
    );

    // linux-x64 is up, linux-arm64 not yet: an x64 start takes the newest
    // release without reading the list; an arm64 start takes the previous.
    let env = Env::start();
    env.configure_github(releases(5));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.341.0");
    assert_eq!(script_setting(&script, "RUNNER_SHA256_X64"), new_x64);
    assert!(
        !run.stdout.contains("::warning::the newest actions/runner"),
        "{}",
        run.stdout
    );
    assert!(release_calls(&env, "/repos/actions/runner/releases").is_empty());
    env.clear_calls();
    let run = env.start_runner(&[
        ("INPUT_IMAGE_ID", "ami-0e9271c829888680e"),
        ("INPUT_INSTANCE_TYPES", "c7g.large"),
    ]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.340.0");
    assert_eq!(script_setting(&script, "RUNNER_SHA256_ARM64"), old_arm64);
    let warning = warning_with(&run.stdout, "actions-runner-linux-arm64-2.341.0.tar.gz");
    assert!(warning.contains("using 2.340.0"), "{warning}");

    // A mirror of `releases/latest` (here the same answers under another
    // host name, so read without credentials): the previous release comes
    // from the list beside it, `.../releases`.
    let env = Env::start();
    env.configure_github(releases(2));
    let mirror = env.github.replace("127.0.0.1", "localhost");
    let run = env.start_runner(&[(
        "INPUT_RUNNER_RELEASES_URL",
        &format!("{mirror}/repos/actions/runner/releases/latest"),
    )]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.340.0");
    let listed = release_calls(&env, "/repos/actions/runner/releases");
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["auth"], "none", "{listed:#?}");

    // The previous usable release is on the list's second page.
    let env = Env::start();
    let mut all = vec![
        json!({"tag_name": "v2.351.0", "body": runner_notes(&new_x64, &new_arm64), "uploaded": 2}),
    ];
    all.extend((0..10).map(|i| {
        json!({"tag_name": format!("v2.350.{i}"), "body": runner_notes(&new_x64, &new_arm64), "uploaded": 0})
    }));
    all.push(json!({"tag_name": "v2.340.0", "body": runner_notes(&old_x64, &old_arm64)}));
    env.configure_github(json!({"runner_releases": all}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.340.0");
    assert_eq!(script_setting(&script, "RUNNER_SHA256_X64"), old_x64);
    assert_eq!(
        release_calls(&env, "/repos/actions/runner/releases").len(),
        2
    );
}

#[test]
fn no_release_with_the_package_uploaded_falls_back_to_the_pin_with_a_warning() {
    // The newest release has no package uploaded yet and there is no
    // earlier one: the compiled pin, and a warning that says why.
    let (x64, arm64) = ("d".repeat(64), "e".repeat(64));
    let env = Env::start();
    env.configure_github(json!({"runner_releases": [
        {"tag_name": "v2.341.0", "body": runner_notes(&x64, &arm64), "uploaded": 0},
    ]}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.338.0");
    let warning = warning_with(&run.stdout, "actions-runner-linux-x64-2.341.0.tar.gz");
    assert!(
        warning.contains("2.341.0") && warning.contains("using the compiled pin 2.338.0"),
        "{warning}"
    );

    // An earlier release older than the compiled pin gives way to the pin.
    let env = Env::start();
    env.configure_github(json!({"runner_releases": [
        {"tag_name": "v2.341.0", "body": runner_notes(&x64, &arm64), "uploaded": 2},
        {"tag_name": "v2.337.0", "body": runner_notes(&x64, &arm64)},
    ]}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.338.0");
    let warning = warning_with(&run.stdout, "actions-runner-linux-x64-2.341.0.tar.gz");
    assert!(
        warning.contains("using the compiled pin 2.338.0"),
        "{warning}"
    );

    // The list is read a bounded number of pages.
    let env = Env::start();
    let mut all = vec![
        json!({"tag_name": "v2.341.0", "body": runner_notes(&x64, &arm64), "uploaded": 2, "uploading": true}),
    ];
    all.extend((0..40).map(|i| {
        json!({"tag_name": format!("v2.340.{}", 40 - i), "body": runner_notes(&x64, &arm64), "uploaded": 0})
    }));
    all.push(json!({"tag_name": "v2.337.0", "body": runner_notes(&x64, &arm64)}));
    env.configure_github(json!({"runner_releases": all}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let script = user_data(&run_instances_params(&env)[0]);
    assert_eq!(script_setting(&script, "RUNNER_VERSION"), "2.338.0");
    assert_eq!(
        script_setting(&script, "RUNNER_SHA256_X64"),
        "af4b794c1bc41d73d40535e3fe092a39f9679cd8d965954c2aca25a05ca41d32"
    );
    let warning = warning_with(&run.stdout, "actions-runner-linux-x64-2.341.0.tar.gz");
    assert!(
        warning.contains("using the compiled pin 2.338.0"),
        "{warning}"
    );
    let pages = release_calls(&env, "/repos/actions/runner/releases").len();
    assert!((1..=3).contains(&pages), "{pages} pages read");
}
