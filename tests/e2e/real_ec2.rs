//! EC2 as it really behaves, against a shim as strict as EC2 (each rule is
//! cited in testenv/ec2_shim.py): images with either root device name,
//! eventual consistency after a launch, zones without a default subnet,
//! Local Zones in the price history, first spot launches in a new account,
//! instances that end at launch, both Linux price names, mistyped types,
//! a shared label, and runners the tool did not register.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{AMI, Env};

/// moto's Amazon Linux image: root device /dev/xvda, x86_64, 15 GiB snapshot.
const XVDA_AMI: &str = "ami-760aaa0f";
/// moto's Amazon Linux 2022 arm64 image.
const ARM_AMI: &str = "ami-0e9271c829888680e";
/// moto's Windows Server 2016 image.
const WINDOWS_AMI: &str = "ami-b7e93bce";
/// The input that lets start describe an `image-id` (granted to the admin key).
const DESCRIBE: (&str, &str) = ("INPUT_EXTRA_PERMISSIONS", "ec2:DescribeImages");
/// The size of every moto image's root snapshot, in GiB.
const SNAPSHOT_GIB: i32 = 15;

/// From now on the binary holds exactly the policy `policy` prints: no
/// ec2:DescribeImages, no ec2:DescribeSubnets.
fn six_actions(env: &mut Env) {
    let doc = env.policy();
    env.act_as("six-actions", &doc);
}

/// Back to the admin key, to inspect.
fn admin(env: &mut Env) {
    env.aws_key = ("testing".into(), "testing".into());
}

fn runs(env: &Env, action: &str) -> usize {
    env.ec2_actions().iter().filter(|a| *a == action).count()
}

#[test]
fn any_linux_image_starts_with_the_defaults_and_has_exactly_one_volume() {
    for (ami, root) in [(AMI, "/dev/sda1"), (XVDA_AMI, "/dev/xvda")] {
        // Only the six actions: the root device comes from EC2's answers.
        let mut env = Env::start();
        six_actions(&mut env);
        let run = env.start_runner(&[("INPUT_IMAGE_ID", ami)]);
        run.assert_ok();
        let id = run.output("instance-id").to_owned();
        admin(&mut env);
        let attempts = env.launch_attempts();
        let last = attempts.last().unwrap();
        assert_eq!(last[3], root, "{ami}: the last attempt mapped the root");
        assert!(
            attempts.iter().all(|a| a[4] == "-"),
            "{ami}: no size while the root device is unknown: {attempts:?}"
        );
        // The root, as the image made it but gp3, encrypted, boost dropped.
        assert_eq!(
            env.volumes_of(&id),
            [(root.to_owned(), SNAPSHOT_GIB, "gp3".into(), 3000, 125, true)],
            "{ami}: exactly one volume, the root"
        );
        let instance = env
            .instances()
            .into_iter()
            .find(|i| i.instance_id() == Some(id.as_str()))
            .unwrap();
        assert_eq!(instance.root_device_name(), Some(root));

        // With ec2:DescribeImages (granted to the admin key, and listed)
        // and a size: one attempt, sized, at the right device.
        let env = Env::start();
        let run = env.start_runner(&[
            ("INPUT_IMAGE_ID", ami),
            ("INPUT_VOLUME_SIZE", "30"),
            DESCRIBE,
        ]);
        run.assert_ok();
        let id = run.output("instance-id").to_owned();
        assert_eq!(runs(&env, "DescribeImages"), 1);
        let attempts = env.launch_attempts();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(
            (attempts[0][3].as_str(), attempts[0][4].as_str()),
            (root, "30")
        );
        assert_eq!(
            env.volumes_of(&id),
            [(root.to_owned(), 30, "gp3".into(), 3000, 125, true)],
            "{ami}: exactly one volume, resized"
        );
    }
}

