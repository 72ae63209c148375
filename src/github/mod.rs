//! GitHub REST client: octocrab carries the requests over our own HTTP stack
//! (`transport`: TLS, the headers GitHub asks for, each once); this module
//! retries transient failures honouring `Retry-After` and the rate limit
//! headers, and turns failures into messages that say what to fix.

pub(crate) mod auth;
pub(crate) mod releases;
pub(crate) mod runners;
pub(crate) mod runs;
mod transport;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes_body::collect;
use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use secrecy::SecretString;

use crate::settings::{GithubSettings, Scope};

/// github.com's API; anything else is GitHub Enterprise Server (or a
/// stand-in for one).
pub(crate) const GITHUB_COM_API: &str = "https://api.github.com";

/// Whether the API is a GitHub Enterprise Server's.
pub(crate) fn is_enterprise_server(api_url: &str) -> bool {
    api_url.trim_end_matches('/') != GITHUB_COM_API
}

/// The REST API version every request asks for.
pub(crate) const API_VERSION: &str = "2022-11-28";

/// A GitHub call that failed for good.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GithubError {
    /// GitHub answered with an error status.
    #[error("GitHub: could not {action}: HTTP {status}: {message}{}", hint.as_ref().map(|h| format!(". {h}")).unwrap_or_default())]
    Http {
        /// What we were doing, in words.
        action: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's `message`, or the start of the body.
        message: String,
        /// What the user can do.
        hint: Option<String>,
    },
    /// The request never got an answer.
    #[error(
        "GitHub: could not {action}: {detail}. Check GITHUB_API_URL and the network path to it"
    )]
    Transport {
        /// What we were doing.
        action: String,
        /// The transport error.
        detail: String,
    },
    /// GitHub answered something we could not read.
    #[error("GitHub: could not {action}: unexpected response: {detail}")]
    Decode {
        /// What we were doing.
        action: String,
        /// The decoding error.
        detail: String,
    },
    /// Signing the App's JWT failed.
    #[error("GitHub: could not sign the App JWT with github-app-private-key: {0}")]
    Jwt(String),
}

impl GithubError {
    /// Replaces the advice of an HTTP error (other errors are returned as they are).
    pub(crate) fn with_hint(self, advice: String) -> Self {
        match self {
            GithubError::Http {
                action,
                status,
                message,
                ..
            } => GithubError::Http {
                action,
                status,
                message,
                hint: Some(advice),
            },
            other => other,
        }
    }

    /// The HTTP status, for errors GitHub answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            GithubError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One answer from GitHub.
pub(crate) struct Reply {
    /// Response headers.
    pub(crate) headers: HeaderMap,
    /// Body bytes.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// Whether the `Link` header points to a next page.
    pub(crate) fn has_next_page(&self) -> bool {
        self.headers
            .get_all(http::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("rel=\"next\""))
    }

    /// Decodes the JSON body.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
    ) -> Result<T, GithubError> {
        serde_json::from_slice(&self.body).map_err(|e| GithubError::Decode {
            action: action.to_owned(),
            detail: e.to_string(),
        })
    }

    /// GitHub's `message` field, or the start of the body.
    fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Message {
            message: String,
        }
        serde_json::from_slice::<Message>(&self.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| {
                String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(200)
                    .collect()
            })
    }
}

/// What went wrong with one attempt, and whether to try again.
struct Attempt {
    error: GithubError,
    retry_after: Option<Duration>,
    transient: bool,
}

