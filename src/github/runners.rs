//! Runner credentials and bookkeeping: a single-use JIT config per runner
//! (the instance never sees a reusable registration token), lookup by name,
//! the paginated runner list, and deletion.

use http::Method;
use secrecy::SecretString;

use super::{Github, GithubError};
use crate::settings::Scope;

/// A runner as GitHub lists it.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Runner {
    /// Runner id.
    pub(crate) id: u64,
    /// Runner name.
    pub(crate) name: String,
    /// `online` or `offline`.
    pub(crate) status: String,
    /// Whether it is running a job.
    #[serde(default)]
    pub(crate) busy: bool,
    /// Its labels.
    #[serde(default)]
    pub(crate) labels: Vec<RunnerLabel>,
}

/// One label of a runner.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct RunnerLabel {
    /// The label's name.
    pub(crate) name: String,
}

impl Runner {
    /// Whether the runner carries the label (GitHub compares labels case-insensitively).
    pub(crate) fn has_label(&self, label: &str) -> bool {
        self.labels
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(label))
    }
}

/// A freshly minted JIT runner.
pub(crate) struct JitRunner {
    /// The runner's id, for deletion.
    pub(crate) id: u64,
    /// The runner's name.
    pub(crate) name: String,
    /// The base64 JIT config the runner starts with; single use.
    pub(crate) config: SecretString,
}

impl std::fmt::Debug for JitRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitRunner")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("config", &"***")
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct JitReply {
    runner: Runner,
    encoded_jit_config: String,
}

#[derive(serde::Deserialize)]
struct RunnerPage {
    runners: Vec<Runner>,
}

impl Github {
    /// Creates a JIT runner config under `name`. A name GitHub already holds
    /// is a 409, which this returns as it is: the caller picks a fresh name
    /// rather than deleting a runner it cannot prove is its own.
    pub(crate) async fn create_jit_runner(
        &self,
        name: &str,
        runner_group_id: u64,
        labels: &[String],
    ) -> Result<JitRunner, GithubError> {
        let path = format!("{}/generate-jitconfig", self.scope().runners_path());
        let body = serde_json::json!({
            "name": name,
            "runner_group_id": runner_group_id,
            "labels": labels,
            "work_folder": "_work",
        });
        let action = format!(
            "create a JIT runner config for {} named {name}",
            self.scope()
        );
        let reply = self
            .send(Method::POST, &path, Some(&body), &action)
            .await
            .map_err(|err| {
                if err.status() == Some(404) && super::is_enterprise_server(self.api_url()) {
                    // NOTE: the JIT config endpoint arrived in GHES 3.10.
                    // https://docs.github.com/en/enterprise-server@3.10/rest/actions/self-hosted-runners#create-configuration-for-a-just-in-time-runner-for-a-repository
                    err.with_hint(format!(
                        "On GitHub Enterprise Server this endpoint exists from version 3.10: the runners get single-use JIT configs, which older servers cannot mint. Upgrade the server, or check that the App is installed on {} and github-api-url ({}) ends in /api/v3",
                        self.scope(),
                        self.api_url()
                    ))
                } else {
                    err
                }
            })?;
        let jit: JitReply = reply.json(&action)?;
        crate::actions::mask(&jit.encoded_jit_config);
        Ok(JitRunner {
            id: jit.runner.id,
            name: jit.runner.name,
            config: SecretString::from(jit.encoded_jit_config),
        })
    }

    /// For organization runners: whether the runner group would refuse this
    /// job because the repository is public and the group admits only
    /// private repositories (GitHub's default), in which case the job waits
    /// for a runner forever. Returns the warning to give; `None` when all is
    /// well or GitHub would not say.
    // NOTE: https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/managing-access-to-self-hosted-runners-using-groups#changing-the-access-policy-of-a-runner-group
    pub(crate) async fn public_repository_refused(
        &self,
        repository: &str,
        runner_group_id: u64,
    ) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Repo {
            #[serde(default)]
            private: bool,
            #[serde(default)]
            visibility: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Group {
            #[serde(default)]
            name: String,
            #[serde(default)]
            allows_public_repositories: bool,
        }
        let Scope::Organization(org) = self.scope() else {
            return None;
        };
        let repo_action = format!("read repository {repository}");
        let group_action = format!("read runner group {runner_group_id} of {org}");
        let repo_path = format!("/repos/{repository}");
        let group_path = format!("/orgs/{org}/actions/runner-groups/{runner_group_id}");
        let (repo, group) = tokio::join!(
            self.send(Method::GET, &repo_path, None, &repo_action),
            self.send(Method::GET, &group_path, None, &group_action),
        );
        let repo: Repo = repo.ok()?.json(&repo_action).ok()?;
        let public = !repo.private && repo.visibility.as_deref().is_none_or(|v| v == "public");
        if !public {
            return None;
        }
        let group: Group = group.ok()?.json(&group_action).ok()?;
        (!group.allows_public_repositories).then(|| {
            format!(
                "repository {repository} is public, but runner group {runner_group_id} ({}) of {org} admits only private repositories, so the job would wait for this runner forever. Allow public repositories in the group (organization settings > Actions > Runner groups > {}), or use a group that does",
                group.name, group.name
            )
        })
    }

    /// Finds a runner by exact name (server-side filter where GitHub supports
    /// it, checked again here for servers that ignore it).
    pub(crate) async fn find_runner(&self, name: &str) -> Result<Option<Runner>, GithubError> {
        let query = format!(
            "name={}",
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        Ok(self
            .list_runners_query(&query)
            .await?
            .into_iter()
            .find(|r| r.name == name))
    }

    /// Lists every runner of the scope, following the pagination links.
    pub(crate) async fn list_runners(&self) -> Result<Vec<Runner>, GithubError> {
        self.list_runners_query("").await
    }

    async fn list_runners_query(&self, query: &str) -> Result<Vec<Runner>, GithubError> {
        let base = self.scope().runners_path();
        let action = format!("list the runners of {}", self.scope());
        let mut runners = Vec::new();
        let mut page = 1u32;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let path = format!("{base}?{query}{sep}per_page=100&page={page}");
            let reply = self.send(Method::GET, &path, None, &action).await?;
            let has_next = reply.has_next_page();
            let batch: RunnerPage = reply.json(&action)?;
            let empty = batch.runners.is_empty();
            runners.extend(batch.runners);
            // A bounded walk: 100 pages of 100 is far beyond any real scope.
            if !has_next || empty || page >= 100 {
                return Ok(runners);
            }
            page += 1;
        }
    }

    /// Deletes a runner; one that is already gone counts as deleted.
    pub(crate) async fn delete_runner(&self, id: u64, name: &str) -> Result<(), GithubError> {
        let path = format!("{}/{id}", self.scope().runners_path());
        let action = format!("delete runner {name} (id {id}) from {}", self.scope());
        match self.send(Method::DELETE, &path, None, &action).await {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