#[test]
fn a_volume_size_that_cannot_be_placed_safely_is_refused_before_launch() {
    let mut env = Env::start();
    six_actions(&mut env);
    let run = env.start_runner(&[("INPUT_IMAGE_ID", XVDA_AMI), ("INPUT_VOLUME_SIZE", "30")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let error = run
        .single_error()
        .unwrap_or_else(|| panic!("{}", run.all()));
    assert!(
        error.contains("volume-size 30")
            && error.contains("root-device-name")
            && error.contains("ec2:DescribeImages"),
        "{error}"
    );
    assert_eq!(runs(&env, "RunInstances"), 0, "nothing launched");
    admin(&mut env);
    assert!(env.instances().is_empty());
    assert!(env.runners().is_empty(), "the JIT runner was removed");
}

#[test]
fn a_wrong_root_device_name_is_refused_or_undone_and_named() {
    // Sized, without DescribeImages: EC2 accepts it and adds a second volume;
    // the start sees the instance's real root device, undoes and says so.
    let mut env = Env::start();
    six_actions(&mut env);
    let wrong = [
        ("INPUT_IMAGE_ID", XVDA_AMI),
        ("INPUT_ROOT_DEVICE_NAME", "/dev/sda1"),
        ("INPUT_VOLUME_SIZE", "30"),
    ];
    let run = env.start_runner(&wrong);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("Set root-device-name: /dev/xvda"),
        "{}",
        run.error()
    );
    assert_eq!(runs(&env, "RunInstances"), 1);
    admin(&mut env);
    assert!(env.live_instances().is_empty(), "the launch was undone");
    assert!(env.runners().is_empty());

    // With DescribeImages the mismatch is caught before anything is launched.
    let env = Env::start();
    let run = env.start_runner(&[&wrong[..], &[DESCRIBE]].concat());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.error().contains("/dev/xvda"), "{}", run.error());
    assert_eq!(runs(&env, "RunInstances"), 0);

    // Unsized: EC2 refuses the wrong name itself, and the error names the input.
    let mut env = Env::start();
    six_actions(&mut env);
    let run = env.start_runner(&[
        ("INPUT_IMAGE_ID", XVDA_AMI),
        ("INPUT_ROOT_DEVICE_NAME", "/dev/sda1"),
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("InvalidBlockDeviceMapping")
            && run
                .error()
                .contains("root-device-name /dev/sda1 is not the root device"),
        "{}",
        run.error()
    );
    admin(&mut env);
    assert!(env.live_instances().is_empty());
}

#[test]
fn images_that_cannot_run_on_the_types_fail_before_launch() {
    let env = Env::start();
    let run = env.start_runner(&[("INPUT_IMAGE_ID", ARM_AMI), DESCRIBE]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("is for arm64")
            && run.error().contains("c7i.large, c6i.large")
            && run.error().contains("c7g"),
        "{}",
        run.error()
    );
    let run = env.start_runner(&[("INPUT_IMAGE_ID", WINDOWS_AMI), DESCRIBE]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.error().contains("Windows image"), "{}", run.error());
    assert_eq!(runs(&env, "RunInstances"), 0, "nothing was launched");
    assert!(env.runners().is_empty());

    // Mixed types: the ones that fit are used, the others named.
    let run = env.start_runner(&[
        ("INPUT_IMAGE_ID", ARM_AMI),
        ("INPUT_INSTANCE_TYPES", "c7i.large,c7g.large"),
        DESCRIBE,
    ]);
    run.assert_ok();
    assert_eq!(run.output("instance-type"), "c7g.large");
    assert!(
        run.stdout
            .contains("::warning::instance-types c7i.large cannot run image"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_undo_keeps_terminating_an_instance_ec2_does_not_show_yet() {
    let env = Env::start();
    // EC2 does not know the new id for 2 s; then the wait fails for good.
    env.shim_config(json!({"not_found_seconds": 2.0}));
    env.faults(
        json!([{"action": "DescribeInstances", "status": 400, "code": "InvalidParameterValue",
                        "message": "Injected: the wait fails"}]),
    );
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = env
        .ec2_calls()
        .iter()
        .find(|c| c["action"] == "RunInstances")
        .map(|_| ())
        .and_then(|()| {
            env.instances()
                .first()
                .and_then(|i| i.instance_id().map(str::to_owned))
        })
        .expect("one instance was launched");
    assert_eq!(env.state_of(&id), "terminated", "{}", run.all());
    let answers: Vec<String> = env
        .ec2_calls()
        .iter()
        .filter(|c| c["action"] == "TerminateInstances")
        .map(|c| c["error_code"].as_str().unwrap_or("ok").to_owned())
        .collect();
    assert_eq!(
        answers.first().map(String::as_str),
        Some("InvalidInstanceID.NotFound")
    );
    assert_eq!(
        answers.last().map(String::as_str),
        Some("ok"),
        "{answers:?}"
    );
    assert!(env.runners().is_empty());
}

#[test]
fn a_cancelled_start_names_what_it_could_not_confirm_and_stop_finishes_it() {
    let env = Env::start();
    env.shim_config(json!({"not_found_seconds": 11.0, "pending_seconds": 60}));
    let mut cmd = env.command(&["start"]);
    for (k, v) in env.app_env() {
        cmd.env(k, v);
    }
    cmd.env("INPUT_IMAGE_ID", AMI)
        .env("INPUT_INSTANCE_TYPES", "c7i.large")
        .env("GITHUB_OUTPUT", env.dir.path().join("cancel-output"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let began = Instant::now();
    while !env
        .ec2_calls()
        .iter()
        .any(|c| c["action"] == "RunInstances" && c["status"] == 200)
    {
        assert!(began.elapsed() < Duration::from_secs(30), "no launch");
        std::thread::sleep(Duration::from_millis(20));
    }
    let launched = Instant::now();
    let (took, text) = crate::harness::sigint_inside_the_window(child);
    let outputs = crate::harness::parse_outputs(
        &std::fs::read_to_string(env.dir.path().join("cancel-output")).unwrap(),
    );
    let label = outputs["label"].clone();
    assert!(
        text.contains("could not confirm the termination of i-") && text.contains(&label),
        "{text}"
    );
    let live = env.live_instances();
    assert_eq!(live.len(), 1, "EC2 never showed it to the undo");
    // Once EC2 lists it, the stop job finds it by its label.
    let id = live[0].instance_id().unwrap();
    while !env.ec2_lists(id) {
        assert!(
            launched.elapsed() < Duration::from_secs(60),
            "EC2 never listed {id}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    env.stop_runner(&label, &[("INPUT_START_ID", &outputs["start-id"])])
        .assert_ok();
    assert!(env.live_instances().is_empty());
    eprintln!("SIGINT to exit with an instance EC2 does not show yet: {took:?}");
}

#[test]
fn zones_without_a_default_subnet_or_gp3_are_skipped_and_the_walk_goes_on() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0100"),
        ("c6i.large", "us-east-1a", "0.0200"),
        ("c7i.large", "us-east-1b", "0.0300"),
        ("c7i.large", "us-east-1c", "0.0400"),
    ]);
    env.delete_default_subnet("us-east-1a");
    env.faults(json!([{"action": "RunInstances", "match": {"Placement.AvailabilityZone": "us-east-1b"},
                        "code": "VolumeTypeNotAvailableInZone",
                        "message": "The volume type gp3 is not available in the availability zone us-east-1b."}]));
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(run.output("availability-zone"), "us-east-1c");
    let tried: Vec<(String, String)> = env
        .launch_attempts()
        .into_iter()
        .map(|a| (a[0].clone(), a[1].clone()))
        .collect();
    assert_eq!(
        tried,
        [
            ("c7i.large".to_owned(), "us-east-1a".to_owned()),
            ("c7i.large".to_owned(), "us-east-1b".to_owned()),
            ("c7i.large".to_owned(), "us-east-1c".to_owned()),
        ],
        "c6i.large in us-east-1a is skipped with its zone"
    );
    assert_eq!(env.live_instances().len(), 1);
}

#[test]
fn local_and_wavelength_zones_are_not_candidates_unless_named() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.large", "us-east-1-bos-1a", "0.0050"),
        ("c7i.large", "us-east-1-wl1-bos-wlz-1", "0.0060"),
        ("c7i.large", "us-east-1b", "0.0300"),
    ]);
    let run = env.start_runner(&[("INPUT_INSTANCE_TYPES", "c7i.large")]);
    run.assert_ok();
    assert_eq!(run.output("availability-zone"), "us-east-1b");
    assert_eq!(
        env.launch_attempts().len(),
        1,
        "{:?}",
        env.launch_attempts()
    );
}

#[test]
fn a_first_spot_launch_without_the_service_linked_role_goes_on_demand_or_fails_with_the_fix() {
    let fix = "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com";
    let env = Env::start();
    env.shim_config(json!({"spot_service_linked_role": false}));
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0300"),
        ("c6i.large", "us-east-1b", "0.0310"),
    ]);
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(run.output("market"), "on-demand");
    let warnings: Vec<&str> = run.stdout.lines().filter(|l| l.contains(fix)).collect();
    assert_eq!(warnings.len(), 1, "warned once: {}", run.stdout);
    let markets: Vec<String> = env
        .launch_attempts()
        .into_iter()
        .map(|a| a[2].clone())
        .collect();
    assert_eq!(
        markets,
        ["spot", "on-demand"],
        "one spot try, then on-demand"
    );

    let run = env.start_runner(&[("INPUT_MARKET", "spot")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.error().contains(fix), "{}", run.error());
    assert_eq!(
        env.live_instances().len(),
        1,
        "only the first start's machine"
    );
}

#[test]
fn an_instance_ended_at_launch_by_kms_gets_the_kms_fix() {
    let env = Env::start();
    env.launch_outcomes(json!([{"state_reason_code": "Client.InternalError",
                                "state_reason_message": "Client.InternalError: Client error on launch",
                                "after_seconds": 0.3}]));
    let run = env.start_runner(&[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let error = run.error();
    for needle in [
        "Client.InternalError",
        "KMS key",
        "kms:CreateGrant",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncrypt*",
        "kms:ViaService = ec2.us-east-1.amazonaws.com",
    ] {
        assert!(error.contains(needle), "{needle}: {error}");
    }
    assert!(!error.contains("capacity"), "{error}");
    assert!(env.live_instances().is_empty());
    assert!(env.runners().is_empty());
}

#[test]
fn spot_reclaimed_right_after_launch_moves_on_to_the_next_candidate() {
    let env = Env::start();
    env.spot_prices(&[
        ("c7i.large", "us-east-1a", "0.0100"),
        ("c7i.large", "us-east-1b", "0.0200"),
    ]);
    env.launch_outcomes(json!([{"match": {"Placement.AvailabilityZone": "us-east-1a"},
                                "state_reason_code": "Server.SpotInstanceTermination",
                                "state_reason_message": "Server.SpotInstanceTermination: Spot instance termination",
                                "after_seconds": 0.3, "times": 1}]));
    let run = env.start_runner(&[]);
    run.assert_ok();
    assert_eq!(run.output("availability-zone"), "us-east-1b");
    assert!(
        run.stdout.contains("Server.SpotInstanceTermination"),
        "{}",
        run.stdout
    );
    let live = env.live_instances();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].instance_id(), Some(run.output("instance-id")));
    assert_eq!(
        env.runners().len(),
        1,
        "one runner, carried over to the new machine"
    );
}

#[test]
fn both_linux_price_names_rank_and_a_mistyped_type_does_not_cost_the_ranking() {
    let env = Env::start();
    let row = |zone: &str, description: &str, price: &str| {
        json!({"instance_type": "c7i.large", "availability_zone": zone,
               "product_description": description, "price": price})
    };
    env.post(
        &format!("{}/_shim/spot-prices", env.ec2),
        &json!([
            row("us-east-1a", "Linux/UNIX (Amazon VPC)", "0.0200"),
            row("us-east-1b", "Linux/UNIX", "0.0300"),
            row("us-east-1b", "Linux/UNIX (Amazon VPC)", "0.0310"),
            row("us-east-1c", "Windows", "0.0010"),
        ]),
    );
    let run = env.start_runner(&[("INPUT_INSTANCE_TYPES", "c7i.lage,c7i.large")]);
    run.assert_ok();
    assert_eq!(runs(&env, "DescribeSpotPriceHistory"), 1, "one call");
    assert_eq!(run.output("availability-zone"), "us-east-1a");
    assert_eq!(run.output("price-per-hour"), "0.0200");
    assert!(
        run.stdout
            .contains("::warning::no spot price for c7i.lage in us-east-1"),
        "{}",
        run.stdout
    );
    assert_eq!(env.launch_attempts().len(), 1, "the ranked type went first");
}

#[test]
fn stop_with_the_start_id_leaves_another_run_sharing_the_label_alone() {
    let env = Env::start();
    let a = env.start_runner(&[("INPUT_LABEL", "shared")]);
    a.assert_ok();
    let b = env.start_runner(&[("INPUT_LABEL", "shared")]);
    b.assert_ok();
    assert_ne!(a.output("start-id"), b.output("start-id"));
    env.stop_runner("shared", &[("INPUT_START_ID", a.output("start-id"))])
        .assert_ok();
    assert_eq!(env.state_of(a.output("instance-id")), "terminated");
    assert_eq!(
        env.state_of(b.output("instance-id")),
        "running",
        "the other run's machine"
    );
    let names: Vec<String> = env
        .runners()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with(&format!("shared-{}-", b.output("start-id"))),
        "{names:?}"
    );

    // Someone's own runner named like the tool's, and a stop by label alone:
    // the other run's machine goes, the hand-made runner stays.
    env.create_foreign_runner("shared-1", "offline");
    env.stop_runner("shared", &[]).assert_ok();
    assert_eq!(env.state_of(b.output("instance-id")), "terminated");
    let names: Vec<String> = env
        .runners()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        ["shared-1"],
        "only runners the tool registered are deleted"
    );
}

