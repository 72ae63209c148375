//! Launch templates: reads the version a start names with
//! ec2:DescribeLaunchTemplateVersions, lets it supply what the inputs leave
//! unset, and explains, before anything is launched, what the tool sets
//! over it and what it cannot combine with.

use aws_sdk_ec2::Client;

use crate::aws::AwsError;
use crate::settings::{
    EC2_TAG_LIMIT, ImageSource, InstanceType, LaunchTemplate, OWN_TAGS, RESERVED_TAG_PREFIX,
    SecurityGroupId, StartSettings, TemplateRef, TemplateVersion, TemplateVolume,
};

/// The parts of one template version that matter to a start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Template {
    /// `lt-…`.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// The version number the user's `$Default`, `$Latest` or number named.
    pub(crate) version: u64,
    /// `ami-…` or `resolve:ssm:…`, as stored (EC2 resolves aliases only on request).
    pub(crate) image_id: Option<String>,
    /// One instance type.
    pub(crate) instance_type: Option<String>,
    /// `Placement.AvailabilityZone`.
    pub(crate) zone: Option<String>,
    /// Security group ids.
    pub(crate) security_group_ids: Vec<String>,
    /// Security group names (default VPC).
    pub(crate) security_group_names: Vec<String>,
    /// The instance profile's name or ARN.
    pub(crate) instance_profile: Option<String>,
    /// Whether it carries user data.
    pub(crate) user_data: bool,
    /// `InstanceMarketOptions.MarketType`, when set.
    pub(crate) market: Option<String>,
    /// `InstanceInitiatedShutdownBehavior`.
    pub(crate) shutdown: Option<String>,
    /// `MetadataOptions.HttpTokens`.
    pub(crate) http_tokens: Option<String>,
    /// `MetadataOptions.HttpEndpoint`.
    pub(crate) http_endpoint: Option<String>,
    /// How many network interfaces it specifies.
    pub(crate) network_interfaces: usize,
    /// `DisableApiTermination`.
    pub(crate) termination_protected: bool,
    /// Its EBS volumes, with their settings (an unset DeleteOnTermination
    /// is EC2's default for a mapping: false).
    pub(crate) volumes: Vec<TemplateVolume>,
    /// Whether it sets InstanceRequirements (attribute-based types).
    pub(crate) instance_requirements: bool,
    /// Whether it sets CpuOptions (core count, threads per core).
    pub(crate) cpu_options: bool,
    /// Its TagSpecifications: each resource type it tags at launch, with
    /// the tag keys.
    pub(crate) tags: Vec<(String, Vec<String>)>,
}

impl Template {
    /// The template as RunInstances takes it: by id and the number that
    /// was read, so every attempt launches the version that was checked even
    /// when someone changes the default version meanwhile.
    pub(crate) fn pinned(&self) -> LaunchTemplate {
        LaunchTemplate {
            template: TemplateRef::Id(self.id.clone()),
            version: TemplateVersion::Number(self.version),
        }
    }
}

/// What the hint of a denied read says.
const DENIED_HINT: &str = "launch-template needs ec2:DescribeLaunchTemplateVersions, so that the template is checked against what this tool sets before anything is launched. Allow it on \"*\" (`ec2-spot-runner policy --optional` prints the statement), or remove launch-template";

