//! The bake's instance side: renders the builder's user-data script
//! (`src/instance/bake.sh`), which installs the runner, its dependencies and
//! what else the bake asks for, cleans the per-instance state and powers the
//! builder off, and reads the verdict that script leaves on the console.

use std::fmt;

use crate::instance::userdata::{render_template, settings_lines};

/// The bake script, before its settings are filled in.
const TEMPLATE: &str = include_str!("bake.sh");

/// What the builder installs.
pub(crate) struct BakeScript<'a> {
    /// The actions/runner version.
    pub(crate) runner_version: &'a str,
    /// SHA-256 of the x64 package.
    pub(crate) sha256_x64: &'a str,
    /// SHA-256 of the arm64 package.
    pub(crate) sha256_arm64: &'a str,
    /// Download URL with `{version}` and `{arch}`.
    pub(crate) download_url: &'a str,
    /// Install Docker too.
    pub(crate) docker: bool,
    /// The user's bake script, run as root after the runner's dependencies.
    pub(crate) script: Option<&'a str>,
    /// The builder's log file (deleted before the image is made).
    pub(crate) log_file: &'a str,
}

// By hand: the user's script may carry credentials of its own.
impl fmt::Debug for BakeScript<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BakeScript")
            .field("runner_version", &self.runner_version)
            .field("download_url", &self.download_url)
            .field("docker", &self.docker)
            .field(
                "script",
                &self.script.map(|s| format!("<{} bytes>", s.len())),
            )
            .finish_non_exhaustive()
    }
}

/// The user data: a plain script, which cloud-init runs once, in its final
/// stage, when the builder has booted as every machine from the image will.
pub(crate) fn user_data(s: &BakeScript<'_>) -> String {
    let docker = if s.docker { "1" } else { "" };
    render_template(
        TEMPLATE,
        &settings_lines(&[
            ("RUNNER_VERSION", s.runner_version),
            ("RUNNER_SHA256_X64", s.sha256_x64),
            ("RUNNER_SHA256_ARM64", s.sha256_arm64),
            ("RUNNER_DOWNLOAD_URL", s.download_url),
            ("INSTALL_DOCKER", docker),
            ("BAKE_SCRIPT", s.script.unwrap_or("")),
            ("LOG_FILE", s.log_file),
        ]),
    )
}

/// The start of every verdict line the script prints on the console.
const VERDICT: &str = "ec2-spot-runner-bake: ";

/// What the builder's console says of the bake.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Everything was installed and cleaned; the runner version installed.
    Done(String),
    /// The script failed; what failed.
    Failed(String),
    /// No verdict (yet): the console was not posted, or the script never
    /// got that far.
    Missing,
}