/// An authenticated client for one scope.
pub(crate) struct Github {
    /// The transport with the current credential; replaced when an
    /// installation token is renewed.
    crab: std::sync::RwLock<Octocrab>,
    /// What is needed to mint the next installation token.
    settings: GithubSettings,
    /// The current installation token's validity and installation.
    lifetime: std::sync::Mutex<(Option<auth::Lifetime>, Option<u64>)>,
    /// One renewal at a time.
    renewing: tokio::sync::Mutex<()>,
    api_url: String,
    scope: Scope,
    /// `x-ratelimit-remaining` of the latest answer (-1: not seen yet), so
    /// pollers can slow down before GitHub has to tell them to.
    rate_remaining: std::sync::atomic::AtomicI64,
    /// An App installation token's permissions.
    permissions: Option<std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for Github {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Github")
            .field("api_url", &self.api_url)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Builds an octocrab transport that sends `Authorization: Bearer <credential>`.
fn transport(api_url: &str, credential: &SecretString) -> Result<Octocrab, GithubError> {
    transport::client(api_url, Some(credential))
}

/// An octocrab transport without credentials, for public data on another host.
fn transport_unauthenticated(api_url: &str) -> Result<Octocrab, GithubError> {
    transport::client(api_url, None)
}

/// Connects to GitHub with the configured credential: a token as given, or an
/// App's installation token minted for the scope.
pub(crate) async fn connect(settings: &GithubSettings) -> Result<Github, GithubError> {
    let credential = auth::credential(settings, None).await?;
    Ok(Github {
        crab: std::sync::RwLock::new(transport(&settings.api_url, &credential.token)?),
        settings: settings.clone(),
        lifetime: std::sync::Mutex::new((credential.lifetime, credential.installation_id)),
        renewing: tokio::sync::Mutex::new(()),
        permissions: credential.permissions,
        api_url: settings.api_url.clone(),
        scope: settings.scope.clone(),
        rate_remaining: std::sync::atomic::AtomicI64::new(-1),
    })
}

impl Github {
    /// Where runners are registered.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The API base URL.
    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Sends a request, retrying transient failures with jittered backoff.
    /// Every request the tool sends may be repeated without acting twice: GET
    /// and DELETE by nature, the token POST because each call mints an
    /// independent token, the JIT POST because the runner name is unique (a
    /// repeat meets 409, which `create_jit_runner` handles).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        action: &str,
    ) -> Result<Reply, GithubError> {
        self.renew_if_due().await?;
        let crab = self.crab.read().unwrap_or_else(|p| p.into_inner()).clone();
        let reply = send(&crab, &self.api_url, method, path, body, action).await?;
        if let Some(remaining) = reply
            .headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.rate_remaining
                .store(remaining, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(reply)
    }

    /// Mints a new installation token shortly before the current one
    /// expires, so a long wait, the undo and the runner deletions never meet
    /// a 401. A token given as `github-token` is used as it is.
    // NOTE: installation tokens expire after one hour:
    // https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
    async fn renew_if_due(&self) -> Result<(), GithubError> {
        let due = |lifetime: &std::sync::Mutex<(Option<auth::Lifetime>, Option<u64>)>| {
            let guard = lifetime.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .0
                .is_some_and(|l| l.due(chrono::Utc::now()))
                .then_some(guard.1)
        };
        if due(&self.lifetime).is_none() {
            return Ok(());
        }
        let _one = self.renewing.lock().await;
        // Another request may have renewed it while this one waited.
        let Some(installation) = due(&self.lifetime) else {
            return Ok(());
        };
        let credential = auth::credential(&self.settings, installation).await?;
        let crab = transport(&self.api_url, &credential.token)?;
        *self.crab.write().unwrap_or_else(|p| p.into_inner()) = crab;
        *self.lifetime.lock().unwrap_or_else(|p| p.into_inner()) =
            (credential.lifetime, credential.installation_id);
        tracing::info!("renewed the GitHub App installation token before it expired");
        Ok(())
    }

    /// The installation token's permissions (App auth only).
    pub(crate) fn permissions(&self) -> Option<&std::collections::BTreeMap<String, String>> {
        self.permissions.as_ref()
    }

    /// Requests left in the current rate-limit window, when GitHub said.
    pub(crate) fn rate_remaining(&self) -> Option<i64> {
        let n = self
            .rate_remaining
            .load(std::sync::atomic::Ordering::Relaxed);
        (n >= 0).then_some(n)
    }
}

/// The retry policy for GitHub calls: 5 attempts, 500 ms doubling to 8 s, jittered.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(4)
        .with_jitter()
}

/// The last GitHub failure that was retried, so a deadline that ends the
/// retries can say what kept failing (short retries log only at debug).
static LAST_RETRIED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// What the last retried GitHub call failed with, if any call was retried.
pub(crate) fn last_retried() -> Option<String> {
    LAST_RETRIED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The longest `Retry-After` we wait for; beyond it the step fails with the
/// reset time rather than sitting idle on a billed machine.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

async fn send(
    crab: &Octocrab,
    api_url: &str,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    action: &str,
) -> Result<Reply, GithubError> {
    let uri = format!("{api_url}{path}");
    let once = || async {
        let result = match method {
            Method::GET => crab._get(uri.as_str()).await,
            Method::POST => crab._post(uri.as_str(), body).await,
            Method::DELETE => crab._delete(uri.as_str(), body).await,
            _ => unreachable!("only GET, POST and DELETE are used"),
        };
        let response = result.map_err(|e| Attempt {
            error: GithubError::Transport {
                action: action.to_owned(),
                detail: crate::error_chain::chain(&e),
            },
            retry_after: None,
            transient: true,
        })?;
        let status = response.status();
        tracing::trace!(%method, %uri, status = status.as_u16(), "GitHub answered");
        let headers = response.headers().clone();
        let body = collect(response).await.map_err(|detail| Attempt {
            error: GithubError::Transport {
                action: action.to_owned(),
                detail,
            },
            retry_after: None,
            transient: true,
        })?;
        let reply = Reply { headers, body };
        if status.is_success() {
            return Ok(reply);
        }
        let (transient, retry_after) = classify(status, &reply.headers, &reply.message());
        let hint = match retry_after {
            // Too long to wait inside a job: say when it will work again.
            Some(wait) if wait > MAX_RETRY_AFTER => {
                let at = chrono::Utc::now() + chrono::Duration::seconds(wait.as_secs() as i64);
                Some(format!(
                    "GitHub asks to wait {} s, until {} UTC, before the next request; re-run the job after that, or use a GitHub App (its rate limit is higher)",
                    wait.as_secs(),
                    at.format("%H:%M:%S")
                ))
            }
            _ => hint_for(status, &reply),
        };
        Err(Attempt {
            error: GithubError::Http {
                action: action.to_owned(),
                status: status.as_u16(),
                message: reply.message(),
                hint,
            },
            retry_after,
            transient,
        })
    };
    once.retry(backoff())
        .sleep(tokio::time::sleep)
        .when(|a: &Attempt| a.transient)
        .adjust(|a: &Attempt, delay| match a.retry_after {
            Some(wait) if wait > MAX_RETRY_AFTER => None,
            Some(wait) => Some(wait),
            None => delay,
        })
        .notify(|a: &Attempt, delay| {
            *LAST_RETRIED.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.error.to_string());
            // A long wait (a rate limit's) is worth a line at the default
            // level, so a slow start says why it is slow.
            if delay >= Duration::from_secs(5) {
                tracing::warn!(
                    "GitHub call failed, waiting {} s before retrying: {}",
                    delay.as_secs(),
                    a.error
                );
            } else {
                tracing::debug!(wait = ?delay, "GitHub call failed, retrying: {}", a.error);
            }
        })
        .await
        .map_err(|a| a.error)
}

/// How long GitHub asks a client to wait after a secondary rate limit that
/// came without `retry-after`.
// NOTE: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Whether an answer is GitHub's secondary rate limit (too many requests at
/// once, or mutating requests too close together).
fn is_secondary_limit(status: StatusCode, message: &str) -> bool {
    matches!(status.as_u16(), 403 | 429)
        && message
            .to_ascii_lowercase()
            .contains("secondary rate limit")
}

/// Decides whether an error status is worth another try, and how long to wait:
/// 5xx and 429 always; 403 only when the rate-limit headers or the message
/// say it is a rate limit.
fn classify(status: StatusCode, headers: &HeaderMap, message: &str) -> (bool, Option<Duration>) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let until_reset = header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|reset| {
            let now = chrono::Utc::now().timestamp();
            Duration::from_secs(u64::try_from(reset - now).unwrap_or(0).max(1))
        });
    if is_secondary_limit(status, message) {
        return (true, Some(retry_after.unwrap_or(SECONDARY_LIMIT_WAIT)));
    }
    match status.as_u16() {
        500..=599 => (true, retry_after),
        429 => (true, retry_after.or(until_reset)),
        403 if retry_after.is_some() => (true, retry_after),
        403 if exhausted => (true, until_reset),
        _ => (false, None),
    }
}

