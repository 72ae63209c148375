//! The newest usable actions/runner release: GitHub stops queuing jobs to
//! runners that fall behind, so a version pinned in this binary goes stale.
//! The start reads the latest release (its version and, from the release
//! notes, the SHA-256 of each Linux package) and hands it to the instance;
//! while the newest release's packages are still being uploaded it takes the
//! previous release from the list beside it; the compiled pins are the
//! fallback.

use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use super::{Github, transport_unauthenticated};
use crate::settings::{InstanceType, RunnerDownload};

/// How long the whole lookup may take: it runs beside the rest of the
/// start and must not hold the launch up for long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Releases per page of the list, and pages read at most: the previous
/// release is normally the second entry of the first page.
const LIST_PER_PAGE: u32 = 10;
const LIST_PAGES: u32 = 3;

/// What the lookup found, or why it found nothing.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The newest release, with every package the start needs.
    Newest(RunnerDownload),
    /// An earlier release, because the newest lacks a package; `newest`
    /// says which and why.
    Earlier {
        /// The release to use.
        download: RunnerDownload,
        /// Why the newest release was passed over.
        newest: String,
    },
    /// The newest release lacks a package and no earlier release with it
    /// was found: `newest` says what is missing, `earlier` why no earlier
    /// release serves.
    Incomplete {
        /// Why the newest release was passed over.
        newest: String,
        /// Why no earlier release was found.
        earlier: String,
    },
    /// No release could be read.
    Failed(String),
}

/// One release as read from an answer.
#[derive(Debug, Clone)]
pub(crate) struct Release {
    /// Its version and the checksums in its notes.
    download: RunnerDownload,
    /// The names of the assets listed as uploaded; `None` when the answer
    /// has no `assets` (a mirror that keeps only the tag and the notes).
    uploaded: Option<Vec<String>>,
    /// A draft or pre-release.
    draft_or_prerelease: bool,
}

/// The runner's name of each architecture the instance types may launch
/// (`x64`, `arm64`), sorted, each once.
pub(crate) fn packages(types: &[InstanceType]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = types
        .iter()
        .filter_map(InstanceType::architecture)
        .map(|arch| if arch == "arm64" { "arm64" } else { "x64" })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The file a machine of `arch` downloads for `version`.
// NOTE: actions/runner, .github/workflows/release.yml: the packages are
// uploaded as actions-runner-linux-{x64,arm64}-VERSION.tar.gz.
fn package_name(version: &str, arch: &str) -> String {
    format!("actions-runner-linux-{arch}-{version}.tar.gz")
}

/// The checksum of one package between the markers actions/runner puts in
/// every release's notes, e.g. `<!-- BEGIN SHA linux-x64 -->HEX<!-- END SHA linux-x64 -->`.
// NOTE: actions/runner, releaseNote.md (the template of every release's notes).
fn checksum(body: &str, package: &str) -> Option<String> {
    let begin = format!("<!-- BEGIN SHA {package} -->");
    let end = format!("<!-- END SHA {package} -->");
    let start = body.find(&begin)? + begin.len();
    let len = body[start..].find(&end)?;
    let hex = body[start..start + len].trim();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// `2.340.0` as numbers, for ordering; `None` when it is not a runner
/// version.
pub(crate) fn version_key(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    });
    let key = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(key)
}

/// Reads a release object (`tag_name`, `body`, `assets`).
pub(crate) fn parse(release: &serde_json::Value) -> Result<Release, String> {
    let tag = release["tag_name"]
        .as_str()
        .ok_or("the answer has no tag_name")?;
    let version = tag.trim_start_matches('v');
    if version_key(version).is_none() {
        return Err(format!("tag {tag} is not a runner version"));
    }
    let body = release["body"].as_str().unwrap_or_default();
    let (x64, arm64) = (checksum(body, "linux-x64"), checksum(body, "linux-arm64"));
    if x64.is_none() && arm64.is_none() {
        return Err(format!(
            "the notes of {tag} carry no linux-x64 or linux-arm64 checksum"
        ));
    }
    // NOTE: an asset's `state` is `uploaded`, or `open` while its upload is
    // under way (release-asset schema,
    // https://docs.github.com/en/rest/releases/releases#get-the-latest-release).
    let uploaded = match &release["assets"] {
        serde_json::Value::Null => None,
        serde_json::Value::Array(assets) => Some(
            assets
                .iter()
                .filter(|a| a["state"] == "uploaded")
                .filter_map(|a| a["name"].as_str().map(str::to_owned))
                .collect(),
        ),
        _ => return Err(format!("the assets of {tag} are not a list")),
    };
    Ok(Release {
        download: RunnerDownload {
            version: version.to_owned(),
            sha256_x64: x64,
            sha256_arm64: arm64,
        },
        uploaded,
        draft_or_prerelease: release["draft"].as_bool() == Some(true)
            || release["prerelease"].as_bool() == Some(true),
    })
}

