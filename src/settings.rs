//! Validated settings: raw strings from `cli` become checked types here,
//! before any network call, so every bad input gets one clear line and
//! nothing is launched. The rest of the code trusts these types.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::cli::{AwsArgs, GithubArgs, InstanceArgs, StartArgs, StopArgs};
use crate::userdata;

/// A bad input: which one, what was given, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("input `{input}`: {problem}{}", value.as_ref().map(|v| format!(" (got `{v}`)")).unwrap_or_default())]
pub(crate) struct InvalidInput {
    /// The input's name, as in action.yml and the `--flag`.
    pub(crate) input: &'static str,
    /// The offending value, quoted back, or `None` for secrets and absent values.
    pub(crate) value: Option<String>,
    /// What is wrong and how to fix it, in one sentence.
    pub(crate) problem: String,
}

impl InvalidInput {
    fn new(input: &'static str, value: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            input,
            value: value.map(printable),
            problem: problem.into(),
        }
    }
}

/// Quotes a value back to the user on one line, whatever it contains.
fn printable(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() > 80 {
        format!("{}…", escaped.chars().take(80).collect::<String>())
    } else {
        escaped
    }
}

/// Treats an absent, empty or blank value alike: the composite action passes
/// every input through `env:`, so an unset input arrives as an empty string.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Splits a list given with commas and/or newlines.
fn list(value: &Option<String>) -> Vec<String> {
    present(value)
        .map(|v| {
            v.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn is_hex_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Defines a newtype for an EC2 resource id of the form `prefix-` + 8 or 17 hex digits.
macro_rules! ec2_id {
    ($name:ident, $prefix:literal, $what:literal, $example:literal) => {
        #[doc = concat!("A checked ", $what, " id (`", $prefix, "…`).")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) struct $name(String);

        impl $name {
            /// Checks the id's shape.
            pub(crate) fn parse(input: &'static str, value: &str) -> Result<Self, InvalidInput> {
                if is_hex_id(value, $prefix) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(InvalidInput::new(
                        input,
                        Some(value),
                        concat!(
                            "not ",
                            $what,
                            " id; expected `",
                            $prefix,
                            "` followed by 8 or 17 lowercase hex digits, e.g. ",
                            $example
                        ),
                    ))
                }
            }

            /// The id as EC2 expects it.
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ec2_id!(ImageId, "ami-", "an AMI", "ami-0123456789abcdef0");
ec2_id!(SubnetId, "subnet-", "a subnet", "subnet-0123456789abcdef0");
ec2_id!(
    SecurityGroupId,
    "sg-",
    "a security group",
    "sg-0123456789abcdef0"
);

/// A checked EC2 instance type such as `c7i.large`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct InstanceType(String);

impl InstanceType {
    /// Checks the `family.size` shape; EC2 itself says whether the type exists.
    pub(crate) fn parse(value: &str) -> Result<Self, InvalidInput> {
        let ok = value.split_once('.').is_some_and(|(family, size)| {
            !family.is_empty()
                && !size.is_empty()
                && family
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && size
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if ok && value.len() <= 32 {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput::new(
                "instance-types",
                Some(value),
                "not an EC2 instance type; expected family.size in lowercase, e.g. c7i.large",
            ))
        }
    }

    /// The type as EC2 expects it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The CPU architecture, as DescribeImages names it (`x86_64`, `arm64`),
    /// read from the family name: AWS Graviton families carry a `g` among the
    /// attributes after the generation (c7g, m6gd, im4gn, is4gen), plus the
    /// first Graviton type, a1. `None` for Mac types, whose images are not
    /// Linux images at all.
    // NOTE: https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html
    pub(crate) fn architecture(&self) -> Option<&'static str> {
        let family = self.0.split('.').next().unwrap_or_default();
        if family.starts_with("mac") {
            return None;
        }
        if family == "a1" {
            return Some("arm64");
        }
        // Series letters, then the generation digits, then the attributes.
        let attributes = family
            .trim_start_matches(|c: char| c.is_ascii_lowercase())
            .trim_start_matches(|c: char| c.is_ascii_digit());
        let attributes = attributes.split('-').next().unwrap_or_default();
        if attributes.contains('g') {
            Some("arm64")
        } else {
            Some("x86_64")
        }
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest label we accept: runner names are the label plus a random
/// `-xxxxxx` (for a label the user chose) and `-NN`, and GitHub limits runner
/// names to 64 characters.
const MAX_LABEL_LEN: usize = 50;

/// Six random lowercase letters and digits.
fn random_suffix() -> String {
    random_part(6)
}

/// `len` random lowercase letters and digits.
pub(crate) fn random_part(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect()
}

/// A runner label: the key that ties the instance, its runner and the job together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label(String);

impl Label {
    /// Checks that the label is safe everywhere it goes: a GitHub label, a runner
    /// name, an EC2 tag value and a `runs-on:` expression.
    pub(crate) fn parse(input: &'static str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= MAX_LABEL_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(value.to_owned()))
        } else if value.is_empty() {
            Err(InvalidInput::new(
                input,
                None,
                "is empty; pass the `label` output of the start step (for a cancelled start, run the cleanup mode instead)",
            ))
        } else {
            Err(InvalidInput::new(
                input,
                Some(value),
                format!(
                    "not a usable label; use 1 to {MAX_LABEL_LEN} letters, digits, `-`, `_` or `.`"
                ),
            ))
        }
    }

    /// The label text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// A unique default label for this run: run id, attempt, job and a random
    /// suffix, so re-runs and parallel jobs never share a machine.
    pub(crate) fn generate(run: &RunContext, suffix: &str) -> Self {
        let job: String = run
            .job
            .as_deref()
            .unwrap_or("job")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(16)
            .collect();
        let run_part = match (&run.run_id, &run.run_attempt) {
            (Some(id), Some(attempt)) => format!("{id}-{attempt}"),
            (Some(id), None) => id.clone(),
            _ => "local".to_owned(),
        };
        Self(format!("ec2-{run_part}-{job}-{suffix}"))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start's runner names are this, `-` and the runner's number: the label
/// when it was generated (its random part is the start id), else the label
/// and the start id. Unique to one start either way.
pub(crate) fn runner_prefix(label: &Label, start_id: &str) -> String {
    if label.as_str().ends_with(&format!("-{start_id}")) {
        label.as_str().to_owned()
    } else {
        format!("{label}-{start_id}")
    }
}

/// Tag keys with this prefix belong to the tool (see `tags`); user tags may
/// not use it, so that nobody can make an instance look managed, or hide one.
pub(crate) const RESERVED_TAG_PREFIX: &str = "ec2-spot-runner:";

/// A user tag for the instance and its volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    /// Tag key: 1–128 characters, not reserved.
    pub(crate) key: String,
    /// Tag value: 0–256 characters.
    pub(crate) value: String,
}

/// EC2's 50 tags per resource, less the tool's own (at most 11).
const MAX_USER_TAGS: usize = 39;

/// Parses `key=value` pairs, one per line or separated by commas.
pub(crate) fn parse_tags(raw: &Option<String>) -> Result<Vec<Tag>, InvalidInput> {
    let mut tags: Vec<Tag> = Vec::new();
    for item in list(raw) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                "a tag must be `key=value`, one per line or separated by commas",
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                "tag keys take 1 to 128 characters and values up to 256",
            ));
        }
        if key.chars().chain(value.chars()).any(char::is_control) {
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                "tags cannot contain control characters",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") || key.starts_with(RESERVED_TAG_PREFIX) {
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                format!(
                    "keys starting with `aws:` or `{}` are reserved; choose another key",
                    RESERVED_TAG_PREFIX
                ),
            ));
        }
        if key == "Name" {
            // The Name tag is ours (it carries the runner name); a second one
            // would make RunInstances fail with a duplicate-key error.
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                "the Name tag is set to the runner name; choose another key",
            ));
        }
        if tags.iter().any(|t| t.key == key) {
            return Err(InvalidInput::new(
                "tags",
                Some(&item),
                "each tag key may appear once",
            ));
        }
        tags.push(Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    if tags.len() > MAX_USER_TAGS {
        return Err(InvalidInput::new(
            "tags",
            None,
            format!(
                "{} tags given; EC2 allows 50 per resource and the tool sets up to 11, so give at most {MAX_USER_TAGS}",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// Parses a duration like `90s`, `5m` or `1h30m`, within bounds.
pub(crate) fn parse_duration(
    input: &'static str,
    raw: &Option<String>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, InvalidInput> {
    let Some(value) = present(raw) else {
        return Ok(default);
    };
    let parsed = humantime::parse_duration(value).map_err(|_| {
        InvalidInput::new(
            input,
            Some(value),
            "not a duration; write a number with a unit, e.g. 90s, 5m or 1h30m",
        )
    })?;
    if parsed < min || parsed > max {
        return Err(InvalidInput::new(
            input,
            Some(value),
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(parsed)
}

fn parse_number<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
    input: &'static str,
    raw: &Option<String>,
    min: T,
    max: T,
) -> Result<Option<T>, InvalidInput> {
    let Some(value) = present(raw) else {
        return Ok(None);
    };
    match value.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(Some(n)),
        _ => Err(InvalidInput::new(
            input,
            Some(value),
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

/// Picks one of a closed set of words, naming the choices when it fails.
fn parse_choice<T: Copy>(
    input: &'static str,
    raw: &Option<String>,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, InvalidInput> {
    let Some(value) = present(raw) else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            InvalidInput::new(
                input,
                Some(value),
                format!("unknown value; choose one of: {}", names.join(", ")),
            )
        })
}

/// Parses `true`/`false` (and the usual spellings).
fn parse_bool(
    input: &'static str,
    raw: &Option<String>,
    default: bool,
) -> Result<bool, InvalidInput> {
    parse_choice(
        input,
        raw,
        default,
        &[
            ("true", true),
            ("false", false),
            ("yes", true),
            ("no", false),
            ("1", true),
            ("0", false),
        ],
    )
}

/// Which markets a start may use, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarketPolicy {
    /// Spot only; fail when no spot capacity is found.
    Spot,
    /// On-demand only.
    OnDemand,
    /// Spot first, on-demand when every spot candidate failed.
    SpotThenOnDemand,
}

/// What `start` waits for before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFor {
    /// Return once EC2 reports the instance `running`.
    Running,
    /// Return once the runner is online on GitHub (two polls in a row).
    Online,
    /// Return right after the launch request succeeded.
    None,
}

/// A repository `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repository {
    /// The owning user or organization.
    pub(crate) owner: String,
    /// The repository name.
    pub(crate) name: String,
}

impl Repository {
    fn parse(value: &str) -> Result<Self, InvalidInput> {
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

fn parse_app_identifier(value: &str) -> Result<AppIdentifier, InvalidInput> {
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

fn parse_app_key(pem: &str) -> Result<AppKey, InvalidInput> {
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

/// The workflow run this invocation belongs to (from the Actions environment).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunContext {
    /// `GITHUB_RUN_ID`.
    pub(crate) run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub(crate) run_attempt: Option<String>,
    /// `GITHUB_JOB`.
    pub(crate) job: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub(crate) repository: Option<String>,
}

impl RunContext {
    /// Reads the run from the environment Actions sets.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            run_id: var("GITHUB_RUN_ID"),
            run_attempt: var("GITHUB_RUN_ATTEMPT"),
            job: var("GITHUB_JOB"),
            repository: var("GITHUB_REPOSITORY"),
        }
    }
}

/// The region override, when given.
pub(crate) fn aws_region(args: &AwsArgs) -> Result<Option<String>, InvalidInput> {
    let Some(region) = present(&args.aws_region) else {
        return Ok(None);
    };
    let ok = region.len() <= 32
        && region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(Some(region.to_owned()))
    } else {
        Err(InvalidInput::new(
            "aws-region",
            Some(region),
            "not an AWS region name, e.g. us-east-1",
        ))
    }
}

/// What goes on the instance: the user-data settings except the JIT config,
/// which only exists once GitHub has minted it.
#[derive(Debug, Clone)]
pub(crate) struct InstanceSettings {
    /// The AMI, by id or by name.
    pub(crate) image: Option<ImageSource>,
    /// Acceptable types, preferred first.
    pub(crate) instance_types: Vec<InstanceType>,
    /// Subnets to launch into; empty means the default VPC.
    pub(crate) subnet_ids: Vec<SubnetId>,
    /// Security groups; empty means the VPC's default group.
    pub(crate) security_group_ids: Vec<SecurityGroupId>,
    /// The runner label.
    pub(crate) label: Label,
    /// Six random characters unique to this start: in the runner names, the
    /// `start-id` output and tag, so that stop can tell two starts apart
    /// that share a label.
    pub(crate) start_id: String,
    /// Runner names are this, `-` and the runner's number.
    pub(crate) runner_prefix: String,
    /// Extra runner labels.
    pub(crate) extra_labels: Vec<String>,
    /// User tags.
    pub(crate) tags: Vec<Tag>,
    /// Root volume size in GiB.
    pub(crate) volume_size: Option<i32>,
    /// Provisioned volume initialization rate, MiB/s.
    pub(crate) volume_initialization_rate: Option<i32>,
    /// The image's root device name as the user gave it; `None`: learned
    /// from DescribeImages, or from EC2's answer to the launch.
    pub(crate) root_device_name: Option<String>,
    /// Runner group for the JIT config.
    pub(crate) runner_group_id: u64,
    /// Hard limit on the machine's life.
    pub(crate) max_lifetime: Duration,
    /// How long the machine waits for a job.
    pub(crate) idle_timeout: Duration,
    /// A pre-installed runner's directory.
    pub(crate) runner_dir: Option<String>,
    /// The runner release to download when none is installed.
    pub(crate) runner_release: RunnerDownload,
    /// Whether the user chose that release (`runner-version`): then the
    /// newest release is not looked up.
    pub(crate) runner_version_pinned: bool,
    /// Script run before the runner.
    pub(crate) pre_runner_script: Option<String>,
    /// The instance profile that gives the machine a role.
    pub(crate) instance_profile: Option<InstanceProfile>,
}

impl InstanceSettings {
    /// Validates the instance inputs; `require_image` is false for `user-data`.
    pub(crate) fn from_args(
        args: &InstanceArgs,
        run: &RunContext,
        require_image: bool,
    ) -> Result<Self, InvalidInput> {
        let image = parse_image(args, require_image)?;
        let instance_types = list(&args.instance_types)
            .iter()
            .map(|t| InstanceType::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        if instance_types.is_empty() && require_image {
            return Err(InvalidInput::new(
                "instance-types",
                None,
                "is missing; give one or more instance types, e.g. c7i.large,c6i.large",
            ));
        }
        let subnet_ids = list(&args.subnet_ids)
            .iter()
            .map(|s| SubnetId::parse("subnet-ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        let security_group_ids = list(&args.security_group_ids)
            .iter()
            .map(|s| SecurityGroupId::parse("security-group-ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        // Runner names must be unique to this start: the JIT 409 recovery
        // deletes a runner of the same name, which is only safe when that name
        // can only be ours. A generated label is unique already; a label the
        // user chose (maybe shared by a matrix) gets a random part.
        let start_id = random_suffix();
        let label = match present(&args.label) {
            Some(label) => Label::parse("label", label)?,
            None => Label::generate(run, &start_id),
        };
        let runner_prefix = runner_prefix(&label, &start_id);
        let extra_labels = list(&args.labels);
        for extra in &extra_labels {
            if Label::parse("labels", extra).is_err() {
                return Err(InvalidInput::new(
                    "labels",
                    Some(extra),
                    format!(
                        "not a usable runner label; use 1 to {MAX_LABEL_LEN} letters, digits, `-`, `_` or `.`"
                    ),
                ));
            }
        }
        if extra_labels.len() > 90 {
            return Err(InvalidInput::new(
                "labels",
                None,
                "at most 90 extra labels (GitHub allows 100 per runner)",
            ));
        }
        let root_device_name = present(&args.root_device_name).map(str::to_owned);
        if let Some(name) = &root_device_name {
            if !name.starts_with("/dev/")
                || !name[5..].bytes().all(|b| b.is_ascii_alphanumeric())
                || name.len() <= 5
            {
                return Err(InvalidInput::new(
                    "root-device-name",
                    Some(name),
                    "not a device name; use the image's root device, e.g. /dev/sda1 or /dev/xvda, or leave it empty to detect it",
                ));
            }
        }
        let max_lifetime = parse_duration(
            "max-lifetime",
            &args.max_lifetime,
            Duration::from_secs(6 * 3600),
            Duration::from_secs(5 * 60),
            Duration::from_secs(7 * 24 * 3600),
        )?;
        let idle_timeout = parse_duration(
            "idle-timeout",
            &args.idle_timeout,
            Duration::from_secs(15 * 60),
            Duration::from_secs(60),
            Duration::from_secs(24 * 3600),
        )?;
        if idle_timeout > max_lifetime {
            return Err(InvalidInput::new(
                "idle-timeout",
                present(&args.idle_timeout),
                "is longer than max-lifetime; the machine would power off before it gives up waiting",
            ));
        }
        let runner_dir = present(&args.runner_dir).map(str::to_owned);
        if let Some(dir) = &runner_dir {
            if !dir.starts_with('/') || dir.chars().any(char::is_control) {
                return Err(InvalidInput::new(
                    "runner-dir",
                    Some(dir),
                    "must be an absolute path on the image, e.g. /opt/actions-runner",
                ));
            }
        }
        let runner_release = parse_runner_release(&args.runner_version, &args.runner_sha256)?;
        let pre_runner_script = present(&args.pre_runner_script).map(str::to_owned);
        if pre_runner_script
            .as_deref()
            .is_some_and(|s| s.contains('\0'))
        {
            return Err(InvalidInput::new(
                "pre-runner-script",
                None,
                "contains a NUL byte, which bash cannot run",
            ));
        }
        Ok(Self {
            image,
            instance_types,
            subnet_ids,
            security_group_ids,
            label,
            start_id,
            runner_prefix,
            extra_labels,
            tags: parse_tags(&args.tags)?,
            volume_size: parse_number("volume-size", &args.volume_size, 8, 16_384)?,
            volume_initialization_rate: parse_number(
                "volume-initialization-rate",
                &args.volume_initialization_rate,
                100,
                300,
            )?,
            root_device_name,
            runner_group_id: parse_number("runner-group-id", &args.runner_group_id, 1, u64::MAX)?
                .unwrap_or(1),
            max_lifetime,
            idle_timeout,
            runner_dir,
            runner_release,
            runner_version_pinned: present(&args.runner_version).is_some(),
            pre_runner_script,
            instance_profile: parse_instance_profile(&args.iam_instance_profile)?,
        })
    }
}

/// Where the AMI comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageSource {
    /// An AMI id.
    Id(ImageId),
    /// The newest image whose name matches `pattern`, from these owners only.
    Name {
        /// A DescribeImages name filter (`*` and `?` wildcards).
        pattern: String,
        /// Account ids or the aliases EC2 knows.
        owners: Vec<String>,
    },
}

/// Reads `image-id`, or `image-name` with `image-owner`: exactly one of the
/// two. A name alone is refused: anyone can publish a public AMI under any
/// name, so only owners the user trusts may match.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/finding-an-ami.html
fn parse_image(args: &InstanceArgs, require: bool) -> Result<Option<ImageSource>, InvalidInput> {
    let owners = list(&args.image_owner);
    match (present(&args.image_id), present(&args.image_name)) {
        (Some(_), Some(name)) => Err(InvalidInput::new(
            "image-name",
            Some(name),
            "and image-id both name the image; give one of them",
        )),
        (Some(id), None) => {
            if !owners.is_empty() {
                return Err(InvalidInput::new(
                    "image-owner",
                    present(&args.image_owner),
                    "only applies to image-name; remove it, or use image-name instead of image-id",
                ));
            }
            Ok(Some(ImageSource::Id(ImageId::parse("image-id", id)?)))
        }
        (None, Some(pattern)) => {
            let ok = pattern.len() <= 128
                && !pattern.chars().any(char::is_control)
                && pattern.chars().any(|c| c != '*' && c != '?');
            if !ok {
                return Err(InvalidInput::new(
                    "image-name",
                    Some(pattern),
                    "not an image name pattern; give up to 128 characters with `*` wildcards, e.g. ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
                ));
            }
            if owners.is_empty() {
                return Err(InvalidInput::new(
                    "image-owner",
                    None,
                    "is needed with image-name: anyone can publish an AMI under any name, so say whose images may match (e.g. 099720109477 for Canonical's Ubuntu, amazon for Amazon Linux, self for your own)",
                ));
            }
            for owner in &owners {
                let alias = matches!(owner.as_str(), "amazon" | "self" | "aws-marketplace");
                let account = owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit());
                if !alias && !account {
                    return Err(InvalidInput::new(
                        "image-owner",
                        Some(owner),
                        "not an owner; use a 12-digit account id, amazon, self or aws-marketplace",
                    ));
                }
            }
            Ok(Some(ImageSource::Name {
                pattern: pattern.to_owned(),
                owners,
            }))
        }
        (None, None) if require => Err(InvalidInput::new(
            "image-id",
            None,
            "is missing; give the AMI to launch, e.g. ami-0123456789abcdef0 (or image-name with image-owner)",
        )),
        (None, None) => Ok(None),
    }
}

/// An IAM instance profile, as RunInstances takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InstanceProfile {
    /// By name.
    Name(String),
    /// By ARN (`arn:aws:iam::ACCOUNT:instance-profile/NAME`).
    Arn(String),
}

/// Reads `iam-instance-profile`: a profile name or ARN. A role ARN is the
/// common mistake (RunInstances takes the profile that holds the role).
// NOTE: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2_instance-profiles.html
fn parse_instance_profile(raw: &Option<String>) -> Result<Option<InstanceProfile>, InvalidInput> {
    let Some(value) = present(raw) else {
        return Ok(None);
    };
    let input = "iam-instance-profile";
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let ok = parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "iam"
            && parts[3].len() == 12
            && parts[3].bytes().all(|b| b.is_ascii_digit());
        return match parts.get(4) {
            Some(resource) if ok && resource.starts_with("instance-profile/") => {
                Ok(Some(InstanceProfile::Arn(value.to_owned())))
            }
            Some(resource) if ok && resource.starts_with("role/") => Err(InvalidInput::new(
                input,
                Some(value),
                "is a role's ARN; give the instance profile that holds the role (its ARN has `:instance-profile/`, or just its name). A role made in the IAM console has a profile of the same name; otherwise `aws iam create-instance-profile` and `add-role-to-instance-profile`",
            )),
            _ => Err(InvalidInput::new(
                input,
                Some(value),
                "not an instance profile ARN; expected arn:aws:iam::ACCOUNT:instance-profile/NAME, or a profile name",
            )),
        };
    }
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(Some(InstanceProfile::Name(value.to_owned())))
    } else {
        Err(InvalidInput::new(
            input,
            Some(value),
            "not an instance profile name; use 1 to 128 letters, digits and +=,.@_-, or the profile's ARN",
        ))
    }
}

/// The actions/runner release to download, with the checksum per architecture.
/// An architecture without a checksum cannot download (the script powers off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunnerDownload {
    /// Version without the leading `v`.
    pub(crate) version: String,
    /// SHA-256 of the linux-x64 tarball.
    pub(crate) sha256_x64: Option<String>,
    /// SHA-256 of the linux-arm64 tarball.
    pub(crate) sha256_arm64: Option<String>,
}

impl RunnerDownload {
    fn pinned(release: &userdata::RunnerRelease) -> Self {
        Self {
            version: release.version.to_owned(),
            sha256_x64: Some(release.sha256_x64.to_owned()),
            sha256_arm64: Some(release.sha256_arm64.to_owned()),
        }
    }
}

fn parse_runner_release(
    version: &Option<String>,
    sha256: &Option<String>,
) -> Result<RunnerDownload, InvalidInput> {
    let known = userdata::RUNNER_RELEASES;
    let Some(version) = present(version) else {
        if present(sha256).is_some() {
            return Err(InvalidInput::new(
                "runner-sha256",
                None,
                "needs runner-version: the checksums belong to one runner release",
            ));
        }
        return Ok(RunnerDownload::pinned(&known[0]));
    };
    let version = version.trim_start_matches('v');
    let shape_ok = version.split('.').count() == 3
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !shape_ok {
        return Err(InvalidInput::new(
            "runner-version",
            Some(version),
            "not a runner version; use MAJOR.MINOR.PATCH, e.g. 2.329.0",
        ));
    }
    if let Some(raw) = present(sha256) {
        let mut x64 = None;
        let mut arm64 = None;
        for part in raw
            .split([',', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (arch, hex) = part.split_once('=').unwrap_or(("", part));
            let hex_ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            match (arch.trim(), hex_ok) {
                ("x64", true) => x64 = Some(hex.to_ascii_lowercase()),
                ("arm64", true) => arm64 = Some(hex.to_ascii_lowercase()),
                _ => {
                    return Err(InvalidInput::new(
                        "runner-sha256",
                        Some(part),
                        "expected `x64=HEX` and/or `arm64=HEX` with 64 hex digits each",
                    ));
                }
            }
        }
        return Ok(RunnerDownload {
            version: version.to_owned(),
            sha256_x64: x64,
            sha256_arm64: arm64,
        });
    }
    known
        .iter()
        .find(|r| r.version == version)
        .map(RunnerDownload::pinned)
        .ok_or_else(|| {
            let versions: Vec<&str> = known.iter().map(|r| r.version).collect();
            InvalidInput::new(
                "runner-version",
                Some(version),
                format!(
                    "has no pinned checksum; use one of {} or pass its checksums in runner-sha256",
                    versions.join(", ")
                ),
            )
        })
}

/// Validated inputs of `start`.
#[derive(Debug)]
pub(crate) struct StartSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The instance and its runner.
    pub(crate) instance: InstanceSettings,
    /// What to wait for.
    pub(crate) wait_for: WaitFor,
    /// The whole start's deadline.
    pub(crate) timeout: Duration,
    /// Which markets to use, after `on-demand-on-retry` was applied.
    pub(crate) market: MarketPolicy,
    /// Allowed zones (empty: all).
    pub(crate) zones: Vec<String>,
    /// Spot price cap, USD per hour.
    pub(crate) max_spot_price: Option<f64>,
    /// Number of runners.
    pub(crate) count: u32,
    /// Whether fewer than `count` runners is still a success.
    pub(crate) allow_partial: bool,
    /// Launch with raised gp3 IOPS/throughput and drop them after boot.
    pub(crate) boot_boost: bool,
    /// The run this start belongs to.
    pub(crate) run: RunContext,
    /// Where to read the newest actions/runner release; `None` when
    /// `runner-version` pins one.
    pub(crate) runner_releases_url: Option<String>,
}

impl StartSettings {
    /// Validates every input of `start`.
    pub(crate) fn from_args(args: &StartArgs) -> Result<Self, InvalidInput> {
        let run = RunContext::from_env();
        let instance = InstanceSettings::from_args(&args.instance, &run, true)?;
        let github = GithubSettings::from_args(&args.github)?;
        let runner_releases_url = match present(&args.runner_releases_url) {
            Some(url) => {
                let ok = url::Url::parse(url)
                    .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
                if !ok {
                    return Err(InvalidInput::new(
                        "runner-releases-url",
                        Some(url),
                        "not an http(s) URL; give the URL of a `latest release` answer, e.g. https://api.github.com/repos/actions/runner/releases/latest",
                    ));
                }
                if instance.runner_version_pinned {
                    return Err(InvalidInput::new(
                        "runner-releases-url",
                        Some(url),
                        "has no effect with runner-version, which pins the release; remove one of them",
                    ));
                }
                Some(url.to_owned())
            }
            None if instance.runner_version_pinned => None,
            None => Some(format!(
                "{}/repos/actions/runner/releases/latest",
                github.api_url
            )),
        };
        let chosen = parse_choice(
            "market",
            &args.market,
            MarketPolicy::SpotThenOnDemand,
            &[
                ("spot-then-on-demand", MarketPolicy::SpotThenOnDemand),
                ("spot", MarketPolicy::Spot),
                ("on-demand", MarketPolicy::OnDemand),
            ],
        )?;
        let on_demand_on_retry = parse_bool("on-demand-on-retry", &args.on_demand_on_retry, true)?;
        let attempt: u32 = run
            .run_attempt
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1);
        // A re-run most often follows a spot interruption: take capacity that stays.
        let market =
            if on_demand_on_retry && attempt > 1 && chosen == MarketPolicy::SpotThenOnDemand {
                MarketPolicy::OnDemand
            } else {
                chosen
            };
        let zones = list(&args.availability_zones);
        for zone in &zones {
            let ok = zone.len() <= 32
                && zone.split('-').count() >= 3
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(InvalidInput::new(
                    "availability-zones",
                    Some(zone),
                    "not an availability zone name, e.g. us-east-1a",
                ));
            }
        }
        let max_spot_price = match present(&args.max_spot_price) {
            None => None,
            Some(raw) => match raw.trim_start_matches('$').parse::<f64>() {
                Ok(p) if p.is_finite() && p > 0.0 && p < 1000.0 => Some(p),
                _ => {
                    return Err(InvalidInput::new(
                        "max-spot-price",
                        Some(raw),
                        "must be a price in USD per hour, greater than 0, e.g. 0.05",
                    ));
                }
            },
        };
        if max_spot_price.is_some() && chosen == MarketPolicy::OnDemand {
            return Err(InvalidInput::new(
                "max-spot-price",
                present(&args.max_spot_price),
                "has no effect with `market: on-demand`; remove it or use a spot market",
            ));
        }
        Ok(Self {
            market,
            zones,
            max_spot_price,
            count: parse_number("count", &args.count, 1, 50)?.unwrap_or(1),
            allow_partial: parse_bool("allow-partial", &args.allow_partial, false)?,
            boot_boost: parse_bool("boot-boost", &args.boot_boost, true)?,
            github,
            region: aws_region(&args.aws)?,
            instance,
            wait_for: parse_choice(
                "wait-for",
                &args.wait_for,
                WaitFor::Running,
                &[
                    ("running", WaitFor::Running),
                    ("online", WaitFor::Online),
                    ("none", WaitFor::None),
                ],
            )?,
            timeout: parse_duration(
                "timeout",
                &args.timeout,
                Duration::from_secs(300),
                Duration::from_secs(10),
                Duration::from_secs(3600),
            )?,
            runner_releases_url,
            run,
        })
    }
}

/// Validated inputs of `stop`.
#[derive(Debug)]
pub(crate) struct StopSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The label to stop.
    pub(crate) label: Label,
    /// Only what this start launched (its `start-id` output).
    pub(crate) start_id: Option<String>,
}

impl StopSettings {
    /// Validates every input of `stop`.
    pub(crate) fn from_args(args: &StopArgs) -> Result<Self, InvalidInput> {
        let label = Label::parse("label", present(&args.label).unwrap_or(""))?;
        let start_id = present(&args.start_id).map(str::to_owned);
        if let Some(id) = &start_id {
            if id.len() != 6
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(InvalidInput::new(
                    "start-id",
                    Some(id),
                    "not a start id; pass the `start-id` output of the start step (six lowercase letters and digits)",
                ));
            }
        }
        Ok(Self {
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
            label,
            start_id,
        })
    }
}

/// Validated inputs of `cleanup`.
#[derive(Debug)]
pub(crate) struct CleanupSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// Report only.
    pub(crate) dry_run: bool,
    /// Minimum age before anything is touched.
    pub(crate) grace_period: Duration,
    /// Deadline for a runner to come online.
    pub(crate) registration_timeout: Duration,
    /// Lifetime assumed for instances without a lifetime tag.
    pub(crate) default_max_lifetime: Duration,
    /// Only runners whose names start with this.
    pub(crate) runner_prefix: Option<String>,
    /// Pause before deleting machine-less runners.
    pub(crate) settle: Duration,
}

impl CleanupSettings {
    /// Validates every input of `cleanup`.
    pub(crate) fn from_args(args: &crate::cli::CleanupArgs) -> Result<Self, InvalidInput> {
        let runner_prefix = present(&args.runner_prefix).map(str::to_owned);
        if let Some(prefix) = runner_prefix.as_ref().filter(|p| p.len() < 3) {
            return Err(InvalidInput::new(
                "runner-prefix",
                Some(prefix),
                "must be at least 3 characters, so cleanup cannot match every runner",
            ));
        }
        Ok(Self {
            dry_run: parse_bool("dry-run", &args.dry_run, false)?,
            grace_period: parse_duration(
                "grace-period",
                &args.grace_period,
                Duration::from_secs(300),
                Duration::ZERO,
                Duration::from_secs(24 * 3600),
            )?,
            registration_timeout: parse_duration(
                "registration-timeout",
                &args.registration_timeout,
                Duration::from_secs(600),
                Duration::from_secs(60),
                Duration::from_secs(24 * 3600),
            )?,
            default_max_lifetime: parse_duration(
                "max-lifetime",
                &args.max_lifetime,
                Duration::from_secs(6 * 3600),
                Duration::from_secs(5 * 60),
                Duration::from_secs(7 * 24 * 3600),
            )?,
            settle: parse_duration(
                "settle",
                &args.settle,
                Duration::from_secs(60),
                Duration::ZERO,
                Duration::from_secs(600),
            )?,
            runner_prefix,
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
        })
    }
}

/// Validated inputs of `doctor`.
#[derive(Debug)]
pub(crate) struct DoctorSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The start to check the launch of, when `image-id` is given.
    pub(crate) start: Option<StartSettings>,
    /// Type for the price check.
    pub(crate) instance_type: Option<InstanceType>,
}

impl DoctorSettings {
    /// Validates every input of `doctor`: with `image-id`, exactly as `start` does.
    pub(crate) fn from_args(args: &crate::cli::DoctorArgs) -> Result<Self, InvalidInput> {
        let args = &args.start;
        let start = (present(&args.instance.image_id).is_some()
            || present(&args.instance.image_name).is_some())
        .then(|| StartSettings::from_args(args))
        .transpose()?;
        let instance_type = list(&args.instance.instance_types)
            .first()
            .map(|t| InstanceType::parse(t))
            .transpose()?;
        Ok(Self {
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
            start,
            instance_type,
        })
    }
}

/// Exposes a secret for the one place that must send it.
pub(crate) fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // No input, however strange, makes a parser panic; what is accepted
        // is exactly what the validators promise.
        #[test]
        fn parsers_never_panic_and_accept_only_valid_shapes(value in "\\PC{0,80}") {
            let some = Some(value.clone());
            if let Ok(label) = Label::parse("label", &value) {
                proptest::prop_assert!(label.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            }
            if let Ok(id) = ImageId::parse("image-id", &value) {
                proptest::prop_assert!(id.as_str().starts_with("ami-"));
            }
            let _ = InstanceType::parse(&value);
            let _ = Repository::parse(&value);
            if let Ok(tags) = parse_tags(&some) {
                for tag in tags {
                    proptest::prop_assert!(!tag.key.is_empty() && !tag.key.chars().any(char::is_control));
                }
            }
            let _ = parse_duration("timeout", &some, Duration::from_secs(300), Duration::from_secs(10), Duration::from_secs(3600));
            let _ = parse_runner_release(&some, &some);
            let _ = parse_app_identifier(&value);
            let _ = parse_app_key(&value);
            let _ = parse_bool("dry-run", &some, false);
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let args = GithubArgs {
            github_token: Some("ghp_SECRETSECRETSECRET".into()),
            repository: Some("acme/widgets".into()),
            ..GithubArgs::default()
        };
        let settings = GithubSettings::from_args(&args).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("SECRETSECRET"), "{shown}");
    }

    #[test]
    fn ids_accept_both_lengths_and_reject_the_rest() {
        assert!(ImageId::parse("image-id", "ami-0123456789abcdef0").is_ok());
        assert!(ImageId::parse("image-id", "ami-12345678").is_ok());
        for bad in [
            "ami-XYZ",
            "ami-0123456789ABCDEF0",
            "ami-",
            "sg-12345678",
            "ami-1234567",
        ] {
            let err = ImageId::parse("image-id", bad).unwrap_err().to_string();
            assert!(
                err.contains("image-id") && err.contains("ami-0123456789abcdef0"),
                "{err}"
            );
        }
    }

    #[test]
    fn tags_parse_and_reject_reserved_or_malformed_keys() {
        let tags = parse_tags(&Some("team=ci\ncost-center = 42, empty=".into())).unwrap();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[1].key, "cost-center");
        assert_eq!(tags[1].value, "42");
        assert_eq!(tags[2].value, "");
        for bad in [
            "novalue",
            "=x",
            "aws:foo=1",
            "ec2-spot-runner:label=x",
            "Name=x",
            "a=1,a=2",
        ] {
            assert!(parse_tags(&Some(bad.into())).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn generated_labels_are_unique_and_valid() {
        let run = RunContext {
            run_id: Some("123".into()),
            run_attempt: Some("2".into()),
            job: Some("Build & Test".into()),
            repository: None,
        };
        let (ia, ib) = (random_suffix(), random_suffix());
        let a = Label::generate(&run, &ia);
        let b = Label::generate(&run, &ib);
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("ec2-123-2-build---test-"), "{a}");
        Label::parse("label", a.as_str()).unwrap();
        // A generated label holds the start id already; a chosen one gets it.
        assert_eq!(runner_prefix(&a, &ia), a.as_str());
        let chosen = Label::parse("label", "gpu").unwrap();
        assert_eq!(runner_prefix(&chosen, "k3x9qa"), "gpu-k3x9qa");
    }

    #[test]
    fn architecture_is_read_from_the_family() {
        for (kind, arch) in [
            ("c7g.large", Some("arm64")),
            ("m6gd.xlarge", Some("arm64")),
            ("im4gn.large", Some("arm64")),
            ("is4gen.medium", Some("arm64")),
            ("t4g.micro", Some("arm64")),
            ("a1.large", Some("arm64")),
            ("g5g.xlarge", Some("arm64")),
            ("c7i.large", Some("x86_64")),
            ("m7i-flex.large", Some("x86_64")),
            ("g4dn.xlarge", Some("x86_64")),
            ("g4ad.xlarge", Some("x86_64")),
            ("x2iedn.xlarge", Some("x86_64")),
            ("u-6tb1.metal", Some("x86_64")),
            ("t3.micro", Some("x86_64")),
            ("mac2.metal", None),
        ] {
            assert_eq!(
                InstanceType::parse(kind).unwrap().architecture(),
                arch,
                "{kind}"
            );
        }
    }

    #[test]
    fn durations_have_units_and_bounds() {
        let d = |v: &str| {
            parse_duration(
                "timeout",
                &Some(v.into()),
                Duration::from_secs(300),
                Duration::from_secs(10),
                Duration::from_secs(3600),
            )
        };
        assert_eq!(d("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(d("1h").unwrap(), Duration::from_secs(3600));
        assert!(d("5").is_err());
        assert!(d("-5m").is_err());
        assert!(d("2h").is_err());
    }
}