/// Reads the named version of the template.
pub(crate) async fn read(client: &Client, wanted: &LaunchTemplate) -> Result<Template, AwsError> {
    let request = client
        .describe_launch_template_versions()
        .versions(wanted.version.as_param());
    let request = match &wanted.template {
        TemplateRef::Id(id) => request.launch_template_id(id),
        TemplateRef::Name(name) => request.launch_template_name(name),
    };
    let output = request.send().await.map_err(|e| {
        let mut err = AwsError::from_sdk("DescribeLaunchTemplateVersions", &e);
        err.hint = Some(match err.code.as_deref().unwrap_or_default() {
            "UnauthorizedOperation" | "AccessDenied" => DENIED_HINT.to_owned(),
            code if code.starts_with("InvalidLaunchTemplateId.VersionNotFound") => format!(
                "Check `launch-template-version`: {} has no version {}; `aws ec2 describe-launch-template-versions --launch-template-{} {}` lists them",
                wanted.template,
                wanted.version.as_param(),
                kind(&wanted.template),
                wanted.template
            ),
            code if code.starts_with("InvalidLaunchTemplate") => format!(
                "Check `launch-template`: no template {} {} in this region and account; `aws ec2 describe-launch-templates` lists them",
                kind(&wanted.template),
                wanted.template
            ),
            _ => return err,
        });
        err
    })?;
    let Some(version) = output.launch_template_versions().first() else {
        return Err(AwsError {
            action: "DescribeLaunchTemplateVersions",
            code: None,
            detail: format!(
                "EC2 answered no version {} of launch template {}",
                wanted.version.as_param(),
                wanted.template
            ),
            hint: Some("Check `launch-template` and `launch-template-version`".to_owned()),
        });
    };
    let mut template = Template {
        id: version.launch_template_id().unwrap_or_default().to_owned(),
        name: version
            .launch_template_name()
            .unwrap_or_default()
            .to_owned(),
        version: version
            .version_number()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or_default(),
        ..Template::default()
    };
    if let Some(data) = version.launch_template_data() {
        template.image_id = data.image_id().map(str::to_owned);
        template.instance_type = data.instance_type().map(|t| t.as_str().to_owned());
        template.zone = data
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_owned);
        template.security_group_ids = data.security_group_ids().to_vec();
        template.security_group_names = data.security_groups().to_vec();
        template.instance_profile = data
            .iam_instance_profile()
            .and_then(|p| p.arn().or(p.name()))
            .map(str::to_owned);
        template.user_data = data.user_data().is_some_and(|u| !u.is_empty());
        template.market = data
            .instance_market_options()
            .and_then(|m| m.market_type())
            .map(|m| m.as_str().to_owned());
        template.shutdown = data
            .instance_initiated_shutdown_behavior()
            .map(|s| s.as_str().to_owned());
        template.http_tokens = data
            .metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str().to_owned());
        template.http_endpoint = data
            .metadata_options()
            .and_then(|m| m.http_endpoint())
            .map(|t| t.as_str().to_owned());
        template.network_interfaces = data.network_interfaces().len();
        template.termination_protected = data.disable_api_termination().unwrap_or(false);
        template.volumes = data
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs()?;
                Some(TemplateVolume {
                    device: m.device_name()?.to_owned(),
                    size: ebs.volume_size(),
                    volume_type: ebs.volume_type().map(|t| t.as_str().to_owned()),
                    iops: ebs.iops(),
                    throughput: ebs.throughput(),
                    snapshot_id: ebs.snapshot_id().map(str::to_owned),
                    encrypted: ebs.encrypted(),
                    kms_key_id: ebs.kms_key_id().map(str::to_owned),
                    delete_on_termination: ebs.delete_on_termination(),
                })
            })
            .collect();
        template.instance_requirements = data.instance_requirements().is_some();
        template.cpu_options = data.cpu_options().is_some();
        template.tags = data
            .tag_specifications()
            .iter()
            .filter_map(|spec| {
                let keys = spec
                    .tags()
                    .iter()
                    .filter_map(|t| t.key())
                    .map(str::to_owned);
                Some((spec.resource_type()?.as_str().to_owned(), keys.collect()))
            })
            .collect();
    }
    if template.id.is_empty() || template.version == 0 {
        return Err(AwsError {
            action: "DescribeLaunchTemplateVersions",
            code: None,
            detail: format!(
                "EC2 answered launch template {} without its id or version number",
                wanted.template
            ),
            hint: None,
        });
    }
    Ok(template)
}

fn kind(template: &TemplateRef) -> &'static str {
    match template {
        TemplateRef::Id(_) => "id",
        TemplateRef::Name(_) => "name",
    }
}

/// What reading the template changed, for the log and the step summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// What the template supplied, one phrase each.
    pub(crate) supplied: Vec<String>,
    /// What an input or the tool sets over the template's value, with why.
    pub(crate) overridden: Vec<String>,
    /// Template values that apply but may not fit every ranked launch.
    pub(crate) cautions: Vec<String>,
}