impl Release {
    /// Why this release cannot serve a machine of `arch`, if it cannot.
    fn lacks(&self, arch: &str) -> Option<String> {
        let d = &self.download;
        let sum = if arch == "arm64" {
            &d.sha256_arm64
        } else {
            &d.sha256_x64
        };
        if sum.is_none() {
            return Some(format!("lists no linux-{arch} checksum in its notes"));
        }
        let name = package_name(&d.version, arch);
        match &self.uploaded {
            Some(names) if !names.contains(&name) => Some(format!(
                "has no {name} uploaded yet (actions/runner publishes a release before it uploads its packages)"
            )),
            _ => None,
        }
    }

    /// Why this release cannot serve every architecture in `archs`.
    fn unusable(&self, archs: &[&str]) -> Option<String> {
        if self.draft_or_prerelease {
            return Some("is a draft or pre-release".to_owned());
        }
        let why: Vec<String> = archs.iter().filter_map(|a| self.lacks(a)).collect();
        (!why.is_empty()).then(|| why.join(" and "))
    }

    /// The download, without the checksum of a package that cannot be
    /// downloaded yet (a machine of that architecture then stops with "no
    /// checksum" instead of meeting a 404).
    fn download(&self) -> RunnerDownload {
        let mut d = self.download.clone();
        if self.lacks("x64").is_some() {
            d.sha256_x64 = None;
        }
        if self.lacks("arm64").is_some() {
            d.sha256_arm64 = None;
        }
        d
    }
}

/// The newest release in `page` (a list answer) older than `below` that
/// serves every architecture in `archs`.
fn best_earlier(page: &[serde_json::Value], below: &str, archs: &[&str]) -> Option<Release> {
    let limit = version_key(below)?;
    page.iter()
        .filter_map(|r| parse(r).ok())
        .filter(|r| version_key(&r.download.version).is_some_and(|k| k < limit))
        .filter(|r| r.unusable(archs).is_none())
        .max_by_key(|r| version_key(&r.download.version))
}

/// The list of releases beside a `.../releases/latest` URL (GitHub's
/// layout, which a mirror keeps when it copies the answers); `None` when
/// the URL has another shape.
pub(crate) fn list_url(latest: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(latest).ok()?;
    let path = url.path().trim_end_matches('/').to_owned();
    let list = path.strip_suffix("/releases/latest")?;
    url.set_path(&format!("{list}/releases"));
    Some(url)
}

/// Reads the newest release from `url` that serves every architecture in
/// `archs` (`x64`, `arm64`): the latest release, or, while its packages
/// are still being uploaded, the newest earlier one from the release list.
pub(crate) async fn newest_usable(github: &Github, url: &str, archs: &[&str]) -> Lookup {
    let deadline = Instant::now() + LOOKUP_TIMEOUT;
    let late = || format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs());
    let action = "read the newest actions/runner release";
    let newest = match tokio::time::timeout_at(deadline, get_json(github, url, action)).await {
        Err(_) => return Lookup::Failed(late()),
        Ok(Err(why)) => return Lookup::Failed(why),
        Ok(Ok(answer)) => match parse(&answer) {
            Ok(release) => release,
            Err(why) => return Lookup::Failed(why),
        },
    };
    let Some(why) = newest.unusable(archs) else {
        return Lookup::Newest(newest.download());
    };
    let newest_why = format!(
        "the newest actions/runner release {} {why}",
        newest.download.version
    );
    let earlier = tokio::time::timeout_at(
        deadline,
        earlier_release(github, url, &newest.download.version, archs),
    )
    .await
    .unwrap_or_else(|_| Err(late()));
    match earlier {
        Ok(release) => Lookup::Earlier {
            download: release.download(),
            newest: newest_why,
        },
        Err(why) => Lookup::Incomplete {
            newest: newest_why,
            earlier: why,
        },
    }
}

