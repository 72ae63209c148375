//! `rerun`: after a workflow run failed, re-runs it once when EC2 reclaimed
//! a spot machine under one of its jobs. It finds the first attempt's
//! machines by their run tags, reads from DescribeInstances why each ended,
//! matches them to the attempt's jobs by runner name, and re-runs the start
//! job that launched the reclaimed machine: GitHub re-runs the jobs that
//! depend on it too, so the new attempt gets a new machine and label (on
//! on-demand capacity with `on-demand-on-retry`). Re-running only the failed
//! job would wait forever for the old label's machine, which is gone.
//! The decision is a pure function (`decide`); `dry-run` reports it only.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Instance;
use chrono::{DateTime, Utc};

use crate::actions::{self, Outputs, Table};
use crate::aws::{self, instances};
use crate::cli::RerunArgs;
use crate::error::Error;
use crate::github::runs::{Job, WorkflowRun};
use crate::github::{self, GithubError};
use crate::settings::RerunSettings;
use crate::tags;

/// The state reason EC2 gives an instance it ended to reclaim spot capacity.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html
pub(crate) const SPOT_RECLAIMED: &str = "Server.SpotInstanceTermination";

/// What `rerun` needs of one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Machine {
    /// The instance id.
    pub(crate) id: String,
    /// Its state now.
    pub(crate) state: String,
    /// EC2's state reason code, once it ended.
    pub(crate) reason: Option<String>,
    /// The runner it registered (the runner-name tag).
    pub(crate) runner: Option<String>,
    /// The start job's runner (the start-runner tag).
    pub(crate) start_runner: Option<String>,
    /// When it was launched.
    pub(crate) launched: Option<DateTime<Utc>>,
}

impl Machine {
    fn from_instance(instance: &Instance) -> Self {
        let tag = |key: &str| {
            instance
                .tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        Self {
            id: instance.instance_id().unwrap_or_default().to_owned(),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            reason: instance
                .state_reason()
                .and_then(|r| r.code())
                .map(str::to_owned),
            runner: tag(tags::RUNNER_NAME),
            start_runner: tag(tags::START_RUNNER),
            launched: instance
                .launch_time()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                .or_else(|| {
                    tag(tags::CREATED_AT)
                        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&Utc))
                }),
        }
    }

    fn reclaimed(&self) -> bool {
        self.reason.as_deref() == Some(SPOT_RECLAIMED)
    }
}

/// What to do about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing, and why.
    Nothing(String),
    /// Re-run this start job (and, by GitHub, its dependents).
    Job(Job, String),
    /// Re-run the whole run: several start jobs lost their machines and
    /// GitHub takes one job re-run per attempt.
    Run(String),
}

/// One line of the summary: a machine, and what became of its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    machine: Machine,
    job: Option<String>,
    start_job: Option<String>,
    note: String,
}

