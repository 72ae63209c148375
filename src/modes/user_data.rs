//! `user-data`: prints the script `start` would send, so a user can read
//! exactly what runs on the machine. The JIT config is a placeholder unless
//! one is passed through an environment variable, and the runner release is
//! the compiled pin (or `runner-version`): start looks up the newest one.

use crate::cli::UserDataArgs;
use crate::error::Error;
use crate::instance::userdata::{self, UserDataSettings};
use crate::settings::{InstanceSettings, RunContext, RunnerDownload};

/// Renders the user-data of one runner.
pub(crate) fn render_for(
    instance: &InstanceSettings,
    runner: &RunnerDownload,
    runner_name: &str,
    jit_config: &str,
) -> String {
    userdata::user_data(&UserDataSettings {
        jit_config: jit_config.to_owned(),
        runner_name: runner_name.to_owned(),
        label: instance.label.as_str().to_owned(),
        runner_user: "runner".to_owned(),
        runner_dir: instance.runner_dir.clone(),
        runner_version: runner.version.clone(),
        sha256_x64: runner.sha256_x64.clone().unwrap_or_default(),
        sha256_arm64: runner.sha256_arm64.clone().unwrap_or_default(),
        runner_update: instance.runner_update,
        runner_sudo: instance.runner_sudo,
        install_libicu: instance.install_libicu,
        instance_store: instance.instance_store,
        download_url: userdata::DEFAULT_DOWNLOAD_URL.to_owned(),
        max_lifetime: instance.max_lifetime,
        idle_timeout: instance.idle_timeout,
        pre_runner_script: instance.pre_runner_script.clone(),
        log_file: userdata::DEFAULT_LOG_FILE.to_owned(),
    })
}

/// Runs `user-data`.
pub(crate) fn run(args: UserDataArgs) -> Result<(), Error> {
    let instance = InstanceSettings::from_args(&args.instance, &RunContext::from_env(), false)?;
    let runner_name = args
        .runner_name
        .clone()
        .unwrap_or_else(|| format!("{}-1", instance.runner_prefix));
    let jit = match &args.jit_config_env {
        Some(var) => std::env::var(var).map_err(|_| crate::settings::InvalidInput {
            input: "jit-config-env",
            value: Some(var.clone()),
            problem: "names an environment variable that is not set".into(),
        })?,
        None => "JIT-CONFIG-PLACEHOLDER".to_owned(),
    };
    crate::actions::mask(&jit);
    print!(
        "{}",
        render_for(&instance, &instance.runner_release, &runner_name, &jit)
    );
    Ok(())
}
