//! What shapes the launched machine: the image, types, network, tags,
//! volume, role, lifetimes, and the runner release it installs.

use super::*;

/// What goes on the instance: the user-data settings except the JIT config,
/// which only exists once GitHub has minted it.
#[derive(Debug, Clone)]
pub(crate) struct InstanceSettings {
    /// The AMI, by id or by name.
    pub(crate) image: Option<ImageSource>,
    /// Acceptable types, preferred first.
    pub(crate) instance_types: Vec<InstanceType>,
    /// Set when `instance_types` came from `instance-requirements`: how many
    /// types matched before the list was cut to what one price call takes.
    pub(crate) matched_types: Option<usize>,
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
    /// Replace a pre-installed runner older than `runner_release`.
    pub(crate) runner_update: bool,
    /// Passwordless sudo for the runner user.
    pub(crate) runner_sudo: bool,
    /// Install libicu before the runner starts when the image lacks it.
    pub(crate) install_libicu: bool,
    /// NVMe instance store as the work folder and Docker's data root.
    pub(crate) instance_store: bool,
    /// Script run before the runner.
    pub(crate) pre_runner_script: Option<String>,
    /// The instance profile that gives the machine a role.
    pub(crate) instance_profile: Option<InstanceProfile>,
    /// The launch template that supplies what the inputs leave unset.
    pub(crate) launch_template: Option<LaunchTemplate>,
    /// The template's volumes that the launch marks DeleteOnTermination.
    pub(crate) template_volumes: Vec<TemplateVolume>,
    /// What the template tags at launch besides the instance and its
    /// volumes (`network-interface`, `spot-instances-request`): EC2
    /// authorises ec2:CreateTags on those too.
    pub(crate) template_tagged: Vec<String>,
}

/// A launch template's EBS volume, with every setting the template gives
/// it: the launch sends them all again beside DeleteOnTermination, which is
/// right whether EC2 merges a mapping field by field or takes the request's
/// entry whole (its documentation leaves that open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TemplateVolume {
    /// The device name, e.g. `/dev/xvdf`.
    pub(crate) device: String,
    /// Size in GiB.
    pub(crate) size: Option<i32>,
    /// `gp3`, `io2`, …
    pub(crate) volume_type: Option<String>,
    /// Provisioned IOPS.
    pub(crate) iops: Option<i32>,
    /// Throughput in MiB/s (gp3).
    pub(crate) throughput: Option<i32>,
    /// The snapshot it is made from.
    pub(crate) snapshot_id: Option<String>,
    /// Whether it is encrypted.
    pub(crate) encrypted: Option<bool>,
    /// The KMS key that encrypts it.
    pub(crate) kms_key_id: Option<String>,
    /// Whether the template deletes it with the instance.
    pub(crate) delete_on_termination: Option<bool>,
}