#[test]
fn cleanup_deletes_only_runners_this_tool_registered() {
    let env = Env::start();
    // Someone else's runner, named the way the tool names its own.
    env.create_foreign_runner("ec2-4242-1-build-abcdef-1", "offline");
    // One of ours whose machine is gone (terminated behind the tool's back).
    let run = env.start_runner(&[]);
    run.assert_ok();
    env.terminate(run.output("instance-id"));
    let ours = format!("{}-1", run.output("label"));
    env.set_runner(&ours, "offline", false);
    let cleanup = env.run_app(&["cleanup"], &[("INPUT_SETTLE", "0s")]);
    cleanup.assert_ok();
    let names: Vec<String> = env
        .runners()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["ec2-4242-1-build-abcdef-1"], "{}", cleanup.all());
}

#[test]
fn doctor_dry_runs_exactly_the_request_start_sends() {
    let env = Env::start();
    let inputs = [
        ("INPUT_IMAGE_ID", XVDA_AMI),
        ("INPUT_INSTANCE_TYPES", "c7i.large"),
        ("INPUT_VOLUME_SIZE", "20"),
        ("INPUT_TAGS", "team=ci"),
        DESCRIBE,
    ];
    let doctor = env.run_app(&["doctor"], &inputs);
    doctor.assert_ok();
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[ok  ] ec2:DescribeImages (optional")
                && l.contains("allowed and listed in extra-permissions")),
        "{}",
        doctor.stdout
    );
    assert_eq!(
        runs(&env, "CreateTags"),
        0,
        "no standalone CreateTags probe"
    );
    let params = |dry: bool| -> Value {
        env.ec2_calls()
            .into_iter()
            .filter(|c| c["action"] == "RunInstances")
            .find(|c| (c["params"]["DryRun"] == "true") == dry)
            .map(|c| c["params"].clone())
            .expect("a RunInstances")
    };
    let checked = params(true);
    let run = env.start_runner(&inputs);
    run.assert_ok();
    let sent = params(false);
    // Everything but what differs per runner and per launch.
    let varies = |k: &str| {
        ["DryRun", "ClientToken", "UserData"].contains(&k)
            || k.starts_with("TagSpecification.") && k.ends_with(".Value")
            || k.starts_with("Placement.")
    };
    let keys = |v: &Value| -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = v
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !varies(k))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&checked), keys(&sent));
    assert_eq!(checked["MetadataOptions.HttpTokens"], "required");
    assert_eq!(checked["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");
    assert_eq!(checked["BlockDeviceMapping.1.Ebs.Encrypted"], "true");
}