/// The newest release older than `newest` that serves `archs`, from the
/// list beside `latest`, read a few pages at most.
async fn earlier_release(
    github: &Github,
    latest: &str,
    newest: &str,
    archs: &[&str],
) -> Result<Release, String> {
    let Some(list) = list_url(latest) else {
        return Err(format!(
            "{latest} does not end in /releases/latest, so there is no release list beside it to find an earlier release in"
        ));
    };
    let action = "list the actions/runner releases";
    for page in 1..=LIST_PAGES {
        let mut url = list.clone();
        url.query_pairs_mut()
            .append_pair("per_page", &LIST_PER_PAGE.to_string())
            .append_pair("page", &page.to_string());
        let (answer, more) = get_page(github, url.as_str(), action).await?;
        let Some(items) = answer.as_array() else {
            return Err(format!("{url} did not answer a list of releases"));
        };
        if let Some(found) = best_earlier(items, newest, archs) {
            return Ok(found);
        }
        if !more || items.is_empty() {
            return Err(format!(
                "{list} lists no earlier release with the packages uploaded"
            ));
        }
    }
    Err(format!(
        "the first {} releases at {list} include no earlier release with the packages uploaded",
        LIST_PAGES * LIST_PER_PAGE
    ))
}

/// GETs `url` and decodes its JSON.
async fn get_json(github: &Github, url: &str, action: &str) -> Result<serde_json::Value, String> {
    get_page(github, url, action)
        .await
        .map(|(answer, _)| answer)
}

