//! No orphans: cleanup reaps every kind of leftover and keeps the keepers; a
//! start killed at any stage leaves nothing running; `wait-for: online`
//! succeeds when the runner registers and cleans up when it never does.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Env, REPO};

fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A managed instance as start would tag it, created `age` minutes ago.
fn managed(env: &Env, name: &str, age: i64) -> String {
    let label = name.rsplit_once('-').unwrap().0.to_owned();
    let created = ago(age);
    env.create_instance(&[
        ("ec2-spot-runner:managed", "true"),
        ("ec2-spot-runner:label", &label),
        ("ec2-spot-runner:runner-name", name),
        ("ec2-spot-runner:scope", REPO),
        ("ec2-spot-runner:created-at", &created),
        ("ec2-spot-runner:max-lifetime", "21600"),
    ])
}

#[test]
fn cleanup_reaps_orphans_of_every_kind_and_keeps_the_keepers() {
    let env = Env::start();
    // (runner name, age in minutes, runner state on GitHub, reaped?)
    let old_busy = managed(&env, "ec2-1-1-a-aaaaaa-1", 7 * 60);
    env.create_runner("ec2-1-1-a-aaaaaa-1", "online", true);
    let young_gone = managed(&env, "ec2-2-1-a-bbbbbb-1", 1);
    let finished = managed(&env, "ec2-3-1-a-cccccc-1", 30);
    let never_online = managed(&env, "ec2-4-1-a-dddddd-1", 15);
    env.create_runner("ec2-4-1-a-dddddd-1", "offline", false);
    let registering = managed(&env, "ec2-5-1-a-eeeeee-1", 8);
    env.create_runner("ec2-5-1-a-eeeeee-1", "offline", false);
    let busy = managed(&env, "ec2-6-1-a-ffffff-1", 120);
    env.create_runner("ec2-6-1-a-ffffff-1", "online", true);
    let idle = managed(&env, "ec2-7-1-a-gggggg-1", 120);
    env.create_runner("ec2-7-1-a-gggggg-1", "online", false);
    // Not ours: no managed tag, however old.
    let foreign = env.create_instance(&[
        ("Name", "someone-else"),
        ("ec2-spot-runner:created-at", &ago(9000)),
    ]);
    // A runner of ours whose machine is long gone, and one that is not ours.
    env.create_runner("ec2-8-1-a-hhhhhh-1", "offline", false);
    env.create_foreign_runner("my-own-runner", "offline");
    // Named the way the tool names its runners, but not registered by it.
    env.create_foreign_runner("ec2-9-1-a-iiiiii-1", "offline");

    let cleanup = |dry: bool| {
        let mut cmd = env.command(&["cleanup"]);
        for (k, v) in env.app_env() {
            cmd.env(k, v);
        }
        cmd.env("INPUT_SETTLE", "0s");
        if dry {
            cmd.env("INPUT_DRY_RUN", "true");
        }
        env.finish(cmd)
    };

    let dry = cleanup(true);
    dry.assert_ok();
    assert_eq!(env.live_instances().len(), 8, "a dry run changes nothing");
    assert_eq!(env.runners().len(), 8);
    for id in [&old_busy, &finished, &never_online] {
        let row = dry
            .summary
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} in table:\n{}", dry.summary));
        assert!(row.contains("would terminate"), "{row}");
    }
    assert!(
        dry.summary.contains("ec2-8-1-a-hhhhhh-1"),
        "{}",
        dry.summary
    );
    assert!(
        dry.stdout
            .contains("| instance | label | age | runner | decision | reason |")
    );

    let run = cleanup(false);
    run.assert_ok();
    for (id, expect) in [
        (&old_busy, "terminated"),
        (&young_gone, "running"),
        (&finished, "terminated"),
        (&never_online, "terminated"),
        (&registering, "running"),
        (&busy, "running"),
        (&idle, "running"),
        (&foreign, "running"),
    ] {
        assert_eq!(env.state_of(id), expect, "{id}\n{}", run.summary);
    }
    let mut names: Vec<String> = env
        .runners()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ec2-1-1-a-aaaaaa-1",
            "ec2-5-1-a-eeeeee-1",
            "ec2-6-1-a-ffffff-1",
            "ec2-7-1-a-gggggg-1",
            "ec2-9-1-a-iiiiii-1",
            "my-own-runner"
        ],
        "offline runners of reaped machines and of gone machines are deleted; a busy one waits for its machine to die"
    );
    let terminates = env
        .ec2_actions()
        .iter()
        .filter(|a| *a == "TerminateInstances")
        .count();
    assert_eq!(terminates, 1, "one batched TerminateInstances");
}

