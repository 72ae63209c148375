//! `cleanup`: reaps what cancelled or crashed runs left behind. It finds
//! every live instance the tool launched and every runner it registered,
//! decides per instance with a pure function (`decide`), and terminates and
//! deletes in batches. `--dry-run` decides and reports without acting.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_ec2::types::Instance;

use crate::actions::{self, Table};
use crate::aws;
use crate::aws::instances;
use crate::cancel::Cancel;
use crate::cli::CleanupArgs;
use crate::error::Error;
use crate::github::{self, runners::Runner};
use crate::settings::CleanupSettings;
use crate::tags;

/// The longest max-lifetime the tool accepts (7 days); larger tag values are clamped.
const MAX_LIFETIME_CAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// What GitHub says about an instance's runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunnerState {
    /// Not listed: its job finished (ephemeral runners remove themselves) or it was deleted.
    Gone,
    /// Listed, offline: not registered yet, or its machine died.
    Offline,
    /// Online and waiting for a job.
    Idle,
    /// Running a job.
    Busy,
    /// Registered in a scope this cleanup does not look at.
    Unknown,
    /// A bake's builder: it has no runner, only its time limit.
    Builder,
}

impl RunnerState {
    fn as_str(self) -> &'static str {
        match self {
            RunnerState::Gone => "gone",
            RunnerState::Offline => "offline",
            RunnerState::Idle => "idle",
            RunnerState::Busy => "busy",
            RunnerState::Unknown => "other scope",
            RunnerState::Builder => "bake builder",
        }
    }
}

/// The limits a decision is made against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Nothing younger than this is touched: its start may still be running.
    pub(crate) grace: Duration,
    /// A runner must be online within this long after launch.
    pub(crate) registration_timeout: Duration,
}

/// Keep or terminate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Leave it running.
    Keep(String),
    /// Terminate it.
    Terminate(String),
}

/// Decides one instance's fate. Pure, so that every rule is tested by a table.
pub(crate) fn decide(
    age: Duration,
    max_lifetime: Duration,
    runner: RunnerState,
    limits: Limits,
) -> Decision {
    let human =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    if age > max_lifetime.saturating_add(limits.grace) {
        return Decision::Terminate(format!(
            "older than its max lifetime of {} plus the grace period",
            human(max_lifetime)
        ));
    }
    if age < limits.grace {
        return Decision::Keep(format!(
            "younger than the grace period of {}",
            human(limits.grace)
        ));
    }
    match runner {
        RunnerState::Busy => Decision::Keep("its runner is running a job".into()),
        RunnerState::Gone => Decision::Terminate(
            "its runner is gone from GitHub (job finished or runner removed)".into(),
        ),
        RunnerState::Offline if age > limits.registration_timeout => Decision::Terminate(format!(
            "its runner did not come online within the registration timeout of {}",
            human(limits.registration_timeout)
        )),
        RunnerState::Offline => Decision::Keep("its runner is still registering".into()),
        RunnerState::Idle => Decision::Keep("its runner is online, waiting for its job".into()),
        RunnerState::Builder => {
            Decision::Keep("a bake's builder, inside the bake's time limit".into())
        }
        RunnerState::Unknown => Decision::Keep(
            "registered in another repository or organization; run cleanup there".into(),
        ),
    }
}

/// One row of the report.
struct Row {
    instance_id: String,
    label: String,
    age: Duration,
    runner: RunnerState,
    decision: Decision,
}

/// Runs `cleanup`; a signal lets it finish inside the runner's SIGINT window.
pub(crate) async fn run(args: CleanupArgs) -> Result<(), Error> {
    let settings = CleanupSettings::from_args(&args)?;
    let cancel = Cancel::listen();
    cancel.finish(cleanup(&settings)).await
}