impl InstanceSettings {
    /// Validates the instance inputs; `require_image` is false for `user-data`.
    pub(crate) fn from_args(
        args: &InstanceArgs,
        run: &RunContext,
        require_image: bool,
    ) -> Result<Self, InvalidInput> {
        let launch_template =
            parse_launch_template(&args.launch_template, &args.launch_template_version)?;
        // A template may supply the image and the instance type: whether it
        // does is known once it is read, before anything is launched.
        let require_image = require_image && launch_template.is_none();
        let image = parse_image(&args.image, require_image)?;
        let mut instance_types = list(&args.instance_types)
            .iter()
            .map(|t| InstanceType::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut matched_types = None;
        if let Some(raw) = present(&args.instance_requirements) {
            if !instance_types.is_empty() {
                return Err(InvalidInput::new(
                    "instance-requirements",
                    Some(raw),
                    "and instance-types both name the types; give one of them",
                ));
            }
            let req = Requirements::parse(raw)
                .map_err(|e| InvalidInput::new("instance-requirements", Some(raw), e))?;
            let (found, total) = req.matching("x86_64", true);
            if found.is_empty() {
                return Err(InvalidInput::new(
                    "instance-requirements",
                    Some(raw),
                    format!(
                        "matches no instance type of the catalogue (as of {CATALOGUE_AS_OF}); widen the ranges, give arch=arm64 for Graviton types (the default is x86_64), and gpu=0+ or accelerator=any to take types with GPUs or other accelerators"
                    ),
                ));
            }
            instance_types = found
                .iter()
                .map(|t| InstanceType::parse(t.name))
                .collect::<Result<Vec<_>, _>>()?;
            matched_types = Some(total);
        }
        if instance_types.is_empty() && require_image {
            return Err(InvalidInput::new(
                "instance-types",
                None,
                "is missing; give one or more instance types, e.g. c7i.large,c6i.large, or instance-requirements such as vcpu=2-4,memory=4+",
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
            parse_root_device_name(name)?;
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
            matched_types,
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
            runner_update: parse_bool("runner-update", &args.runner_update, true)?,
            runner_sudo: parse_bool("runner-sudo", &args.runner_sudo, true)?,
            install_libicu: parse_bool("install-libicu", &args.install_libicu, false)?,
            instance_store: parse_choice(
                "instance-store",
                &args.instance_store,
                true,
                &[("auto", true), ("off", false)],
            )?,
            pre_runner_script,
            instance_profile: parse_instance_profile(&args.iam_instance_profile)?,
            launch_template,
            template_volumes: Vec::new(),
            template_tagged: Vec::new(),
        })
    }
}

/// Where the AMI comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageSource {
    /// An AMI id.
    Id(ImageId),
    /// The AMI id in a Systems Manager Parameter Store parameter
    /// (`resolve:ssm:NAME`): AWS's public ones name the newest images of
    /// Ubuntu, Amazon Linux and others.
    Parameter(String),
    /// The newest image whose name matches `pattern`, from these owners only.
    Name {
        /// A DescribeImages name filter (`*` and `?` wildcards).
        pattern: String,
        /// Account ids or the aliases EC2 knows.
        owners: Vec<String>,
    },
}

/// A Parameter Store name as `resolve:ssm:` takes it: a path
/// (`/aws/service/...`) or a plain name, of letters, digits and `_.-/`, at
/// most 2048 characters; or the parameter's ARN, which is how a parameter
/// shared from another account is named. Either may end in a version or a
/// label (`:3`, `:prod`).
// NOTE: https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html
// NOTE: https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
// NOTE: the ImageId forms EC2 documents: resolve:ssm:parameter-name[:version|:label]
// and resolve:ssm:parameter-ARN[:version|:label]
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html, ImageId;
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id).
fn parse_parameter_name(name: &str) -> Result<String, InvalidInput> {
    let refuse = || {
        InvalidInput::new(
            "image-id",
            Some(&format!("resolve:ssm:{name}")),
            "not a Parameter Store name or ARN; use resolve:ssm:/PATH/TO/PARAMETER (e.g. resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64), or, for a parameter shared from another account, resolve:ssm:arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, each optionally ending in :VERSION or :LABEL",
        )
    };
    let plain_name = |base: &str| {
        !base.is_empty()
            && base.len() <= 2048
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
            && !base.ends_with('/')
    };
    let selector_ok = |selector: &str| {
        selector
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if let Some(arn) = name.strip_prefix("arn:") {
        // arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:SELECTOR]
        let parts: Vec<&str> = arn.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts.as_slice() else {
            return Err(refuse());
        };
        let (path, selector) = resource.split_once(':').unwrap_or((resource, ""));
        let ok = matches!(*partition, "aws" | "aws-cn" | "aws-us-gov")
            && *service == "ssm"
            && region.split('-').count() >= 3
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            // AWS's public parameters have no account in their ARN.
            && (account.is_empty() || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
            && path
                .strip_prefix("parameter/")
                .is_some_and(|p| plain_name(p) && !p.starts_with('/'))
            && selector_ok(selector);
        return if ok {
            Ok(name.to_owned())
        } else {
            Err(refuse())
        };
    }
    let (base, selector) = name.split_once(':').unwrap_or((name, ""));
    if !(plain_name(base) && selector_ok(selector)) {
        return Err(refuse());
    }
    Ok(name.to_owned())
}

impl ImageSource {
    /// A launch template's ImageId: an AMI id or a `resolve:ssm:` parameter.
    // NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id
    pub(crate) fn from_template(image: &str) -> Result<Self, InvalidInput> {
        match image.strip_prefix("resolve:ssm:") {
            Some(name) => Ok(ImageSource::Parameter(parse_parameter_name(name)?)),
            None => Ok(ImageSource::Id(ImageId::parse("image-id", image)?)),
        }
    }
}

/// Reads `image-id`, or `image-name` with `image-owner`: exactly one of the
/// two. A name alone is refused: anyone can publish a public AMI under any
/// name, so only owners the user trusts may match.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/finding-an-ami.html
pub(super) fn parse_image(
    args: &ImageArgs,
    require: bool,
) -> Result<Option<ImageSource>, InvalidInput> {
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
            if let Some(name) = id.strip_prefix("resolve:ssm:") {
                return Ok(Some(ImageSource::Parameter(parse_parameter_name(name)?)));
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

/// A launch template and the version to launch, as the user named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchTemplate {
    /// By id or by name.
    pub(crate) template: TemplateRef,
    /// Which version.
    pub(crate) version: TemplateVersion,
}

/// How the user named the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateRef {
    /// `lt-` and 17 hex digits.
    Id(String),
    /// Its name.
    Name(String),
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateRef::Id(id) => f.write_str(id),
            TemplateRef::Name(name) => f.write_str(name),
        }
    }
}

/// A launch template version as RunInstances and
/// DescribeLaunchTemplateVersions take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateVersion {
    /// The template's default version.
    Default,
    /// Its newest version.
    Latest,
    /// One numbered version.
    Number(u64),
}

impl TemplateVersion {
    /// The value EC2 takes.
    pub(crate) fn as_param(&self) -> String {
        match self {
            TemplateVersion::Default => "$Default".into(),
            TemplateVersion::Latest => "$Latest".into(),
            TemplateVersion::Number(n) => n.to_string(),
        }
    }
}

