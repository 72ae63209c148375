//! The validated inputs of `bake`: the base image, the builder, what the
//! image holds, and how many images to keep.

use super::*;
use crate::cli::BakeArgs;

/// Validated inputs of `bake`.
#[derive(Debug)]
pub(crate) struct BakeSettings {
    /// GitHub side (reads the newest actions/runner release).
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The base image.
    pub(crate) image: ImageSource,
    /// The builder's type; `None`: by the base image's architecture.
    pub(crate) instance_type: Option<InstanceType>,
    /// The builder's subnet (default VPC when absent).
    pub(crate) subnet: Option<SubnetId>,
    /// The builder's security groups.
    pub(crate) security_group_ids: Vec<SecurityGroupId>,
    /// Extra tags for the builder, the image and its snapshots.
    pub(crate) tags: Vec<Tag>,
    /// Root volume size in GiB (the image's when absent).
    pub(crate) volume_size: Option<i32>,
    /// The base image's root device name, when the user names it.
    pub(crate) root_device_name: Option<String>,
    /// The runner to bake in when `runner-version` pins one, else the
    /// compiled pin (used when the newest release cannot be read).
    pub(crate) runner_release: RunnerDownload,
    /// Where to read the newest release; `None` when pinned.
    pub(crate) runner_releases_url: Option<String>,
    /// The images' name prefix.
    pub(crate) name: BakeName,
    /// Install Docker.
    pub(crate) docker: bool,
    /// The user's bake script.
    pub(crate) script: Option<String>,
    /// How many images of this name and architecture stay.
    pub(crate) keep: u32,
    /// The whole bake's bound.
    pub(crate) timeout: Duration,
}

/// The prefix of baked images' names: `PREFIX-ARCH-YYYYMMDD-HHMMSS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BakeName(String);

/// Room the architecture and the date take after the prefix
/// (`-x86_64-20261208-041500`), within EC2's 128 characters.
const NAME_SUFFIX_LEN: usize = 23;

impl BakeName {
    /// EC2 names an image with 3–128 letters, digits and `()[] ./-'@_`; the
    /// prefix also has to leave room for the suffix, and no `*` or `?` that
    /// a start's `image-name` pattern would read as a wildcard.
    // NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html (Name)
    pub(crate) fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok = !raw.is_empty()
            && raw.len() + NAME_SUFFIX_LEN <= 128
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
        if !ok {
            return Err(InvalidInput::new(
                "bake-name",
                Some(raw),
                format!(
                    "not an image name prefix; use 1 to {} letters, digits and ( ) [ ] . / - ' @ _ or spaces",
                    128 - NAME_SUFFIX_LEN
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the image baked at `at` for `arch` (`x86_64`, `arm64`).
    pub(crate) fn image_name(&self, arch: &str, at: chrono::DateTime<chrono::Utc>) -> String {
        format!("{}-{arch}-{}", self.0, at.format("%Y%m%d-%H%M%S"))
    }
}

impl BakeSettings {
    /// Validates every input of `bake`.
    pub(crate) fn from_args(args: &BakeArgs) -> Result<Self, InvalidInput> {
        let github = GithubSettings::from_args(&args.github)?;
        let image = parse_image(&args.image, true)?.ok_or_else(|| {
            InvalidInput::new(
                "image-id",
                None,
                "is missing; give the base image to bake from",
            )
        })?;
        let instance_type = list(&args.instance_types)
            .first()
            .map(|t| InstanceType::parse(t))
            .transpose()?;
        let subnet = list(&args.subnet_ids)
            .first()
            .map(|s| SubnetId::parse("subnet-ids", s))
            .transpose()?;
        let security_group_ids = list(&args.security_group_ids)
            .iter()
            .map(|s| SecurityGroupId::parse("security-group-ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        let root_device_name = present(&args.root_device_name).map(str::to_owned);
        if let Some(name) = &root_device_name {
            parse_root_device_name(name)?;
        }
        let pinned = present(&args.runner_version).is_some();
        let script = args
            .bake_script
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned);
        if script.as_deref().is_some_and(|s| s.contains('\0')) {
            return Err(InvalidInput::new(
                "bake-script",
                None,
                "contains a NUL byte, which no shell script can hold",
            ));
        }
        Ok(Self {
            runner_releases_url: releases_url(&args.runner_releases_url, pinned, &github.api_url)?,
            github,
            region: aws_region(&args.aws)?,
            image,
            instance_type,
            subnet,
            security_group_ids,
            tags: parse_tags(&args.tags)?,
            volume_size: parse_number("volume-size", &args.volume_size, 8, 16_384)?,
            root_device_name,
            runner_release: parse_runner_release(&args.runner_version, &args.runner_sha256)?,
            name: BakeName::parse(present(&args.bake_name).unwrap_or("ec2-spot-runner"))?,
            docker: parse_bool("bake-docker", &args.bake_docker, false)?,
            script,
            keep: parse_number("keep", &args.keep, 1, 100)?.unwrap_or(3),
            timeout: parse_duration(
                "timeout",
                &args.timeout,
                Duration::from_secs(45 * 60),
                Duration::from_secs(5 * 60),
                Duration::from_secs(6 * 3600),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BakeArgs {
        let mut a = BakeArgs::default();
        a.github.github_token = Some("ghs_x".into());
        a.github.repository = Some("o/r".into());
        a.image.image_id = Some("ami-0123456789abcdef0".into());
        for (name, value) in pairs {
            let v = Some((*value).to_owned());
            match *name {
                "image-id" => a.image.image_id = v,
                "image-name" => a.image.image_name = v,
                "bake-name" => a.bake_name = v,
                "keep" => a.keep = v,
                "timeout" => a.timeout = v,
                "bake-docker" => a.bake_docker = v,
                "runner-version" => a.runner_version = v,
                "runner-releases-url" => a.runner_releases_url = v,
                other => panic!("{other}"),
            }
        }
        a
    }

    #[test]
    fn defaults_and_names() {
        let s = BakeSettings::from_args(&args(&[])).unwrap();
        assert_eq!(
            (s.keep, s.docker, s.name.as_str()),
            (3, false, "ec2-spot-runner")
        );
        assert_eq!(s.timeout, Duration::from_secs(2700));
        assert!(s.runner_releases_url.is_some());
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-08T04:15:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            s.name.image_name("x86_64", at),
            "ec2-spot-runner-x86_64-20261208-041500"
        );
        let s =
            BakeSettings::from_args(&args(&[("bake-name", "team (ci)"), ("keep", "1")])).unwrap();
        assert_eq!((s.keep, s.name.as_str()), (1, "team (ci)"));
    }

    #[test]
    fn bad_inputs_name_the_input_and_the_fix() {
        for (pairs, input) in [
            (vec![("keep", "0")], "keep"),
            (vec![("keep", "many")], "keep"),
            (vec![("bake-name", "runner-*")], "bake-name"),
            (vec![("bake-name", &*"x".repeat(106))], "bake-name"),
            (vec![("timeout", "1m")], "timeout"),
            (vec![("bake-docker", "maybe")], "bake-docker"),
            (vec![("image-id", "")], "image-id"),
            (vec![("image-name", "base-*")], "image-name"),
            (
                vec![
                    ("runner-version", "2.330.0"),
                    ("runner-releases-url", "https://x.test/latest"),
                ],
                "runner-releases-url",
            ),
        ] {
            let err = BakeSettings::from_args(&args(&pairs)).unwrap_err();
            assert_eq!(err.input, input, "{pairs:?}: {err}");
        }
    }
}
