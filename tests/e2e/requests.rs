//! GitHub requests as the HTTP and GitHub specifications describe them:
//! each single-value header field once, our own User-Agent, the API version
//! asked for once, from every client the binary builds.

use serde_json::Value;

use crate::harness::{Env, PAT};

#[test]
fn every_github_request_carries_each_header_once_with_our_user_agent() {
    let env = Env::start();
    // App auth: the JWT client finds the installation and mints a token, the
    // installation token's client mints the JIT config. The release is read
    // from another host name for the same stand-in, so without credentials.
    let mirror = format!(
        "{}/repos/actions/runner/releases/latest",
        env.github.replace("127.0.0.1", "localhost")
    );
    let run = env.start_runner(&[("INPUT_RUNNER_RELEASES_URL", &mirror)]);
    run.assert_ok();
    // A token as given: the token's client removes the runner.
    env.stop_runner(
        run.output("label"),
        &[
            ("INPUT_GITHUB_APP_ID", ""),
            ("INPUT_GITHUB_APP_PRIVATE_KEY", ""),
            ("INPUT_GITHUB_TOKEN", PAT),
        ],
    )
    .assert_ok();

    let calls = env.github_calls();
    let kinds: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["auth"].as_str()).collect();
    assert_eq!(
        kinds,
        ["jwt", "none", "token"].into_iter().collect(),
        "every client was used: {calls:#?}"
    );
    let user_agent = concat!("ec2-spot-runner/", env!("CARGO_PKG_VERSION"));
    let wrong: Vec<&Value> = calls
        .iter()
        .filter(|c| {
            !c["repeated_fields"].is_null()
                || c["user_agent_value"] != user_agent
                || c["api_version_value"] != "2022-11-28"
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "requests with a repeated header, another User-Agent or API version: {wrong:#?}"
    );
}