/// GETs `url` through the authenticated client when `url` is on its API (a
/// higher rate limit), else without credentials; the JSON answer and
/// whether it has a next page.
async fn get_page(
    github: &Github,
    url: &str,
    action: &str,
) -> Result<(serde_json::Value, bool), String> {
    let reply = match url.strip_prefix(github.api_url()) {
        Some(path) if path.starts_with('/') => github
            .send(Method::GET, path, None, action)
            .await
            .map_err(|e| e.to_string())?,
        _ => {
            let (base, path) = split_url(url)?;
            let crab = transport_unauthenticated(&base).map_err(|e| e.to_string())?;
            super::send(&crab, &base, Method::GET, &path, None, action)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let answer = reply.json(action).map_err(|e| e.to_string())?;
    Ok((answer, reply.has_next_page()))
}

/// `https://host[:port]` and `/path?query` of a URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let base = parsed[..url::Position::BeforePath].to_owned();
    let path = parsed[url::Position::BeforePath..].to_owned();
    Ok((base, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notes(version: &str, x64: &str, arm64: &str) -> String {
        format!(
            "notes\n- actions-runner-linux-x64-{version}.tar.gz <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->\n- actions-runner-linux-arm64-{version}.tar.gz <!-- BEGIN SHA linux-arm64 -->{arm64}<!-- END SHA linux-arm64 -->"
        )
    }

    /// A release as GitHub lists it, with these packages in these states.
    fn release(version: &str, assets: &[(&str, &str)]) -> serde_json::Value {
        let (x64, arm64) = ("a".repeat(64), "b".repeat(64));
        json!({
            "tag_name": format!("v{version}"),
            "draft": false,
            "prerelease": false,
            "body": notes(version, &x64, &arm64),
            "assets": assets.iter().map(|(package, state)| json!({
                "name": format!("actions-runner-{package}-{version}.tar.gz"),
                "state": state,
            })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn the_release_notes_checksums_are_read_from_their_markers() {
        let x64 = "A".repeat(64);
        let body = notes("2.340.0", &x64, "<LINUX_ARM64_SHA>");
        let got = parse(&json!({"tag_name": "v2.340.0", "body": body})).unwrap();
        assert_eq!(got.download.version, "2.340.0");
        assert_eq!(got.download.sha256_x64, Some("a".repeat(64)));
        assert_eq!(
            got.download.sha256_arm64, None,
            "a placeholder is not a checksum"
        );
        assert_eq!(got.uploaded, None, "no assets in the answer");
        assert!(parse(&json!({"tag_name": "latest", "body": body})).is_err());
        assert!(parse(&json!({"tag_name": "v2.340", "body": body})).is_err());
        let empty = json!({"tag_name": "v2.340.0", "body": "no checksums"});
        assert!(parse(&empty).unwrap_err().contains("no linux-x64"));
        let odd = json!({"tag_name": "v2.340.0", "body": body, "assets": {}});
        assert!(parse(&odd).unwrap_err().contains("not a list"));
    }

    #[test]
    fn a_package_counts_only_once_it_is_listed_as_uploaded() {
        let all = [("linux-x64", "uploaded"), ("linux-arm64", "uploaded")];
        assert!(
            parse(&release("2.341.0", &all))
                .unwrap()
                .unusable(&["x64", "arm64"])
                .is_none()
        );
        // Created with its notes, linux-x64 under way, linux-arm64 not begun.
        let window = parse(&release(
            "2.341.0",
            &[("win-x64", "uploaded"), ("linux-x64", "open")],
        ))
        .unwrap();
        let why = window.unusable(&["x64"]).unwrap();
        assert!(
            why.contains("has no actions-runner-linux-x64-2.341.0.tar.gz uploaded yet"),
            "{why}"
        );
        let why = window.unusable(&["arm64", "x64"]).unwrap();
        assert!(
            why.contains("linux-arm64-2.341.0") && why.contains("linux-x64-2.341.0"),
            "{why}"
        );
        // linux-x64 complete: an x64 start can use it, with no arm64 checksum.
        let half = parse(&release("2.341.0", &[("linux-x64", "uploaded")])).unwrap();
        assert!(half.unusable(&["x64"]).is_none());
        assert!(half.unusable(&["arm64"]).is_some());
        let download = half.download();
        assert_eq!(download.sha256_x64, Some("a".repeat(64)));
        assert_eq!(download.sha256_arm64, None);
        // A mirror's answer without `assets` is taken as it is; a checksum
        // missing from the notes is not.
        let mut bare = release("2.341.0", &[]);
        bare.as_object_mut().unwrap().remove("assets");
        assert!(parse(&bare).unwrap().unusable(&["x64", "arm64"]).is_none());
        bare["body"] = json!(format!(
            "<!-- BEGIN SHA linux-x64 -->{}<!-- END SHA linux-x64 -->",
            "a".repeat(64)
        ));
        let why = parse(&bare).unwrap().unusable(&["arm64"]).unwrap();
        assert!(why.contains("no linux-arm64 checksum"), "{why}");
        let mut draft = release("2.341.0", &all);
        draft["prerelease"] = json!(true);
        assert!(parse(&draft).unwrap().unusable(&["x64"]).is_some());
    }

    #[test]
    fn the_earlier_release_is_the_newest_complete_one_below_the_newest() {
        let complete = [("linux-x64", "uploaded"), ("linux-arm64", "uploaded")];
        let x64_only = [("linux-x64", "uploaded")];
        let page = vec![
            release("2.341.0", &[]),
            release("2.339.0", &complete),
            release("2.340.0", &x64_only),
            json!({"tag_name": "v2.342.0-beta", "body": ""}),
            release("2.342.0", &complete),
            release("2.338.0", &complete),
        ];
        let pick =
            |archs: &[&str]| best_earlier(&page, "2.341.0", archs).map(|r| r.download.version);
        assert_eq!(pick(&["x64"]).as_deref(), Some("2.340.0"));
        assert_eq!(pick(&["arm64"]).as_deref(), Some("2.339.0"));
        assert_eq!(pick(&["arm64", "x64"]).as_deref(), Some("2.339.0"));
        assert_eq!(
            best_earlier(&page, "2.338.0", &["x64"]).map(|r| r.download.version),
            None
        );
    }

    #[test]
    fn versions_order_by_number() {
        assert!(version_key("2.340.0") > version_key("2.39.9"));
        assert!(version_key("2.340.10") > version_key("2.340.9"));
        for bad in ["2.340", "2.340.0.1", "2.x.0", "", "2..0", "v2.340.0"] {
            assert_eq!(version_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_release_list_is_found_beside_releases_latest() {
        let list = |url: &str| list_url(url).map(|u| u.to_string());
        assert_eq!(
            list("https://api.github.com/repos/actions/runner/releases/latest").as_deref(),
            Some("https://api.github.com/repos/actions/runner/releases")
        );
        assert_eq!(
            list("https://ghes.example/api/v3/repos/mirror/runner/releases/latest/?sig=x")
                .as_deref(),
            Some("https://ghes.example/api/v3/repos/mirror/runner/releases?sig=x")
        );
        assert_eq!(list("https://mirror.example/runner/latest.json"), None);
        assert_eq!(list("not a url"), None);
    }

    #[test]
    fn the_architectures_come_from_the_instance_types() {
        let types = |names: &[&str]| -> Vec<InstanceType> {
            names
                .iter()
                .map(|n| InstanceType::parse(n).unwrap())
                .collect()
        };
        assert_eq!(packages(&types(&["c7i.large", "c6i.large"])), ["x64"]);
        assert_eq!(packages(&types(&["c7g.large"])), ["arm64"]);
        assert_eq!(
            packages(&types(&["c7g.large", "m7i.large"])),
            ["arm64", "x64"]
        );
        assert!(packages(&types(&["mac2.metal"])).is_empty());
    }
}
