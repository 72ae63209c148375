//! `stop`: terminates every live instance tagged with the label (and, given
//! the start's `start-id`, with that start's id only) and removes the
//! runners of those instances that GitHub still lists. Idempotent: nothing
//! to stop is a warning, not a failure.

use crate::actions;
use crate::aws;
use crate::aws::instances;
use crate::cancel::Cancel;
use crate::cli::StopArgs;
use crate::error::Error;
use crate::github;
use crate::settings::StopSettings;
use crate::tags;

/// Runs `stop`. A signal (the job being cancelled) does not stop it: the
/// terminate goes out first and the rest finishes inside the runner's
/// SIGINT window.
pub(crate) async fn run(args: StopArgs) -> Result<(), Error> {
    let settings = StopSettings::from_args(&args)?;
    let cancel = Cancel::listen();
    cancel.finish(stop(&settings)).await
}

async fn stop(settings: &StopSettings) -> Result<(), Error> {
    let client = aws::ec2_client(settings.region.clone()).await?;
    let label = settings.label.as_str();
    let prefix = settings
        .start_id
        .as_deref()
        .map(|id| crate::settings::runner_prefix(&settings.label, id));
    // The machines first: GitHub's side (an App token to mint, maybe a
    // rate limit to wait out) must not hold up the terminate.
    let machines = async {
        let mut found = instances::find_managed(&client, Some(label)).await?;
        if let Some(start_id) = settings.start_id.as_deref() {
            // The label may be shared by other runs: only this start's machines.
            found.retain(|i| tags::value(i.tags(), tags::START_ID) == Some(start_id));
        }
        let ids: Vec<String> = found
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            actions::warning(&format!(
                "no running instance has label {label}{}; nothing to terminate (already stopped, or the start never launched one)",
                settings
                    .start_id
                    .as_deref()
                    .map(|id| format!(" and start id {id}"))
                    .unwrap_or_default()
            ));
        } else {
            instances::terminate(&client, &ids).await?;
            tracing::info!(label, instances = %ids.join(", "), "terminated");
        }
        Ok::<_, Error>((found, ids))
    };
    let (machines, github) = tokio::join!(machines, github::connect(&settings.github));
    let (found, ids) = machines?;

    // The runner deregisters itself when its job ends; delete what is left
    // (a runner whose machine never took a job, or was interrupted).
    let github = github?;
    let mut names: Vec<String> = found
        .iter()
        .filter_map(|i| tags::value(i.tags(), tags::RUNNER_NAME).map(str::to_owned))
        .collect();
    let runners = github.list_runners().await?;
    for runner in &runners {
        // By name alone only runners the tool registered (they carry its
        // label): someone's own runner named like `label-1` is not ours.
        let ours = runner.has_label(tags::RUNNER_MARK)
            && match &prefix {
                Some(prefix) => tags::is_numbered(prefix, &runner.name),
                None => tags::is_runner_of(label, &runner.name),
            };
        if ours && !names.contains(&runner.name) {
            names.push(runner.name.clone());
        }
    }
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for runner in runners.iter().filter(|r| names.contains(&r.name)) {
        match github.delete_runner(runner.id, &runner.name).await {
            Ok(()) => deleted.push(runner.name.clone()),
            // GitHub refuses to delete a runner in the middle of a job. Its
            // machine is terminated above, so it goes offline; cleanup (or
            // GitHub itself, for an ephemeral runner) removes it later.
            Err(err) if err.status() == Some(422) => actions::warning(&format!(
                "runner {} is still running a job, so GitHub kept it; its machine is terminated and the cleanup mode removes it once it is offline",
                runner.name
            )),
            // Keep going: one runner GitHub refuses must not keep the others.
            Err(err) => failed.push(err.to_string()),
        }
    }
    if !deleted.is_empty() {
        tracing::info!(runners = %deleted.join(", "), "deleted runners");
    }
    actions::summary(&format!(
        "### ec2-spot-runner stop\n\nLabel `{label}`: terminated {} instance(s){}, deleted {} runner(s).\n",
        ids.len(),
        if ids.is_empty() {
            String::new()
        } else {
            format!(" ({})", ids.join(", "))
        },
        deleted.len()
    ))?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "the instances were terminated, but {} runner(s) could not be deleted: {}. The cleanup mode retries them",
            failed.len(),
            failed.join("; ")
        )))
    }
}