/// Decides from the run, the attempt's machines and its jobs. Re-runs only
/// when a machine ended with the spot reclaim reason while its job was
/// running (that job failed or was cancelled), only the first attempt, and
/// only the start jobs that launched such machines.
pub(crate) fn decide(
    run: &WorkflowRun,
    attempt: u32,
    region: &str,
    machines: &[Machine],
    jobs: &[Job],
) -> (Decision, Vec<Row>) {
    let nothing = |why: String| (Decision::Nothing(why), Vec::new());
    if run.run_attempt != attempt {
        return nothing(format!(
            "attempt {attempt} is not the newest of run {} (attempt {} exists): it was re-run already",
            run.id, run.run_attempt
        ));
    }
    if run.status != "completed" {
        return nothing(format!(
            "run {} is {}; rerun acts on a completed run (trigger it with `workflow_run: types: [completed]`)",
            run.id, run.status
        ));
    }
    let conclusion = run.conclusion.as_deref().unwrap_or("unknown");
    if !matches!(conclusion, "failure" | "cancelled" | "timed_out") {
        return nothing(format!(
            "run {} ended {conclusion}: nothing to re-run",
            run.id
        ));
    }
    if attempt > 1 {
        return nothing(format!(
            "run {} is at attempt {attempt}: a run is re-run at most once, after its first attempt",
            run.id
        ));
    }
    let mut rows = Vec::new();
    // start job id -> the start job
    let mut starts: BTreeMap<u64, &Job> = BTreeMap::new();
    let mut victims = Vec::new();
    // A start whose machine was reclaimed while booting launches the next
    // one under the same runner name: only the newest machine of a name can
    // have run its job.
    let newest = |m: &Machine| {
        !machines.iter().any(|o| {
            o.id != m.id && o.runner.is_some() && o.runner == m.runner && o.launched > m.launched
        })
    };
    // start job id -> failed jobs on its machines that EC2 did not reclaim
    let mut lost_otherwise: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for machine in machines {
        let on_it = machine
            .runner
            .as_deref()
            .filter(|_| newest(machine))
            .and_then(|name| jobs.iter().find(|j| j.runner_name.as_deref() == Some(name)));
        let start = start_job(machine, jobs);
        if let (false, Some(job), Some(start)) = (machine.reclaimed(), on_it, start) {
            if job.failed() {
                lost_otherwise
                    .entry(start.id)
                    .or_default()
                    .push(job.name.as_str());
            }
        }
        let note = match (machine.reclaimed(), on_it, start) {
            (true, None, _) if !newest(machine) => {
                "reclaimed while booting; the start launched another machine for its runner"
                    .to_owned()
            }
            (false, _, _) => format!(
                "ended {}",
                machine.reason.as_deref().unwrap_or(&machine.state)
            ),
            (true, None, _) => "reclaimed before any job ran on it".to_owned(),
            (true, Some(job), _) if !job.failed() => format!(
                "reclaimed after its job ended {}",
                job.conclusion.as_deref().unwrap_or("unknown")
            ),
            (true, Some(job), None) => {
                victims.push(job.id);
                "reclaimed under its job, but the start job that launched it is not known (no start-runner tag, or no job ran on that runner)".to_owned()
            }
            (true, Some(job), Some(start)) => {
                victims.push(job.id);
                starts.insert(start.id, start);
                "reclaimed under its job".to_owned()
            }
        };
        rows.push(Row {
            machine: machine.clone(),
            job: on_it.map(|j| format!("{} ({})", j.name, j.conclusion.as_deref().unwrap_or("?"))),
            start_job: start.map(|j| j.name.clone()),
            note,
        });
    }
    if machines.is_empty() {
        return (
            Decision::Nothing(format!(
                "no machine of run {} attempt {attempt} is visible in {region}: EC2 shows terminated instances for about an hour, and only in their region (set aws-region to the start's), so nothing is re-run",
                run.id
            )),
            rows,
        );
    }
    let reclaimed = machines.iter().filter(|m| m.reclaimed()).count();
    if reclaimed == 0 {
        return (
            Decision::Nothing(format!(
                "no machine of run {} was reclaimed by EC2 Spot ({} machine(s) found): it failed for another reason, so it is not re-run",
                run.id,
                machines.len()
            )),
            rows,
        );
    }
    // Re-running a start job re-runs every job on its machines: not when one
    // of them failed on a machine EC2 did not reclaim.
    if let Some((id, failed)) = lost_otherwise
        .iter()
        .find(|(id, _)| starts.contains_key(id))
    {
        return (
            Decision::Nothing(format!(
                "start job `{}` also launched machines whose jobs failed for other reasons ({}); re-running it would repeat them, so nothing is re-run",
                starts[id].name,
                failed.join(", ")
            )),
            rows,
        );
    }
    let other_failures: Vec<&str> = jobs
        .iter()
        .filter(|j| j.failed() && !victims.contains(&j.id) && !starts.contains_key(&j.id))
        .map(|j| j.name.as_str())
        .collect();
    let names = |starts: &BTreeMap<u64, &Job>| {
        starts
            .values()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found: Vec<&Job> = starts.values().copied().collect();
    let decision = match found.as_slice() {
        [] => Decision::Nothing(format!(
            "{reclaimed} machine(s) were reclaimed, but no job failed on one whose start job is known: nothing is re-run"
        )),
        [start] => Decision::Job(
            (*start).clone(),
            format!(
                "EC2 reclaimed the spot machine under a job: re-running start job `{}` and the jobs that need it",
                start.name
            ),
        ),
        _ if other_failures.is_empty() => Decision::Run(format!(
            "EC2 reclaimed the spot machines of start jobs {}; GitHub re-runs one job per attempt, so the whole run is re-run",
            names(&starts)
        )),
        _ => Decision::Nothing(format!(
            "EC2 reclaimed the machines of start jobs {}, but {} failed for other reasons; re-running the whole run would repeat them, so nothing is re-run (re-run it by hand)",
            names(&starts),
            other_failures.join(", ")
        )),
    };
    (decision, rows)
}

/// The job that launched a machine: the one that ran on the start step's
/// runner, the latest to start before the machine was launched.
fn start_job<'a>(machine: &Machine, jobs: &'a [Job]) -> Option<&'a Job> {
    let runner = machine.start_runner.as_deref()?;
    jobs.iter()
        .filter(|j| j.runner_name.as_deref() == Some(runner))
        .filter(|j| match (j.started_at, machine.launched) {
            (Some(started), Some(launched)) => started <= launched,
            _ => true,
        })
        .max_by_key(|j| j.started_at)
}