fn hint_for(status: StatusCode, reply: &Reply) -> Option<String> {
    let message = reply.message();
    if is_secondary_limit(status, &message) {
        let at = chrono::Utc::now() + chrono::Duration::seconds(60);
        return Some(format!(
            "This is GitHub's secondary rate limit (too many requests at once, or too close together): it lifts a minute after the last refused request, about {} UTC. Lower `count`, or stagger the jobs that start runners",
            at.format("%H:%M:%S")
        ));
    }
    let hint = match status.as_u16() {
        401 => {
            "GitHub rejected the credential: check that github-token is current, or that github-app-id and github-app-private-key belong to the same App (and the machine's clock is right)"
        }
        403 if message.contains("rate limit") || reply.headers.contains_key("retry-after") => {
            "GitHub's rate limit was hit; wait for it to reset or use a GitHub App (its limit is higher)"
        }
        403 | 404 if message.contains("not accessible") || status == 403 => {
            "The credential lacks permission: a GitHub App needs repository permission Administration: write (organization runners: Self-hosted runners: write) and must be installed on the repository; a fine-grained token needs the same; a classic token needs `repo` (`admin:org` for organization runners)"
        }
        404 => {
            "Not found, or the credential cannot see it: check `repository`/`organization`, and that the App is installed there"
        }
        422 => "GitHub refused the request as invalid: check runner-group-id and labels",
        _ => return None,
    };
    Some(hint.to_owned())
}

/// Reads a response body to the end.
mod bytes_body {
    use http_body_util::BodyExt;

    /// Collects the body; an error is described in words.
    pub(super) async fn collect(
        response: http::Response<
            http_body_util::combinators::BoxBody<bytes::Bytes, octocrab::Error>,
        >,
    ) -> Result<Vec<u8>, String> {
        response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn server_errors_and_rate_limits_are_retried_others_not() {
        assert!(classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "").0);
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", "3")]),
                ""
            ),
            (true, Some(Duration::from_secs(3)))
        );
        assert!(
            classify(
                StatusCode::FORBIDDEN,
                &headers(&[("x-ratelimit-remaining", "0")]),
                ""
            )
            .0
        );
        assert!(
            !classify(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "Resource not accessible"
            )
            .0
        );
        assert!(!classify(StatusCode::NOT_FOUND, &HeaderMap::new(), "").0);
        assert!(!classify(StatusCode::CONFLICT, &HeaderMap::new(), "").0);
        // A secondary limit without retry-after: wait the documented minute.
        assert_eq!(
            classify(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            ),
            (true, Some(Duration::from_secs(60)))
        );
    }
}