/// Reads `launch-template` and `launch-template-version`. An id is `lt-`
/// and 17 hex digits; a name is 3 to 128 of letters, digits and `().-/_`.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateSpecification.html
fn parse_launch_template(
    raw: &Option<String>,
    raw_version: &Option<String>,
) -> Result<Option<LaunchTemplate>, InvalidInput> {
    let Some(value) = present(raw) else {
        if let Some(version) = present(raw_version) {
            return Err(InvalidInput::new(
                "launch-template-version",
                Some(version),
                "only applies to launch-template; set launch-template too, or remove it",
            ));
        }
        return Ok(None);
    };
    // CreateLaunchTemplate reserves no prefix: `lt-build` is a name. Only
    // `lt-` and 17 hex digits is an id.
    let is_id = value
        .strip_prefix("lt-")
        .is_some_and(|hex| hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let template = if is_id {
        TemplateRef::Id(value.to_ascii_lowercase())
    } else {
        let ok = (3..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"().-/_".contains(&b));
        if !ok {
            return Err(InvalidInput::new(
                "launch-template",
                Some(value),
                "neither a launch template id (lt- and 17 hex digits, e.g. lt-0123456789abcdef0) nor a name (3 to 128 letters, digits and ().-/_); give the id or the name from `aws ec2 describe-launch-templates`",
            ));
        }
        TemplateRef::Name(value.to_owned())
    };
    let version = match present(raw_version) {
        None => TemplateVersion::Default,
        Some(v) if v.eq_ignore_ascii_case("$Default") => TemplateVersion::Default,
        Some(v) if v.eq_ignore_ascii_case("$Latest") => TemplateVersion::Latest,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => TemplateVersion::Number(n),
            _ => {
                return Err(InvalidInput::new(
                    "launch-template-version",
                    Some(v),
                    "not a version; use $Default, $Latest or a version number from 1",
                ));
            }
        },
    };
    Ok(Some(LaunchTemplate { template, version }))
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
    fn pinned(release: &machine::RunnerRelease) -> Self {
        Self {
            version: release.version.to_owned(),
            sha256_x64: Some(release.sha256_x64.to_owned()),
            sha256_arm64: Some(release.sha256_arm64.to_owned()),
        }
    }
}

pub(super) fn parse_runner_release(
    version: &Option<String>,
    sha256: &Option<String>,
) -> Result<RunnerDownload, InvalidInput> {
    let known = machine::RUNNER_RELEASES;
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

/// A root device name: `/dev/` and letters and digits.
pub(super) fn parse_root_device_name(name: &str) -> Result<(), InvalidInput> {
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
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn parameter_names_and_arns_take_every_form_ec2_documents() {
        for good in [
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "/ci/runner-image:3",
            "runner-image:prod",
            "arn:aws:ssm:us-east-1:123456789012:parameter/ci/runner-image",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/ci/runner-image:7",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/runner-image:prod",
            "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/ci/image",
            "arn:aws:ssm:us-east-1::parameter/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        ] {
            assert_eq!(parse_parameter_name(good).unwrap(), good);
            // A launch template's ImageId takes the same forms.
            assert_eq!(
                ImageSource::from_template(&format!("resolve:ssm:{good}")).unwrap(),
                ImageSource::Parameter(good.to_owned())
            );
        }
        for bad in [
            "/bad name/",
            "/ci/image/",
            "arn:aws:ec2:us-east-1:123456789012:parameter/ci/image",
            "arn:aws:ssm:us-east-1:1234:parameter/ci/image",
            "arn:aws:ssm:us-east-1:123456789012:secret/ci/image",
            "arn:aws:ssm:us-east-1:123456789012:parameter//ci/image",
            "arn:aws:ssm:us-east-1:123456789012:parameter/ci/image:a:b",
            "arn:aws:ssm:us-east-1:123456789012",
        ] {
            let err = parse_parameter_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("image-id") && err.contains("ARN"),
                "{bad}: {err}"
            );
        }
    }

    use super::*;

    #[test]
    fn a_launch_template_is_an_id_only_as_lt_and_17_hex_digits() {
        let parse = |v: &str| parse_launch_template(&Some(v.to_owned()), &None);
        let template = |v: &str| parse(v).unwrap().unwrap().template;
        assert_eq!(
            template("lt-0123456789ABCDEF0"),
            TemplateRef::Id("lt-0123456789abcdef0".into())
        );
        // CreateLaunchTemplate allows any 3-128 of [a-zA-Z0-9().-/_]: these
        // are names, not malformed ids.
        for name in [
            "lt-123",
            "lt-build",
            "lt-0123456789abcdef",
            "lt-0123456789abcdef01",
        ] {
            assert_eq!(template(name), TemplateRef::Name(name.into()), "{name}");
        }
        for bad in ["lt", "ci runner", "lt-ü"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.input, "launch-template", "{bad}");
        }
    }
}
