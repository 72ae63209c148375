//! Owns the instance side: renders the user-data script (`src/instance/runner.sh`)
//! that turns a fresh EC2 instance into a runner for exactly one GitHub Actions
//! job and powers it off afterwards.
//!
//! The template is included at build time. Its one interpolation point, the
//! line `# @@SETTINGS@@`, becomes `readonly NAME='value'` lines; the script
//! reads nothing else from this side. Rendering also drops the template's
//! comments, blank lines and indentation, because EC2 caps user data at
//! 16 KiB and the JIT config alone takes several of them.
//!
//! `testenv/sandbox/render.py` is a copy of this renderer for the sandbox
//! tests and must stay byte-for-byte identical (a test below compares them).

use std::fmt;
use std::time::Duration;

/// The bootstrap script, before its settings are filled in.
const TEMPLATE: &str = include_str!("runner.sh");

/// The template line replaced by the settings.
const SETTINGS_MARKER: &str = "# @@SETTINGS@@";

/// Opens the settings block. Shellcheck takes `$(...)`, quotes or a trailing
/// backslash inside a single-quoted value for mistakes; the braces carry the
/// directive over every `readonly` line without changing their meaning.
const SETTINGS_HEAD: &str = "# shellcheck disable=SC1003,SC2016,SC2089 # the values are data\n{\n";

/// Closes the settings block.
const SETTINGS_TAIL: &str = "}\n";

/// The default runner download: GitHub's release asset for a version and an
/// architecture (`x64` or `arm64`, filled in on the instance).
pub(crate) const DEFAULT_DOWNLOAD_URL: &str = "https://github.com/actions/runner/releases/download/v{version}/actions-runner-linux-{arch}-{version}.tar.gz";

/// The default log file on the instance.
pub(crate) const DEFAULT_LOG_FILE: &str = "/var/log/ec2-spot-runner.log";

/// Where the instance gets its runner from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunnerSource {
    /// Use a dir only: a runner already installed (in this directory if it is
    /// not empty, else in one of the usual places); never download.
    Preinstalled(String),
    /// Known version from the table, or version + user-given checksums. The
    /// instance still prefers an installed runner, and downloads this one
    /// otherwise. An empty checksum means that architecture cannot download.
    Download {
        /// Version without the leading `v`.
        version: String,
        /// SHA-256 of the linux-x64 tarball, or empty.
        sha256_x64: String,
        /// SHA-256 of the linux-arm64 tarball, or empty.
        sha256_arm64: String,
    },
}

/// Everything the script needs to know, all of it validated by the caller.
/// No string may hold a NUL byte: a shell value cannot.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserDataSettings {
    /// The single-use base64 JIT config the runner starts with. Secret:
    /// never logged, and hidden from `Debug`.
    pub(crate) jit_config: String,
    /// The runner's name (as in the JIT config); only logged on the instance.
    pub(crate) runner_name: String,
    /// The runner's label (as in the JIT config); only logged on the instance.
    pub(crate) label: String,
    /// The unprivileged user the runner runs as; created if missing.
    pub(crate) runner_user: String,
    /// A pre-installed runner's directory, tried before the usual places.
    pub(crate) runner_dir: Option<String>,
    /// The runner version to download if none is installed; empty: never
    /// download (see [`RunnerSource::Preinstalled`]).
    pub(crate) runner_version: String,
    /// SHA-256 of the linux-x64 tarball of that version, or empty.
    pub(crate) sha256_x64: String,
    /// SHA-256 of the linux-arm64 tarball of that version, or empty.
    pub(crate) sha256_arm64: String,
    /// Replace a pre-installed runner older than `runner_version` with
    /// that version's download.
    pub(crate) runner_update: bool,
    /// Passwordless sudo for the runner user.
    pub(crate) runner_sudo: bool,
    /// Install libicu with the package manager when the image lacks it
    /// (else the runner runs with invariant globalization at once).
    pub(crate) install_libicu: bool,
    /// Use NVMe instance store as the work folder and Docker's data root.
    pub(crate) instance_store: bool,
    /// Download URL template with `{version}` and `{arch}` placeholders.
    pub(crate) download_url: String,
    /// Power off this long after the script starts, whatever happens.
    pub(crate) max_lifetime: Duration,
    /// Power off this long after the script starts unless a job has started
    /// by then; zero means never.
    pub(crate) idle_timeout: Duration,
    /// Bash source run as root before the runner starts; a failure powers off.
    pub(crate) pre_runner_script: Option<String>,
    /// Where the script logs on the instance.
    pub(crate) log_file: String,
}