#[test]
fn image_name_launches_the_newest_match_of_a_trusted_owner() {
    let env = Env::start();
    // Canonical's images in moto: Ubuntu 14.04 (ami-1e749f67) and 16.04.
    let named = [
        ("INPUT_IMAGE_ID", ""),
        (
            "INPUT_IMAGE_NAME",
            "ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*",
        ),
        ("INPUT_IMAGE_OWNER", "099720109477"),
    ];
    let run = env.start_runner(&named);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    assert_eq!(
        instance.image_id(),
        Some("ami-785db401"),
        "the newest: 16.04"
    );
    let lookup = env
        .ec2_calls()
        .into_iter()
        .find(|c| c["action"] == "DescribeImages")
        .unwrap();
    assert_eq!(
        lookup["params"]["Owner.1"], "099720109477",
        "only the trusted owner"
    );
    env.stop_runner(run.output("label"), &[]).assert_ok();

    // Another owner has none of that name: a clear error, nothing launched.
    let run = env.start_runner(&[
        ("INPUT_IMAGE_ID", ""),
        (
            "INPUT_IMAGE_NAME",
            "ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*",
        ),
        ("INPUT_IMAGE_OWNER", "111122223333"),
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("no available image named ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-* is owned by 111122223333 for x86_64"),
        "{}",
        run.error()
    );
    assert_eq!(
        runs(&env, "RunInstances"),
        1,
        "only the first start launched"
    );

    // With only the six actions, image-name names the permission it needs.
    let mut env = Env::start();
    six_actions(&mut env);
    let run = env.start_runner(&named);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("image-name needs ec2:DescribeImages"),
        "{}",
        run.error()
    );
    admin(&mut env);
    assert!(env.instances().is_empty());
}