/// Runs `rerun`.
pub(crate) async fn run(args: RerunArgs) -> Result<(), Error> {
    let settings = RerunSettings::from_args(&args)?;
    let repo = &settings.repository;
    let github = github::connect(&settings.github).await?;
    let run = github.workflow_run(repo, settings.run_id).await?;
    let needs_machines = run.status == "completed" && settings.run_attempt == 1;
    let (machines, jobs) = if needs_machines {
        let client = aws::ec2_client(settings.region.clone()).await?;
        let repository = repo.to_string();
        let (found, jobs) = tokio::join!(
            instances::find_by_run(&client, &repository, settings.run_id, settings.run_attempt),
            github.attempt_jobs(repo, settings.run_id, settings.run_attempt)
        );
        let machines: Vec<Machine> = found?.iter().map(Machine::from_instance).collect();
        (machines, jobs?)
    } else {
        (Vec::new(), Vec::new())
    };
    let region = settings
        .region
        .clone()
        .unwrap_or_else(|| "the default region".into());
    let (decision, rows) = decide(&run, settings.run_attempt, &region, &machines, &jobs);
    let outputs = Outputs::from_env();
    let done = match (&decision, settings.dry_run) {
        (Decision::Nothing(why), _) => {
            tracing::info!("{why}");
            "none"
        }
        (Decision::Job(_, why) | Decision::Run(why), true) => {
            tracing::info!("{why} (dry-run: nothing is re-run)");
            "none"
        }
        (Decision::Job(job, why), false) => {
            tracing::info!("{why}");
            confirm(github.rerun_job(repo, job).await, &github, &settings).await?;
            "job"
        }
        (Decision::Run(why), false) => {
            tracing::info!("{why}");
            confirm(github.rerun_run(repo, run.id).await, &github, &settings).await?;
            "run"
        }
    };
    outputs.set("rerun", done)?;
    actions::summary(&summary(&run, &settings, &decision, &rows))?;
    Ok(())
}

