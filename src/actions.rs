//! The GitHub Actions runtime, behind one small module: logging set-up,
//! secret masks, outputs (heredoc form), the step summary, annotations and
//! log groups. Outside Actions the same calls print plain text instead.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

/// True when running inside a GitHub Actions job.
pub(crate) fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Sets up `tracing` to stderr. `RUNNER_DEBUG=1` (re-run with debug logging)
/// turns on debug when no level is given.
pub(crate) fn init_logging(level: Option<&str>) {
    let level = level
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("RUNNER_DEBUG")
                .is_ok_and(|v| v == "1")
                .then(|| "debug".to_owned())
        })
        .unwrap_or_else(|| "info".to_owned());
    // Our own crate logs at the chosen level; the SDKs stay at warn. At debug
    // the AWS SDK's retry decisions (attempt, wait, reason) are shown too,
    // since a throttled call is the first thing to look for in a slow start.
    // Even at trace, the HTTP layers stay at debug: at trace they print whole
    // requests, and a RunInstances body carries the user data (with the JIT
    // config) and the headers carry session tokens.
    let directive = if level.eq_ignore_ascii_case("trace") {
        "trace,aws_smithy_runtime=debug,aws_smithy_runtime_api=debug,aws_smithy_http_client=debug,\
         aws_sigv4=debug,aws_config=debug,hyper=info,hyper_util=info,h2=info,tower=info,\
         octocrab=debug,rustls=info,reqwest=info"
            .to_owned()
    } else if level.eq_ignore_ascii_case("debug") {
        "warn,ec2_spot_runner=debug,aws_smithy_runtime::client::retries=debug".to_owned()
    } else {
        format!("warn,ec2_spot_runner={level}")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive).unwrap_or_else(|_| {
        eprintln!(
            "warning: input `log-level`: unknown level `{level}`; using info. Choose error, warn, info, debug or trace"
        );
        tracing_subscriber::EnvFilter::new("warn,ec2_spot_runner=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(in_actions() || std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Writing one of the files the Actions runner reads failed.
#[derive(Debug, thiserror::Error)]
#[error("could not write {what} to {path}: {source}")]
pub(crate) struct ActionsFileError {
    /// Which file (`outputs`, `the step summary`).
    what: &'static str,
    /// Its path.
    path: String,
    /// The I/O error.
    #[source]
    source: std::io::Error,
}

static MASKED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Tells the Actions runner to hide `secret` in every log line from now on.
/// Multi-line secrets (a PEM key) are masked line by line, which is how the
/// runner matches them. Outside Actions nothing is printed: printing the
/// command there would show the very value it is meant to hide.
pub(crate) fn mask(secret: &str) {
    if !in_actions() {
        return;
    }
    let mut guard = MASKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let seen = guard.get_or_insert_with(HashSet::new);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in secret.lines().map(str::trim).filter(|l| l.len() >= 4) {
        if seen.insert(line.to_owned()) {
            let _ = writeln!(out, "::add-mask::{line}");
        }
    }
    let _ = out.flush();
}

/// Escapes a message for a workflow command (`::error::…`).
fn escape_data(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Reports a fatal error: an `::error::` annotation in Actions, a plain line otherwise.
pub(crate) fn error_line(message: &str) {
    if in_actions() {
        println!("::error::{}", escape_data(message));
    } else {
        eprintln!("error: {message}");
    }
}

/// Reports a warning: an annotation in Actions, and the log line everywhere.
pub(crate) fn warning(message: &str) {
    tracing::warn!("{message}");
    if in_actions() {
        println!("::warning::{}", escape_data(message));
    }
}

/// Prints text the tool does not control (an instance's console) in a
/// collapsed log group. In Actions, workflow commands are switched off
/// around it with a one-time token, so a line such as `::add-mask::` or
/// `::error::` in the text is shown, never obeyed.
// NOTE: https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands#stopping-and-starting-workflow-commands
pub(crate) fn untrusted_block(title: &str, text: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if in_actions() {
        let token = format!("ec2sr-{}", crate::settings::random_part(24));
        let _ = writeln!(out, "::group::{}", escape_data(title));
        let _ = writeln!(out, "::stop-commands::{token}");
        let _ = writeln!(out, "{text}");
        let _ = writeln!(out, "::{token}::");
        let _ = writeln!(out, "::endgroup::");
    } else {
        let _ = writeln!(out, "--- {title}\n{text}\n---");
    }
    let _ = out.flush();
}

/// The step's outputs, written to `GITHUB_OUTPUT` as they become known (so a
/// cancelled start still hands its label to the stop job), and printed as
/// `name=value` lines outside Actions.
pub(crate) struct Outputs {
    path: Option<String>,
}

impl Outputs {
    /// Opens the outputs of this step.
    pub(crate) fn from_env() -> Self {
        Self {
            path: std::env::var("GITHUB_OUTPUT")
                .ok()
                .filter(|p| !p.is_empty()),
        }
    }

    /// Sets one output. Uses the heredoc form with a random delimiter, so no
    /// value can end the block early or inject another output.
    pub(crate) fn set(&self, name: &str, value: &str) -> Result<(), ActionsFileError> {
        let Some(path) = &self.path else {
            println!("{name}={value}");
            return Ok(());
        };
        let delimiter = loop {
            let candidate = format!("ghadelimiter_{:016x}", rand::random::<u64>());
            if !value.contains(&candidate) {
                break candidate;
            }
        };
        append(
            "outputs",
            path,
            &format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"),
        )
    }
}

/// Appends Markdown to the step summary, when Actions provides one.
pub(crate) fn summary(markdown: &str) -> Result<(), ActionsFileError> {
    match std::env::var("GITHUB_STEP_SUMMARY") {
        Ok(path) if !path.is_empty() => append("the step summary", &path, markdown),
        _ => Ok(()),
    }
}

fn append(what: &'static str, path: &str, text: &str) -> Result<(), ActionsFileError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| ActionsFileError {
            what,
            path: path.to_owned(),
            source,
        })
}

/// A Markdown table builder for step summaries.
pub(crate) struct Table {
    text: String,
}

impl Table {
    /// Starts a table with these column headers.
    pub(crate) fn new(headers: &[&str]) -> Self {
        let mut text = format!("| {} |\n|", headers.join(" | "));
        for _ in headers {
            text.push_str(" --- |");
        }
        text.push('\n');
        Self { text }
    }

    /// Adds a row; `|` and newlines in cells are escaped so a value cannot break the table.
    pub(crate) fn row(&mut self, cells: &[String]) {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| c.replace('|', "\\|").replace('\n', " "))
            .collect();
        let _ = writeln!(self.text, "| {} |", cells.join(" | "));
    }

    /// The finished Markdown.
    pub(crate) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_cannot_be_split_by_newlines() {
        assert_eq!(escape_data("a\nb%c\r"), "a%0Ab%25c%0D");
    }

    #[test]
    fn table_cells_are_escaped() {
        let mut t = Table::new(&["a", "b"]);
        t.row(&["x|y".into(), "1\n2".into()]);
        assert_eq!(t.finish(), "| a | b |\n| --- | --- |\n| x\\|y | 1 2 |\n");
    }
}