#[test]
fn image_id_resolve_ssm_reads_the_parameter_and_checks_the_image_before_launch() {
    // AWS's public Amazon Linux 2023 parameter (moto carries it, with the
    // image it names), and a parameter of the user's own.
    let env = Env::start();
    let public = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64";
    let run = env.start_runner(&[("INPUT_IMAGE_ID", public)]);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    assert_eq!(instance.image_id(), Some("ami-03c3da4cfa8e8943a"));
    env.stop_runner(run.output("label"), &[]).assert_ok();
    // Canonical's Ubuntu 24.04 parameter (the stand-in's value: moto's
    // newest Canonical-owned image).
    let run = env.start_runner(&[(
        "INPUT_IMAGE_ID",
        "resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
    )]);
    run.assert_ok();
    assert!(
        env.live_instances()
            .iter()
            .any(|i| i.image_id() == Some("ami-785db401"))
    );
    env.stop_runner(run.output("label"), &[]).assert_ok();
    env.put_parameter("/ci/runner-image", AMI);
    // By name, and by its ARN with a version: how a parameter shared from
    // another account is named (here the account's own, which SSM takes the
    // same way).
    for name in [
        "/ci/runner-image",
        "arn:aws:ssm:us-east-1:123456789012:parameter/ci/runner-image:1",
    ] {
        let run = env.start_runner(&[("INPUT_IMAGE_ID", &format!("resolve:ssm:{name}"))]);
        run.assert_ok();
        assert!(
            env.live_instances()
                .iter()
                .any(|i| i.image_id() == Some(AMI)),
            "{name}"
        );
        env.stop_runner(run.output("label"), &[]).assert_ok();
    }

    // An arm64 image for x86_64 types fails before anything is launched.
    let launched = runs(&env, "RunInstances");
    let run = env.start_runner(&[
        (
            "INPUT_IMAGE_ID",
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64",
        ),
        DESCRIBE,
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.error().contains("arm64"), "{}", run.error());
    // A parameter that does not exist is named.
    let run = env.start_runner(&[("INPUT_IMAGE_ID", "resolve:ssm:/ci/no-such-image")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("ssm:GetParameter failed")
            && run.error().contains("/ci/no-such-image"),
        "{}",
        run.error()
    );
    assert_eq!(
        runs(&env, "RunInstances"),
        launched,
        "nothing more was launched"
    );

    // With only the six actions the parameter cannot be read: one error that
    // names ssm:GetParameter; the optional policy allows it, and doctor says so.
    let mut env = env;
    six_actions(&mut env);
    let run = env.start_runner(&[("INPUT_IMAGE_ID", public)]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("needs ssm:GetParameter") && run.error().contains("--optional"),
        "{}",
        run.error()
    );
    let doctor = env.run_app(
        &["doctor"],
        &[
            ("INPUT_IMAGE_ID", public),
            ("INPUT_INSTANCE_TYPES", "c7i.large"),
        ],
    );
    assert_eq!(doctor.code, 1, "{}", doctor.all());
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("[FAIL] ssm:GetParameter")
                && l.contains("needs ssm:GetParameter")),
        "{}",
        doctor.stdout
    );
    let optional = env.run(&["policy", "--optional"], &[]);
    optional.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&optional.stdout).unwrap();
    env.act_as("with-optional", &doc);
    let run = env.start_runner(&[("INPUT_IMAGE_ID", public)]);
    run.assert_ok();
    let doctor = env.run_app(
        &["doctor"],
        &[
            ("INPUT_IMAGE_ID", public),
            ("INPUT_INSTANCE_TYPES", "c7i.large"),
        ],
    );
    assert!(
        doctor.stdout.lines().any(
            |l| l.starts_with("[ok  ] ssm:GetParameter") && l.contains("ami-03c3da4cfa8e8943a")
        ),
        "{}",
        doctor.stdout
    );
    env.stop_runner(run.output("label"), &[]).assert_ok();
    admin(&mut env);
    assert!(env.live_instances().is_empty());
}

#[test]
fn security_groups_of_another_vpc_need_its_subnets() {
    // Groups of a VPC of the user's own, without subnet-ids: EC2 places the
    // machine in the default VPC and refuses. The error says what to give.
    let env = Env::start();
    let (subnet, group) = env.vpc_with_group("us-east-1a");
    let run = env.start_runner(&[("INPUT_SECURITY_GROUP_IDS", &group)]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.error().contains("belong to different networks")
            && run.error().contains("give subnet-ids of the groups' VPC"),
        "{}",
        run.error()
    );
    assert!(env.live_instances().is_empty());
    // With a subnet of that VPC it launches.
    let run = env.start_runner(&[
        ("INPUT_SECURITY_GROUP_IDS", &group),
        ("INPUT_SUBNET_IDS", &subnet),
    ]);
    run.assert_ok();
    let instance = env.live_instances().pop().unwrap();
    assert_eq!(instance.subnet_id(), Some(subnet.as_str()));
    env.stop_runner(run.output("label"), &[]).assert_ok();
}
