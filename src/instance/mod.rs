//! The instance side: the user-data script that turns a fresh machine into
//! a one-job runner, and the runner releases it can install.

pub(crate) mod release;
pub(crate) mod userdata;

pub(crate) use release::{RUNNER_RELEASES, RunnerRelease};
