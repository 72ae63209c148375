//! The tags that mark what this tool launched (every key starts with
//! `settings::RESERVED_TAG_PREFIX`). Stop and cleanup select only
//! by the managed tag plus the label, so they never touch other machines.

use aws_sdk_ec2::types::{ResourceType, Tag as Ec2Tag, TagSpecification};

use crate::settings::{Label, RunContext, Tag};

/// Present (value `true`) on everything the tool launched.
pub(crate) const MANAGED: &str = "ec2-spot-runner:managed";
/// The runner label.
pub(crate) const LABEL: &str = "ec2-spot-runner:label";
/// The start that launched it: six random characters, also in its runner's
/// name and in the start's `start-id` output.
pub(crate) const START_ID: &str = "ec2-spot-runner:start-id";
/// The runner label only this tool sets, on every runner it registers:
/// cleanup deletes no runner without it.
pub(crate) const RUNNER_MARK: &str = "ec2-spot-runner";
/// The runner's name on GitHub.
pub(crate) const RUNNER_NAME: &str = "ec2-spot-runner:runner-name";
/// Where the runner is registered (`owner/name` or `org:NAME`).
pub(crate) const SCOPE: &str = "ec2-spot-runner:scope";
/// The repository of the workflow run that launched it.
pub(crate) const REPOSITORY: &str = "ec2-spot-runner:repository";
/// `GITHUB_RUN_ID`.
pub(crate) const RUN_ID: &str = "ec2-spot-runner:run-id";
/// `GITHUB_RUN_ATTEMPT`.
pub(crate) const RUN_ATTEMPT: &str = "ec2-spot-runner:run-attempt";
/// `GITHUB_JOB`.
pub(crate) const JOB: &str = "ec2-spot-runner:job";
/// `RUNNER_NAME` of the start job's own runner, so `rerun` can tell which
/// job of the run launched the machine.
pub(crate) const START_RUNNER: &str = "ec2-spot-runner:start-runner";
/// Launch time, RFC 3339 UTC; cleanup computes ages from it.
pub(crate) const CREATED_AT: &str = "ec2-spot-runner:created-at";
/// The machine's own power-off deadline, so cleanup knows its lifetime.
pub(crate) const MAX_LIFETIME: &str = "ec2-spot-runner:max-lifetime";

/// On a bake's builder, image and snapshots: the bake name (the images'
/// name prefix), which rotation selects by.
pub(crate) const BAKE: &str = "ec2-spot-runner:bake";
/// On a baked image: the actions/runner version it holds.
pub(crate) const RUNNER_VERSION: &str = "ec2-spot-runner:runner-version";
/// On a baked image: the image it was baked from.
pub(crate) const BASE_IMAGE: &str = "ec2-spot-runner:base-image";
/// On a baked image: its architecture (`x86_64`, `arm64`).
pub(crate) const ARCHITECTURE: &str = "ec2-spot-runner:architecture";
/// On a baked image: when it was baked, RFC 3339 UTC.
pub(crate) const BAKED_AT: &str = "ec2-spot-runner:baked-at";

/// Everything needed to tag one launch.
pub(crate) struct LaunchTags<'a> {
    /// The runner label.
    pub(crate) label: &'a Label,
    /// The start's own id.
    pub(crate) start_id: &'a str,
    /// The runner's name.
    pub(crate) runner_name: &'a str,
    /// Scope, as written in the tag.
    pub(crate) scope: String,
    /// The run.
    pub(crate) run: &'a RunContext,
    /// Launch time.
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
    /// Max lifetime in seconds.
    pub(crate) max_lifetime_secs: u64,
    /// The user's own tags.
    pub(crate) user: &'a [Tag],
}