impl UserDataSettings {
    /// Whether the instance may download a runner, and which one.
    pub(crate) fn runner_source(&self) -> RunnerSource {
        if self.runner_version.is_empty() {
            RunnerSource::Preinstalled(self.runner_dir.clone().unwrap_or_default())
        } else {
            RunnerSource::Download {
                version: self.runner_version.clone(),
                sha256_x64: self.sha256_x64.clone(),
                sha256_arm64: self.sha256_arm64.clone(),
            }
        }
    }
}

// By hand, so that the JIT config (and a pre-runner script, which may carry
// credentials of its own) never reaches a log through `{:?}`.
impl fmt::Debug for UserDataSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDataSettings")
            .field("jit_config", &format_args!("***"))
            .field("runner_name", &self.runner_name)
            .field("label", &self.label)
            .field("runner_user", &self.runner_user)
            .field("runner_dir", &self.runner_dir)
            .field("runner_version", &self.runner_version)
            .field("sha256_x64", &self.sha256_x64)
            .field("sha256_arm64", &self.sha256_arm64)
            .field("runner_update", &self.runner_update)
            .field("runner_sudo", &self.runner_sudo)
            .field("install_libicu", &self.install_libicu)
            .field("instance_store", &self.instance_store)
            .field("download_url", &self.download_url)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field(
                "pre_runner_script",
                &self
                    .pre_runner_script
                    .as_ref()
                    .map(|s| format!("<{} bytes>", s.len())),
            )
            .field("log_file", &self.log_file)
            .finish()
    }
}

/// The first line of the user data: cloud-init (every version since 0.7)
/// takes a part that starts with it as a boothook, runs it in its network
/// stage at every boot, as soon as it has read the user data, and strips
/// this line before it writes the rest to a file of mode 0700 and executes
/// it (cloudinit/handlers/boot_hook.py). A single part needs no MIME
/// archive: cloud-init recognises the mark in gzip-compressed user data
/// too (cloudinit/user_data.py), and the archive's headers would only take
/// room from EC2's 16 KiB.
pub(crate) const BOOTHOOK_MARK: &str = "#cloud-boothook\n";

/// The user data for these settings: the rendered script as a boothook.
pub(crate) fn user_data(s: &UserDataSettings) -> String {
    let script = render(s);
    let mut out = String::with_capacity(BOOTHOOK_MARK.len() + script.len());
    out.push_str(BOOTHOOK_MARK);
    out.push_str(&script);
    out
}

/// Renders the user-data script for these settings, as cloud-init writes
/// it to its file (without [`BOOTHOOK_MARK`]).
pub(crate) fn render(s: &UserDataSettings) -> String {
    render_template(TEMPLATE, &settings_block(s))
}

/// A template with its settings line replaced by `block`, its comments,
/// blank lines and indentation dropped.
pub(crate) fn render_template(template: &str, block: &str) -> String {
    let mut out = String::with_capacity(template.len() + block.len());
    let mut replaced = false;
    for (index, line) in template.split('\n').enumerate() {
        if index == 0 {
            // The shebang.
            out.push_str(line);
            out.push('\n');
        } else if line == SETTINGS_MARKER && !replaced {
            // Inserted after the template is stripped: a value may well hold
            // lines that look like comments.
            out.push_str(block);
            replaced = true;
        } else if !is_dropped(line) {
            out.push_str(line.trim_start_matches([' ', '\t']));
            out.push('\n');
        }
    }
    debug_assert!(replaced, "the template has no {SETTINGS_MARKER} line");
    out
}

/// Blank lines and comment lines are dropped, shellcheck directives kept.
/// This and dropping indentation are safe because the template has no
/// heredocs and no multi-line strings.
fn is_dropped(line: &str) -> bool {
    let trimmed = line.trim_matches([' ', '\t']);
    trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with("# shellcheck"))
}