/// A re-run whose answer was lost is retried and meets "already running":
/// if the run has a newer attempt now, the re-run took place.
async fn confirm(
    result: Result<(), GithubError>,
    github: &github::Github,
    settings: &RerunSettings,
) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(err) if err.status() == Some(403) => {
            match github
                .workflow_run(&settings.repository, settings.run_id)
                .await
            {
                Ok(now) if now.run_attempt > settings.run_attempt => {
                    tracing::info!(
                        "run {} is at attempt {} now: re-run (by this step's earlier try, whose answer was lost, or by someone at the same moment)",
                        now.id,
                        now.run_attempt
                    );
                    Ok(())
                }
                _ => Err(err.into()),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// The step summary: what was decided, and each machine of the attempt.
fn summary(
    run: &WorkflowRun,
    settings: &RerunSettings,
    decision: &Decision,
    rows: &[Row],
) -> String {
    let title = match &run.html_url {
        Some(url) => format!(
            "[{} #{}]({url})",
            run.name.as_deref().unwrap_or("run"),
            run.id
        ),
        None => format!("run {}", run.id),
    };
    let outcome = match (decision, settings.dry_run) {
        (Decision::Nothing(why), _) => format!("Not re-run: {why}."),
        (Decision::Job(_, why) | Decision::Run(why), true) => {
            format!("Would re-run (dry-run): {why}.")
        }
        (Decision::Job(_, why) | Decision::Run(why), false) => format!("Re-run: {why}."),
    };
    let mut out = format!(
        "### ec2-spot-runner rerun\n\n{title}, attempt {}: {outcome}\n\n",
        settings.run_attempt
    );
    if !rows.is_empty() {
        let mut table = Table::new(&[
            "instance",
            "runner",
            "ended",
            "job on it",
            "launched by",
            "verdict",
        ]);
        for row in rows {
            table.row(&[
                row.machine.id.clone(),
                row.machine.runner.clone().unwrap_or_else(|| "-".into()),
                row.machine
                    .reason
                    .clone()
                    .unwrap_or_else(|| row.machine.state.clone()),
                row.job.clone().unwrap_or_else(|| "-".into()),
                row.start_job.clone().unwrap_or_else(|| "-".into()),
                row.note.clone(),
            ]);
        }
        out.push_str(&table.finish());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(attempt: u32, status: &str, conclusion: Option<&str>) -> WorkflowRun {
        WorkflowRun {
            id: 77,
            name: Some("CI".into()),
            run_attempt: attempt,
            status: status.into(),
            conclusion: conclusion.map(str::to_owned),
            html_url: None,
        }
    }

    fn job(id: u64, name: &str, runner: &str, conclusion: &str, started: &str) -> Job {
        Job {
            id,
            name: name.into(),
            status: "completed".into(),
            conclusion: Some(conclusion.into()),
            runner_name: Some(runner.into()),
            started_at: Some(started.parse().unwrap()),
        }
    }

    fn machine(id: &str, runner: &str, reason: &str, start_runner: &str) -> Machine {
        Machine {
            id: id.into(),
            state: "terminated".into(),
            reason: Some(reason.into()),
            runner: Some(runner.into()),
            start_runner: Some(start_runner.into()),
            launched: Some("2026-12-02T10:01:00Z".parse().unwrap()),
        }
    }

    fn jobs() -> Vec<Job> {
        vec![
            job(
                1,
                "start",
                "GitHub Actions 7",
                "success",
                "2026-12-02T10:00:00Z",
            ),
            job(2, "build", "ec2-x-1", "failure", "2026-12-02T10:02:00Z"),
            job(
                3,
                "stop",
                "GitHub Actions 9",
                "success",
                "2026-12-02T10:09:00Z",
            ),
        ]
    }

    #[test]
    fn a_machine_reclaimed_under_its_job_reruns_the_start_job_that_launched_it() {
        let m = [machine(
            "i-1",
            "ec2-x-1",
            SPOT_RECLAIMED,
            "GitHub Actions 7",
        )];
        let (decision, rows) = decide(
            &run(1, "completed", Some("failure")),
            1,
            "us-east-1",
            &m,
            &jobs(),
        );
        match decision {
            Decision::Job(job, why) => {
                assert_eq!(job.id, 1);
                assert!(why.contains("`start`"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rows[0].job.as_deref(), Some("build (failure)"));
        assert_eq!(rows[0].start_job.as_deref(), Some("start"));
    }

    #[test]
    fn nothing_is_rerun_for_any_other_reason() {
        let reclaimed = [machine(
            "i-1",
            "ec2-x-1",
            SPOT_RECLAIMED,
            "GitHub Actions 7",
        )];
        let failed = run(1, "completed", Some("failure"));
        let cases: Vec<(&str, Decision)> = vec![
            (
                "still running",
                decide(
                    &run(1, "in_progress", None),
                    1,
                    "us-east-1",
                    &reclaimed,
                    &jobs(),
                )
                .0,
            ),
            (
                "succeeded",
                decide(
                    &run(1, "completed", Some("success")),
                    1,
                    "us-east-1",
                    &reclaimed,
                    &jobs(),
                )
                .0,
            ),
            (
                "second attempt",
                decide(
                    &run(2, "completed", Some("failure")),
                    2,
                    "us-east-1",
                    &reclaimed,
                    &jobs(),
                )
                .0,
            ),
            (
                "re-run already",
                decide(
                    &run(2, "completed", Some("failure")),
                    1,
                    "us-east-1",
                    &reclaimed,
                    &jobs(),
                )
                .0,
            ),
            (
                "user-initiated",
                decide(
                    &failed,
                    1,
                    "us-east-1",
                    &[machine(
                        "i-1",
                        "ec2-x-1",
                        "Client.UserInitiatedShutdown",
                        "GitHub Actions 7",
                    )],
                    &jobs(),
                )
                .0,
            ),
            (
                "no machines",
                decide(&failed, 1, "us-east-1", &[], &jobs()).0,
            ),
        ];
        for (case, decision) in cases {
            assert!(
                matches!(decision, Decision::Nothing(_)),
                "{case}: {decision:?}"
            );
        }
        // Reclaimed after its job had passed: the failure is someone else's.
        let mut passed = jobs();
        passed[1].conclusion = Some("success".into());
        passed[2].conclusion = Some("failure".into());
        let (decision, rows) = decide(&failed, 1, "us-east-1", &reclaimed, &passed);
        assert!(matches!(decision, Decision::Nothing(_)), "{decision:?}");
        assert!(
            rows[0].note.contains("after its job ended success"),
            "{rows:?}"
        );
    }

    #[test]
    fn several_start_jobs_rerun_the_run_only_when_nothing_else_failed() {
        let mut all = jobs();
        all.push(job(
            4,
            "start-arm",
            "GitHub Actions 8",
            "success",
            "2026-12-02T10:00:00Z",
        ));
        all.push(job(
            5,
            "test-arm",
            "ec2-y-1",
            "cancelled",
            "2026-12-02T10:02:00Z",
        ));
        let m = [
            machine("i-1", "ec2-x-1", SPOT_RECLAIMED, "GitHub Actions 7"),
            machine("i-2", "ec2-y-1", SPOT_RECLAIMED, "GitHub Actions 8"),
        ];
        let failed = run(1, "completed", Some("failure"));
        assert!(matches!(
            decide(&failed, 1, "us-east-1", &m, &all).0,
            Decision::Run(_)
        ));
        all.push(job(
            6,
            "lint",
            "GitHub Actions 3",
            "failure",
            "2026-12-02T10:00:00Z",
        ));
        match decide(&failed, 1, "us-east-1", &m, &all).0 {
            Decision::Nothing(why) => assert!(why.contains("lint"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_start_job_is_the_latest_on_its_runner_before_the_launch() {
        // A self-hosted runner that took two start jobs of the run.
        let all = vec![
            job(1, "start-a", "pool-1", "success", "2026-12-02T10:00:00Z"),
            job(2, "start-b", "pool-1", "success", "2026-12-02T10:00:40Z"),
            job(3, "start-c", "pool-1", "success", "2026-12-02T10:05:00Z"),
            job(4, "build", "ec2-x-1", "failure", "2026-12-02T10:02:00Z"),
        ];
        let m = [machine("i-1", "ec2-x-1", SPOT_RECLAIMED, "pool-1")];
        match decide(
            &run(1, "completed", Some("failure")),
            1,
            "us-east-1",
            &m,
            &all,
        )
        .0
        {
            Decision::Job(job, _) => assert_eq!(job.name, "start-b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_machine_reclaimed_while_booting_does_not_excuse_its_successors_failure() {
        // The start relaunched under the same runner name; the build then
        // failed for real on the second machine.
        let mut first = machine("i-1", "ec2-x-1", SPOT_RECLAIMED, "GitHub Actions 7");
        first.launched = Some("2026-12-02T10:00:30Z".parse().unwrap());
        let second = machine(
            "i-2",
            "ec2-x-1",
            "Client.UserInitiatedShutdown",
            "GitHub Actions 7",
        );
        let (decision, rows) = decide(
            &run(1, "completed", Some("failure")),
            1,
            "us-east-1",
            &[first, second],
            &jobs(),
        );
        assert!(matches!(decision, Decision::Nothing(_)), "{decision:?}");
        assert!(rows[0].note.contains("while booting"), "{rows:?}");
    }

    #[test]
    fn a_start_job_whose_other_machine_failed_for_real_is_not_rerun() {
        // count: 2 — one machine reclaimed under its job, the other's job failed.
        let mut all = jobs();
        all.push(job(
            4,
            "build-2",
            "ec2-x-2",
            "failure",
            "2026-12-02T10:02:00Z",
        ));
        let m = [
            machine("i-1", "ec2-x-1", SPOT_RECLAIMED, "GitHub Actions 7"),
            machine(
                "i-2",
                "ec2-x-2",
                "Client.UserInitiatedShutdown",
                "GitHub Actions 7",
            ),
        ];
        match decide(
            &run(1, "completed", Some("failure")),
            1,
            "us-east-1",
            &m,
            &all,
        )
        .0
        {
            Decision::Nothing(why) => assert!(why.contains("build-2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_machine_found_names_the_region_and_the_hour() {
        match decide(
            &run(1, "completed", Some("failure")),
            1,
            "eu-west-1",
            &[],
            &jobs(),
        )
        .0
        {
            Decision::Nothing(why) => {
                assert!(
                    why.contains("eu-west-1") && why.contains("an hour"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_event_payload_names_the_run() {
        let event = crate::settings::WorkflowRunEvent::parse(
            r#"{"action":"completed","workflow_run":{"id":30433642,"run_attempt":1,"conclusion":"failure","repository":{"full_name":"acme/widgets"}}}"#,
        );
        assert_eq!(event.run_id, Some(30433642));
        assert_eq!(event.run_attempt, Some(1));
        assert_eq!(event.repository.as_deref(), Some("acme/widgets"));
        assert_eq!(
            crate::settings::WorkflowRunEvent::parse("not json"),
            Default::default()
        );
    }
}
