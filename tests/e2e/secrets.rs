//! Secret hygiene: at trace log level, through successes and failures, no
//! token, key, installation token or JIT config appears in anything the tool
//! prints or writes — except the `::add-mask::` commands that hide them.

use serde_json::json;

use crate::harness::{AMI, Env, PAT, Run, app_keys};

/// Stands for the session token of OIDC credentials.
const SESSION_TOKEN: &str = "FQoGZXIvYXdzSessionTokenThatMustNeverBeLogged0001";

/// Every line of every output that is not a mask command.
fn visible(runs: &[Run]) -> String {
    let mut text = String::new();
    for run in runs {
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            if !line.starts_with("::add-mask::") {
                text.push_str(line);
                text.push('\n');
            }
        }
        for (name, value) in &run.outputs {
            text.push_str(&format!("{name}={value}\n"));
        }
        text.push_str(&run.summary);
    }
    text
}

#[test]
fn no_secret_reaches_a_log_an_output_or_the_summary() {
    let env = Env::start();
    // A session token, as OIDC credentials carry: the SDK sends it in a header.
    let trace = [
        ("INPUT_LOG_LEVEL", "trace"),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
    ];
    let mut runs = Vec::new();

    // Success with App auth, then stop and cleanup.
    let start = env.start_runner(&trace);
    start.assert_ok();
    let label = start.output("label").to_owned();
    runs.push(start);
    runs.push(env.stop_runner(&label, &trace));
    let mut cleanup = env.command(&["cleanup"]);
    for (k, v) in env.app_env() {
        cleanup.env(k, v);
    }
    cleanup
        .env("INPUT_LOG_LEVEL", "trace")
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("INPUT_SETTLE", "0s");
    runs.push(env.finish(cleanup));

    // A launch failure after the JIT config was minted (undo path).
    env.faults(
        json!([{"action": "RunInstances", "status": 400, "code": "InvalidAMIID.NotFound",
                        "message": "The image id does not exist", "times": 1}]),
    );
    let failed = env.start_runner(&trace);
    assert_eq!(failed.code, 1);
    runs.push(failed);

    // Token auth, success and a GitHub failure.
    for fault in [false, true] {
        if fault {
            env.github_faults(
                json!([{"method": "POST", "path": "generate-jitconfig$", "status": 422,
                                      "body": {"message": "Validation Failed"}}]),
            );
        }
        let mut cmd = env.command(&["start"]);
        cmd.env("INPUT_GITHUB_TOKEN", PAT)
            .env("INPUT_IMAGE_ID", AMI)
            .env("INPUT_INSTANCE_TYPES", "c7i.large")
            .env("INPUT_LOG_LEVEL", "trace")
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
        runs.push(env.finish(cmd));
    }

    // A key that does not parse must not be echoed back either.
    let broken_key = app_keys().0.replace("MII", "XXX");
    let mut cmd = env.command(&["start"]);
    cmd.env("INPUT_GITHUB_APP_ID", "1234")
        .env("INPUT_GITHUB_APP_PRIVATE_KEY", &broken_key)
        .env("INPUT_IMAGE_ID", AMI)
        .env("INPUT_INSTANCE_TYPES", "c7i.large")
        .env("INPUT_LOG_LEVEL", "trace")
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let bad = env.finish(cmd);
    assert_eq!(bad.code, 2, "{}", bad.all());
    runs.push(bad);

    // Command-line slips: a token without its flag, a key given twice. clap
    // quotes what it cannot place; the tool blanks secrets out of that.
    for args in [
        vec!["start", PAT],
        vec![
            "start",
            "--github-app-private-key",
            &app_keys().0,
            &app_keys().0,
        ],
    ] {
        let slip = env.run(&args, &[]);
        assert_eq!(slip.code, 2, "{}", slip.all());
        assert!(slip.stderr.contains("***"), "{}", slip.stderr);
        runs.push(slip);
    }

    let mut secrets: Vec<String> = vec![PAT.to_owned()];
    for key in [&app_keys().0, &broken_key] {
        secrets.extend(
            key.lines()
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    let state = env.github_state();
    let issued: Vec<String> = state["secrets_issued"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    assert!(
        issued.len() >= 6,
        "installation tokens and JIT configs were issued: {issued:?}"
    );
    secrets.extend(issued);
    secrets.push(SESSION_TOKEN.to_owned());
    // The user data as sent: base64 of the gzipped script, which holds the
    // JIT config in a reversible form.
    secrets.extend(
        env.ec2_calls()
            .iter()
            .filter_map(|c| c["params"]["UserData"].as_str())
            .map(|u| u[..64.min(u.len())].to_owned()),
    );

    let text = visible(&runs);
    assert!(
        text.len() > 10_000,
        "trace logging produced output to scan ({} bytes)",
        text.len()
    );
    let leaks: Vec<&String> = secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .collect();
    assert!(
        leaks.is_empty(),
        "{} secret(s) leaked, e.g. {:?}",
        leaks.len(),
        leaks.first().map(|s| &s[..8])
    );

    // And the masks came first: every JIT config and token this run used was masked.
    let masks: String = runs.iter().map(|r| r.stdout.as_str()).collect();
    assert!(masks.contains(&format!("::add-mask::{PAT}")));
}
