//! The GitHub side of the inputs: repository or organization, and the
//! credential (a token, or an App id and private key).

use super::*;

/// A repository `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repository {
    /// The owning user or organization.
    pub(crate) owner: String,
    /// The repository name.
    pub(crate) name: String,
}

impl Repository {
    pub(super) fn parse(value: &str) -> Result<Self, InvalidInput> {
        let valid_part = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match value.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(Self {
                owner: owner.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(InvalidInput::new(
                "repository",
                Some(value),
                "expected `owner/name`, e.g. octo-org/octo-repo",
            )),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Where the runner is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A repository-level runner.
    Repository(Repository),
    /// An organization-level runner.
    Organization(String),
}

impl Scope {
    /// The value of the scope tag on the instances of this scope.
    pub(crate) fn tag(&self) -> String {
        match self {
            Scope::Repository(repo) => repo.to_string(),
            Scope::Organization(org) => format!("org:{org}"),
        }
    }

    /// The API path prefix of the runner endpoints for this scope.
    pub(crate) fn runners_path(&self) -> String {
        match self {
            Scope::Repository(repo) => {
                format!("/repos/{}/{}/actions/runners", repo.owner, repo.name)
            }
            Scope::Organization(org) => format!("/orgs/{org}/actions/runners"),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository(repo) => write!(f, "repository {repo}"),
            Scope::Organization(org) => write!(f, "organization {org}"),
        }
    }
}

/// How the GitHub App is named in the JWT's `iss` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppIdentifier {
    /// The numeric App id.
    Id(u64),
    /// The App's client id (`Iv…`), which GitHub recommends for new integrations.
    ClientId(String),
}

/// The private key of a GitHub App, parsed and checked before any request.
#[derive(Clone)]
pub(crate) struct AppKey {
    /// The key ready for signing.
    pub(crate) key: octocrab::jsonwebtoken::EncodingKey,
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(***)")
    }
}

/// How to authenticate to GitHub.
#[derive(Debug, Clone)]
pub(crate) enum GithubAuth {
    /// A personal access token or an installation token, used as given.
    Token(SecretString),
    /// A GitHub App: sign a JWT, find the installation, mint an installation token.
    App {
        /// App id or client id.
        app: AppIdentifier,
        /// The App's private key.
        key: AppKey,
        /// The installation, when the user knows it.
        installation_id: Option<u64>,
    },
}

/// Everything needed to talk to GitHub.
#[derive(Debug, Clone)]
pub(crate) struct GithubSettings {
    /// API base URL, without a trailing slash.
    pub(crate) api_url: String,
    /// The credential.
    pub(crate) auth: GithubAuth,
    /// Where runners are registered.
    pub(crate) scope: Scope,
}

impl GithubSettings {
    /// Validates the GitHub inputs. Every secret is masked before it is parsed,
    /// so not even a parse error could show it.
    pub(crate) fn from_args(args: &GithubArgs) -> Result<Self, InvalidInput> {
        let token = present(&args.github_token);
        let app_id = present(&args.github_app_id);
        let app_key = args
            .github_app_private_key
            .as_deref()
            .filter(|k| !k.trim().is_empty());
        if let Some(token) = token {
            crate::actions::mask(token);
        }
        if let Some(key) = app_key {
            crate::actions::mask(key);
        }

        let auth = match (token, app_id, app_key) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(InvalidInput::new(
                    "github-token",
                    None,
                    "give either github-token or github-app-id with github-app-private-key, not both",
                ));
            }
            (Some(token), None, None) => GithubAuth::Token(SecretString::from(token.to_owned())),
            (None, Some(app), Some(pem)) => GithubAuth::App {
                app: parse_app_identifier(app)?,
                key: parse_app_key(pem)?,
                installation_id: parse_number(
                    "github-app-installation-id",
                    &args.github_app_installation_id,
                    1,
                    u64::MAX,
                )?,
            },
            (None, Some(_), None) => {
                return Err(InvalidInput::new(
                    "github-app-private-key",
                    None,
                    "is missing; github-app-id needs the App's private key (PEM) as well",
                ));
            }
            (None, None, Some(_)) => {
                return Err(InvalidInput::new(
                    "github-app-id",
                    None,
                    "is missing; github-app-private-key needs the App id or client id as well",
                ));
            }
            (None, None, None) => {
                return Err(InvalidInput::new(
                    "github-token",
                    None,
                    "no GitHub credential; give github-app-id with github-app-private-key (recommended) or github-token",
                ));
            }
        };

        let scope = match present(&args.organization) {
            Some(org) => {
                let ok = org.len() <= 39
                    && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !org.starts_with('-');
                if !ok {
                    return Err(InvalidInput::new(
                        "organization",
                        Some(org),
                        "not an organization login; use letters, digits and single hyphens",
                    ));
                }
                Scope::Organization(org.to_owned())
            }
            None => {
                let from_env = std::env::var("GITHUB_REPOSITORY").ok();
                let repo = present(&args.repository)
                    .or_else(|| from_env.as_deref().filter(|v| !v.is_empty()))
                    .ok_or_else(|| {
                        InvalidInput::new(
                            "repository",
                            None,
                            "is missing; give `owner/name` (GITHUB_REPOSITORY is not set outside Actions) or an organization",
                        )
                    })?;
                Scope::Repository(Repository::parse(repo)?)
            }
        };

        let api_url = present(&args.github_api_url)
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_owned();
        match url::Url::parse(&api_url) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {}
            _ => {
                return Err(InvalidInput::new(
                    "github-api-url",
                    Some(&api_url),
                    "not an http(s) URL; use https://api.github.com or https://HOST/api/v3 for GitHub Enterprise Server",
                ));
            }
        }
        Ok(Self {
            api_url,
            auth,
            scope,
        })
    }
}

pub(super) fn parse_app_identifier(value: &str) -> Result<AppIdentifier, InvalidInput> {
    if let Ok(id) = value.parse::<u64>() {
        if id > 0 {
            return Ok(AppIdentifier::Id(id));
        }
    }
    let client_id_shape = value.starts_with("Iv")
        && value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if client_id_shape {
        Ok(AppIdentifier::ClientId(value.to_owned()))
    } else {
        Err(InvalidInput::new(
            "github-app-id",
            Some(value),
            "not an App id or client id; use the numeric App ID or the Client ID (Iv…) from the App's settings page",
        ))
    }
}

pub(super) fn parse_app_key(pem: &str) -> Result<AppKey, InvalidInput> {
    // A key pasted into a secret often arrives with literal `\n` sequences.
    let normalised = if pem.contains("\\n") && !pem.contains('\n') {
        pem.replace("\\n", "\n")
    } else {
        pem.to_owned()
    };
    let normalised = normalised.trim();
    if !normalised.starts_with("-----BEGIN") {
        return Err(InvalidInput::new(
            "github-app-private-key",
            None,
            "is not a PEM private key; paste the whole .pem file the App's settings page generated, from -----BEGIN to -----END",
        ));
    }
    octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(normalised.as_bytes())
        .map(|key| AppKey { key })
        .map_err(|_| {
            InvalidInput::new(
                "github-app-private-key",
                None,
                "could not be read as an RSA private key (PKCS#1 or PKCS#8 PEM); generate a new key on the App's settings page",
            )
        })
}
