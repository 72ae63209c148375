//! The opt-in extras beyond the six actions, each with the permission it
//! needs named when it is missing.

use serde_json::{Value, json};

use crate::harness::Env;

fn instance_profile(env: &Env, profile: Option<&str>, role: &str) -> Value {
    env.post(
        &format!("{}/_shim/instance-profile", env.ec2),
        &json!({"profile": profile, "role": role}),
    )
}

#[test]
fn an_instance_profile_gives_the_machine_a_role_and_needs_pass_role() {
    let mut env = Env::start();
    let made = instance_profile(&env, Some("ci-runner"), "ci-runner-role");
    let role_arn = made["role_arn"].as_str().unwrap().to_owned();
    let with_profile = [("INPUT_IAM_INSTANCE_PROFILE", "ci-runner")];

    let run = env.start_runner(&with_profile);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    let arn = instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .unwrap_or_default()
        .to_owned();
    assert!(arn.ends_with(":instance-profile/ci-runner"), "{arn}");
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // The six actions alone may not pass the role: one clear error, nothing left.
    let doc = env.policy();
    env.act_as("no-pass-role", &doc);
    let run = env.start_runner(&with_profile);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("iam:PassRole") && run.error().contains("--pass-role"),
        "{}",
        run.error()
    );

    // doctor, given the same inputs, names the missing permission.
    let doctor = env.run_app(
        &["doctor"],
        &[
            ("INPUT_IMAGE_ID", crate::harness::AMI),
            ("INPUT_INSTANCE_TYPES", "c7i.large"),
            ("INPUT_IAM_INSTANCE_PROFILE", "ci-runner"),
        ],
    );
    assert_eq!(doctor.code, 1, "{}", doctor.all());
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] ec2:RunInstances") && l.contains("iam:PassRole")),
        "{}",
        doctor.stdout
    );

    // With the statement `policy --pass-role` prints, it works.
    let policy = env.run(&["policy", "--pass-role", &role_arn], &[]);
    policy.assert_ok();
    let doc: Value = serde_json::from_str(&policy.stdout).unwrap();
    env.act_as("pass-role", &doc);
    let run = env.start_runner(&with_profile);
    run.assert_ok();
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // A role's name where a profile is needed.
    env.aws_key = ("testing".into(), "testing".into());
    instance_profile(&env, None, "bare-role");
    let run = env.start_runner(&[("INPUT_IAM_INSTANCE_PROFILE", "bare-role")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("must name an instance profile, not a role"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}
