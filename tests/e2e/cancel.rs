//! Cancellation exactly as the Actions runner does it: the composite step's
//! `run:` text written to a file and run as `bash --noprofile --norc -e -o
//! pipefail FILE` with the step's `env:`, then SIGINT to that pid only,
//! SIGTERM 7.5 s later, SIGKILL 2.5 s after that, and whatever is left of
//! the step killed at the end of the job (actions/runner,
//! src/Runner.Sdk/ProcessInvoker.cs and src/Runner.Worker/Handlers/ScriptHandler.cs).
//! Each kill point asserts that nothing is left running or registered and
//! prints how long the step took to end.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{AMI, Env};

/// The runner's cancel sequence (ProcessInvoker.cs: SIGINT, 7.5 s,
/// SIGTERM, 2.5 s, kill).
const SIGINT_TO_SIGTERM: Duration = Duration::from_millis(7500);
const SIGTERM_TO_KILL: Duration = Duration::from_millis(2500);

/// How a cancelled step ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// From SIGINT to the step's exit.
    pub(crate) took: Duration,
    /// Processes of the step still alive after it ended, killed then.
    pub(crate) leftovers: usize,
    /// The last signal the step needed: SIGINT, SIGTERM or SIGKILL.
    pub(crate) needed: &'static str,
    /// Exit code (None when killed).
    pub(crate) code: Option<i32>,
    /// stdout and stderr.
    pub(crate) output: String,
}

/// One step of action.yml as the runner would run it.
pub(crate) struct Step {
    pub(crate) script: String,
    pub(crate) env: Vec<(String, String)>,
}

