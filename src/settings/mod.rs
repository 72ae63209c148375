//! Validated settings: raw strings from `cli` become checked types here,
//! before any network call, so every bad input gets one clear line and
//! nothing is launched. The rest of the code trusts these types.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::catalogue::{CATALOGUE_AS_OF, Requirements};
use crate::cli::{AwsArgs, GithubArgs, ImageArgs, InstanceArgs, StartArgs, StopArgs};
use crate::instance as machine;

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

mod bake;
mod extras;
mod github;
mod ids;
mod instance;
mod modes;

pub(crate) use bake::*;
pub(crate) use extras::*;
pub(crate) use github::*;
pub(crate) use ids::*;
pub(crate) use instance::*;
pub(crate) use modes::*;

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
        // EC2's 50 tags, less the tool's own 13.
        let many = |n: usize| {
            Some(
                (0..n)
                    .map(|i| format!("k{i}=v"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        };
        assert_eq!(parse_tags(&many(37)).unwrap().len(), 37);
        assert!(parse_tags(&many(38)).is_err());
    }

    #[test]
    fn generated_labels_are_unique_and_valid() {
        let run = RunContext {
            run_id: Some("123".into()),
            run_attempt: Some("2".into()),
            job: Some("Build & Test".into()),
            repository: None,
            runner_name: None,
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
