//! The newest actions/runner release: GitHub stops queuing jobs to runners
//! that fall behind, so a version pinned in this binary goes stale. The
//! start reads the latest release (its version and, from the release notes,
//! the SHA-256 of each Linux package) and hands it to the instance; the
//! compiled pins are the fallback.

use std::time::Duration;

use http::Method;

use super::{Github, transport_unauthenticated};
use crate::settings::RunnerDownload;

/// What the lookup found, or why it could not.
pub(crate) type Lookup = Result<RunnerDownload, String>;

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

/// Reads a release object (`tag_name`, `body`) into a download.
pub(crate) fn parse(release: &serde_json::Value) -> Lookup {
    let tag = release["tag_name"]
        .as_str()
        .ok_or("the answer has no tag_name")?;
    let version = tag.trim_start_matches('v');
    let shape_ok = version.split('.').count() == 3
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !shape_ok {
        return Err(format!("tag {tag} is not a runner version"));
    }
    if release["draft"].as_bool() == Some(true) || release["prerelease"].as_bool() == Some(true) {
        return Err(format!("{tag} is a draft or pre-release"));
    }
    let body = release["body"].as_str().unwrap_or_default();
    let (x64, arm64) = (checksum(body, "linux-x64"), checksum(body, "linux-arm64"));
    if x64.is_none() && arm64.is_none() {
        return Err(format!(
            "the notes of {tag} carry no linux-x64 or linux-arm64 checksum"
        ));
    }
    Ok(RunnerDownload {
        version: version.to_owned(),
        sha256_x64: x64,
        sha256_arm64: arm64,
    })
}

/// Fetches the latest release from `url`: through the authenticated client
/// when `url` is on its API (a higher rate limit), else without credentials.
pub(crate) async fn latest(github: &Github, url: &str) -> Lookup {
    let action = "read the newest actions/runner release";
    let call = async {
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
        let release: serde_json::Value = reply.json(action).map_err(|e| e.to_string())?;
        parse(&release)
    };
    // A slow release lookup must not hold the launch up for long.
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| Err("no answer within 10 s".to_owned()))
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

    #[test]
    fn the_release_notes_checksums_are_read_from_their_markers() {
        let x64 = "a".repeat(64);
        let body = format!(
            "notes\n- actions-runner-linux-x64-2.340.0.tar.gz <!-- BEGIN SHA linux-x64 -->{x64}<!-- END SHA linux-x64 -->\n- actions-runner-linux-arm64-2.340.0.tar.gz <!-- BEGIN SHA linux-arm64 --><LINUX_ARM64_SHA><!-- END SHA linux-arm64 -->"
        );
        let release = serde_json::json!({"tag_name": "v2.340.0", "body": body});
        let got = parse(&release).unwrap();
        assert_eq!(got.version, "2.340.0");
        assert_eq!(got.sha256_x64.as_deref(), Some(x64.as_str()));
        assert_eq!(got.sha256_arm64, None, "a placeholder is not a checksum");
        let bad = serde_json::json!({"tag_name": "latest", "body": body});
        assert!(parse(&bad).is_err());
        let empty = serde_json::json!({"tag_name": "v2.340.0", "body": "no checksums"});
        assert!(parse(&empty).unwrap_err().contains("no linux-x64"));
    }
}
