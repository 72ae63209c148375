//! The opt-in extras beyond the six actions, each with the permission it
//! needs named when it is missing.

use serde_json::{Value, json};

use crate::harness::Env;

fn instance_profile(env: &Env, profile: Option<&str>, role: &str) -> Value {
    env.post(
        &format!("{}/_shim/instance-profile", env.ec2),
        &json!({"profile": profile, "role": role}),
    )
}

#[test]
fn an_instance_profile_gives_the_machine_a_role_and_needs_pass_role() {
    let mut env = Env::start();
    let made = instance_profile(&env, Some("ci-runner"), "ci-runner-role");
    let role_arn = made["role_arn"].as_str().unwrap().to_owned();
    let with_profile = [("INPUT_IAM_INSTANCE_PROFILE", "ci-runner")];

    let run = env.start_runner(&with_profile);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    let arn = instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .unwrap_or_default()
        .to_owned();
    assert!(arn.ends_with(":instance-profile/ci-runner"), "{arn}");
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // The six actions alone may not pass the role: one clear error, nothing left.
    let doc = env.policy();
    env.act_as("no-pass-role", &doc);
    let run = env.start_runner(&with_profile);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("iam:PassRole") && run.error().contains("--pass-role"),
        "{}",
        run.error()
    );

    // doctor, given the same inputs, names the missing permission.
    let doctor = env.run_app(
        &["doctor"],
        &[
            ("INPUT_IMAGE_ID", crate::harness::AMI),
            ("INPUT_INSTANCE_TYPES", "c7i.large"),
            ("INPUT_IAM_INSTANCE_PROFILE", "ci-runner"),
        ],
    );
    assert_eq!(doctor.code, 1, "{}", doctor.all());
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] ec2:RunInstances") && l.contains("iam:PassRole")),
        "{}",
        doctor.stdout
    );

    // With the statement `policy --pass-role` prints, it works.
    let policy = env.run(&["policy", "--pass-role", &role_arn], &[]);
    policy.assert_ok();
    let doc: Value = serde_json::from_str(&policy.stdout).unwrap();
    env.act_as("pass-role", &doc);
    let run = env.start_runner(&with_profile);
    run.assert_ok();
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // A role's name where a profile is needed.
    env.aws_key = ("testing".into(), "testing".into());
    instance_profile(&env, None, "bare-role");
    let run = env.start_runner(&[("INPUT_IAM_INSTANCE_PROFILE", "bare-role")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("must name an instance profile, not a role"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}

/// The RunInstances calls' parameters, oldest first.
fn launches(env: &Env) -> Vec<Value> {
    env.ec2_calls()
        .into_iter()
        .filter(|c| c["action"] == "RunInstances")
        .map(|c| c["params"].clone())
        .collect()
}

#[test]
fn a_launch_template_supplies_what_the_inputs_leave_unset_and_never_what_the_tool_controls() {
    use aws_sdk_ec2::types::{
        LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
        LaunchTemplateIamInstanceProfileSpecificationRequest,
        LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateInstanceMetadataOptionsRequest,
        LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
        LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest, MarketType,
        RequestLaunchTemplateData, ResourceType, ShutdownBehavior, Tag, VolumeType,
    };
    let mut env = Env::start();
    let made = instance_profile(&env, Some("ci-runner"), "ci-runner-role");
    let role_arn = made["role_arn"].as_str().unwrap().to_owned();
    // What a team's template holds: the image and type, a data volume, tags
    // and a role, and settings the tool must not take (its own user data,
    // stop on shutdown, IMDSv1, termination protection).
    let data = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
        .user_data(aws_smithy_types::base64::encode(
            "#!/bin/sh\necho team setup\n",
        ))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Optional)
                .build(),
        )
        .disable_api_termination(true)
        .monitoring(
            LaunchTemplatesMonitoringRequest::builder()
                .enabled(true)
                .build(),
        )
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name("ci-runner")
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name("/dev/xvdf")
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(30)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("team").value("infra").build())
                .build(),
        )
        .build();
    let (id, version) = env.launch_template("ci-runner", data);
    assert_eq!(version, 1);
    let only_template = [
        ("INPUT_LAUNCH_TEMPLATE", "ci-runner"),
        ("INPUT_IMAGE_ID", ""),
        ("INPUT_INSTANCE_TYPES", ""),
    ];

    // The user holds the printed policy: the six actions, the optional
    // reads and the pass-role statement for the template's role.
    let policy = env.run(&["policy", "--optional", "--pass-role", &role_arn], &[]);
    policy.assert_ok();
    let with_reads: Value = serde_json::from_str(&policy.stdout).unwrap();
    env.act_as("template-user", &with_reads);
    let run = env.start_runner(&only_template);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    assert_eq!(instance.image_id(), Some(crate::harness::AMI));
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("m7i.large")
    );
    let tag = |key: &str| crate::harness::tag(&instance, key).map(str::to_owned);
    assert_eq!(
        tag("team").as_deref(),
        Some("infra"),
        "the template's tags stay"
    );
    assert_eq!(tag("ec2-spot-runner:managed").as_deref(), Some("true"));
    assert_eq!(
        tag("aws:ec2launchtemplate:id").as_deref(),
        Some(id.as_str())
    );
    assert!(
        instance
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .is_some_and(|a| a.ends_with(":instance-profile/ci-runner")),
        "the template's role: {:?}",
        instance.iam_instance_profile()
    );
    let metadata = instance.metadata_options().unwrap();
    assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
    let volumes = env.volumes_of(instance.instance_id().unwrap());
    assert!(
        volumes.iter().any(|v| v.0 == "/dev/xvdf" && v.1 == 30),
        "the template's data volume: {volumes:?}"
    );
    assert!(
        volumes.iter().any(|v| v.0 == "/dev/sda1" && v.5),
        "the tool's encrypted root: {volumes:?}"
    );
    // Every attempt names the version that was read, not `$Default`.
    let sent = launches(&env);
    let last = sent.last().unwrap();
    assert_eq!(last["LaunchTemplate.LaunchTemplateId"], id.as_str());
    assert_eq!(last["LaunchTemplate.Version"], "1");
    assert_eq!(last["DisableApiTermination"], "false");
    assert_eq!(last["InstanceInitiatedShutdownBehavior"], "terminate");
    // What the tool set over the template is said, in the log and the summary.
    let warning = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .find(|l| l.contains("this start sets over the template"))
        .unwrap_or_else(|| panic!("no override warning in {}", run.all()))
        .to_owned();
    for field in [
        "user data",
        "InstanceInitiatedShutdownBehavior stop",
        "IMDSv2",
        "DisableApiTermination",
        "DeleteOnTermination of /dev/xvdf",
    ] {
        assert!(warning.contains(field), "{field} not in: {warning}");
    }
    assert!(
        run.summary.contains(&format!(
            "Launch template `ci-runner` ({id}) version 1: supplied image {}, instance type m7i.large",
            crate::harness::AMI
        )),
        "{}",
        run.summary
    );
    // Termination protection from the template would make stop fail, and
    // its data volume (DeleteOnTermination unset) would outlive the machine.
    env.stop_runner(run.output("label"), &[]).assert_ok();
    assert!(env.live_instances().is_empty(), "stop terminated it");
    assert_eq!(
        env.volumes_left(),
        Vec::<String>::new(),
        "no volume of the machine is left billing"
    );

    // doctor reads the template and dry-runs the same launch.
    let doctor = env.run_app(&["doctor"], &only_template);
    assert!(
        doctor.stdout.lines().any(
            |l| l.starts_with("[ok  ] ec2:DescribeLaunchTemplateVersions")
                && l.contains("version 1")
        ),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[ok  ] ec2:RunInstances")),
        "{}",
        doctor.stdout
    );

    // What cannot combine fails before anything is launched, naming the
    // template field and the fix.
    let before = launches(&env).len();
    let interfaces = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .network_interfaces(
            LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .associate_public_ip_address(true)
                .build(),
        )
        .build();
    let (_, v2) = env.launch_template("ci-runner", interfaces);
    let spot = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_market_options(
            LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .build(),
        )
        .build();
    let (_, v3) = env.launch_template("ci-runner", spot);
    for (version, field) in [(v2, "NetworkInterfaces"), (v3, "InstanceMarketOptions")] {
        let version = version.to_string();
        let run = env.start_runner(&[
            ("INPUT_LAUNCH_TEMPLATE", "ci-runner"),
            ("INPUT_LAUNCH_TEMPLATE_VERSION", &version),
        ]);
        assert_eq!(run.code, 1, "{}", run.all());
        let error = run
            .single_error()
            .unwrap_or_else(|| panic!("{}", run.all()));
        assert!(
            error.contains(field) && error.contains(&format!("version {version}")),
            "{error}"
        );
    }
    // An unknown template and an unknown version are named.
    let run = env.start_runner(&[("INPUT_LAUNCH_TEMPLATE", "no-such-template")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("InvalidLaunchTemplateName.NotFoundException")
            && run.error().contains("no template name no-such-template"),
        "{}",
        run.error()
    );
    let run = env.start_runner(&[
        ("INPUT_LAUNCH_TEMPLATE", &id),
        ("INPUT_LAUNCH_TEMPLATE_VERSION", "9"),
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("`launch-template-version`") && run.error().contains("no version 9"),
        "{}",
        run.error()
    );
    assert_eq!(launches(&env).len(), before, "nothing more was launched");

    // A value EC2 refuses that came from the template: the error says to
    // look at the template, not only at the input that was never set.
    let groups = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
        .security_group_ids("sg-0000000000000000a")
        .build();
    let (_, v4) = env.launch_template("ci-runner", groups);
    let v4 = v4.to_string();
    let run = env.start_runner(&[
        ("INPUT_LAUNCH_TEMPLATE", "ci-runner"),
        ("INPUT_LAUNCH_TEMPLATE_VERSION", &v4),
        ("INPUT_IMAGE_ID", ""),
        ("INPUT_INSTANCE_TYPES", ""),
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("InvalidGroup.NotFound")
            && run.error().contains(&format!(
                "describe-launch-template-versions --launch-template-id {id} --versions {v4}"
            )),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());

    // With only the six actions the template cannot be read: one error
    // naming the permission, and doctor says the same.
    let six = env.policy();
    env.act_as("six-actions", &six);
    let run = env.start_runner(&only_template);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error()
            .contains("needs ec2:DescribeLaunchTemplateVersions")
            && run.error().contains("--optional"),
        "{}",
        run.error()
    );
    let doctor = env.run_app(&["doctor"], &only_template);
    assert_eq!(doctor.code, 1, "{}", doctor.all());
    assert!(
        doctor.stdout.lines().any(
            |l| l.starts_with("[FAIL] ec2:DescribeLaunchTemplateVersions")
                && l.contains("needs ec2:DescribeLaunchTemplateVersions")
        ),
        "{}",
        doctor.stdout
    );
    env.aws_key = ("testing".into(), "testing".into());
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}

/// CreateLaunchTemplate reserves no prefix: a template may be named `lt-…`.
/// Only `lt-` and 17 hex digits is an id; anything else is looked up by name.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html
#[test]
fn a_launch_template_named_like_an_id_is_found_by_its_name() {
    use aws_sdk_ec2::types::RequestLaunchTemplateData;
    let mut env = Env::start();
    let data = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
        .build();
    let (id, _) = env.launch_template("lt-build", data);
    assert!(id.starts_with("lt-") && id != "lt-build", "{id}");
    let policy = env.run(&["policy", "--optional"], &[]);
    policy.assert_ok();
    env.act_as(
        "template-user",
        &serde_json::from_str(&policy.stdout).unwrap(),
    );
    let run = env.start_runner(&[
        ("INPUT_LAUNCH_TEMPLATE", "lt-build"),
        ("INPUT_IMAGE_ID", ""),
        ("INPUT_INSTANCE_TYPES", ""),
    ]);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("m7i.large"),
        "the template named lt-build supplied the type"
    );
}

