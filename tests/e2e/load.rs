//! Load: 100 concurrent starts (distinct runs) against the stand-ins all
//! succeed with no duplicate machine or runner name, and 100 stops then
//! leave nothing running. Prints the figures; asserts only behaviour.

use std::collections::HashSet;
use std::time::Instant;

use crate::harness::{AMI, Env, tag};

const RUNS: usize = 100;

#[test]
fn a_hundred_concurrent_starts_and_stops_leave_no_duplicate_and_nothing_running() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0400"),
        ("c7i.large", "us-east-1b", "0.0310"),
    ]);
    env.clear_calls();
    let began = Instant::now();
    let children: Vec<_> = (0..RUNS)
        .map(|i| {
            let mut cmd = env.command(&["start"]);
            for (k, v) in env.app_env() {
                cmd.env(k, v);
            }
            cmd.env("INPUT_IMAGE_ID", AMI)
                .env("INPUT_INSTANCE_TYPES", "c7i.large")
                .env("INPUT_TIMEOUT", "10m")
                .env("GITHUB_RUN_ID", format!("{}", 90_000 + i))
                .env(
                    "GITHUB_OUTPUT",
                    env.dir.path().join(format!("load-output-{i}")),
                );
            cmd.spawn().unwrap()
        })
        .collect();
    let mut labels = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "start {i} failed with {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let outputs = crate::harness::parse_outputs(
            &std::fs::read_to_string(env.dir.path().join(format!("load-output-{i}"))).unwrap(),
        );
        labels.push(outputs["label"].clone());
    }
    let start_wall = began.elapsed();

    let live = env.live_instances();
    assert_eq!(live.len(), RUNS, "one machine per start");
    let names: HashSet<&str> = live
        .iter()
        .filter_map(|i| tag(i, "ec2-spot-runner:runner-name"))
        .collect();
    assert_eq!(
        names.len(),
        RUNS,
        "no duplicate runner name on the machines"
    );
    let runners = env.runners();
    let runner_names: HashSet<&str> = runners.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(runner_names.len(), RUNS, "no duplicate runner on GitHub");
    let ec2_calls = env.ec2_calls().len();
    let github_calls = env.github_calls().len();

    let began = Instant::now();
    let children: Vec<_> = labels
        .iter()
        .map(|label| {
            let mut cmd = env.command(&["stop"]);
            for (k, v) in env.app_env() {
                cmd.env(k, v);
            }
            cmd.env("INPUT_LABEL", label);
            cmd.spawn().unwrap()
        })
        .collect();
    for (label, child) in labels.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        // The error line is on stdout (an Actions annotation), the log on stderr.
        assert!(
            out.status.success(),
            "stop of {label} failed with {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stop_wall = began.elapsed();
    assert!(env.live_instances().is_empty(), "nothing left running");
    assert!(env.runners().is_empty(), "no runner left");
    eprintln!(
        "load: {RUNS} concurrent starts in {start_wall:.1?} ({:.1} EC2 and {:.1} GitHub calls per start); {RUNS} stops in {stop_wall:.1?}; duplicates: 0",
        ec2_calls as f64 / RUNS as f64,
        github_calls as f64 / RUNS as f64
    );
}
