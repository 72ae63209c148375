//! GitHub's real limits, against a stand-in that enforces them: a
//! secondary rate limit on concurrent mutating requests, installation
//! tokens that expire, the new long token format, GitHub Enterprise Server
//! versions, and runner groups that admit only private repositories.

use serde_json::{Value, json};

use crate::harness::{CLIENT_ID, Env, ORG};

fn answered_by(env: &Env, who: &str) -> usize {
    env.github_calls()
        .iter()
        .filter(|c| c["answered_by"] == who)
        .count()
}

#[test]
fn count_six_mints_its_jit_configs_within_the_secondary_rate_limit() {
    let env = Env::start();
    // GitHub refuses a mutating request while three others of the same
    // credential are in flight; each takes 300 ms here.
    env.configure_github(json!({
        "secondary_limit": {"max_concurrent_mutations": 3, "retry_after": null, "status": 403},
        "mutation_delay_ms": 300
    }));
    let run = env.start_runner(&[("INPUT_COUNT", "6")]);
    run.assert_ok();
    assert_eq!(
        answered_by(&env, "secondary-limit"),
        0,
        "no request was refused"
    );
    assert_eq!(env.runners().len(), 6);
    assert_eq!(env.live_instances().len(), 6);
}

#[test]
fn the_installation_token_is_renewed_before_it_expires() {
    let env = Env::start();
    // Tokens live 6 s; the runner comes online after 9 s, so the online
    // wait outlives the first token.
    env.configure_github(json!({"installation_token_ttl": 6, "auto_online_after": 9}));
    let run = env.start_runner(&[("INPUT_WAIT_FOR", "online"), ("INPUT_TIMEOUT", "60s")]);
    run.assert_ok();
    let calls = env.github_calls();
    let minted = calls
        .iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/access_tokens"))
        })
        .count();
    assert!(minted >= 2, "the token was renewed: {minted} minted");
    let refused: Vec<&Value> = calls.iter().filter(|c| c["status"] == 401).collect();
    assert!(
        refused.is_empty(),
        "no request met an expired token: {refused:#?}"
    );
    assert!(
        run.stderr
            .contains("renewed the GitHub App installation token"),
        "{}",
        run.stderr
    );
    env.stop_runner(
        run.output("label"),
        &[("INPUT_START_ID", run.output("start-id"))],
    )
    .assert_ok();
}

#[test]
fn long_installation_tokens_work_and_never_show() {
    let env = Env::start();
    env.configure_github(json!({"token_format": "long"}));
    let run = env.start_runner(&[]);
    run.assert_ok();
    let stop = env.stop_runner(run.output("label"), &[]);
    stop.assert_ok();
    assert!(env.live_instances().is_empty() && env.runners().is_empty());
    // Every issued token was masked before use and appears nowhere else.
    let state = env.github_state();
    assert!(state["installation_tokens_issued"].as_u64().unwrap_or(0) >= 2);
    for text in [run.all(), stop.all(), run.summary.clone()] {
        for line in text.lines().filter(|l| !l.starts_with("::add-mask::")) {
            assert!(
                !line
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '.' && c != '-')
                    .any(|w| w.len() > 200),
                "a long token-like word reached the log: {line}"
            );
        }
    }
}

#[test]
fn old_enterprise_servers_name_the_version_each_feature_needs() {
    // Client-id issuers need GHES 3.18.
    let env = Env::start();
    env.configure_github(json!({"ghes_version": "3.17"}));
    let run = env.start_runner(&[("INPUT_GITHUB_APP_ID", CLIENT_ID)]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("3.18") && run.error().contains("numeric id"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());

    // JIT configs need GHES 3.10.
    env.configure_github(json!({"ghes_version": "3.9"}));
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("from version 3.10") && run.error().contains("JIT"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());
}

#[test]
fn a_public_repository_in_a_group_for_private_ones_is_warned() {
    let env = Env::start();
    env.configure_github(json!({"repositories": {"acme/widgets": {"visibility": "public"}}}));
    let run = env.start_runner(&[("INPUT_ORGANIZATION", ORG)]);
    run.assert_ok();
    assert!(
        run.stdout.lines().any(|l| l.starts_with("::warning::")
            && l.contains("is public")
            && l.contains("admits only private repositories")),
        "{}",
        run.stdout
    );
    // A group that allows public repositories: no warning.
    let env = Env::start();
    env.configure_github(json!({
        "repositories": {"acme/widgets": {"visibility": "public"}},
        "runner_groups": {"acme": [{"id": 1, "allows_public_repositories": true}]}
    }));
    let run = env.start_runner(&[("INPUT_ORGANIZATION", ORG)]);
    run.assert_ok();
    assert!(
        !run.stdout.contains("admits only private"),
        "{}",
        run.stdout
    );
}
