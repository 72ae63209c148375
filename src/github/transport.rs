//! The HTTP stack under octocrab: TLS with the system's trust roots, bounded
//! connect and read times, and the request headers GitHub asks for, each sent
//! exactly once.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use octocrab::{AuthState, Octocrab, OctocrabBuilder};
use secrecy::{ExposeSecret, SecretString};
use tower::{Layer, Service};

use super::{API_VERSION, GithubError};

/// Our `User-Agent`: GitHub asks for the application's name.
// NOTE: https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent
pub(crate) const USER_AGENT_VALUE: &str = concat!("ec2-spot-runner/", env!("CARGO_PKG_VERSION"));

/// An octocrab client for `api_url` that sends `Authorization: Bearer
/// <credential>` (when given) to that host only.
///
/// octocrab 0.54's own client cannot send our `User-Agent` alone: it adds
/// `User-Agent: octocrab` to every request and appends `add_header` values
/// beside it, and its requests already carry `X-GitHub-Api-Version`, so an
/// added one goes out twice. Its builder takes a service of our own instead
/// (`with_service`); the layer below sets each header, replacing whatever
/// is there.
// NOTE: octocrab 0.54.9 src/lib.rs: `OctocrabBuilder::prepare_config` pushes
// `User-Agent: octocrab`, `build_request` adds the headers of its Cargo.toml
// `[package.metadata.github-api] request-headers` (X-GitHub-Api-Version:
// 2022-11-28); src/service/middleware/extra_headers.rs appends (HeaderMap::extend).
// RFC 9110 section 5.3 forbids repeating a field that is not a list:
// https://www.rfc-editor.org/rfc/rfc9110#section-5.3
pub(super) fn client(
    api_url: &str,
    credential: Option<&SecretString>,
) -> Result<Octocrab, GithubError> {
    let fail = |detail: String| GithubError::Transport {
        action: "set up the HTTP client".to_owned(),
        detail,
    };
    let headers = OnceHeaders::new(api_url, credential).map_err(fail)?;
    // The provider the process installed, else aws-lc-rs, as octocrab does.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| fail(format!("could not read the system's trust roots: {e}")))?
        // http:// stays possible for a stand-in or a plain-HTTP mirror.
        .https_or_http()
        .enable_http1()
        .build();
    let connector = Octocrab::builder()
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(30)))
        .set_connect_timeout_service(tls);
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector);
    // No retry layer: retries are ours (super::send), within the step's deadline.
    let crab = OctocrabBuilder::new_empty()
        .with_service(http)
        .with_layer(&headers)
        .with_auth(AuthState::None)
        .build();
    match crab {
        Ok(crab) => Ok(crab),
        Err(never) => match never {},
    }
}

/// Sets the headers every GitHub request carries, each once.
#[derive(Clone)]
struct OnceHeaders {
    /// `User-Agent`, `Accept` and `X-GitHub-Api-Version`.
    fixed: Arc<HeaderMap>,
    /// `Authorization`, and the host (with port) it may go to.
    authorization: Option<(http::uri::Authority, HeaderValue)>,
}

impl OnceHeaders {
    fn new(api_url: &str, credential: Option<&SecretString>) -> Result<Self, String> {
        let mut fixed = HeaderMap::new();
        fixed.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        // NOTE: https://docs.github.com/en/rest/about-the-rest-api/api-versions
        fixed.insert(
            HeaderName::from_static("x-github-api-version"),
            HeaderValue::from_static(API_VERSION),
        );
        // NOTE: https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api#accept
        fixed.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        let authorization = match credential {
            None => None,
            Some(credential) => {
                let uri: http::Uri = api_url
                    .parse()
                    .map_err(|e| format!("GITHUB_API_URL {api_url} is not a URL: {e}"))?;
                let authority = uri.authority().cloned().ok_or_else(|| {
                    format!(
                        "GITHUB_API_URL {api_url} names no host; give e.g. https://api.github.com"
                    )
                })?;
                let mut value =
                    HeaderValue::try_from(format!("Bearer {}", credential.expose_secret()))
                        .map_err(|_| {
                            "the GitHub credential contains characters an HTTP header cannot carry (a line break or a control character?); set github-token to the token alone".to_owned()
                        })?;
                value.set_sensitive(true);
                Some((authority, value))
            }
        };
        Ok(Self {
            fixed: Arc::new(fixed),
            authorization,
        })
    }

    /// Replaces these headers on one request.
    fn apply<B>(&self, request: &mut Request<B>) {
        let own_host = match &self.authorization {
            Some((authority, _)) => request.uri().authority() == Some(authority),
            None => false,
        };
        let headers = request.headers_mut();
        for (name, value) in self.fixed.iter() {
            headers.insert(name.clone(), value.clone());
        }
        match &self.authorization {
            Some((_, value)) if own_host => {
                headers.insert(AUTHORIZATION, value.clone());
            }
            _ => {
                headers.remove(AUTHORIZATION);
            }
        }
    }
}

impl<S> Layer<S> for OnceHeaders {
    type Service = WithOnceHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithOnceHeaders {
            inner,
            headers: self.clone(),
        }
    }
}

/// A service whose requests carry the headers of [`OnceHeaders`].
#[derive(Clone)]
struct WithOnceHeaders<S> {
    inner: S,
    headers: OnceHeaders,
}

impl<S, B> Service<Request<B>> for WithOnceHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        self.headers.apply(&mut request);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, lines: &[(&'static str, &str)]) -> Request<()> {
        let mut builder = Request::get(uri);
        for (name, value) in lines {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn values<'a>(request: &'a Request<()>, name: &str) -> Vec<&'a str> {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn each_header_is_set_once_replacing_octocrabs_own() {
        let token = SecretString::from("ghs_abc");
        let headers = OnceHeaders::new("https://ghes.example/api/v3", Some(&token)).unwrap();
        let mut req = request(
            "https://ghes.example/api/v3/app",
            &[
                ("user-agent", "octocrab"),
                ("x-github-api-version", "2022-11-28"),
                ("accept", "application/json"),
                ("authorization", "Bearer other"),
            ],
        );
        headers.apply(&mut req);
        assert_eq!(values(&req, "user-agent"), [USER_AGENT_VALUE]);
        assert_eq!(values(&req, "x-github-api-version"), [API_VERSION]);
        assert_eq!(values(&req, "accept"), ["application/vnd.github+json"]);
        assert_eq!(values(&req, "authorization"), ["Bearer ghs_abc"]);
    }

    #[test]
    fn the_credential_goes_to_the_api_host_only() {
        let token = SecretString::from("ghs_abc");
        let headers = OnceHeaders::new("http://127.0.0.1:8080", Some(&token)).unwrap();
        for other in ["http://127.0.0.1:8081/x", "http://localhost:8080/x"] {
            let mut req = request(other, &[]);
            headers.apply(&mut req);
            assert!(values(&req, "authorization").is_empty(), "{other}");
            assert_eq!(values(&req, "user-agent"), [USER_AGENT_VALUE]);
        }
        let unauthenticated = OnceHeaders::new("http://127.0.0.1:8080", None).unwrap();
        let mut req = request("http://127.0.0.1:8080/x", &[("authorization", "Bearer x")]);
        unauthenticated.apply(&mut req);
        assert!(values(&req, "authorization").is_empty());
    }
}