/// Reads the step `id` of action.yml and evaluates its `env:` the way the
/// runner does for the expressions the action uses.
pub(crate) fn step(id: &str, inputs: &HashMap<&str, &str>, binary: &str) -> Step {
    // The App credentials, as a workflow passes them: inputs.
    let app_id = crate::harness::APP_ID.to_string();
    let mut inputs = inputs.clone();
    inputs.entry("github-app-id").or_insert(&app_id);
    inputs
        .entry("github-app-private-key")
        .or_insert(&crate::harness::app_keys().0);
    let root = crate::harness::repo_root();
    let text = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let action: Value = serde_saphyr::from_str(&text).unwrap();
    let step = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
        .clone();
    assert_eq!(step["shell"], "bash", "the runner runs it with bash");
    let defaults = action["inputs"].as_object().unwrap();
    let mut env = Vec::new();
    for (name, value) in step["env"].as_object().unwrap() {
        let expr = value.as_str().unwrap();
        let inner = expr
            .strip_prefix("${{ ")
            .and_then(|e| e.strip_suffix(" }}"))
            .unwrap_or_else(|| panic!("{name}: not a single expression: {expr}"));
        let value = if let Some(input) = inner.strip_prefix("inputs.") {
            inputs
                .get(input)
                .map(|v| (*v).to_owned())
                .unwrap_or_else(|| {
                    defaults[input]["default"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
        } else if inner == "steps.install.outputs.path" {
            binary.to_owned()
        } else if inner == "github.action_repository" {
            String::new()
        } else {
            panic!("{name}: the test does not know {inner}");
        };
        env.push((name.clone(), value));
    }
    Step {
        script: step["run"].as_str().unwrap().to_owned(),
        env,
    }
}

/// Starts the step: its script in a file, run by bash as the runner runs
/// it, in a process group of its own so that the end-of-job kill can find
/// whatever the step left.
pub(crate) fn spawn(env: &Env, step: &Step, dir: &Path) -> Child {
    spawn_in(env, step, dir, &crate::harness::repo_root())
}

/// How SIGINT stands when the step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sigint {
    /// At its default, as the runner starts every step: the runner is a
    /// service, and .NET passes a default disposition on to its children.
    AsTheRunnerGivesIt,
    /// Ignored, as a step of a runner that was itself started with SIGINT
    /// ignored (a background job of a non-interactive shell) finds it: .NET
    /// keeps an ignored signal ignored for its children.
    // NOTE: dotnet/runtime, src/native/libs/System.Native/pal_signal.c
    // (InstallSignalHandler keeps SIG_IGN; children inherit it).
    Ignored,
}

/// `spawn`, for a copy of the action at `action`.
pub(crate) fn spawn_in(env: &Env, step: &Step, dir: &Path, action: &Path) -> Child {
    spawn_with(env, step, dir, action, Sigint::AsTheRunnerGivesIt)
}

/// `spawn_in`, with SIGINT as `sigint` says whatever this test process
/// inherited: a suite started under `nohup … &` has SIGINT ignored, and
/// bash cannot trap a signal that was ignored on entry.
pub(crate) fn spawn_with(
    env: &Env,
    step: &Step,
    dir: &Path,
    action: &Path,
    sigint: Sigint,
) -> Child {
    let file = dir.join(format!("step-{}.sh", rand()));
    std::fs::write(&file, &step.script).unwrap();
    // The harness's clean environment for the binary, plus the step's.
    let base = env.command(&[]);
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-e", "-o", "pipefail"])
        .arg(&file)
        .env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let marker = format!("{}-{}", std::process::id(), rand());
    cmd.env("GITHUB_ACTION_PATH", action)
        .env(STEP_MARKER, &marker)
        .env("GITHUB_OUTPUT", dir.join("step-output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("step-summary"))
        .envs(step.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let int = match sigint {
        Sigint::AsTheRunnerGivesIt => libc::SIG_DFL,
        Sigint::Ignored => libc::SIG_IGN,
    };
    // SAFETY: signal(2) is async-signal-safe, which is all a pre_exec
    // closure may call; nothing is allocated between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            libc::signal(libc::SIGINT, int);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().expect("run the step")
}

/// Every process of a step carries this variable (with a value unique to
/// the step), so that the end-of-job kill finds exactly the step's leftovers,
/// never an unrelated process that reused a pid or a process group id.
const STEP_MARKER: &str = "EC2SR_TEST_STEP";

/// Kills every process whose environment holds `STEP_MARKER=marker`.
fn kill_leftovers(marker: &str) -> usize {
    let needle = format!("{STEP_MARKER}={marker}");
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            signal(pid, "KILL");
            killed += 1;
        }
    }
    killed
}

fn rand() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// The runner's cancel: SIGINT to the step's pid, SIGTERM after 7.5 s,
/// SIGKILL after 2.5 s more, then the rest of the step's processes killed.
pub(crate) fn cancel_like_the_runner(mut child: Child) -> Ended {
    let pid = child.id();
    let marker = std::fs::read(format!("/proc/{pid}/environ"))
        .ok()
        .and_then(|env| {
            env.split(|b| *b == 0).find_map(|v| {
                v.strip_prefix(format!("{STEP_MARKER}=").as_bytes())
                    .map(<[u8]>::to_vec)
            })
        })
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .expect("the step carries its marker");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let began = Instant::now();
    signal(pid, "INT");
    let mut needed = "SIGINT";
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let elapsed = began.elapsed();
        if needed == "SIGINT" && elapsed >= SIGINT_TO_SIGTERM {
            signal(pid, "TERM");
            needed = "SIGTERM";
        } else if needed == "SIGTERM" && elapsed >= SIGINT_TO_SIGTERM + SIGTERM_TO_KILL {
            signal(pid, "KILL");
            needed = "SIGKILL";
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = began.elapsed();
    // The end of the job: whatever of the step is left is killed.
    let leftovers = kill_leftovers(&marker);
    Ended {
        took,
        leftovers,
        needed,
        code: status.code(),
        output: format!("{}{}", out.join().unwrap(), err.join().unwrap()),
    }
}

/// Waits until `ready` holds (or fails the test after 30 s).
fn until(env: &Env, what: &str, ready: impl Fn(&Env) -> bool) {
    let began = Instant::now();
    while !ready(env) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "never reached: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn saw_github(env: &Env, what: &str) -> bool {
    env.github_calls()
        .iter()
        .any(|c| c["path"].as_str().is_some_and(|p| p.ends_with(what)))
}

/// Whether EC2 has received `action` (answered or still in flight).
fn in_flight(action: &'static str) -> impl Fn(&Env) -> bool {
    move |env| env.ec2_received().iter().any(|a| a == action)
}

fn saw_ec2(env: &Env, action: &str) -> bool {
    env.ec2_actions().iter().any(|a| a == action)
}

/// Asserts a cancelled start ended inside the SIGINT window and left nothing.
#[track_caller]
fn assert_clean(env: &Env, point: &str, ended: &Ended) {
    assert_eq!(
        ended.needed, "SIGINT",
        "{point}: the step ended on SIGINT\n{}",
        ended.output
    );
    assert_eq!(ended.code, Some(1), "{point}\n{}", ended.output);
    assert_eq!(
        ended.leftovers, 0,
        "{point}: no process of the step outlived it"
    );
    assert!(
        ended.output.contains("cancelled by SIGINT"),
        "{point}: the binary saw the runner's SIGINT\n{}",
        ended.output
    );
    assert!(
        env.live_instances().is_empty(),
        "{point}: an instance is left\n{}",
        ended.output
    );
    assert!(
        env.runners().is_empty(),
        "{point}: a runner is left\n{}",
        ended.output
    );
    eprintln!("kill point {point}: SIGINT to exit {:?}", ended.took);
}

fn start_step(env: &Env, extra: &[(&str, &str)]) -> Child {
    let mut inputs: HashMap<&str, &str> = HashMap::from([
        ("mode", "start"),
        ("image-id", AMI),
        ("instance-types", "c7i.large"),
    ]);
    inputs.extend(extra.iter().copied());
    let step = step("run", &inputs, env!("CARGO_BIN_EXE_ec2-spot-runner"));
    spawn(env, &step, env.dir.path())
}

#[test]
fn a_start_cancelled_by_the_runner_at_any_point_leaves_nothing() {
    // After auth: the price lookup is slow, the installation token is minted.
    let env = Env::start();
    env.faults(json!([{"action": "DescribeSpotPriceHistory", "delay_ms": 5000}]));
    let child = start_step(&env, &[]);
    until(&env, "auth", |e| saw_github(e, "access_tokens"));
    assert_clean(&env, "after auth", &cancel_like_the_runner(child));

    // A launch in flight that answers in time.
    let env = Env::start();
    env.faults(json!([{"action": "RunInstances", "delay_ms": 1500}]));
    let child = start_step(&env, &[]);
    until(&env, "RunInstances in flight", in_flight("RunInstances"));
    assert_clean(&env, "launch in flight", &cancel_like_the_runner(child));

    // A launch in flight whose answer comes too late: the instance exists,
    // the answer does not arrive within the grace, the undo finds it by tag.
    let env = Env::start();
    env.faults(json!([{"action": "RunInstances", "drop_response": true, "delay_ms": 20000}]));
    let child = start_step(&env, &[]);
    until(&env, "RunInstances in flight", in_flight("RunInstances"));
    assert_clean(
        &env,
        "launch answering late",
        &cancel_like_the_runner(child),
    );

    // While waiting for `running`, with EC2 throttling and slow.
    let env = Env::start();
    env.shim_config(json!({"pending_seconds": 60}));
    let child = start_step(&env, &[]);
    until(&env, "the wait", |e| saw_ec2(e, "DescribeInstances"));
    env.faults(
        json!([{"action": "TerminateInstances", "status": 503, "code": "RequestLimitExceeded",
                        "message": "Request limit exceeded.", "times": 2, "delay_ms": 400}]),
    );
    assert_clean(
        &env,
        "waiting for running, throttled",
        &cancel_like_the_runner(child),
    );

    // While waiting for `online`, with GitHub slow to delete.
    let env = Env::start();
    let child = start_step(&env, &[("wait-for", "online")]);
    until(&env, "the online wait", |e| {
        e.github_calls().iter().any(|c| {
            c["method"] == "GET"
                && c["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/actions/runners"))
        })
    });
    env.github_faults(json!([{"method": "DELETE", "path": "/actions/runners/", "delay_ms": 2000, "status": 503, "times": 1}]));
    assert_clean(&env, "waiting for online", &cancel_like_the_runner(child));
}

#[test]
fn stop_and_cleanup_cancelled_by_the_runner_still_finish_their_work() {
    let env = Env::start();
    let run = env.start_runner(&[]);
    run.assert_ok();
    let label = run.output("label").to_owned();
    env.faults(json!([{"action": "DescribeInstances", "delay_ms": 1500, "times": 1}]));
    // Only this step's calls count from here.
    env.clear_calls();
    let inputs = HashMap::from([("mode", "stop"), ("label", label.as_str())]);
    let child = spawn(
        &env,
        &step("run", &inputs, env!("CARGO_BIN_EXE_ec2-spot-runner")),
        env.dir.path(),
    );
    until(
        &env,
        "DescribeInstances in flight",
        in_flight("DescribeInstances"),
    );
    let ended = cancel_like_the_runner(child);
    assert_eq!(ended.needed, "SIGINT", "{}", ended.output);
    assert!(
        ended.output.contains("SIGINT received"),
        "the binary saw it\n{}",
        ended.output
    );
    assert!(
        env.live_instances().is_empty(),
        "stop terminated it\n{}",
        ended.output
    );
    assert!(env.runners().is_empty(), "{}", ended.output);
    eprintln!("kill point during stop: SIGINT to exit {:?}", ended.took);

    // Cleanup with a machine past its lifetime.
    let old = chrono::Utc::now() - chrono::Duration::hours(8);
    let orphan = env.create_instance(&[
        ("ec2-spot-runner:managed", "true"),
        ("ec2-spot-runner:label", "orphan"),
        ("ec2-spot-runner:runner-name", "orphan-1"),
        ("ec2-spot-runner:created-at", &old.to_rfc3339()),
    ]);
    env.faults(json!([{"action": "DescribeInstances", "delay_ms": 1500, "times": 1}]));
    // Only this step's calls count from here.
    env.clear_calls();
    let inputs = HashMap::from([("mode", "cleanup")]);
    let child = spawn(
        &env,
        &step("run", &inputs, env!("CARGO_BIN_EXE_ec2-spot-runner")),
        env.dir.path(),
    );
    until(
        &env,
        "DescribeInstances in flight",
        in_flight("DescribeInstances"),
    );
    let ended = cancel_like_the_runner(child);
    assert_eq!(ended.needed, "SIGINT", "{}", ended.output);
    assert!(
        ended.output.contains("SIGINT received"),
        "the binary saw it\n{}",
        ended.output
    );
    assert_eq!(env.state_of(&orphan), "terminated", "{}", ended.output);
    eprintln!("kill point during cleanup: SIGINT to exit {:?}", ended.took);
}