#[test]
fn a_template_data_volume_keeps_its_settings_however_ec2_combines_mappings() {
    use aws_sdk_ec2::types::{
        LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
        RequestLaunchTemplateData, VolumeType,
    };
    // EC2's documentation says nested structures merge, not whether a
    // mapping merges field by field or the request's entry replaces the
    // template's whole: the stand-in does either, and the launch must be
    // right both ways.
    for mode in ["entry", "fields"] {
        let env = Env::start();
        env.shim_config(json!({"template_mapping_merge": mode}));
        let volume = |device: &str, size: i32, kind: VolumeType| {
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(device)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(size)
                        .volume_type(kind)
                        .build(),
                )
                .build()
        };
        // A data volume the template leaves behind on termination, and a
        // size and type for the image's root (/dev/sda1), which the tool's
        // root mapping replaces.
        let data = RequestLaunchTemplateData::builder()
            .image_id(crate::harness::AMI)
            .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
            .block_device_mappings(volume("/dev/xvdf", 40, VolumeType::Standard))
            .block_device_mappings(volume("/dev/sda1", 50, VolumeType::Gp2))
            .build();
        env.launch_template("with-data", data);
        let run = env.start_runner(&[
            ("INPUT_LAUNCH_TEMPLATE", "with-data"),
            ("INPUT_IMAGE_ID", ""),
            ("INPUT_INSTANCE_TYPES", ""),
            ("INPUT_ROOT_DEVICE_NAME", "/dev/sda1"),
        ]);
        run.assert_ok();
        let instance = env.live_instances().pop().unwrap();
        let id = instance.instance_id().unwrap();
        let volumes = env.volumes_of(id);
        assert!(
            volumes
                .iter()
                .any(|v| v.0 == "/dev/xvdf" && v.1 == 40 && v.2 == "standard"),
            "{mode}: the template's data volume, as the template made it: {volumes:?}"
        );
        assert!(
            volumes
                .iter()
                .any(|v| v.0 == "/dev/sda1" && v.2 == "gp3" && v.5),
            "{mode}: the tool's encrypted gp3 root: {volumes:?}"
        );
        let data_volume = instance
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name() == Some("/dev/xvdf"))
            .and_then(|m| m.ebs())
            .unwrap();
        assert_eq!(
            data_volume.delete_on_termination(),
            Some(true),
            "{mode}: nothing bills on after the machine"
        );
        assert!(
            run.stdout.contains(
                "::warning::the launch template's mapping for /dev/sda1 (50 GiB, gp2) is the image's root volume"
            ),
            "{mode}: {}",
            run.stdout
        );
    }
}

