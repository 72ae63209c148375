//! `doctor` checks a setup before the first run and launches nothing.

use serde_json::json;

use crate::harness::{AMI, APP_ID, Env, ORG, REPO, app_keys};

fn doctor(env: &Env) -> crate::harness::Run {
    doctor_with(env, &[])
}

fn doctor_with(env: &Env, extra: &[(&str, &str)]) -> crate::harness::Run {
    let mut cmd = env.command(&["doctor"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", AMI)
        .env("INPUT_INSTANCE_TYPES", "c7i.large")
        .envs(extra.iter().copied());
    env.finish(cmd)
}

#[test]
fn doctor_passes_with_exactly_the_policy_and_names_a_missing_action() {
    let env = Env::start();
    let mut doc = env.policy();
    let mut env = env;
    env.act_as("full", &doc);
    let run = doctor(&env);
    run.assert_ok();
    for check in [
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:DescribeInstances",
        "ec2:ModifyVolume",
        "ec2:TerminateInstances",
        "ec2:DescribeSpotPriceHistory",
        "GitHub credential",
        "GitHub App permission",
        "GitHub runner access",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("[ok  ]") && l.contains(check)),
            "{check}:\n{}",
            run.stdout
        );
    }
    // The optional actions are probed, said to be probed, and pass when
    // neither granted nor listed: start never calls them.
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("ec2:DescribeImages"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        line.starts_with("[ok  ]")
            && line.contains("probed by doctor")
            && line.contains("not granted and not listed"),
        "{line}"
    );
    // Listed but not granted: every start would make a denied call.
    let listed = doctor_with(&env, &[("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeImages")]);
    assert_eq!(listed.code, 1, "{}", listed.all());
    let line = listed
        .stdout
        .lines()
        .find(|l| l.contains("ec2:DescribeImages"))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(
        line.starts_with("[FAIL]")
            && line.contains("listed in extra-permissions but denied")
            && line.contains("policy --optional"),
        "{line}"
    );
    env.aws_key = ("testing".into(), "testing".into());
    assert!(env.instances().is_empty(), "doctor launched nothing");

    // A user without TerminateInstances.
    for statement in doc["Statement"].as_array_mut().unwrap() {
        statement["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a != "ec2:TerminateInstances");
    }
    env.act_as("partial", &doc);
    let run = doctor(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("ec2:TerminateInstances"))
        .unwrap();
    assert!(
        line.starts_with("[FAIL]") && line.contains("add ec2:TerminateInstances"),
        "{line}"
    );
    assert!(
        run.stdout.contains("::error::doctor found 1 problem"),
        "{}",
        run.stdout
    );
}

#[test]
fn doctor_names_a_missing_app_permission() {
    let env = Env::start();
    env.configure_github(json!({
        "apps": [{
            "id": APP_ID,
            "client_id": "Iv23liNoPerms",
            "public_key_pem": app_keys().1,
            "installations": [{"id": 56, "account": ORG, "account_type": "Organization",
                               "repositories": [REPO], "permissions": {"metadata": "read"}}]
        }]
    }));
    let run = doctor(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("GitHub App permission"))
        .unwrap();
    assert!(
        line.starts_with("[FAIL]") && line.contains("Administration: Read and write"),
        "{line}"
    );
}
