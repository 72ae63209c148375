//! Workflow runs on GitHub: a run, the jobs of one of its attempts, and the
//! re-run of one job (with its dependents) or of the whole run.

use chrono::{DateTime, Utc};
use http::Method;
use serde::Deserialize;

use crate::github::{Github, GithubError};
use crate::settings::Repository;

/// What `rerun` needs of a workflow run.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WorkflowRun {
    /// The run id.
    pub(crate) id: u64,
    /// The workflow's name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// 1, then higher for each re-run.
    pub(crate) run_attempt: u32,
    /// `queued`, `in_progress`, `completed`, …
    pub(crate) status: String,
    /// `success`, `failure`, `cancelled`, … once completed.
    #[serde(default)]
    pub(crate) conclusion: Option<String>,
    /// The run's page.
    #[serde(default)]
    pub(crate) html_url: Option<String>,
}

/// One job of a run attempt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Job {
    /// The job id (its check run's).
    pub(crate) id: u64,
    /// The job's name as shown.
    pub(crate) name: String,
    /// `completed` once done.
    pub(crate) status: String,
    /// How it ended.
    #[serde(default)]
    pub(crate) conclusion: Option<String>,
    /// The runner that took it (null while queued).
    #[serde(default)]
    pub(crate) runner_name: Option<String>,
    /// When a runner started it.
    #[serde(default)]
    pub(crate) started_at: Option<DateTime<Utc>>,
}

impl Job {
    /// Whether the job ended failed or cancelled: what a lost runner leaves.
    // NOTE: a job whose self-hosted runner vanished ends with "The
    // self-hosted runner: NAME lost communication with the server", mostly
    // as a failure, sometimes as cancelled (actions/runner#2624, paradedb/paradedb#6255).
    pub(crate) fn failed(&self) -> bool {
        matches!(
            self.conclusion.as_deref(),
            Some("failure" | "cancelled" | "timed_out")
        )
    }
}

#[derive(Deserialize)]
struct JobPage {
    jobs: Vec<Job>,
}

impl Github {
    /// Reads a workflow run.
    // NOTE: https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run
    pub(crate) async fn workflow_run(
        &self,
        repo: &Repository,
        run_id: u64,
    ) -> Result<WorkflowRun, GithubError> {
        let action = format!("read workflow run {run_id} of {repo}");
        let path = format!("/repos/{}/{}/actions/runs/{run_id}", repo.owner, repo.name);
        self.send(Method::GET, &path, None, &action)
            .await
            .map_err(actions_hint)?
            .json(&action)
    }

    /// Lists every job of one attempt of a run, following the pages.
    // NOTE: https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run-attempt
    pub(crate) async fn attempt_jobs(
        &self,
        repo: &Repository,
        run_id: u64,
        attempt: u32,
    ) -> Result<Vec<Job>, GithubError> {
        let action = format!("list the jobs of attempt {attempt} of run {run_id}");
        let mut jobs = Vec::new();
        for page in 1..=50u32 {
            let path = format!(
                "/repos/{}/{}/actions/runs/{run_id}/attempts/{attempt}/jobs?per_page=100&page={page}",
                repo.owner, repo.name
            );
            let reply = self
                .send(Method::GET, &path, None, &action)
                .await
                .map_err(actions_hint)?;
            let has_next = reply.has_next_page();
            let batch: JobPage = reply.json(&action)?;
            let empty = batch.jobs.is_empty();
            jobs.extend(batch.jobs);
            if !has_next || empty {
                break;
            }
        }
        Ok(jobs)
    }

    /// Re-runs one job and the jobs that depend on it, as a new attempt.
    // NOTE: "Re-run a job and its dependent jobs in a workflow run."
    // https://docs.github.com/en/rest/actions/workflow-runs#re-run-a-job-from-a-workflow-run
    pub(crate) async fn rerun_job(&self, repo: &Repository, job: &Job) -> Result<(), GithubError> {
        let action = format!("re-run job {} ({}) of {repo}", job.name, job.id);
        let path = format!(
            "/repos/{}/{}/actions/jobs/{}/rerun",
            repo.owner, repo.name, job.id
        );
        self.send(Method::POST, &path, Some(&serde_json::json!({})), &action)
            .await
            .map_err(actions_hint)?;
        Ok(())
    }

    /// Re-runs every job of a run, as a new attempt.
    // NOTE: https://docs.github.com/en/rest/actions/workflow-runs#re-run-a-workflow
    pub(crate) async fn rerun_run(
        &self,
        repo: &Repository,
        run_id: u64,
    ) -> Result<(), GithubError> {
        let action = format!("re-run workflow run {run_id} of {repo}");
        let path = format!(
            "/repos/{}/{}/actions/runs/{run_id}/rerun",
            repo.owner, repo.name
        );
        self.send(Method::POST, &path, Some(&serde_json::json!({})), &action)
            .await
            .map_err(actions_hint)?;
        Ok(())
    }
}

/// The hint for a refused runs call: the Actions permission.
// NOTE: reading runs needs the repository permission "Actions" (read);
// re-running it at write.
// https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps#repository-permissions-for-actions
fn actions_hint(err: GithubError) -> GithubError {
    match &err {
        GithubError::Http { status: 403, message, .. }
            if message.contains("not accessible") =>
        {
            err.with_hint("rerun needs the repository permission Actions: write: give the GitHub App \"Actions: Read and write\" (and accept the new permission on the installation), or with GITHUB_TOKEN set `permissions: actions: write` on the job".to_owned())
        }
        GithubError::Http { status: 404, .. } => err.with_hint(
            "Check run-id and the repository: the run must belong to it, and the credential must see the repository".to_owned(),
        ),
        _ => err,
    }
}