/// The calls IAM refused since the last `clear_calls`.
fn denied_calls(env: &Env) -> Vec<Value> {
    env.ec2_calls()
        .into_iter()
        .filter(|c| c["error_code"] == "UnauthorizedOperation" || c["error_code"] == "AccessDenied")
        .collect()
}

#[test]
fn a_template_that_tags_network_interfaces_needs_the_statement_policy_prints_for_it() {
    use aws_sdk_ec2::types::{
        LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    };
    // EC2 authorises ec2:CreateTags for a template's tags as for the
    // request's; the default statement tags only instances and volumes.
    let mut env = Env::start();
    let team = |kind: ResourceType| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(kind)
            .tags(Tag::builder().key("team").value("ci").build())
            .build()
    };
    let data = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
        .tag_specifications(team(ResourceType::Instance))
        .tag_specifications(team(ResourceType::NetworkInterface))
        .build();
    env.launch_template("tagged", data);
    let inputs = [
        ("INPUT_LAUNCH_TEMPLATE", "tagged"),
        ("INPUT_IMAGE_ID", ""),
        ("INPUT_INSTANCE_TYPES", ""),
    ];
    let policy = |args: &[&str]| -> Value {
        let run = env.run(args, &[]);
        run.assert_ok();
        serde_json::from_str(&run.stdout).unwrap()
    };
    let (reads_only, with_template) = (
        policy(&["policy", "--optional"]),
        policy(&["policy", "--launch-template"]),
    );

    env.act_as("reads-only", &reads_only);
    let doctor = env.run_app(&["doctor"], &inputs);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] ec2:RunInstances")
                && l.contains("network-interface/*")
                && l.contains("policy --launch-template")),
        "doctor names the statement the template's tags need:\n{}",
        doctor.all()
    );
    let run = env.start_runner(&inputs);
    assert_ne!(run.code, 0, "{}", run.all());
    let warned = run
        .stderr
        .lines()
        .position(|l| l.contains("it tags network-interface at launch"));
    let launched = run.stderr.lines().position(|l| l.contains("launching"));
    assert!(
        matches!((warned, launched), (Some(w), Some(l)) if w < l),
        "said before the launch:\n{}",
        run.all()
    );
    assert!(
        run.error()
            .contains("ec2:CreateTags on arn:aws:ec2:*:*:network-interface/*")
            && run
                .error()
                .contains("`ec2-spot-runner policy --launch-template` prints it"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty(), "nothing runs");

    env.act_as("with-template", &with_template);
    env.clear_calls();
    let run = env.start_runner(&inputs);
    run.assert_ok();
    assert!(denied_calls(&env).is_empty(), "{:#?}", denied_calls(&env));
    let instance = env.live_instances().pop().expect("launched");
    assert_eq!(crate::harness::tag(&instance, "team"), Some("ci"));
    assert_eq!(
        crate::harness::tag(&instance, "ec2-spot-runner:managed"),
        Some("true")
    );
}

