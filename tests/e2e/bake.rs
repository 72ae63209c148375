//! `bake`: a runner image made in the account under exactly the policy
//! `policy --bake` prints, the older images rotated out, and nothing left
//! behind when the bake fails or is cancelled. The tests play the builder's
//! operating system: they read the user data it was launched with and power
//! it off through the EC2 stand-in, with the console its script would leave.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{AMI, Env, Run};

/// The newest release the GitHub stand-in serves.
fn newest_runner(env: &Env) -> String {
    let latest: Value = reqwest::blocking::Client::new()
        .get(format!(
            "{}/repos/actions/runner/releases/latest",
            env.github
        ))
        .header("Authorization", format!("Bearer {}", crate::harness::PAT))
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("User-Agent", "ec2-spot-runner-tests")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .expect("the newest release");
    latest["tag_name"]
        .as_str()
        .unwrap_or_else(|| panic!("a release: {latest}"))
        .trim_start_matches('v')
        .to_owned()
}

/// Waits until the bake has launched its builder; returns its id and the
/// RunInstances parameters.
fn builder(env: &Env) -> (String, Value) {
    let began = Instant::now();
    loop {
        let live = env.live_instances();
        let found = live
            .iter()
            .find(|i| crate::harness::tag(i, "ec2-spot-runner:bake").is_some())
            .and_then(|i| i.instance_id());
        let calls = env.ec2_calls();
        let launch = calls
            .iter()
            .rev()
            .find(|c| c["action"] == "RunInstances" && c["status"] == 200);
        if let (Some(id), Some(call)) = (found, launch) {
            return (id.to_owned(), call["params"].clone());
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "no builder: {calls:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The builder's script as cloud-init receives it.
fn script_of(params: &Value) -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(params["UserData"].as_str().expect("UserData"))
        .unwrap();
    let mut script = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut script)
        .unwrap();
    script
}

/// The builder's OS powers it off, leaving `console` on its console.
fn power_off(env: &Env, id: &str, console: &str) {
    let out = env.post(
        &format!("{}/_shim/guest-poweroff", env.ec2),
        &json!({"instance_id": id, "console": console}),
    );
    assert_eq!(out["state"], "stopped", "{out}");
}

/// An image as the account's admin sees it, if it is still registered.
fn image(env: &Env, id: &str) -> Option<aws_sdk_ec2::types::Image> {
    env.images().into_iter().find(|i| i.image_id() == Some(id))
}

fn tag_of<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn bake_inputs(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut inputs = vec![("INPUT_IMAGE_ID", AMI)];
    inputs.extend_from_slice(extra);
    inputs
}

/// Runs a bake in the background while `guest` plays the builder. Should
/// the guest's checks fail, the bake is killed (it would wait for its
/// builder until its timeout) and the failure goes on.
fn bake_with(env: &Env, inputs: &[(&str, &str)], guest: impl FnOnce(&str, &Value)) -> Run {
    let n = format!("{}-{}", std::process::id(), inputs.len());
    let outputs = env.dir.path().join(format!("bake-output-{n}"));
    let summary = env.dir.path().join(format!("bake-summary-{n}"));
    let _ = std::fs::remove_file(&outputs);
    let _ = std::fs::remove_file(&summary);
    let mut cmd = env.command(&["bake"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    for (k, v) in inputs {
        cmd.env(k, v);
    }
    cmd.env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary);
    env.clear_calls();
    let mut child = cmd.spawn().expect("run the bake");
    let played = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (id, params) = builder(env);
        guest(&id, &params);
    }));
    if let Err(panic) = played {
        let _ = child.kill();
        let out = child.wait_with_output();
        if let Ok(out) = out {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::panic::resume_unwind(panic);
    }
    let out = child.wait_with_output().expect("the bake ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: crate::harness::parse_outputs(
            &std::fs::read_to_string(&outputs).unwrap_or_default(),
        ),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

fn denied(env: &Env) -> Vec<Value> {
    env.ec2_calls()
        .into_iter()
        .filter(|c| c["error_code"] == "UnauthorizedOperation" || c["error_code"] == "AccessDenied")
        .collect()
}

#[test]
fn a_bake_makes_a_tagged_image_under_exactly_the_bake_policy_and_keeps_the_newest() {
    let mut env = Env::start();
    env.shim_config(json!({"image_pending_seconds": 1.0}));
    let version = newest_runner(&env);
    // Three earlier bakes of the name, and images the rotation must not touch.
    let older: Vec<String> = (1..=3)
        .map(|n| {
            env.create_baked_image(
                &format!("ec2-spot-runner-x86_64-2026010{n}-000000"),
                &[
                    ("ec2-spot-runner:managed", "true"),
                    ("ec2-spot-runner:bake", "ec2-spot-runner"),
                ],
            )
        })
        .collect();
    let other_name = env.create_baked_image(
        "team-x86_64-20260101-000000",
        &[
            ("ec2-spot-runner:managed", "true"),
            ("ec2-spot-runner:bake", "team"),
        ],
    );
    let not_ours = env.create_baked_image(
        "ec2-spot-runner-x86_64-20250101-000000",
        &[("ec2-spot-runner:bake", "ec2-spot-runner")],
    );
    let older_snapshots: Vec<String> = older
        .iter()
        .flat_map(|id| image(&env, id).unwrap().block_device_mappings().to_vec())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    let policy = env.run(&["policy", "--bake"], &[]);
    policy.assert_ok();
    env.act_as("baker", &serde_json::from_str(&policy.stdout).unwrap());
    env.clear_calls();

    let run = bake_with(&env, &bake_inputs(&[("INPUT_KEEP", "2")]), |id, params| {
        assert_eq!(
            params["InstanceInitiatedShutdownBehavior"], "stop",
            "{params}"
        );
        assert!(
            params.get("InstanceMarketOptions.MarketType").is_none(),
            "on demand"
        );
        assert_eq!(params["MetadataOptions.HttpTokens"], "required");
        let script = script_of(params);
        assert!(
            script.starts_with("#!/bin/bash\n"),
            "a plain user-data script"
        );
        assert!(
            script.contains(&format!("readonly RUNNER_VERSION='{version}'")),
            "{script}"
        );
        assert!(
            script.contains("readonly RUNNER_SHA256_X64='")
                && !script.contains("RUNNER_SHA256_X64=''"),
            "the checksum goes with the version"
        );
        power_off(
            &env,
            id,
            &format!(
                "[    0.0] Linux version 6.1\n2026-12-08T04:00:00Z ec2-spot-runner-bake: runner {version} installed\n\nec2-spot-runner-bake: done runner={version}\n[   42.0] reboot: Power down\n"
            ),
        );
    });
    run.assert_ok();
    assert!(denied(&env).is_empty(), "{:#?}", denied(&env));
    assert_eq!(run.output("runner-version"), version);
    let id = run.output("image-id").to_owned();
    let baked = image(&env, &id).expect("the image is registered");
    assert_eq!(baked.state().map(|s| s.as_str()), Some("available"));
    let name = baked.name().unwrap();
    assert!(name.starts_with("ec2-spot-runner-x86_64-"), "{name}");
    let tags = baked.tags();
    assert_eq!(tag_of(tags, "ec2-spot-runner:managed"), Some("true"));
    assert_eq!(
        tag_of(tags, "ec2-spot-runner:bake"),
        Some("ec2-spot-runner")
    );
    assert_eq!(
        tag_of(tags, "ec2-spot-runner:runner-version"),
        Some(version.as_str())
    );
    assert_eq!(tag_of(tags, "ec2-spot-runner:base-image"), Some(AMI));
    assert_eq!(tag_of(tags, "ec2-spot-runner:architecture"), Some("x86_64"));
    assert!(tag_of(tags, "ec2-spot-runner:baked-at").is_some());
    let snapshot = baked.block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.snapshot_id())
        .unwrap()
        .to_owned();
    assert_eq!(
        tag_of(
            &env.snapshot_tags(&snapshot),
            "ec2-spot-runner:runner-version"
        ),
        Some(version.as_str()),
        "the snapshot is tagged at creation too"
    );
    // The builder is gone; the two oldest of the name went with their
    // snapshots; the newest older one, another name's and an untagged one stay.
    assert!(
        env.live_instances().is_empty(),
        "{:?}",
        env.live_instances()
    );
    assert!(image(&env, &older[0]).is_none() && image(&env, &older[1]).is_none());
    assert!(image(&env, &older[2]).is_some());
    assert!(image(&env, &other_name).is_some() && image(&env, &not_ours).is_some());
    let snapshots = env.snapshot_ids();
    assert!(!snapshots.contains(&older_snapshots[0]) && !snapshots.contains(&older_snapshots[1]));
    assert!(snapshots.contains(&older_snapshots[2]));
    for word in [
        "Base image",
        AMI,
        &version,
        "GiB",
        "builder took",
        "Older images removed",
    ] {
        assert!(run.summary.contains(word), "{word}: {}", run.summary);
    }
}

