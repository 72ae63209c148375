//! Checked identifiers and names: EC2 ids, instance types, labels, runner
//! names' random parts, and the user's tags.

use super::*;

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
/// `-xxxxxx` (for a label the user chose), `-NN`, and `-xxxx` when GitHub
/// already held a name (see `tags::retry_name`), and GitHub limits runner
/// names to 64 characters: 45 + 7 + 3 + 5 = 60.
pub(super) const MAX_LABEL_LEN: usize = 45;

/// Six random lowercase letters and digits.
pub(super) fn random_suffix() -> String {
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

/// EC2's tags per resource; keys starting with `aws:` do not count.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions
pub(crate) const EC2_TAG_LIMIT: usize = 50;
/// The most tags the tool itself sets on an instance or volume.
pub(crate) const OWN_TAGS: usize = 13;
/// EC2's 50 tags per resource, less the tool's own.
const MAX_USER_TAGS: usize = EC2_TAG_LIMIT - OWN_TAGS;

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
                "{} tags given; EC2 allows 50 per resource and the tool sets up to 13, so give at most {MAX_USER_TAGS}",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}
