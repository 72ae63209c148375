//! GitHub authentication: a token is used as given; a GitHub App signs an
//! RS256 JWT, finds its installation for the repository or organization, and
//! mints an installation token, which is masked before anything could print it.

use std::collections::BTreeMap;

use http::Method;
use octocrab::jsonwebtoken::{Algorithm, Header, encode};
use secrecy::SecretString;

use super::{GithubError, send, transport};
use crate::settings::{AppIdentifier, AppKey, GithubAuth, GithubSettings, Scope};

/// The `iss` claim: GitHub takes the numeric App id or the client id.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Issuer<'a> {
    Id(u64),
    ClientId(&'a str),
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: Issuer<'a>,
}

/// Signs the App JWT. `iat` is 60 s in the past to absorb clock drift, and
/// `exp` is 9 minutes ahead, inside GitHub's 10-minute limit.
pub(crate) fn app_jwt(
    app: &AppIdentifier,
    key: &AppKey,
    now: i64,
) -> Result<SecretString, GithubError> {
    let claims = Claims {
        iat: now - 60,
        exp: now + 9 * 60,
        iss: match app {
            AppIdentifier::Id(id) => Issuer::Id(*id),
            AppIdentifier::ClientId(id) => Issuer::ClientId(id),
        },
    };
    encode(&Header::new(Algorithm::RS256), &claims, &key.key)
        .map(SecretString::from)
        .map_err(|e| GithubError::Jwt(e.to_string()))
}

#[derive(serde::Deserialize)]
struct Installation {
    id: u64,
}

#[derive(serde::Deserialize)]
struct AccessToken {
    token: String,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
    /// RFC 3339; an hour after minting on github.com.
    #[serde(default)]
    expires_at: Option<String>,
}

/// The bearer credential for runner calls, and what it may do when GitHub says.
pub(crate) struct Credential {
    /// The token. Nothing assumes its length or shape: GitHub is moving
    /// installation tokens to a much longer format.
    pub(crate) token: SecretString,
    /// An installation token's permissions (`administration` → `write`, …).
    pub(crate) permissions: Option<BTreeMap<String, String>>,
    /// When an installation token expires, and when it was minted.
    pub(crate) lifetime: Option<Lifetime>,
    /// The App installation, once known, so that a renewal skips the lookup.
    pub(crate) installation_id: Option<u64>,
}

/// An installation token's validity, on this machine's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    /// When it was minted.
    pub(crate) minted: chrono::DateTime<chrono::Utc>,
    /// When GitHub stops accepting it.
    pub(crate) expires: chrono::DateTime<chrono::Utc>,
}

impl Lifetime {
    /// Whether to mint a new token before the next request: five minutes
    /// before it expires, or at half its life for a short-lived one.
    pub(crate) fn due(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let life = self.expires - self.minted;
        let margin = (life / 2).min(chrono::Duration::minutes(5));
        now >= self.expires - margin
    }
}

/// Returns the bearer credential for runner calls.
pub(crate) async fn credential(
    settings: &GithubSettings,
    known_installation: Option<u64>,
) -> Result<Credential, GithubError> {
    let (app, key, installation_id) = match &settings.auth {
        GithubAuth::Token(token) => {
            return Ok(Credential {
                token: token.clone(),
                permissions: None,
                lifetime: None,
                installation_id: None,
            });
        }
        GithubAuth::App {
            app,
            key,
            installation_id,
        } => (app, key, installation_id),
    };
    let jwt = app_jwt(app, key, chrono::Utc::now().timestamp())?;
    crate::actions::mask(crate::settings::expose(&jwt));
    let crab = transport(&settings.api_url, &jwt)?;
    let installation_id = match installation_id.or(known_installation) {
        Some(id) => id,
        None => {
            let (path, action) = match &settings.scope {
                Scope::Repository(repo) => (
                    format!("/repos/{}/{}/installation", repo.owner, repo.name),
                    format!(
                        "find the GitHub App's installation on repository {repo} (is the App installed there?)"
                    ),
                ),
                Scope::Organization(org) => (
                    format!("/orgs/{org}/installation"),
                    format!(
                        "find the GitHub App's installation on organization {org} (is the App installed there?)"
                    ),
                ),
            };
            let reply = send(&crab, &settings.api_url, Method::GET, &path, None, &action)
                .await
                .map_err(|err| client_id_on_old_server(err, app, &settings.api_url))?;
            reply.json::<Installation>(&action)?.id
        }
    };
    tracing::debug!(installation_id, "GitHub App installation found");
    // A token limited to the one repository: if it ever leaked, it could touch
    // nothing else.
    let body = match &settings.scope {
        Scope::Repository(repo) => serde_json::json!({ "repositories": [repo.name] }),
        Scope::Organization(_) => serde_json::json!({}),
    };
    let action = format!("create an installation token for installation {installation_id}");
    let reply = send(
        &crab,
        &settings.api_url,
        Method::POST,
        &format!("/app/installations/{installation_id}/access_tokens"),
        Some(&body),
        &action,
    )
    .await
    .map_err(|err| client_id_on_old_server(err, app, &settings.api_url))?;
    let minted = chrono::Utc::now();
    let AccessToken {
        token,
        permissions,
        expires_at,
    } = reply.json::<AccessToken>(&action)?;
    crate::actions::mask(&token);
    let lifetime = expires_at
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| Lifetime {
            minted,
            expires: at.with_timezone(&chrono::Utc),
        });
    Ok(Credential {
        token: SecretString::from(token),
        permissions: Some(permissions),
        lifetime,
        installation_id: Some(installation_id),
    })
}

/// A 401 for a JWT issued by a client id, against GitHub Enterprise Server:
/// servers before 3.18 take only the numeric App id as the issuer.
// NOTE: https://docs.github.com/en/enterprise-server@3.18/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
fn client_id_on_old_server(err: GithubError, app: &AppIdentifier, api_url: &str) -> GithubError {
    match app {
        AppIdentifier::ClientId(id)
            if err.status() == Some(401) && super::is_enterprise_server(api_url) =>
        {
            err.with_hint(format!(
                "GitHub Enterprise Server accepts a client id ({id}) as the App JWT's issuer only from version 3.18; on an older server set github-app-id to the App's numeric id (App settings > General > App ID)"
            ))
        }
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_serialises_as_number_or_string() {
        let id = serde_json::to_value(Issuer::Id(42)).unwrap();
        let client = serde_json::to_value(Issuer::ClientId("Iv23abc")).unwrap();
        assert_eq!(id, serde_json::json!(42));
        assert_eq!(client, serde_json::json!("Iv23abc"));
    }
}
