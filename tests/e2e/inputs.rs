//! Bad input gets one clear line naming the input, exit code 2, and no call
//! to EC2 at all — nothing is launched.

use crate::harness::{AMI, APP_ID, Env, Run, app_keys};

/// Environment variables of one invocation.
type Vars = Vec<(&'static str, String)>;

/// (case, args as env, the input the message must name).
fn cases() -> Vec<(&'static str, Vars, &'static str)> {
    let key = app_keys().0.clone();
    let app = |extra: &[(&'static str, &str)]| {
        let mut v: Vars = vec![
            ("INPUT_GITHUB_APP_ID", APP_ID.to_string()),
            ("INPUT_GITHUB_APP_PRIVATE_KEY", key.clone()),
            ("INPUT_IMAGE_ID", AMI.to_owned()),
            ("INPUT_INSTANCE_TYPES", "c7i.large".to_owned()),
        ];
        for (k, val) in extra {
            v.retain(|(key, _)| key != k);
            if !val.is_empty() {
                v.push((k, (*val).to_owned()));
            }
        }
        v
    };
    vec![
        (
            "a resolve:ssm: image-id that is not a parameter name",
            app(&[("INPUT_IMAGE_ID", "resolve:ssm:/bad name/")]),
            "image-id",
        ),
        (
            "instance-requirements beside instance-types",
            app(&[("INPUT_INSTANCE_REQUIREMENTS", "vcpu=2")]),
            "instance-requirements",
        ),
        (
            "instance-requirements with an unknown key",
            app(&[
                ("INPUT_INSTANCE_TYPES", ""),
                ("INPUT_INSTANCE_REQUIREMENTS", "cores=4"),
            ]),
            "instance-requirements",
        ),
        (
            "instance-requirements that match nothing",
            app(&[
                ("INPUT_INSTANCE_TYPES", ""),
                ("INPUT_INSTANCE_REQUIREMENTS", "vcpu=3,memory=1000"),
            ]),
            "instance-requirements",
        ),
        (
            "rank-by that is not price or price-per-vcpu",
            app(&[("INPUT_RANK_BY", "speed")]),
            "rank-by",
        ),
        (
            "runner-update that is not a yes or no",
            app(&[("INPUT_RUNNER_UPDATE", "sometimes")]),
            "runner-update",
        ),
        (
            "instance-store that is not auto or off",
            app(&[("INPUT_INSTANCE_STORE", "raid")]),
            "instance-store",
        ),
        (
            "runner-sudo that is not a yes or no",
            app(&[("INPUT_RUNNER_SUDO", "root")]),
            "runner-sudo",
        ),
        (
            "image-name without an owner",
            app(&[("INPUT_IMAGE_ID", ""), ("INPUT_IMAGE_NAME", "ubuntu-*")]),
            "image-owner",
        ),
        (
            "image-name and image-id together",
            app(&[
                ("INPUT_IMAGE_NAME", "ubuntu-*"),
                ("INPUT_IMAGE_OWNER", "amazon"),
            ]),
            "image-name",
        ),
        (
            "an image owner that is not one",
            app(&[
                ("INPUT_IMAGE_ID", ""),
                ("INPUT_IMAGE_NAME", "ubuntu-*"),
                ("INPUT_IMAGE_OWNER", "canonical"),
            ]),
            "image-owner",
        ),
        (
            "an image name that is only wildcards",
            app(&[
                ("INPUT_IMAGE_ID", ""),
                ("INPUT_IMAGE_NAME", "*"),
                ("INPUT_IMAGE_OWNER", "amazon"),
            ]),
            "image-name",
        ),
        (
            "a role ARN as the instance profile",
            app(&[(
                "INPUT_IAM_INSTANCE_PROFILE",
                "arn:aws:iam::123456789012:role/ci-runner",
            )]),
            "iam-instance-profile",
        ),
        (
            "a launch template that is neither an id nor a name",
            app(&[("INPUT_LAUNCH_TEMPLATE", "lt")]),
            "launch-template",
        ),
        (
            "a launch template name with a space",
            app(&[("INPUT_LAUNCH_TEMPLATE", "ci runner")]),
            "launch-template",
        ),
        (
            "launch template version 0",
            app(&[
                ("INPUT_LAUNCH_TEMPLATE", "ci-runner"),
                ("INPUT_LAUNCH_TEMPLATE_VERSION", "0"),
            ]),
            "launch-template-version",
        ),
        (
            "a launch template version without a template",
            app(&[("INPUT_LAUNCH_TEMPLATE_VERSION", "$Latest")]),
            "launch-template-version",
        ),
        (
            "a malformed instance profile name",
            app(&[("INPUT_IAM_INSTANCE_PROFILE", "ci runner/x")]),
            "iam-instance-profile",
        ),
        (
            "a runner-releases-url that is not a URL",
            app(&[("INPUT_RUNNER_RELEASES_URL", "releases")]),
            "runner-releases-url",
        ),
        (
            "runner-releases-url with a pinned runner-version",
            app(&[
                ("INPUT_RUNNER_RELEASES_URL", "https://mirror.example/latest"),
                ("INPUT_RUNNER_VERSION", "2.338.0"),
            ]),
            "runner-releases-url",
        ),
        (
            "missing image id",
            app(&[("INPUT_IMAGE_ID", "")]),
            "image-id",
        ),
        (
            "malformed AMI id",
            app(&[("INPUT_IMAGE_ID", "ami-XYZ")]),
            "image-id",
        ),
        (
            "AMI id of a snapshot",
            app(&[("INPUT_IMAGE_ID", "snap-0123456789abcdef0")]),
            "image-id",
        ),
        (
            "unknown market",
            app(&[("INPUT_MARKET", "cheap")]),
            "market",
        ),
        (
            "unknown wait-for",
            app(&[("INPUT_WAIT_FOR", "forever")]),
            "wait-for",
        ),
        ("tag without =", app(&[("INPUT_TAGS", "team")]), "tags"),
        (
            "reserved tag key",
            app(&[("INPUT_TAGS", "aws:foo=bar")]),
            "tags",
        ),
        (
            "tag with a newline in the value",
            app(&[("INPUT_TAGS", "a=b\u{7}c")]),
            "tags",
        ),
        (
            "both auth methods",
            app(&[("INPUT_GITHUB_TOKEN", "ghp_abc")]),
            "github-token",
        ),
        (
            "neither auth method",
            app(&[
                ("INPUT_GITHUB_APP_ID", ""),
                ("INPUT_GITHUB_APP_PRIVATE_KEY", ""),
            ]),
            "github-token",
        ),
        (
            "unreadable PEM",
            app(&[(
                "INPUT_GITHUB_APP_PRIVATE_KEY",
                "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----",
            )]),
            "github-app-private-key",
        ),
        (
            "PEM that is not PEM",
            app(&[("INPUT_GITHUB_APP_PRIVATE_KEY", "hello")]),
            "github-app-private-key",
        ),
        (
            "app id without key",
            app(&[("INPUT_GITHUB_APP_PRIVATE_KEY", "")]),
            "github-app-private-key",
        ),
        (
            "malformed app id",
            app(&[("INPUT_GITHUB_APP_ID", "my-app")]),
            "github-app-id",
        ),
        (
            "malformed repository",
            app(&[("INPUT_REPOSITORY", "acme")]),
            "repository",
        ),
        (
            "repository with a space",
            app(&[("INPUT_REPOSITORY", "acme/my repo")]),
            "repository",
        ),
        (
            "malformed instance type",
            app(&[("INPUT_INSTANCE_TYPES", "large")]),
            "instance-types",
        ),
        (
            "missing instance types",
            app(&[("INPUT_INSTANCE_TYPES", "")]),
            "instance-types",
        ),
        (
            "malformed subnet",
            app(&[("INPUT_SUBNET_IDS", "subnet-xyz")]),
            "subnet-ids",
        ),
        (
            "malformed security group",
            app(&[("INPUT_SECURITY_GROUP_IDS", "default")]),
            "security-group-ids",
        ),
        (
            "label with shell metacharacters",
            app(&[("INPUT_LABEL", "x$(id)")]),
            "label",
        ),
        (
            "label too long",
            app(&[("INPUT_LABEL", &"a".repeat(61))]),
            "label",
        ),
        (
            "negative volume size",
            app(&[("INPUT_VOLUME_SIZE", "-5")]),
            "volume-size",
        ),
        (
            "huge volume size",
            app(&[("INPUT_VOLUME_SIZE", "99999999")]),
            "volume-size",
        ),
        (
            "timeout without unit",
            app(&[("INPUT_TIMEOUT", "300")]),
            "timeout",
        ),
        (
            "timeout too long",
            app(&[("INPUT_TIMEOUT", "5h")]),
            "timeout",
        ),
        (
            "unknown runner version",
            app(&[("INPUT_RUNNER_VERSION", "2.1.0")]),
            "runner-version",
        ),
        (
            "malformed runner checksum",
            app(&[
                ("INPUT_RUNNER_VERSION", "2.1.0"),
                ("INPUT_RUNNER_SHA256", "x64=abc"),
            ]),
            "runner-sha256",
        ),
        (
            "relative runner dir",
            app(&[("INPUT_RUNNER_DIR", "actions-runner")]),
            "runner-dir",
        ),
        (
            "idle longer than lifetime",
            app(&[("INPUT_MAX_LIFETIME", "1h"), ("INPUT_IDLE_TIMEOUT", "2h")]),
            "idle-timeout",
        ),
        ("zero count", app(&[("INPUT_COUNT", "0")]), "count"),
        (
            "negative spot price",
            app(&[("INPUT_MAX_SPOT_PRICE", "-1")]),
            "max-spot-price",
        ),
        (
            "malformed zone",
            app(&[("INPUT_AVAILABILITY_ZONES", "east")]),
            "availability-zones",
        ),
        (
            "GitHub API URL that is not a URL",
            app(&[("GITHUB_API_URL", "not a url")]),
            "github-api-url",
        ),
        (
            "malformed installation id",
            app(&[("INPUT_GITHUB_APP_INSTALLATION_ID", "abc")]),
            "github-app-installation-id",
        ),
        (
            "malformed runner group",
            app(&[("INPUT_RUNNER_GROUP_ID", "default")]),
            "runner-group-id",
        ),
        (
            "malformed boolean",
            app(&[("INPUT_BOOT_BOOST", "maybe")]),
            "boot-boost",
        ),
        (
            "malformed region",
            app(&[("INPUT_AWS_REGION", "Virginia")]),
            "aws-region",
        ),
    ]
}

/// Records a failure unless the run exited with `code` and printed exactly
/// one `::error::` line containing `needle`.
fn expect_one_error(failures: &mut Vec<String>, case: &str, run: &Run, code: i32, needle: &str) {
    if run.code != code || !run.single_error().is_some_and(|e| e.contains(needle)) {
        failures.push(format!(
            "{case}: exit {} {:?}\n{}",
            run.code,
            run.single_error(),
            run.all()
        ));
    }
}

#[test]
fn bad_start_inputs_get_one_clear_line_exit_2_and_no_launch() {
    let env = Env::start();
    env.clear_calls();
    let mut failures = Vec::new();
    for (case, vars, input) in cases() {
        let mut cmd = env.command(&["start"]);
        cmd.env_remove("GITHUB_API_URL")
            .env("GITHUB_API_URL", &env.github);
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        let run = env.finish(cmd);
        expect_one_error(&mut failures, case, &run, 2, &format!("`{input}`"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    let actions = env.ec2_actions();
    assert!(actions.is_empty(), "no EC2 call for bad input: {actions:?}");
    assert!(
        env.runners().is_empty(),
        "no runner registered for bad input"
    );
}

#[test]
fn stop_without_a_label_says_what_to_do() {
    let env = Env::start();
    let run = env.stop_runner("", &[]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stdout.contains("::error::input `label`: is empty"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("cleanup"), "points to the cleanup mode");
}

/// Inputs that are well-formed but wrong, which only GitHub can tell:
/// exit 1 with one clear line, and nothing launched or registered.
#[test]
fn credentials_github_refuses_get_one_clear_line_exit_1_and_no_launch() {
    let env = Env::start();
    env.clear_calls();
    let other_key = crate::harness::rsa_key();
    let cases: Vec<(&str, Vars, &str)> = vec![
        (
            "wrong-issuer App (an App id GitHub does not know)",
            vec![("INPUT_GITHUB_APP_ID", "999999".into())],
            "github-app-id and github-app-private-key belong to the same App",
        ),
        (
            "a key of another App",
            vec![("INPUT_GITHUB_APP_PRIVATE_KEY", other_key)],
            "github-app-id and github-app-private-key belong to the same App",
        ),
        (
            "a repository without an installation",
            vec![("INPUT_REPOSITORY", "acme/elsewhere".into())],
            "is the App installed there?",
        ),
        (
            "an organization without an installation",
            vec![("INPUT_ORGANIZATION", "someone-else".into())],
            "is the App installed there?",
        ),
        (
            "a revoked token",
            vec![
                ("INPUT_GITHUB_APP_ID", String::new()),
                ("INPUT_GITHUB_APP_PRIVATE_KEY", String::new()),
                (
                    "INPUT_GITHUB_TOKEN",
                    "ghp_RevokedTokenRevokedToken000000000".into(),
                ),
            ],
            "github-token is current",
        ),
    ];
    let mut failures = Vec::new();
    for (case, vars, hint) in cases {
        let mut cmd = env.command(&["start"]);
        for (k, v) in env.app_env() {
            cmd.env(k, v);
        }
        cmd.env("INPUT_IMAGE_ID", AMI)
            .env("INPUT_INSTANCE_TYPES", "c7i.large");
        for (k, v) in &vars {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let run = env.finish(cmd);
        expect_one_error(&mut failures, case, &run, 1, hint);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    assert!(
        !env.ec2_actions().iter().any(|a| a == "RunInstances"),
        "nothing launched"
    );
    assert!(env.runners().is_empty());
}
