//! Transient faults never become failed jobs or duplicates: EC2 throttling
//! and GitHub 5xx/429/secondary rate limits are retried (honouring
//! Retry-After), and a JIT config retried under the same name recovers from 409.

use std::time::Instant;

use serde_json::json;

use crate::harness::Env;

#[test]
fn ec2_throttling_is_retried_with_backoff() {
    let env = Env::start();
    env.faults(json!([
        {"action": "DescribeInstances", "status": 503, "code": "RequestLimitExceeded",
         "message": "Request limit exceeded.", "times": 2},
        {"action": "RunInstances", "status": 503, "code": "RequestLimitExceeded",
         "message": "Request limit exceeded.", "times": 1}
    ]));
    let run = env.start_runner(&[("INPUT_LOG_LEVEL", "debug")]);
    run.assert_ok();
    assert_eq!(
        env.instances().len(),
        1,
        "the throttled launch was retried, once it went through"
    );
    assert!(
        run.stderr.contains("retrying after"),
        "the retries and their waits are logged at debug level:\n{}",
        run.stderr
    );
    let throttled = env
        .ec2_calls()
        .iter()
        .filter(|c| {
            c["error_code"] == "RequestLimitExceeded" || c["code"] == "RequestLimitExceeded"
        })
        .count();
    assert!(throttled >= 3, "the faults were hit ({throttled})");
}

#[test]
fn github_server_errors_and_rate_limits_are_retried_honouring_retry_after() {
    let env = Env::start();
    env.github_faults(json!([
        {"method": "GET", "path": "/installation$", "status": 502, "body": {"message": "Server Error"}, "times": 1},
        {"method": "POST", "path": "access_tokens$", "status": 429, "headers": {"Retry-After": "1"},
         "body": {"message": "API rate limit exceeded"}, "times": 1},
        {"method": "POST", "path": "generate-jitconfig$", "status": 403,
         "headers": {"Retry-After": "1"},
         "body": {"message": "You have exceeded a secondary rate limit."}, "times": 1}
    ]));
    let began = Instant::now();
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert!(
        began.elapsed().as_secs_f64() >= 2.0,
        "waited for both Retry-After headers"
    );
    assert_eq!(env.runners().len(), 1, "exactly one runner");
}

#[test]
fn a_jit_config_whose_answer_was_lost_is_recovered_from_409_with_a_fresh_name() {
    let env = Env::start();
    // GitHub creates the runner, but its answer is lost (a 502 from a proxy):
    // the retry under the same name meets 409.
    env.github_faults(
        json!([{"method": "POST", "path": "generate-jitconfig$", "status": 502,
                              "drop_response": true, "times": 1,
                              "body": {"message": "Bad Gateway"}}]),
    );
    let run = env.start_runner(&[("INPUT_LABEL", "fixed-label")]);
    run.assert_ok();
    let start_id = run.output("start-id").to_owned();
    let first = format!("fixed-label-{start_id}-1");
    let mut names: Vec<String> = env
        .runners()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        names[0], first,
        "the runner of the lost answer is kept, not deleted"
    );
    assert!(
        names[1].starts_with(&format!("{first}-")) && names[1].len() == first.len() + 5,
        "the runner got a fresh name: {names:?}"
    );
    let calls = env.github_calls();
    let posts: Vec<i64> = calls
        .iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("generate-jitconfig"))
        })
        .filter_map(|c| c["status"].as_i64())
        .collect();
    assert_eq!(posts, [502, 409, 201]);
    assert!(
        !calls.iter().any(|c| c["method"] == "DELETE"),
        "start never deletes a runner it cannot prove is its own"
    );
    let instance = &env.live_instances()[0];
    assert_eq!(
        crate::harness::tag(instance, "ec2-spot-runner:runner-name"),
        Some(names[1].as_str())
    );
    // Stop, given the start id, removes both: both carry the start's part.
    env.stop_runner("fixed-label", &[("INPUT_START_ID", &start_id)])
        .assert_ok();
    assert!(env.runners().is_empty(), "{:?}", env.runners());
}

#[test]
fn a_github_outage_fails_clearly_and_launches_nothing() {
    let env = Env::start();
    env.github_faults(
        json!([{"method": "POST", "path": "generate-jitconfig$", "status": 503,
                              "body": {"message": "Service Unavailable"}}]),
    );
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1);
    let error = run.error();
    assert!(
        error.contains("create a JIT runner config") && error.contains("503"),
        "{error}"
    );
    assert!(env.instances().is_empty(), "nothing launched");
}

#[test]
fn a_deadline_that_ends_the_retries_names_what_kept_failing() {
    let env = Env::start();
    // Slow 503s: the start's timeout ends the retries before they run out.
    env.github_faults(
        json!([{"method": "POST", "path": "generate-jitconfig$", "status": 503, "delay_ms": 3000,
                              "body": {"message": "Service Unavailable"}}]),
    );
    let run = env.start_runner(&[("INPUT_TIMEOUT", "10s")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let error = run.error();
    assert!(
        error.contains("did not finish within the timeout of 10s"),
        "a timeout: {error}"
    );
    assert!(
        error.contains("retried, which failed with")
            && error.contains("HTTP 503")
            && error.contains("Service Unavailable"),
        "{error}"
    );
    assert!(env.instances().is_empty(), "nothing launched");
}

#[test]
fn a_rate_limit_longer_than_a_job_should_wait_fails_with_the_reset_time() {
    let env = Env::start();
    env.github_faults(
        json!([{"method": "POST", "path": "access_tokens$", "status": 429,
                              "headers": {"Retry-After": "3600"},
                              "body": {"message": "API rate limit exceeded"}}]),
    );
    let began = Instant::now();
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1);
    assert!(
        began.elapsed().as_secs() < 30,
        "it did not sit out the hour"
    );
    assert!(
        run.error().contains("GitHub asks to wait 3600 s, until"),
        "{}",
        run.error()
    );
    assert!(env.instances().is_empty());
}

#[test]
fn stop_terminates_everything_even_when_github_refuses_a_runner_deletion() {
    let env = Env::start();
    let run = env.start_runner(&[("INPUT_COUNT", "2")]);
    run.assert_ok();
    env.github_faults(
        json!([{"method": "DELETE", "path": "/actions/runners/1$", "status": 403,
                              "body": {"message": "Must have admin rights to Repository."}}]),
    );
    let stop = env.stop_runner(run.output("label"), &[]);
    assert_eq!(stop.code, 1, "{}", stop.all());
    assert!(
        stop.error().contains("1 runner(s) could not be deleted"),
        "{}",
        stop.error()
    );
    assert!(env.live_instances().is_empty(), "both machines terminated");
    assert_eq!(env.runners().len(), 1, "the other runner was still deleted");
}
