//! The top-level error: every module's error wrapped, with the exit code a
//! user (or a workflow) can rely on — 2 for input to fix, 1 for the rest.

use crate::actions::ActionsFileError;
use crate::aws::AwsError;
use crate::github::GithubError;
use crate::settings::InvalidInput;

/// Everything that can end a run with a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An input is missing or malformed; nothing was called or launched.
    #[error(transparent)]
    Input(#[from] InvalidInput),
    /// An AWS call failed in a way retrying cannot fix.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A GitHub call failed in a way retrying cannot fix.
    #[error(transparent)]
    Github(#[from] GithubError),
    /// The tokio runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A step did not finish within the `timeout` input.
    #[error(
        "{what} did not finish within the timeout of {timeout}; raise `timeout` or check {hint}"
    )]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The configured timeout, human-readable.
        timeout: String,
        /// Where to look.
        hint: String,
    },
    /// The job was cancelled (SIGINT/SIGTERM); the undo logs what it removed.
    #[error(
        "cancelled by {signal}; the log above lists what was removed (run the cleanup mode if anything could not be)"
    )]
    Cancelled {
        /// The signal's name.
        signal: &'static str,
    },
    /// Writing an Actions file (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`) failed.
    #[error(transparent)]
    ActionsFile(#[from] ActionsFileError),
    /// A step failed; the message says what failed and how to fix it.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => 2,
            _ => 1,
        }
    }
}