#[test]
fn a_failed_bake_script_images_nothing_and_leaves_no_builder() {
    let env = Env::start();
    let run = bake_with(&env, &bake_inputs(&[]), |id, _| {
        power_off(
            &env,
            id,
            "[    0.0] Linux version 6.1\n\nec2-spot-runner-bake: FAILED the runner's bin/installdependencies.sh failed (see /var/log/ec2-spot-runner-bake.log)\n",
        );
    });
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("the bake script failed on the builder i-")
            && run.error().contains("installdependencies.sh failed"),
        "{}",
        run.error()
    );
    assert!(
        run.stdout.contains("Linux version 6.1"),
        "the console is shown"
    );
    assert!(!env.ec2_actions().iter().any(|a| a == "CreateImage"));
    assert!(env.live_instances().is_empty());
    assert!(
        env.images()
            .iter()
            .all(|i| !i.name().unwrap_or_default().starts_with("ec2-spot-runner-"))
    );
}

#[test]
fn a_builder_that_ends_another_way_is_named_and_nothing_is_imaged() {
    let env = Env::start();
    let run = bake_with(&env, &bake_inputs(&[]), |id, _| {
        env.post(
            &format!("{}/_shim/interrupt", env.ec2),
            &json!({"instance_ids": [id], "state_reason_code": "Server.InternalError"}),
        );
    });
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("ended terminated before the bake finished")
            && run.error().contains("Server.InternalError"),
        "{}",
        run.error()
    );
    assert!(!env.ec2_actions().iter().any(|a| a == "CreateImage"));
}

