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
}

/// The bearer credential for runner calls, and what it may do when GitHub says.
pub(crate) struct Credential {
    /// The token.
    pub(crate) token: SecretString,
    /// An installation token's permissions (`administration` → `write`, …).
    pub(crate) permissions: Option<BTreeMap<String, String>>,
}

/// Returns the bearer credential for runner calls.
pub(crate) async fn credential(settings: &GithubSettings) -> Result<Credential, GithubError> {
    let (app, key, installation_id) = match &settings.auth {
        GithubAuth::Token(token) => {
            return Ok(Credential {
                token: token.clone(),
                permissions: None,
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
    let installation_id = match installation_id {
        Some(id) => *id,
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
            let reply = send(&crab, &settings.api_url, Method::GET, &path, None, &action).await?;
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
    .await?;
    let AccessToken { token, permissions } = reply.json::<AccessToken>(&action)?;
    crate::actions::mask(&token);
    Ok(Credential {
        token: SecretString::from(token),
        permissions: Some(permissions),
    })
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