/// Runs `start` in the background, sends SIGTERM once `ready` says so, and
/// returns how long the process took to exit after the signal.
fn kill_when(
    env: &Env,
    extra: &[(&str, &str)],
    ready: impl Fn(&Env) -> bool,
) -> (Duration, String) {
    let mut cmd = env.command(&["start"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", crate::harness::AMI)
        .env("INPUT_INSTANCE_TYPES", "c7i.large");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.env("GITHUB_OUTPUT", env.dir.path().join("kill-output"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let began = Instant::now();
    while !ready(env) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "stage never reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(1), "cancelled start exits 1");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("cancelled by SIGTERM"), "{text}");
    (took, text)
}

fn saw(env: &Env, what: &str) -> bool {
    env.github_calls()
        .iter()
        .any(|c| c["path"].as_str().is_some_and(|p| p.ends_with(what)))
}

#[test]
fn a_start_killed_at_any_stage_leaves_nothing_behind() {
    // After auth: the price lookup is slow, the installation token is minted.
    let env = Env::start();
    env.faults(json!([{"action": "DescribeSpotPriceHistory", "delay_ms": 5000}]));
    let (took, _) = kill_when(&env, &[], |e| saw(e, "access_tokens"));
    assert!(env.live_instances().is_empty() && env.runners().is_empty());
    eprintln!("kill point after auth: undo and exit in {took:?}");

    // While the launch is in flight: the launch answers after the signal.
    let env = Env::start();
    env.faults(json!([{"action": "RunInstances", "delay_ms": 1500}]));
    let (took, _) = kill_when(&env, &[], |e| saw(e, "generate-jitconfig"));
    assert!(
        env.live_instances().is_empty(),
        "the in-flight launch was terminated"
    );
    assert!(env.runners().is_empty(), "the JIT runner was deleted");
    eprintln!("kill point during launch: undo and exit in {took:?}");

    // While waiting for running: the instance stays pending.
    let env = Env::start();
    env.post(
        &format!("{}/_shim/config", env.ec2),
        &json!({"pending_seconds": 60}),
    );
    let (took, _) = kill_when(&env, &[], |e| {
        e.ec2_actions().iter().any(|a| a == "DescribeInstances")
    });
    assert!(
        env.live_instances().is_empty(),
        "the pending instance was terminated"
    );
    assert!(env.runners().is_empty());
    assert!(
        took < Duration::from_secs(5),
        "undo fits GitHub's grace period: {took:?}"
    );
    eprintln!("kill point while waiting: undo and exit in {took:?}");
}

#[test]
fn wait_for_online_succeeds_when_the_runner_registers_and_drops_the_boot_boost() {
    let env = Env::start();
    env.configure_github(json!({"auto_online_after": 1}));
    let run = env.start_runner(&[
        ("INPUT_WAIT_FOR", "online"),
        ("INPUT_VOLUME_SIZE", "20"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeImages"),
    ]);
    run.assert_ok();
    let modify: Vec<serde_json::Value> = env
        .ec2_calls()
        .into_iter()
        .filter(|c| c["action"] == "ModifyVolume")
        .map(|c| c["params"].clone())
        .collect();
    assert_eq!(modify.len(), 1, "one ModifyVolume for the root volume");
    let live = env.live_instances();
    let root = live[0]
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some("/dev/sda1"))
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_id())
        .unwrap()
        .to_owned();
    assert_eq!(modify[0]["VolumeId"], root.as_str());
    assert_eq!(modify[0]["Iops"], "3000");
    assert_eq!(modify[0]["Throughput"], "125");
    let launch = env
        .ec2_calls()
        .into_iter()
        .find(|c| c["action"] == "RunInstances")
        .unwrap();
    assert_eq!(launch["params"]["BlockDeviceMapping.1.Ebs.Iops"], "6000");
    assert_eq!(
        launch["params"]["BlockDeviceMapping.1.Ebs.Throughput"],
        "500"
    );
}

#[test]
fn a_runner_that_never_comes_online_times_out_and_is_cleaned_up() {
    let env = Env::start();
    // What the machine's console says, including lines that try to act as
    // workflow commands.
    env.shim_config(
        json!({"console_output": "[    0.000000] Linux version 6.1.0-27-cloud-amd64\n\
        2026-12-02T06:00:01Z ec2-spot-runner: downloading actions-runner-linux-x64-2.338.0.tar.gz\n\
        curl: (6) Could not resolve host: github.com\n\
        ::error::a line from the machine\n\
        ::add-mask::nothing\n\
        2026-12-02T06:00:09Z ec2-spot-runner: powering off: could not download the runner"}),
    );
    let run = env.start_runner(&[
        ("INPUT_WAIT_FOR", "online"),
        ("INPUT_TIMEOUT", "10s"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:GetConsoleOutput"),
    ]);
    assert_eq!(run.code, 1);
    let error = run
        .stdout
        .lines()
        .rfind(|l| l.starts_with("::error::"))
        .unwrap_or_default();
    assert!(
        error.contains("come online") && error.contains("system log"),
        "{error}"
    );
    // The console's tail is shown before the machine is gone, with workflow
    // commands stopped around it.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in\n{}", run.stdout))
    };
    let group = at("::group::console of i-");
    let stop = at("::stop-commands::");
    let cause = at("Could not resolve host: github.com");
    let injected = at("::error::a line from the machine");
    let token = lines[stop].trim_start_matches("::stop-commands::");
    let resume = at(&format!("::{token}::"));
    assert!(group < stop && stop < cause && cause < injected && injected < resume);
    assert!(
        env.live_instances().is_empty(),
        "the instance was terminated"
    );
    assert!(env.runners().is_empty(), "the runner was deleted");

    // With only the six actions and nothing listed, the console is not
    // asked for: one line says what would show it.
    let mut env = Env::start();
    let doc = env.policy();
    env.act_as("six-actions", &doc);
    let run = env.start_runner(&[("INPUT_WAIT_FOR", "online"), ("INPUT_TIMEOUT", "10s")]);
    assert_eq!(run.code, 1);
    assert!(!run.stdout.contains("::group::console"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("grant ec2:GetConsoleOutput and list it in extra-permissions"),
        "{}",
        run.stderr
    );
    assert!(
        !env.ec2_calls()
            .iter()
            .any(|c| c["action"] == "GetConsoleOutput"),
        "not listed, never called"
    );
    // Listed but not granted: the denial is named with both fixes.
    let run = env.start_runner(&[
        ("INPUT_WAIT_FOR", "online"),
        ("INPUT_TIMEOUT", "10s"),
        ("INPUT_EXTRA_PERMISSIONS", "ec2:GetConsoleOutput"),
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("extra-permissions lists ec2:GetConsoleOutput, but it was denied"),
        "{}",
        run.stderr
    );
}

#[test]
fn start_succeeds_when_modify_volume_is_denied() {
    let env = Env::start();
    env.faults(
        json!([{"action": "ModifyVolume", "status": 403, "code": "UnauthorizedOperation",
                        "message": "You are not authorized to perform this operation."}]),
    );
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert!(
        run.stdout
            .contains("::warning::could not drop the boot boost"),
        "{}",
        run.all()
    );
    assert!(
        run.summary
            .contains("an hour more per machine while it lasts; kept until the machine ends"),
        "the summary says what the kept boost costs:\n{}",
        run.summary
    );
    assert_eq!(env.live_instances().len(), 1);
}

#[test]
fn cleanup_without_github_still_reaps_machines_past_their_lifetime_and_fails() {
    let env = Env::start();
    let expired = managed(&env, "ec2-9-1-a-iiiiii-1", 7 * 60);
    let young = managed(&env, "ec2-9-1-a-jjjjjj-1", 30);
    env.github_faults(
        json!([{"method": "GET", "path": "/installation$", "status": 404,
                              "body": {"message": "Not Found"}}]),
    );
    let mut cmd = env.command(&["cleanup"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_SETTLE", "0s");
    let run = env.finish(cmd);
    assert_eq!(
        run.code,
        1,
        "the broken GitHub access is reported: {}",
        run.all()
    );
    assert!(
        run.stdout.contains("::warning::GitHub is not available"),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.state_of(&expired),
        "terminated",
        "past max lifetime needs no GitHub"
    );
    assert_eq!(
        env.state_of(&young),
        "running",
        "without runner state, nothing else is touched"
    );
}

#[test]
fn a_runner_created_just_after_the_signal_is_still_removed() {
    // GitHub is still creating the runner when the start is cancelled: the
    // JIT request's answer never arrives, and the runner appears on GitHub
    // a moment after the undo first looked for it.
    let env = Env::start();
    env.github_faults(
        json!([{"method": "POST", "path": "generate-jitconfig$", "delay_ms": 1200,
                              "drop_response": true, "status": 502, "times": 1}]),
    );
    // The kill comes once the JIT request has reached GitHub (its fault
    // rule is taken) and before its answer.
    let (took, _) = kill_when(&env, &[], |e| {
        e.get(&format!("{}/_standin/faults", e.github))
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    eprintln!("kill point during the JIT request: undo and exit in {took:?}");
    // GitHub finishes creating it, whenever the tool exited.
    let created = |state: &serde_json::Value| {
        state["runners"]
            .as_object()
            .map(|scopes| {
                scopes
                    .values()
                    .map(|r| r.as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
            .unwrap_or(0)
            + state["deleted_runners"].as_array().map_or(0, Vec::len)
    };
    let began = Instant::now();
    let mut state = env.github_state();
    while created(&state) == 0 && began.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
        state = env.github_state();
    }
    assert_eq!(created(&state), 1, "GitHub did create the runner: {state}");
    assert!(env.runners().is_empty(), "the runner was removed: {state}");
    assert!(
        took < Duration::from_secs(7),
        "within the runner's 7.5 s: {took:?}"
    );
}