impl LaunchTags<'_> {
    /// The key/value pairs, ours first.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("Name".to_owned(), self.runner_name.to_owned()),
            (MANAGED.to_owned(), "true".to_owned()),
            (LABEL.to_owned(), self.label.as_str().to_owned()),
            (START_ID.to_owned(), self.start_id.to_owned()),
            (RUNNER_NAME.to_owned(), self.runner_name.to_owned()),
            (SCOPE.to_owned(), self.scope.clone()),
            (
                CREATED_AT.to_owned(),
                self.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (MAX_LIFETIME.to_owned(), self.max_lifetime_secs.to_string()),
        ];
        let run = [
            (REPOSITORY, &self.run.repository),
            (RUN_ID, &self.run.run_id),
            (RUN_ATTEMPT, &self.run.run_attempt),
            (JOB, &self.run.job),
            (START_RUNNER, &self.run.runner_name),
        ];
        for (key, value) in run {
            if let Some(value) = value {
                pairs.push((key.to_owned(), value.clone()));
            }
        }
        pairs.extend(self.user.iter().map(|t| (t.key.clone(), t.value.clone())));
        pairs
    }

    /// Tag specifications for the instance and its volumes, applied atomically
    /// at creation: nothing is ever untagged, not even for a moment.
    pub(crate) fn specifications(&self) -> Vec<TagSpecification> {
        let tags: Vec<Ec2Tag> = self
            .pairs()
            .into_iter()
            .map(|(k, v)| Ec2Tag::builder().key(k).value(v).build())
            .collect();
        [ResourceType::Instance, ResourceType::Volume]
            .into_iter()
            .map(|resource| {
                TagSpecification::builder()
                    .resource_type(resource)
                    .set_tags(Some(tags.clone()))
                    .build()
            })
            .collect()
    }
}

/// One tag specification: these pairs on the resources of `kind` that
/// the request creates.
pub(crate) fn specification(kind: ResourceType, pairs: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            pairs
                .iter()
                .map(|(k, v)| Ec2Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// The name a runner tries when GitHub already holds `name`: the same
/// name, a `-`, and a fresh random part.
pub(crate) fn retry_name(name: &str, random: &str) -> String {
    format!("{name}-{random}")
}

/// Whether `rest` is a runner's number, `N`, or a number with the random
/// part of a retried name, `N-xxxx`.
fn is_runner_number(rest: &str) -> bool {
    let (number, retry) = match rest.split_once('-') {
        Some((number, retry)) => (number, Some(retry)),
        None => (rest, None),
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && retry.is_none_or(|r| {
            r.len() == 4
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether `name` is `prefix-N` (or a retried `prefix-N-xxxx`): the runner
/// names of one start.
pub(crate) fn is_numbered(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(is_runner_number)
}

/// Whether `name` is a runner name the tool gives under `label`: `label-N`,
/// or `label-xxxxxx-N` when the user chose the label (each maybe retried).
pub(crate) fn is_runner_of(label: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(label).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    if is_runner_number(rest) {
        return true;
    }
    rest.split_once('-').is_some_and(|(random, rest)| {
        random.len() == 6
            && random
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && is_runner_number(rest)
    })
}

/// Reads a tag's value from an instance's tags.
pub(crate) fn value<'a>(tags: &'a [Ec2Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_names_are_recognised_by_label_and_shape() {
        assert!(is_runner_of("build", "build-1"));
        assert!(is_runner_of("build", "build-k3x9qa-12"));
        assert!(!is_runner_of("build", "build"));
        assert!(!is_runner_of("build", "build-x-1"));
        assert!(!is_runner_of("build", "builder-1"));
        assert!(!is_runner_of("build", "build-other-label-1"));
        assert!(is_numbered("gpu-k3x9qa", "gpu-k3x9qa-2"));
        assert!(is_numbered("gpu-k3x9qa", "gpu-k3x9qa-2-ab12"));
        assert!(!is_numbered("gpu-k3x9qa", "gpu-k3x9qa-2-abc"));
        assert!(is_runner_of(
            "build",
            &retry_name("build-k3x9qa-12", "zz9a")
        ));
        assert!(is_runner_of("build", "build-3-ab12"));
        assert!(!is_numbered("gpu-k3x9qa", "gpu-k3x9qb-2"));
        assert!(!is_numbered("gpu-k3x9qa", "gpu-k3x9qa-"));
        assert!(!is_numbered("gpu-k3x9qa", "gpu-k3x9qa-1-1"));
    }
}
