//! The instance side: the user-data script that turns a fresh machine into
//! a one-job runner, the bake's script that turns a builder into a runner
//! image, and the runner releases they can install.

pub(crate) mod bake;
pub(crate) mod release;
pub(crate) mod userdata;

pub(crate) use release::{RUNNER_RELEASES, RunnerRelease};