/// Lets the template supply the image, the instance type, the zone and the
/// security groups the inputs leave unset, pins the launch to the version
/// read, and lists what the inputs and the tool set over it. Fails, naming
/// the template field and the fix, for what cannot work: network interfaces
/// (the tool places every launch in the subnet or zone it ranked cheapest,
/// which EC2 refuses beside a template's interfaces) and market options
/// (the tool chooses spot or on-demand per attempt, and a launch cannot
/// remove a template's parameter).
// NOTE: "Any additional parameters that you specify for the new instance
// overwrite the corresponding parameters included in the launch template."
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
// NOTE: "You cannot remove launch template parameters during launch."
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/use-launch-templates-to-control-launching-instances.html
pub(crate) fn apply(settings: &mut StartSettings, template: &Template) -> Result<Applied, String> {
    let named = format!(
        "launch template {} ({}) version {}",
        template.name, template.id, template.version
    );
    if template.network_interfaces > 0 {
        return Err(format!(
            "{named} sets NetworkInterfaces. This tool places each launch in the subnet or zone it ranked cheapest, and EC2 refuses an instance-level subnet or zone beside a template's network interfaces. Make a template version without NetworkInterfaces and give subnet-ids and security-group-ids as inputs instead"
        ));
    }
    if let Some(market) = &template.market {
        return Err(format!(
            "{named} sets InstanceMarketOptions ({market}). This tool chooses spot or on-demand for every attempt (inputs market and max-spot-price), and a launch cannot remove a template's parameter. Make a template version without InstanceMarketOptions"
        ));
    }
    if template.instance_requirements {
        return Err(format!(
            "{named} sets InstanceRequirements, which RunInstances does not take (only fleets do). Make a template version without them, and give the sizes as instance-requirements instead"
        ));
    }
    if template.zone.is_some() && !settings.instance.subnet_ids.is_empty() {
        return Err(format!(
            "{named} sets Placement.AvailabilityZone ({}), and subnet-ids is given: EC2 refuses a subnet in any other zone beside it. Make a template version without the zone, or leave subnet-ids empty and let the template's zone place the machine",
            template.zone.as_deref().unwrap_or_default()
        ));
    }
    if !template.security_group_names.is_empty() && !settings.instance.subnet_ids.is_empty() {
        return Err(format!(
            "{named} names security groups by name ({}), which EC2 refuses beside a subnet (they only work in the default VPC). Use their ids (SecurityGroupIds) in the template, or security-group-ids as an input",
            template.security_group_names.join(", ")
        ));
    }
    check_tag_count(settings, template, &named)?;
    let mut applied = Applied::default();
    let instance = &mut settings.instance;
    match (&instance.image, &template.image_id) {
        (None, Some(image)) => {
            let source = ImageSource::from_template(image).map_err(|e| {
                format!("{named} names the image `{image}`, which this tool cannot use: {e}")
            })?;
            applied.supplied.push(format!("image {image}"));
            instance.image = Some(source);
        }
        (Some(_), Some(image)) => applied
            .overridden
            .push(format!("the image ({image}) by image-id or image-name")),
        (Some(_), None) => {}
        (None, None) => {
            return Err(format!(
                "{named} names no image, and neither does image-id or image-name; give image-id, or add an ImageId to the template"
            ));
        }
    }
    match &template.instance_type {
        Some(kind) if instance.instance_types.is_empty() => {
            let parsed = InstanceType::parse(kind)
                .map_err(|e| format!("{named} names the instance type `{kind}`: {e}"))?;
            applied.supplied.push(format!("instance type {kind}"));
            instance.instance_types = vec![parsed];
        }
        Some(kind) => applied.overridden.push(format!(
            "the instance type ({kind}) by the ranked instance-types"
        )),
        None if instance.instance_types.is_empty() => {
            return Err(format!(
                "{named} names no instance type, and neither does instance-types or instance-requirements; give one of them, or add an InstanceType to the template"
            ));
        }
        None => {}
    }
    if let Some(zone) = &template.zone {
        if settings.zones.is_empty() && instance.subnet_ids.is_empty() {
            applied.supplied.push(format!("availability zone {zone}"));
            settings.zones = vec![zone.clone()];
        } else {
            applied.overridden.push(format!(
                "the availability zone ({zone}) by availability-zones or subnet-ids"
            ));
        }
    }
    let groups: Vec<&String> = template
        .security_group_ids
        .iter()
        .chain(&template.security_group_names)
        .collect();
    if !groups.is_empty() {
        let list = groups
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if instance.security_group_ids.is_empty() {
            applied.supplied.push(format!("security groups {list}"));
        } else {
            let given = instance
                .security_group_ids
                .iter()
                .map(SecurityGroupId::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            applied.overridden.push(format!(
                "the security groups ({list}) by security-group-ids ({given})"
            ));
        }
    }
    if let Some(profile) = &template.instance_profile {
        if instance.instance_profile.is_none() {
            applied.supplied.push(format!(
                "instance profile {profile} (passing its role needs iam:PassRole)"
            ));
        } else {
            applied.overridden.push(format!(
                "the instance profile ({profile}) by iam-instance-profile"
            ));
        }
    }
    if template.user_data {
        applied.overridden.push(
            "the user data, by the runner's own (move its commands to pre-runner-script)".into(),
        );
    }
    if template
        .shutdown
        .as_deref()
        .is_some_and(|s| s != "terminate")
    {
        applied.overridden.push(
            "InstanceInitiatedShutdownBehavior stop, by terminate (a runner that powers off must stop billing)".into(),
        );
    }
    if template
        .http_tokens
        .as_deref()
        .is_some_and(|t| t != "required")
        || template.http_endpoint.as_deref() == Some("disabled")
    {
        applied.overridden.push(
            "the metadata options, by IMDSv2 required with a hop limit of 2 (the runner's jobs need no IMDSv1)".into(),
        );
    }
    if template.termination_protected {
        applied.overridden.push(
            "DisableApiTermination, by false (stop, cleanup and a failed start's undo must terminate the machine)".into(),
        );
    }
    // CPU options fit the types they were made for; EC2 refuses the others.
    if template.cpu_options
        && instance
            .instance_types
            .iter()
            .any(|t| Some(t.as_str()) != template.instance_type.as_deref())
    {
        let types = instance
            .instance_types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        applied.cautions.push(format!(
            "its CpuOptions apply to every ranked type ({types}), and EC2 refuses a type they do not fit; list only types they fit, or make a template version without them"
        ));
    }
    // A volume that outlived its machine would bill on: each of the
    // template's volumes is sent again with DeleteOnTermination, which EC2
    // merges into the template's mapping for that device.
    instance.template_volumes = template.volumes.clone();
    let kept: Vec<&str> = template
        .volumes
        .iter()
        .filter(|v| v.delete_on_termination != Some(true))
        .map(|v| v.device.as_str())
        .collect();
    if !kept.is_empty() {
        applied.overridden.push(format!(
            "DeleteOnTermination of {}, by true (a volume left behind bills on)",
            kept.join(", ")
        ));
    }
    instance.template_tagged = template
        .tags
        .iter()
        .map(|(kind, _)| kind)
        .filter(|kind| !TAGGED_BY_THE_TOOL.contains(&kind.as_str()))
        .cloned()
        .collect();
    if !instance.template_tagged.is_empty() {
        applied.cautions.push(format!(
            "it tags {} at launch, and EC2 authorises ec2:CreateTags on {} as well; the policy `ec2-spot-runner policy` prints allows tagging only the instance and its volumes, and `ec2-spot-runner policy --launch-template` prints the statement that also covers these",
            instance.template_tagged.join(" and "),
            if instance.template_tagged.len() == 1 { "it" } else { "them" }
        ));
    }
    instance.launch_template = Some(template.pinned());
    Ok(applied)
}

/// What the tool tags at launch itself.
const TAGGED_BY_THE_TOOL: [&str; 2] = ["instance", "volume"];

/// The statement a template's tags need beyond the default policy: the
/// hint of a launch or dry run that EC2 refused.
pub(crate) fn tagging_hint(tagged: &[String]) -> String {
    let arns = tagged
        .iter()
        .map(|kind| format!("arn:aws:ec2:*:*:{kind}/*"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "The launch template tags {} at launch, so EC2 also authorises ec2:CreateTags on {arns} (with ec2:CreateAction = RunInstances), and the default policy allows tagging only the instance and its volumes. Add those resources to the statement that allows tagging at launch (`ec2-spot-runner policy --launch-template` prints it), or make a template version without those TagSpecifications",
        tagged.join(" and ")
    )
}

/// Whether a denied launch may be the template's tags: EC2 names the action
/// it refused (ec2:CreateTags), or names none (an encoded message only).
pub(crate) fn refuses_template_tags(err: &AwsError) -> bool {
    matches!(
        err.code.as_deref(),
        Some("UnauthorizedOperation" | "AccessDenied")
    ) && !err.detail.contains("iam:PassRole")
        && (err.detail.contains("ec2:CreateTags") || !err.detail.contains("perform: "))
}

/// EC2 allows 50 tags on a resource, the template's and the request's
/// together (merged by key, `aws:` keys aside): the template's instance and
/// volume tags count toward it beside the tool's and the `tags` input's.
// NOTE: "The ec2:CreateTags action is also evaluated if tags are provided in
// a launch template"; tags merge by key.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
fn check_tag_count(
    settings: &StartSettings,
    template: &Template,
    named: &str,
) -> Result<(), String> {
    let user = &settings.instance.tags;
    for (kind, keys) in template
        .tags
        .iter()
        .filter(|(kind, _)| TAGGED_BY_THE_TOOL.contains(&kind.as_str()))
    {
        let own: std::collections::BTreeSet<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| {
                !k.to_ascii_lowercase().starts_with("aws:")
                    && *k != "Name"
                    && !k.starts_with(RESERVED_TAG_PREFIX)
                    && !user.iter().any(|t| t.key == *k)
            })
            .collect();
        let total = OWN_TAGS + user.len() + own.len();
        if total > EC2_TAG_LIMIT {
            let fix = match EC2_TAG_LIMIT.checked_sub(OWN_TAGS + own.len()) {
                Some(room) => format!(
                    "Give at most {room} in `tags`, or make a template version with fewer {kind} tags"
                ),
                None => format!(
                    "Make a template version with at most {} {kind} tags besides Name",
                    EC2_TAG_LIMIT - OWN_TAGS
                ),
            };
            return Err(format!(
                "{named} tags the {kind} with {} keys of its own; with the tool's {OWN_TAGS} and the {} of `tags`, a {kind} would carry up to {total} tags, and EC2 allows {EC2_TAG_LIMIT}. {fix}",
                own.len(),
                user.len(),
            ));
        }
    }
    Ok(())
}

/// What the tool's root mapping replaces of a template's mapping for the
/// image's root device: the tool always sends an encrypted gp3 root (of
/// `volume-size`, or the image's size), so a template's root size or type
/// does not apply. `None` when the template has no such settings.
pub(crate) fn root_override(
    volumes: &[TemplateVolume],
    root: &str,
    volume_size: Option<i32>,
) -> Option<String> {
    let volume = volumes.iter().find(|v| v.device == root)?;
    let mut theirs = Vec::new();
    if let Some(size) = volume.size {
        theirs.push(format!("{size} GiB"));
    }
    if let Some(kind) = &volume.volume_type {
        theirs.push(kind.clone());
    }
    if theirs.is_empty() {
        return None;
    }
    let size = volume_size.map_or("the image's size".to_owned(), |s| {
        format!("{s} GiB (volume-size)")
    });
    Some(format!(
        "the launch template's mapping for {root} ({}) is the image's root volume, which this tool always sets: it gets gp3 at {size} instead. Set volume-size to choose its size",
        theirs.join(", ")
    ))
}

/// Logs what the template supplied and, as a warning, what is set over
/// it; returns the same as one line for the step summary.
pub(crate) fn announce(template: &Template, applied: &Applied) -> String {
    let named = format!(
        "Launch template `{}` ({}) version {}",
        template.name, template.id, template.version
    );
    let mut line = named.clone();
    if applied.supplied.is_empty() {
        line.push_str(": supplied only what no input or tool setting covers");
    } else {
        let supplied = applied.supplied.join(", ");
        tracing::info!("{named} supplies {supplied}");
        line.push_str(&format!(": supplied {supplied}"));
    }
    if !applied.overridden.is_empty() {
        let overridden = applied.overridden.join("; ");
        crate::actions::warning(&format!(
            "{named}: this start sets over the template {overridden}"
        ));
        line.push_str(&format!("; set over it: {overridden}"));
    }
    for caution in &applied.cautions {
        crate::actions::warning(&format!("{named}: {caution}"));
        line.push_str(&format!("; {caution}"));
    }
    line.push('.');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StartArgs;

    fn settings(args: &[(&str, &str)]) -> StartSettings {
        let mut start = StartArgs::default();
        start.github.github_token = Some("ghs_x".into());
        start.github.repository = Some("o/r".into());
        start.instance.launch_template = Some("ci-runner".into());
        for (name, value) in args {
            let value = Some((*value).to_owned());
            match *name {
                "image-id" => start.instance.image.image_id = value,
                "instance-types" => start.instance.instance_types = value,
                "security-group-ids" => start.instance.security_group_ids = value,
                "availability-zones" => start.availability_zones = value,
                "subnet-ids" => start.instance.subnet_ids = value,
                "tags" => start.instance.tags = value,
                other => panic!("{other}"),
            }
        }
        StartSettings::from_args(&start).expect("valid inputs")
    }

    fn template() -> Template {
        Template {
            id: "lt-0123456789abcdef0".into(),
            name: "ci-runner".into(),
            version: 3,
            ..Template::default()
        }
    }

    #[test]
    fn the_template_supplies_what_the_inputs_leave_unset_and_pins_its_version() {
        let mut s = settings(&[]);
        let t = Template {
            image_id: Some("ami-0123456789abcdef0".into()),
            instance_type: Some("c7i.large".into()),
            zone: Some("us-east-1b".into()),
            security_group_ids: vec!["sg-0123456789abcdef0".into()],
            instance_profile: Some("runner".into()),
            ..template()
        };
        let applied = apply(&mut s, &t).unwrap();
        assert_eq!(
            s.instance.image,
            Some(ImageSource::from_template("ami-0123456789abcdef0").unwrap())
        );
        assert_eq!(s.instance.instance_types[0].as_str(), "c7i.large");
        assert_eq!(s.zones, ["us-east-1b"]);
        assert!(
            s.instance.security_group_ids.is_empty(),
            "the template's groups apply"
        );
        assert_eq!(applied.supplied.len(), 5, "{applied:?}");
        assert!(applied.overridden.is_empty(), "{applied:?}");
        assert_eq!(
            s.instance.launch_template,
            Some(LaunchTemplate {
                template: TemplateRef::Id("lt-0123456789abcdef0".into()),
                version: TemplateVersion::Number(3),
            })
        );
    }

    #[test]
    fn a_template_root_size_or_type_that_the_root_mapping_replaces_is_named() {
        let volumes = [
            TemplateVolume {
                device: "/dev/xvda".into(),
                size: Some(50),
                volume_type: Some("io2".into()),
                ..TemplateVolume::default()
            },
            TemplateVolume {
                device: "/dev/xvdf".into(),
                size: Some(100),
                ..TemplateVolume::default()
            },
        ];
        let note = root_override(&volumes, "/dev/xvda", Some(30)).unwrap();
        assert!(
            note.contains("/dev/xvda (50 GiB, io2)") && note.contains("gp3 at 30 GiB"),
            "{note}"
        );
        assert!(root_override(&volumes, "/dev/sda1", None).is_none());
        let bare = [TemplateVolume {
            device: "/dev/xvda".into(),
            ..TemplateVolume::default()
        }];
        assert!(root_override(&bare, "/dev/xvda", None).is_none());
    }

    #[test]
    fn inputs_and_the_tool_win_and_every_override_is_named() {
        let mut s = settings(&[
            ("image-id", "ami-0fedcba9876543210"),
            ("instance-types", "m7i.large"),
            ("security-group-ids", "sg-0fedcba9876543210"),
            ("availability-zones", "us-east-1a"),
        ]);
        let t = Template {
            image_id: Some("resolve:ssm:/aws/service/x".into()),
            instance_type: Some("c7i.large".into()),
            zone: Some("us-east-1b".into()),
            security_group_names: vec!["web".into()],
            user_data: true,
            shutdown: Some("stop".into()),
            http_tokens: Some("optional".into()),
            termination_protected: true,
            volumes: [
                ("/dev/xvdf", None),
                ("/dev/xvdg", Some(false)),
                ("/dev/xvdh", Some(true)),
            ]
            .into_iter()
            .map(|(device, delete)| TemplateVolume {
                device: device.into(),
                size: Some(20),
                delete_on_termination: delete,
                ..TemplateVolume::default()
            })
            .collect(),
            ..template()
        };
        let applied = apply(&mut s, &t).unwrap();
        assert!(applied.supplied.is_empty(), "{applied:?}");
        let devices: Vec<&str> = s
            .instance
            .template_volumes
            .iter()
            .map(|v| v.device.as_str())
            .collect();
        assert_eq!(devices, ["/dev/xvdf", "/dev/xvdg", "/dev/xvdh"]);
        assert!(
            applied
                .overridden
                .iter()
                .any(|o| o.contains("DeleteOnTermination of /dev/xvdf, /dev/xvdg, by true")),
            "{applied:?}"
        );
        assert!(applied.cautions.is_empty(), "{applied:?}");
        let mut s2 = settings(&[
            ("image-id", "ami-0fedcba9876543210"),
            ("instance-types", "m7i.large,c7i.large"),
        ]);
        let applied2 = apply(
            &mut s2,
            &Template {
                instance_type: Some("m7i.large".into()),
                cpu_options: true,
                ..template()
            },
        )
        .unwrap();
        assert!(
            applied2.cautions.len() == 1 && applied2.cautions[0].contains("(m7i.large, c7i.large)"),
            "{applied2:?}"
        );
        let all = applied.overridden.join("\n");
        for field in [
            "image",
            "instance type",
            "availability zone",
            "security groups (web)",
            "user data",
            "terminate",
            "IMDSv2",
            "DisableApiTermination",
            "DeleteOnTermination of /dev/xvdf, /dev/xvdg",
        ] {
            assert!(all.contains(field), "{field} not named in {all}");
        }
        assert_eq!(s.instance.instance_types[0].as_str(), "m7i.large");
        assert_eq!(s.zones, ["us-east-1a"]);
    }

    #[test]
    fn what_cannot_combine_is_refused_with_the_field_and_the_fix() {
        let mut s = settings(&[
            ("image-id", "ami-0fedcba9876543210"),
            ("instance-types", "m7i.large"),
        ]);
        let err = apply(
            &mut s,
            &Template {
                network_interfaces: 1,
                ..template()
            },
        )
        .unwrap_err();
        assert!(
            err.contains("NetworkInterfaces") && err.contains("subnet-ids"),
            "{err}"
        );
        let err = apply(
            &mut s,
            &Template {
                market: Some("spot".into()),
                ..template()
            },
        )
        .unwrap_err();
        assert!(err.contains("InstanceMarketOptions (spot)"), "{err}");
        for (t, field) in [
            (
                Template {
                    instance_requirements: true,
                    ..template()
                },
                "InstanceRequirements",
            ),
            (
                Template {
                    zone: Some("us-east-1b".into()),
                    ..template()
                },
                "Placement.AvailabilityZone (us-east-1b)",
            ),
            (
                Template {
                    security_group_names: vec!["web".into()],
                    ..template()
                },
                "by name (web)",
            ),
        ] {
            let mut s = settings(&[
                ("image-id", "ami-0fedcba9876543210"),
                ("instance-types", "m7i.large"),
                ("subnet-ids", "subnet-0123456789abcdef0"),
            ]);
            let err = apply(&mut s, &t).unwrap_err();
            assert!(err.contains(field), "{field} not in {err}");
        }
        let mut s = settings(&[]);
        let err = apply(&mut s, &template()).unwrap_err();
        assert!(
            err.contains("names no image") && err.contains("image-id"),
            "{err}"
        );
        let mut s = settings(&[("image-id", "ami-0fedcba9876543210")]);
        let err = apply(&mut s, &template()).unwrap_err();
        assert!(err.contains("no instance type"), "{err}");
        let mut s = settings(&[]);
        let err = apply(
            &mut s,
            &Template {
                image_id: Some("ami-nothex".into()),
                ..template()
            },
        )
        .unwrap_err();
        assert!(err.contains("`ami-nothex`"), "{err}");
    }

    #[test]
    fn a_templates_tags_count_toward_fifty_and_what_else_it_tags_is_named() {
        let keys = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("k{i}"))
                .chain([
                    "Name".into(),
                    "aws:origin".into(),
                    "ec2-spot-runner:label".into(),
                ])
                .collect()
        };
        let with = |tags: Vec<(&str, Vec<String>)>| Template {
            image_id: Some("ami-0123456789abcdef0".into()),
            instance_type: Some("c7i.large".into()),
            tags: tags.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ..template()
        };
        // 38 of its own (Name, aws: and the tool's keys are not) + 13 = 51.
        let err = apply(&mut settings(&[]), &with(vec![("volume", keys(38))])).unwrap_err();
        assert!(
            err.contains("tags the volume with 38 keys of its own")
                && err.contains("up to 51 tags, and EC2 allows 50")
                && err.contains("at most 37 volume tags besides Name"),
            "{err}"
        );
        assert!(apply(&mut settings(&[]), &with(vec![("instance", keys(37))])).is_ok());
        // A key in `tags` replaces the template's: it counts once.
        let err = apply(
            &mut settings(&[("tags", "k0=a,extra=b")]),
            &with(vec![("instance", keys(37))]),
        )
        .unwrap_err();
        assert!(
            err.contains("36 keys of its own")
                && err.contains("the 2 of `tags`")
                && err.contains("Give at most 1 in `tags`"),
            "{err}"
        );
        assert!(
            apply(
                &mut settings(&[("tags", "k0=a")]),
                &with(vec![("instance", keys(37))])
            )
            .is_ok()
        );

        // Tagging a network interface needs more than the default policy.
        let mut s = settings(&[]);
        let applied = apply(
            &mut s,
            &with(vec![
                ("instance", keys(2)),
                ("network-interface", vec!["team".into()]),
            ]),
        )
        .unwrap();
        assert_eq!(s.instance.template_tagged, ["network-interface"]);
        assert!(
            applied
                .cautions
                .iter()
                .any(|c| c.contains("it tags network-interface at launch")
                    && c.contains("`ec2-spot-runner policy --launch-template`")),
            "{applied:?}"
        );
        let hint = tagging_hint(&s.instance.template_tagged);
        assert!(
            hint.contains("ec2:CreateTags on arn:aws:ec2:*:*:network-interface/*")
                && hint.contains("policy --launch-template"),
            "{hint}"
        );
        let denied = |detail: &str| AwsError {
            action: "RunInstances",
            code: Some("UnauthorizedOperation".into()),
            detail: detail.into(),
            hint: None,
        };
        assert!(refuses_template_tags(&denied(
            "User: u is not authorized to perform: ec2:CreateTags on resource: arn:aws:ec2:us-east-1:1:network-interface/*"
        )));
        assert!(refuses_template_tags(&denied(
            "You are not authorized to perform this operation. Encoded authorization failure message: x"
        )));
        assert!(!refuses_template_tags(&denied(
            "User: u is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:1:instance/*"
        )));
        assert!(!refuses_template_tags(&denied(
            "User: u is not authorized to perform: iam:PassRole on resource: r"
        )));
    }
}