/// The `readonly NAME='value'` lines, in the order the template documents.
fn settings_block(s: &UserDataSettings) -> String {
    let (version, sha256_x64, sha256_arm64) = match s.runner_source() {
        RunnerSource::Preinstalled(_) => (String::new(), String::new(), String::new()),
        RunnerSource::Download {
            version,
            sha256_x64,
            sha256_arm64,
        } => (version, sha256_x64, sha256_arm64),
    };
    let max_lifetime = whole_seconds(s.max_lifetime).to_string();
    let idle_timeout = whole_seconds(s.idle_timeout).to_string();
    let flag = |on: bool| if on { "1" } else { "" };
    settings_lines(&[
        ("JIT_CONFIG", &s.jit_config),
        ("RUNNER_NAME", &s.runner_name),
        ("RUNNER_LABEL", &s.label),
        ("RUNNER_USER", &s.runner_user),
        ("RUNNER_DIR", s.runner_dir.as_deref().unwrap_or("")),
        ("RUNNER_VERSION", &version),
        ("RUNNER_SHA256_X64", &sha256_x64),
        ("RUNNER_SHA256_ARM64", &sha256_arm64),
        ("RUNNER_UPDATE", flag(s.runner_update)),
        ("RUNNER_SUDO", flag(s.runner_sudo)),
        ("INSTANCE_STORE", flag(s.instance_store)),
        ("INSTALL_LIBICU", flag(s.install_libicu)),
        ("RUNNER_DOWNLOAD_URL", &s.download_url),
        ("MAX_LIFETIME_SECONDS", &max_lifetime),
        ("IDLE_TIMEOUT_SECONDS", &idle_timeout),
        (
            "PRE_RUNNER_SCRIPT",
            s.pre_runner_script.as_deref().unwrap_or(""),
        ),
        ("LOG_FILE", &s.log_file),
    ])
}

/// The `readonly NAME='value'` lines, in the order given.
pub(crate) fn settings_lines(settings: &[(&str, &str)]) -> String {
    let mut block = String::from(SETTINGS_HEAD);
    for (name, value) in settings {
        block.push_str("readonly ");
        block.push_str(name);
        block.push('=');
        block.push_str(&shell_quote(value));
        block.push('\n');
    }
    block.push_str(SETTINGS_TAIL);
    block
}