#[test]
fn a_templates_tags_count_toward_ec2s_fifty_before_anything_is_launched() {
    use aws_sdk_ec2::types::{
        LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    };
    let env = Env::start();
    let many = (0..36).fold(
        LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Instance),
        |spec, i| spec.tags(Tag::builder().key(format!("cost-{i}")).value("x").build()),
    );
    let data = RequestLaunchTemplateData::builder()
        .image_id(crate::harness::AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::M7iLarge)
        .tag_specifications(many.build())
        .build();
    env.launch_template("many-tags", data);
    // 36 + the tool's 13 = 49 fit; one more from `tags` would not.
    let inputs = |tags: &'static str| {
        [
            ("INPUT_LAUNCH_TEMPLATE", "many-tags"),
            ("INPUT_IMAGE_ID", ""),
            ("INPUT_INSTANCE_TYPES", ""),
            ("INPUT_TAGS", tags),
        ]
    };
    env.clear_calls();
    let run = env.start_runner(&inputs("owner=me,team=ci"));
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(
        run.error()
            .contains("tags the instance with 36 keys of its own")
            && run.error().contains("up to 51 tags, and EC2 allows 50")
            && run.error().contains("Give at most 1 in `tags`"),
        "{}",
        run.error()
    );
    assert!(
        !env.ec2_actions().iter().any(|a| a == "RunInstances"),
        "refused before any launch: {:?}",
        env.ec2_actions()
    );
    env.start_runner(&inputs("owner=me")).assert_ok();
    let instance = env.live_instances().pop().expect("launched");
    let user_tags = instance
        .tags()
        .iter()
        .filter(|t| !t.key().unwrap_or_default().starts_with("aws:"))
        .count();
    assert!(user_tags <= 50, "{user_tags}");
}