async fn cleanup(settings: &CleanupSettings) -> Result<(), Error> {
    let client = aws::ec2_client(settings.region.clone()).await?;
    let (found, github) = tokio::join!(
        instances::find_managed(&client, None),
        github::connect(&settings.github)
    );
    let found = found?;
    // Without GitHub, cleanup still reaps what is past its max lifetime (a
    // rule that needs no runner state), then fails so the broken credential
    // is noticed.
    let (github, runners, github_error) = match github {
        Ok(gh) => match gh.list_runners().await {
            Ok(runners) => (Some(gh), runners, None),
            Err(err) => (None, Vec::new(), Some(err)),
        },
        Err(err) => (None, Vec::new(), Some(err)),
    };
    if let Some(err) = &github_error {
        actions::warning(&format!(
            "GitHub is not available ({err}); only instances past their max lifetime are reaped this time"
        ));
    }
    let scope_tag = settings.github.scope.tag();
    let by_name: HashMap<&str, &Runner> = runners.iter().map(|r| (r.name.as_str(), r)).collect();
    let now = chrono::Utc::now();
    let limits = Limits {
        grace: settings.grace_period,
        registration_timeout: settings.registration_timeout,
    };

    let mut rows = Vec::new();
    for instance in &found {
        let Some(id) = instance.instance_id() else {
            continue;
        };
        let age = age_of(instance, now);
        let max_lifetime = tags::value(instance.tags(), tags::MAX_LIFETIME)
            .and_then(|v| v.parse::<u64>().ok())
            // A tag anyone with ec2:CreateTags can write: clamp it to the
            // longest lifetime the tool itself would set.
            .map(|secs| Duration::from_secs(secs.min(MAX_LIFETIME_CAP.as_secs())))
            .unwrap_or(settings.default_max_lifetime);
        let runner_name = tags::value(instance.tags(), tags::RUNNER_NAME).unwrap_or_default();
        let runner = if tags::value(instance.tags(), tags::BAKE).is_some() {
            RunnerState::Builder
        } else if github.is_none()
            || tags::value(instance.tags(), tags::SCOPE) != Some(scope_tag.as_str())
        {
            RunnerState::Unknown
        } else {
            match by_name.get(runner_name) {
                None => RunnerState::Gone,
                Some(r) if r.busy => RunnerState::Busy,
                Some(r) if r.status == "online" => RunnerState::Idle,
                Some(_) => RunnerState::Offline,
            }
        };
        rows.push(Row {
            instance_id: id.to_owned(),
            label: tags::value(instance.tags(), tags::LABEL)
                .unwrap_or("-")
                .to_owned(),
            age,
            runner,
            decision: decide(age, max_lifetime, runner, limits),
        });
    }

    let doomed: Vec<String> = rows
        .iter()
        .filter(|r| matches!(r.decision, Decision::Terminate(_)))
        .map(|r| r.instance_id.clone())
        .collect();
    // The machines first: they bill, and the pause below (which protects
    // runners of starts in progress) must not hold up their end, least of
    // all when this cleanup is being cancelled.
    if !settings.dry_run {
        instances::terminate(&client, &doomed).await?;
    }

    // Runners to delete: offline runners of the tool (carrying the label only
    // it sets, or named by an instance we terminate now) that no surviving
    // machine runs. A runner named like ours but without the label belongs
    // to someone else.
    let doomed_names: HashSet<&str> = found
        .iter()
        .filter(|i| doomed.iter().any(|d| Some(d.as_str()) == i.instance_id()))
        .filter_map(|i| tags::value(i.tags(), tags::RUNNER_NAME))
        .collect();
    let surviving = |instances: &[Instance]| -> HashSet<String> {
        instances
            .iter()
            .filter(|i| !doomed.iter().any(|d| Some(d.as_str()) == i.instance_id()))
            .filter_map(|i| tags::value(i.tags(), tags::RUNNER_NAME).map(str::to_owned))
            .collect()
    };
    let live = surviving(&found);
    let mut orphans: Vec<&Runner> = runners
        .iter()
        .filter(|r| !r.busy && r.status != "online")
        .filter(|r| {
            doomed_names.contains(r.name.as_str())
                || (r.has_label(tags::RUNNER_MARK)
                    && settings
                        .runner_prefix
                        .as_deref()
                        .is_none_or(|p| r.name.starts_with(p)))
        })
        .filter(|r| !live.contains(&r.name))
        .collect();
    if orphans
        .iter()
        .any(|r| !doomed_names.contains(r.name.as_str()))
    {
        // A start creates its JIT runner a moment before it launches the
        // instance. Look again after a pause so that a start in progress never
        // loses its runner to us.
        tokio::time::sleep(settings.settle).await;
        let live = surviving(&instances::find_managed(&client, None).await?);
        orphans.retain(|r| !live.contains(&r.name));
    }

    let mut table = Table::new(&["instance", "label", "age", "runner", "decision", "reason"]);
    for row in &rows {
        let (verb, reason) = match &row.decision {
            Decision::Keep(why) => ("keep", why.as_str()),
            Decision::Terminate(why) => (
                if settings.dry_run {
                    "would terminate"
                } else {
                    "terminate"
                },
                why.as_str(),
            ),
        };
        table.row(&[
            row.instance_id.clone(),
            row.label.clone(),
            humantime::format_duration(Duration::from_secs(row.age.as_secs() / 60 * 60))
                .to_string(),
            row.runner.as_str().to_owned(),
            verb.to_owned(),
            reason.to_owned(),
        ]);
        tracing::info!(instance = %row.instance_id, label = %row.label, runner = row.runner.as_str(), "{verb}: {reason}");
    }
    for runner in &orphans {
        tracing::info!(runner = %runner.name, "{} offline runner without a machine", if settings.dry_run { "would delete" } else { "delete" });
    }

    if !settings.dry_run {
        for runner in &orphans {
            if let Some(github) = &github {
                github.delete_runner(runner.id, &runner.name).await?;
            }
        }
    }
    let mut summary = format!(
        "### ec2-spot-runner cleanup{}\n\n{} managed instance(s): {} {}terminated, {} kept. {} offline runner(s) {}deleted.\n\n",
        if settings.dry_run { " (dry run)" } else { "" },
        rows.len(),
        doomed.len(),
        if settings.dry_run { "would be " } else { "" },
        rows.len() - doomed.len(),
        orphans.len(),
        if settings.dry_run { "would be " } else { "" },
    );
    if !rows.is_empty() {
        summary.push_str(&table.finish());
    }
    if !orphans.is_empty() {
        let names: Vec<String> = orphans.iter().map(|r| format!("`{}`", r.name)).collect();
        summary.push_str(&format!("\nRunners: {}\n", names.join(", ")));
    }
    println!("{summary}");
    actions::summary(&summary)?;
    match github_error {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// The instance's age from its created-at tag (which tests and users can
/// read), else from EC2's launch time.
fn age_of(instance: &Instance, now: chrono::DateTime<chrono::Utc>) -> Duration {
    let created = tags::value(instance.tags(), tags::CREATED_AT)
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|| {
            instance
                .launch_time()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
        })
        .unwrap_or(now);
    (now - created).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    #[test]
    fn every_rule_of_the_cleanup_table() {
        let limits = Limits {
            grace: Duration::from_secs(5 * MIN),
            registration_timeout: Duration::from_secs(10 * MIN),
        };
        let life = Duration::from_secs(360 * MIN);
        // (age in minutes, runner, terminate?, reason contains)
        let table = [
            (400, RunnerState::Busy, true, "max lifetime"),
            (366, RunnerState::Idle, true, "max lifetime"),
            (364, RunnerState::Busy, false, "running a job"),
            (2, RunnerState::Gone, false, "grace period"),
            (2, RunnerState::Offline, false, "grace period"),
            (30, RunnerState::Gone, true, "gone from GitHub"),
            (11, RunnerState::Offline, true, "did not come online"),
            (8, RunnerState::Offline, false, "still registering"),
            (120, RunnerState::Idle, false, "waiting for its job"),
            (120, RunnerState::Busy, false, "running a job"),
            (120, RunnerState::Unknown, false, "another repository"),
            (999, RunnerState::Unknown, true, "max lifetime"),
            (30, RunnerState::Builder, false, "builder"),
            (999, RunnerState::Builder, true, "max lifetime"),
        ];
        for (age, runner, terminate, why) in table {
            let decision = decide(Duration::from_secs(age * MIN), life, runner, limits);
            let (is_terminate, reason) = match &decision {
                Decision::Terminate(r) => (true, r),
                Decision::Keep(r) => (false, r),
            };
            assert_eq!(
                is_terminate, terminate,
                "age {age}m, runner {runner:?}: {decision:?}"
            );
            assert!(
                reason.contains(why),
                "age {age}m, runner {runner:?}: {reason}"
            );
        }
    }
}