/// The last verdict line of a console. A verdict stands alone on its line:
/// the script's log lines carry a timestamp before the same words.
pub(crate) fn verdict(console: &str) -> Verdict {
    for line in console.lines().rev() {
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix(VERDICT) else {
            continue;
        };
        if let Some(version) = rest.strip_prefix("done runner=") {
            return Verdict::Done(version.trim().to_owned());
        }
        if let Some(why) = rest.strip_prefix("FAILED ") {
            return Verdict::Failed(why.trim().to_owned());
        }
    }
    Verdict::Missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn script(docker: bool, user: Option<&str>) -> String {
        user_data(&BakeScript {
            runner_version: "2.330.0",
            sha256_x64: &"a".repeat(64),
            sha256_arm64: &"b".repeat(64),
            download_url: "https://example.test/v{version}/actions-runner-linux-{arch}-{version}.tar.gz",
            docker,
            script: user,
            log_file: "/var/log/ec2-spot-runner-bake.log",
        })
    }

    #[test]
    fn the_script_carries_its_settings_as_data_and_parses() {
        let hostile = "echo 'it''s' $(id) `id`\nexit 3\n";
        let text = script(true, Some(hostile));
        assert!(text.starts_with("#!/bin/bash\n"), "{text}");
        assert!(text.contains("readonly RUNNER_VERSION='2.330.0'"));
        assert!(text.contains("readonly INSTALL_DOCKER='1'"));
        assert!(
            text.contains(&crate::instance::userdata::shell_quote(hostile)),
            "the bake script is one quoted value"
        );
        assert!(!text.contains("@@SETTINGS@@"));
        for text in [text, script(false, None)] {
            let out = Command::new("bash")
                .args(["-n", "-c", &text])
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                crate::aws::launch::encode_user_data(&text).is_ok(),
                "fits EC2's 16 KiB"
            );
        }
    }

    #[test]
    fn the_rendered_script_passes_shellcheck() {
        let Ok(mut child) = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=style", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("note: shellcheck is not on PATH; skipping (CI has it)");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script(true, Some("true")).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "shellcheck exited with {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_verdict_is_the_last_line_that_stands_alone() {
        let console = "[  1.0] Linux version 6.1\n\
            2026-12-08T04:00:00Z ec2-spot-runner-bake: runner 2.330.0 installed\n\
            ec2-spot-runner-bake: FAILED an earlier try\n\
            \r\n\
            ec2-spot-runner-bake: done runner=2.330.0\r\n\
            [ 60.1] reboot: Power down\n";
        assert_eq!(verdict(console), Verdict::Done("2.330.0".into()));
        assert_eq!(
            verdict("x\nec2-spot-runner-bake: FAILED the runner download failed\n"),
            Verdict::Failed("the runner download failed".into())
        );
        assert_eq!(
            verdict("2026-12-08T04:00:00Z ec2-spot-runner-bake: done runner=1\n"),
            Verdict::Missing,
            "a log line is not a verdict"
        );
        assert_eq!(verdict(""), Verdict::Missing);
    }

    fn repo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Runs the rendered script in the sandbox (testenv/sandbox/bake.py):
    /// unmodified, as root, in private namespaces, with stubs only for the
    /// power-off and the download.
    #[test]
    fn sandbox_scenarios() {
        let harness = repo().join("testenv/sandbox/bake.py");
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let have = |p: &str| Command::new(p).arg("--version").output().is_ok();
        if !is_root || !have("unshare") || !have("python3") {
            eprintln!("note: the bake's sandbox scenarios need root, unshare and python3; skipped");
            return;
        }
        let base = std::env::temp_dir().join(format!("ec2sr-bake-sandbox-{}", std::process::id()));
        let mut failures = Vec::new();
        for (name, script, good_sum) in [
            ("bake-ok", Some("touch /opt/baked-by-script"), true),
            ("bake-bad-checksum", None, false),
            ("bake-script-fails", Some("exit 3"), true),
        ] {
            let dir = base.join(name);
            let out = Command::new("python3")
                .arg(&harness)
                .args(["settings", "--out"])
                .arg(&dir)
                .output()
                .expect("bake.py settings");
            let values: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("settings JSON");
            let sum = if good_sum {
                values["sha256"].as_str().unwrap().to_owned()
            } else {
                "0".repeat(64)
            };
            let text = user_data(&BakeScript {
                runner_version: values["runner_version"].as_str().unwrap(),
                sha256_x64: &sum,
                sha256_arm64: &sum,
                download_url: values["download_url"].as_str().unwrap(),
                docker: false,
                script,
                log_file: "/var/log/ec2-spot-runner-bake.log",
            });
            let path = dir.join("bake.sh");
            std::fs::write(&path, text).unwrap();
            let run = Command::new("python3")
                .arg(&harness)
                .arg("--script")
                .arg(&path)
                .args(["--scenario", name, "--out"])
                .arg(&dir)
                .output()
                .expect("bake.py");
            if !run.status.success() {
                failures.push(format!(
                    "{name}: {}{} (details in {})",
                    String::from_utf8_lossy(&run.stdout),
                    String::from_utf8_lossy(&run.stderr),
                    dir.display()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let _ = std::fs::remove_dir_all(&base);
    }
}