/// Whole seconds, rounded up: a sub-second remainder must not turn a short
/// idle timeout into 0, which the script reads as "no idle timeout".
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Quotes a string as one bash word that expands to exactly that string:
/// single quotes, with each `'` written as `'\''`. Nothing else is special
/// inside single quotes, so `$(...)`, backticks, `\`, newlines and any
/// unicode stay data.
///
/// A NUL byte cannot be part of a shell value; input validation rejects it
/// before anything is rendered, and debug builds check that it did.
pub(crate) fn shell_quote(s: &str) -> String {
    debug_assert!(!s.contains('\0'), "a shell value cannot hold a NUL byte");
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('\'');
    for c in s.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::RUNNER_RELEASES;
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// EC2's limit on user data, before base64.
    const USER_DATA_LIMIT: usize = 16 * 1024;

    const HOSTILE: &[&str] = &[
        "",
        "plain",
        "it's",
        "'",
        "''",
        "'\\''",
        "\"double\" quotes",
        "$(id)",
        "$(touch /tmp/pwned)",
        "`id`",
        "${HOME} $HOME $0 $@ $$",
        "line one\nline two\n",
        "\n",
        "\\",
        "trailing backslash\\",
        "\\'",
        "ünïcødé ✓ 日本語 🚀",
        "-n",
        "--jitconfig -e",
        "%s %d %%",
        "*?[a-z]~",
        "; rm -rf / ; | & && || > < >>",
        "\t tabs \r\n crlf",
        "# not a comment\n# @@SETTINGS@@\n",
        "'\"$(touch /tmp/pwned)`touch /tmp/pwned` \\ ünï -x\n# x\n",
    ];

    fn settings() -> UserDataSettings {
        UserDataSettings {
            jit_config: "jit-secret-0123456789abcdef-eyJhIjoiYiJ9".into(),
            runner_name: "ec2-spot-runner-1".into(),
            label: "ec2-spot-runner-1".into(),
            runner_user: "runner".into(),
            runner_dir: None,
            runner_version: RUNNER_RELEASES[0].version.into(),
            sha256_x64: RUNNER_RELEASES[0].sha256_x64.into(),
            sha256_arm64: RUNNER_RELEASES[0].sha256_arm64.into(),
            runner_update: true,
            runner_sudo: true,
            install_libicu: false,
            instance_store: true,
            download_url: DEFAULT_DOWNLOAD_URL.into(),
            max_lifetime: Duration::from_secs(6 * 3600),
            idle_timeout: Duration::from_secs(900),
            pre_runner_script: None,
            log_file: DEFAULT_LOG_FILE.into(),
        }
    }

    /// A representative set of scripts: defaults, a pre-installed runner
    /// only, a pre-runner script, and hostile text in every free field.
    fn variants() -> Vec<(&'static str, UserDataSettings)> {
        let hostile = HOSTILE.last().unwrap().to_string();
        vec![
            ("defaults", settings()),
            (
                "preinstalled",
                UserDataSettings {
                    runner_dir: Some("/opt/runner".into()),
                    runner_version: String::new(),
                    sha256_x64: String::new(),
                    sha256_arm64: String::new(),
                    idle_timeout: Duration::ZERO,
                    ..settings()
                },
            ),
            (
                "pre-runner",
                UserDataSettings {
                    pre_runner_script: Some(
                        "#!/bin/bash\nset -e\napt-get install -y jq\n# done\n".into(),
                    ),
                    ..settings()
                },
            ),
            (
                "hostile",
                UserDataSettings {
                    jit_config: hostile.clone(),
                    runner_name: hostile.clone(),
                    label: hostile.clone(),
                    runner_dir: Some(hostile.clone()),
                    download_url: hostile.clone(),
                    pre_runner_script: Some(hostile.clone()),
                    log_file: format!("/var/log/{hostile}"),
                    ..settings()
                },
            ),
        ]
    }

    fn have(program: &str) -> bool {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    fn bash(script: &str) -> std::process::Output {
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("bash runs")
    }

    /// The checkout under test, read at run time (see tests/e2e/harness.rs).
    fn repo() -> PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn template_has_exactly_one_settings_marker() {
        assert_eq!(
            TEMPLATE.lines().filter(|l| *l == SETTINGS_MARKER).count(),
            1
        );
        assert!(TEMPLATE.starts_with("#!/bin/bash\n"));
        // Stripping indentation would break a heredoc's body.
        assert!(
            !TEMPLATE.contains("<<"),
            "the template must not use heredocs"
        );
    }

    proptest::proptest! {
        // A bounded fuzz run (each case starts bash): any text in the free
        // fields renders to a script that parses, and every value comes back
        // byte for byte.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn any_values_render_to_a_parsing_script_with_values_intact(
            jit in "[^\\x00]{0,200}",
            name in "[^\\x00]{0,60}",
            pre in proptest::option::of("[^\\x00]{0,300}"),
        ) {
            let s = UserDataSettings {
                jit_config: jit.clone(),
                runner_name: name.clone(),
                label: name.clone(),
                pre_runner_script: pre.clone(),
                ..settings()
            };
            let script = render(&s);
            let check = Command::new("bash").args(["-n", "-c", &script]).output().expect("bash runs");
            proptest::prop_assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
            let out = bash(&format!(
                "{}printf '%s\\0%s\\0%s' \"$JIT_CONFIG\" \"$RUNNER_NAME\" \"$PRE_RUNNER_SCRIPT\"",
                settings_block(&s)
            ));
            let want = format!("{jit}\0{name}\0{}", pre.unwrap_or_default());
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        }
    }

    #[test]
    fn quoting_round_trips_hostile_values_through_bash() {
        for value in HOSTILE {
            let s = UserDataSettings {
                jit_config: value.to_string(),
                runner_name: value.to_string(),
                label: value.to_string(),
                runner_dir: Some(value.to_string()),
                download_url: value.to_string(),
                pre_runner_script: Some(value.to_string()),
                log_file: value.to_string(),
                ..settings()
            };
            for name in [
                "JIT_CONFIG",
                "RUNNER_NAME",
                "RUNNER_LABEL",
                "RUNNER_DIR",
                "RUNNER_DOWNLOAD_URL",
                "PRE_RUNNER_SCRIPT",
                "LOG_FILE",
            ] {
                let out = bash(&format!("{}printf %s \"${name}\"", settings_block(&s)));
                assert!(
                    out.status.success(),
                    "bash failed on {value:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(
                    out.stdout,
                    value.as_bytes(),
                    "{name} did not round-trip {value:?}"
                );
            }
        }
    }

    #[test]
    fn shell_quote_only_touches_single_quotes() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(id)`x`\\\n"), "'$(id)`x`\\\n'");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "NUL")]
    fn nul_bytes_are_refused_in_debug_builds() {
        shell_quote("a\0b");
    }

    #[test]
    fn rendered_scripts_pass_bash_n() {
        for (name, s) in variants() {
            let script = render(&s);
            let mut child = Command::new("bash")
                .arg("-n")
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("bash runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "bash -n fails on {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn rendered_scripts_pass_shellcheck() {
        if !have("shellcheck") {
            eprintln!("note: shellcheck is not on PATH; skipping the shellcheck test (CI has it)");
            return;
        }
        for (name, s) in variants() {
            let mut child = Command::new("shellcheck")
                .args(["--shell=bash", "--severity=style", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("shellcheck runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(render(&s).as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "shellcheck on {name}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    #[test]
    fn template_knows_only_jit_configs() {
        let lower = TEMPLATE.to_lowercase();
        for word in ["config.sh", "registration", "--token", "remove-token"] {
            assert!(!lower.contains(word), "the template mentions {word:?}");
        }
        // The runner reads every argument from ACTIONS_RUNNER_INPUT_<NAME> and
        // removes it from its environment (actions/runner,
        // src/Runner.Listener/CommandSettings.cs): the JIT config never sits on
        // a command line for `ps` to show.
        assert!(TEMPLATE.contains("export ACTIONS_RUNNER_INPUT_JITCONFIG=\"$JIT_CONFIG\""));
        assert!(TEMPLATE.contains(r#"as_runner ${reset[@]+"${reset[@]}"} ./run.sh 2>&1"#));
        assert!(!TEMPLATE.contains("--jitconfig"));
    }

    #[test]
    fn jit_config_is_never_written_out() {
        // Every line that touches the JIT config only moves it toward run.sh.
        let touching: Vec<&str> = TEMPLATE
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| l.contains("JIT_CONFIG") || l.contains("$jit"))
            .collect();
        assert_eq!(touching.len(), 1, "{touching:#?}");
        for line in touching {
            for writer in ["log ", "echo", "printf", ">", "tee", "logger", "declare -p"] {
                assert!(
                    !line.contains(writer),
                    "{line:?} writes the JIT config somewhere"
                );
            }
        }
        // The watchdog file gets an explicit list of variables, without it.
        let declare = TEMPLATE.lines().find(|l| l.contains("declare -p")).unwrap();
        assert!(!declare.contains("JIT"), "{declare}");
    }

    #[test]
    fn debug_hides_the_jit_config_and_pre_runner_script() {
        let s = UserDataSettings {
            pre_runner_script: Some("echo hunter2 | docker login --password-stdin".into()),
            ..settings()
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("jit_config: ***"), "{shown}");
        assert!(!shown.contains("jit-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("runner_name: \"ec2-spot-runner-1\""),
            "{shown}"
        );
    }

    #[test]
    fn durations_are_whole_seconds_rounded_up() {
        let s = UserDataSettings {
            max_lifetime: Duration::from_millis(3_600_001),
            idle_timeout: Duration::from_millis(1),
            ..settings()
        };
        let block = settings_block(&s);
        assert!(
            block.contains("readonly MAX_LIFETIME_SECONDS='3601'\n"),
            "{block}"
        );
        assert!(
            block.contains("readonly IDLE_TIMEOUT_SECONDS='1'\n"),
            "{block}"
        );
        let zero = settings_block(&UserDataSettings {
            idle_timeout: Duration::ZERO,
            ..settings()
        });
        assert!(zero.contains("readonly IDLE_TIMEOUT_SECONDS='0'\n"));
    }

    #[test]
    fn preinstalled_source_never_downloads() {
        let s = UserDataSettings {
            runner_dir: Some("/opt/runner".into()),
            runner_version: String::new(),
            ..settings()
        };
        assert_eq!(
            s.runner_source(),
            RunnerSource::Preinstalled("/opt/runner".into())
        );
        let block = settings_block(&s);
        for name in ["RUNNER_VERSION", "RUNNER_SHA256_X64", "RUNNER_SHA256_ARM64"] {
            assert!(block.contains(&format!("readonly {name}=''\n")), "{block}");
        }
        assert!(block.contains("readonly RUNNER_DIR='/opt/runner'\n"));
        assert!(matches!(
            settings().runner_source(),
            RunnerSource::Download { .. }
        ));
    }

    #[test]
    fn rendered_script_fits_in_user_data() {
        // A JIT config is about 4 KiB of base64 (the runner, its credentials
        // and an RSA key, each base64 again inside), which hardly compresses:
        // leave room for one, and a modest pre-runner script, in EC2's 16 KiB
        // of (gzipped) user data.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let jit: String = (0..4608)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(alphabet[(state % 64) as usize])
            })
            .collect();
        let s = UserDataSettings {
            jit_config: jit,
            pre_runner_script: Some("apt-get install -y build-essential\n".repeat(40)),
            ..settings()
        };
        let script = user_data(&s);
        let encoded =
            crate::aws::launch::encode_user_data(&script).unwrap_or_else(|e| panic!("{e}"));
        let gzipped = aws_smithy_types::base64::decode(&encoded).unwrap().len();
        // At least 3.5 KiB stay free for a longer pre-runner script.
        assert!(
            gzipped <= USER_DATA_LIMIT - 3584,
            "{gzipped} bytes gzipped, of EC2's {USER_DATA_LIMIT}"
        );
        let bare = render(&UserDataSettings {
            jit_config: String::new(),
            ..settings()
        });
        // EC2 counts the gzipped bytes (checked above); this bound only
        // keeps the script's growth from going unnoticed.
        assert!(
            bare.len() <= 24 * 1024,
            "the script alone is {} bytes",
            bare.len()
        );
    }

    #[test]
    fn user_data_is_a_boothook_whose_file_starts_with_the_shebang() {
        let data = user_data(&settings());
        // cloud-init strips exactly this line (case-sensitive) and runs the
        // rest as a file, so the next line must be the interpreter's.
        let rest = data
            .strip_prefix("#cloud-boothook\n")
            .expect("the boothook mark");
        assert!(rest.starts_with("#!/bin/bash\n"), "{}", &rest[..40]);
        assert_eq!(rest, render(&settings()));
    }

    #[test]
    fn rendering_drops_comments_blank_lines_and_indentation() {
        let script = render(&settings());
        let mut lines = script.lines();
        assert_eq!(lines.next(), Some("#!/bin/bash"));
        for line in script.lines().skip(1) {
            assert!(!line.is_empty());
            assert!(!line.starts_with([' ', '\t']), "{line:?}");
            assert!(
                !line.starts_with('#') || line.starts_with("# shellcheck"),
                "{line:?}"
            );
        }
        // ...but never inside a value.
        let s = UserDataSettings {
            pre_runner_script: Some("  # kept\n\n\tindented\n".into()),
            ..settings()
        };
        assert!(render(&s).contains("readonly PRE_RUNNER_SCRIPT='  # kept\n\n\tindented\n'\n"));
    }

    fn json_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn script_settings(s: &UserDataSettings) -> BTreeMap<&'static str, String> {
        let block = settings_block(s);
        let mut map = BTreeMap::new();
        for (name, value) in [
            ("JIT_CONFIG", s.jit_config.clone()),
            ("RUNNER_NAME", s.runner_name.clone()),
            ("RUNNER_LABEL", s.label.clone()),
            ("RUNNER_USER", s.runner_user.clone()),
            ("RUNNER_DIR", s.runner_dir.clone().unwrap_or_default()),
            ("RUNNER_VERSION", s.runner_version.clone()),
            ("RUNNER_SHA256_X64", s.sha256_x64.clone()),
            ("RUNNER_SHA256_ARM64", s.sha256_arm64.clone()),
            ("RUNNER_DOWNLOAD_URL", s.download_url.clone()),
            (
                "MAX_LIFETIME_SECONDS",
                whole_seconds(s.max_lifetime).to_string(),
            ),
            (
                "IDLE_TIMEOUT_SECONDS",
                whole_seconds(s.idle_timeout).to_string(),
            ),
            (
                "PRE_RUNNER_SCRIPT",
                s.pre_runner_script.clone().unwrap_or_default(),
            ),
            ("LOG_FILE", s.log_file.clone()),
        ] {
            assert!(block.contains(&format!("readonly {name}=")));
            map.insert(name, value);
        }
        map
    }

    #[test]
    fn python_renderer_matches() {
        let render_py = repo().join("testenv/sandbox/render.py");
        if !have("python3") {
            eprintln!(
                "note: python3 is not on PATH; skipping the comparison with {}",
                render_py.display()
            );
            return;
        }
        for (name, s) in variants() {
            let json = format!(
                "{{{}}}",
                script_settings(&s)
                    .iter()
                    .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut child = Command::new("python3")
                .arg(&render_py)
                .arg("-")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(json.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "render.py failed on {name}");
            assert!(
                out.stdout == render(&s).as_bytes(),
                "render.py and render() differ on {name}"
            );
        }
    }

    /// Parses `run.py settings` output: NAME=VALUE pairs, each ended by NUL.
    fn read_nul_settings(path: &Path) -> BTreeMap<String, String> {
        let raw = std::fs::read(path).expect("settings.nul");
        raw.split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let text = String::from_utf8(p.to_vec()).expect("utf-8 settings");
                let (k, v) = text.split_once('=').expect("NAME=VALUE");
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn from_script_settings(m: &BTreeMap<String, String>) -> UserDataSettings {
        let get = |k: &str| m.get(k).cloned().unwrap_or_else(|| panic!("{k} missing"));
        let optional = |k: &str| Some(get(k)).filter(|v| !v.is_empty());
        let secs = |k: &str| Duration::from_secs(get(k).parse().expect("seconds"));
        UserDataSettings {
            jit_config: get("JIT_CONFIG"),
            runner_name: get("RUNNER_NAME"),
            label: get("RUNNER_LABEL"),
            runner_user: get("RUNNER_USER"),
            runner_dir: optional("RUNNER_DIR"),
            runner_version: get("RUNNER_VERSION"),
            sha256_x64: get("RUNNER_SHA256_X64"),
            sha256_arm64: get("RUNNER_SHA256_ARM64"),
            runner_update: get("RUNNER_UPDATE") == "1",
            runner_sudo: get("RUNNER_SUDO") == "1",
            install_libicu: get("INSTALL_LIBICU") == "1",
            instance_store: get("INSTANCE_STORE") == "1",
            download_url: get("RUNNER_DOWNLOAD_URL"),
            max_lifetime: secs("MAX_LIFETIME_SECONDS"),
            idle_timeout: secs("IDLE_TIMEOUT_SECONDS"),
            pre_runner_script: optional("PRE_RUNNER_SCRIPT"),
            log_file: get("LOG_FILE"),
        }
    }

    /// Runs every sandbox scenario (testenv/sandbox/run.py) on scripts from
    /// this renderer: the real script, as root, in private namespaces, with
    /// stubs only for power-off, the metadata service and the download.
    #[test]
    fn sandbox_scenarios() {
        let harness = repo().join("testenv/sandbox/run.py");
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if !is_root || !have("unshare") || !have("python3") {
            eprintln!("note: the sandbox scenarios need root, unshare and python3; skipped");
            return;
        }
        let listing = Command::new("python3")
            .arg(&harness)
            .arg("scenarios")
            .output()
            .expect("run.py scenarios");
        let scenarios: Vec<String> = String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect();
        assert!(scenarios.len() >= 8, "{scenarios:?}");
        let base =
            std::env::temp_dir().join(format!("ec2sr-userdata-sandbox-{}", std::process::id()));
        let run_one = |name: &str| -> Result<(), String> {
            let dir = base.join(name);
            let status = Command::new("python3")
                .arg(&harness)
                .args(["settings", "--scenario", name, "--out"])
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("{name}: run.py settings failed"));
            }
            let s = from_script_settings(&read_nul_settings(&dir.join("settings.nul")));
            let script = render(&s);
            if std::fs::read(dir.join("reference.sh")).ok().as_deref() != Some(script.as_bytes()) {
                return Err(format!("{name}: render() differs from render.py"));
            }
            let path = dir.join("rendered.sh");
            std::fs::write(&path, script).map_err(|e| e.to_string())?;
            let out = Command::new("python3")
                .arg(&harness)
                .arg("--script")
                .arg(&path)
                .args(["--scenario", name, "--out"])
                .arg(&dir)
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&out.stdout);
                let failures = text
                    .split("\"failures\": [")
                    .nth(1)
                    .and_then(|t| t.split(']').next())
                    .unwrap_or(&text)
                    .to_owned();
                Err(format!(
                    "{name}: {failures}{} (details in {})",
                    String::from_utf8_lossy(&out.stderr),
                    dir.display()
                ))
            }
        };
        // Scenarios mostly wait on timers: run them four at a time.
        let mut failures = Vec::new();
        for chunk in scenarios.chunks(4) {
            let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|n| scope.spawn(|| run_one(n.as_str())))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("scenario thread"))
                    .collect()
            });
            failures.extend(results.into_iter().filter_map(Result::err));
        }
        assert!(
            failures.is_empty(),
            "sandbox scenarios failed:\n{}",
            failures.join("\n")
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