#[test]
fn a_bake_cancelled_while_its_image_is_pending_leaves_no_image_and_no_builder() {
    let env = Env::start();
    env.shim_config(json!({"image_pending_seconds": 300.0}));
    let version = newest_runner(&env);
    let mut cmd = env.command(&["bake"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", AMI)
        .env("GITHUB_OUTPUT", env.dir.path().join("bake-output"));
    let child = cmd.spawn().unwrap();
    let (id, _) = builder(&env);
    power_off(
        &env,
        &id,
        &format!("ec2-spot-runner-bake: done runner={version}\n"),
    );
    let began = Instant::now();
    let image_id = loop {
        let made = env
            .ec2_calls()
            .into_iter()
            .find(|c| c["action"] == "CreateImage" && c["status"] == 200);
        if made.is_some() {
            let pending = env.images().into_iter().find(|i| {
                i.name()
                    .unwrap_or_default()
                    .starts_with("ec2-spot-runner-x86_64-")
            });
            if let Some(image) = pending {
                break image.image_id().unwrap().to_owned();
            }
        }
        assert!(began.elapsed() < Duration::from_secs(60), "no CreateImage");
        std::thread::sleep(Duration::from_millis(50));
    };
    let snapshots: Vec<String> = image(&env, &image_id)
        .unwrap()
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    let (_, text) = crate::harness::sigint_inside_the_window(child);
    assert!(
        image(&env, &image_id).is_none(),
        "the half-made image is deregistered\n{text}"
    );
    let left = env.snapshot_ids();
    assert!(
        snapshots.iter().all(|s| !left.contains(s)),
        "its snapshots are deleted"
    );
    assert!(env.live_instances().is_empty(), "the builder is terminated");
}

#[test]
fn a_baked_image_is_what_a_start_by_name_launches_and_a_stale_one_is_named() {
    let env = Env::start();
    let version = newest_runner(&env);
    let bake = |runner: &'static str, name: &'static str, says: String| {
        let mut inputs = bake_inputs(&[("INPUT_BAKE_NAME", name)]);
        if !runner.is_empty() {
            inputs.push(("INPUT_RUNNER_VERSION", runner));
        }
        let run = bake_with(&env, &inputs, |id, _| {
            power_off(
                &env,
                id,
                &format!("ec2-spot-runner-bake: done runner={says}\n"),
            );
        });
        run.assert_ok();
        run.output("image-id").to_owned()
    };
    let start_from = |pattern: &str| {
        let start = env.start_runner(&[
            ("INPUT_IMAGE_ID", ""),
            ("INPUT_IMAGE_NAME", pattern),
            ("INPUT_IMAGE_OWNER", "self"),
        ]);
        start.assert_ok();
        let instance = env
            .live_instances()
            .into_iter()
            .find(|i| i.instance_id() == Some(start.output("instance-id")))
            .expect("a runner machine");
        (instance.image_id().unwrap().to_owned(), start)
    };
    let current = bake("", "ci", version.clone());
    let (launched, start) = start_from("ci-x86_64-*");
    assert_eq!(launched, current);
    assert!(!start.summary.contains("Bake again"), "{}", start.summary);
    // A bake of the release before the newest: the start says it is stale.
    let older = bake("2.337.0", "old", "2.337.0".into());
    assert_ne!(version, "2.337.0");
    let (launched, start) = start_from("old-x86_64-*");
    assert_eq!(launched, older);
    assert!(
        start.summary.contains(&format!(
            "holds actions/runner 2.337.0, baked 0 days ago; {version} is out"
        )) && start.summary.contains("Bake again"),
        "{}",
        start.summary
    );
}

#[test]
fn bad_bake_inputs_fail_before_anything_is_launched() {
    let env = Env::start();
    for (input, value, says) in [
        ("INPUT_KEEP", "0", "keep"),
        ("INPUT_BAKE_NAME", "runner-*", "bake-name"),
        ("INPUT_TIMEOUT", "1m", "timeout"),
        ("INPUT_BAKE_DOCKER", "maybe", "bake-docker"),
    ] {
        let run = env.run_app(&["bake"], &[("INPUT_IMAGE_ID", AMI), (input, value)]);
        assert_eq!(run.code, 2, "{input}={value}: {}", run.all());
        assert!(run.error().contains(says), "{}", run.error());
    }
    assert!(env.ec2_calls().is_empty(), "{:?}", env.ec2_actions());
}

#[test]
fn doctor_with_mode_bake_names_each_missing_bake_permission() {
    let mut env = Env::start();
    let six = env.policy();
    env.act_as("six-only", &six);
    let run = env.run_app(&["doctor", "--mode", "bake"], &[]);
    assert_ne!(run.code, 0, "{}", run.all());
    for action in [
        "ec2:CreateImage + ec2:CreateTags (bake)",
        "ec2:DescribeImages (bake)",
        "ec2:DeregisterImage (bake)",
        "ec2:DeleteSnapshot (bake)",
        "ec2:GetConsoleOutput (the builder's verdict) (bake)",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("[FAIL] {action}")) && l.contains("policy --bake")),
            "{action}:\n{}",
            run.stdout
        );
    }
    let bake = env.run(&["policy", "--bake"], &[]);
    env.act_as("baker", &serde_json::from_str(&bake.stdout).unwrap());
    let run = env.run_app(&["doctor", "--mode", "bake"], &[]);
    assert!(
        run.stdout.lines().filter(|l| l.contains("(bake)")).count() == 5
            && !run
                .stdout
                .lines()
                .any(|l| l.contains("(bake)") && l.starts_with("[FAIL]")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bake_cancelled_while_its_launch_is_unanswered_finds_its_builder_by_tag() {
    let env = Env::start();
    // EC2 launched the builder, but its answer never arrives in time.
    env.faults(json!([{"action": "RunInstances", "drop_response": true, "delay_ms": 20000}]));
    let mut cmd = env.command(&["bake"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", AMI);
    let child = cmd.spawn().unwrap();
    let began = Instant::now();
    while !env
        .live_instances()
        .iter()
        .any(|i| crate::harness::tag(i, "ec2-spot-runner:bake").is_some())
    {
        assert!(began.elapsed() < Duration::from_secs(60), "no builder");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, text) = crate::harness::sigint_inside_the_window(child);
    assert!(
        env.live_instances().is_empty(),
        "the builder is terminated:\n{text}"
    );
}
