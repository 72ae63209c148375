//! `doctor`: checks a setup before the first real run, without launching
//! anything. AWS: credentials and region resolve, the exact launch request
//! a start would send passes a `DryRun` (permissions, tag-on-create, SCPs
//! on IMDSv2 or encryption), each other action of the six is allowed, and
//! the optional extras are reported.
//! GitHub: the credential works and may manage runners for the scope. It
//! prints a checklist with a fix for every failure.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::InstanceType as Ec2InstanceType;

use crate::aws;
use crate::aws::images::{self, Lookup};
use crate::aws::launch::{self, Learned};
use crate::aws::placement::{self, Candidate, Market};
use crate::aws::templates;
use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::github;
use crate::modes::start;
use crate::settings::{DoctorSettings, ImageSource, MarketPolicy, Scope, StartSettings};

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Fine.
    Pass(String),
    /// Costs money or speed, but a start still works.
    Warn(String),
    /// A start would fail.
    Fail(String),
}

/// The checklist as it is filled in.
#[derive(Default)]
struct Checklist {
    lines: Vec<(String, Outcome)>,
}

impl Checklist {
    fn add(&mut self, what: impl Into<String>, outcome: Outcome) {
        let what = what.into();
        let (mark, text) = match &outcome {
            Outcome::Pass(t) => ("ok  ", t),
            Outcome::Warn(t) => ("warn", t),
            Outcome::Fail(t) => ("FAIL", t),
        };
        println!("[{mark}] {what}: {text}");
        self.lines.push((what, outcome));
    }

    fn failures(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Fail(_)))
            .map(|(w, _)| w.as_str())
            .collect()
    }
}

/// Reads a DryRun answer: `DryRunOperation` means allowed.
fn dry_run<E, R>(action: &str, result: Result<impl Sized, SdkError<E, R>>) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let denied = |detail: &str| {
        Outcome::Fail(format!(
            "denied ({detail}); add ec2:{action} to the IAM policy (`ec2-spot-runner policy` prints it)"
        ))
    };
    match result {
        Ok(_) => Outcome::Pass("allowed".into()),
        Err(err) => match err.code() {
            Some("DryRunOperation") => Outcome::Pass("allowed".into()),
            Some("UnauthorizedOperation" | "AccessDenied")
                if err.message().is_some_and(|m| m.contains("iam:PassRole")) =>
            {
                Outcome::Fail(
                    "denied: these credentials may not pass the instance profile's role to EC2; allow iam:PassRole on it (`ec2-spot-runner policy --pass-role ROLE_ARN` prints the statement)".into(),
                )
            }
            Some("UnauthorizedOperation" | "AccessDenied") => denied(err.code().unwrap_or_default()),
            Some("AuthFailure.ServiceLinkedRoleCreationNotPermitted") => Outcome::Fail(
                "the EC2 Spot service-linked role is missing; create it once with `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`".into(),
            ),
            Some(code) if code.starts_with("InvalidAMIID") => Outcome::Fail(format!(
                "allowed, but the image was refused ({code}); check `image-id` exists in this region"
            )),
            Some(code) if code.starts_with("Invalid") && code.ends_with("NotFound") => {
                // The permission check passed; only the placeholder id was unknown.
                Outcome::Pass("allowed".into())
            }
            _ => Outcome::Warn(format!(
                "could not be checked: {}",
                aws::AwsError::from_sdk("DryRun", &err).detail
            )),
        },
    }
}

/// A placeholder id: DryRun checks the permission before it looks the resource up.
const NO_INSTANCE: &str = "i-00000000000000000";
const NO_VOLUME: &str = "vol-00000000000000000";
const NO_IMAGE: &str = "ami-00000000000000000";
const NO_SNAPSHOT: &str = "snap-00000000000000000";

async fn check_aws(client: &Client, settings: &mut DoctorSettings, list: &mut Checklist) {
    let instance_type = settings
        .instance_type
        .as_ref()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| "t3.micro".into());
    match &mut settings.start {
        Some(start) => check_launch(client, start, list).await,
        None => list.add(
            "ec2:RunInstances, ec2:CreateTags",
            Outcome::Warn(
                "not checked: give `image-id` and `instance-types` (and the other start inputs) to dry-run the launch a start would send".into(),
            ),
        ),
    }
    let describe = client.describe_instances().dry_run(true).send().await;
    list.add(
        "ec2:DescribeInstances",
        dry_run("DescribeInstances", describe),
    );
    let modify = client
        .modify_volume()
        .dry_run(true)
        .volume_id(NO_VOLUME)
        .iops(3000)
        .send()
        .await;
    match dry_run("ModifyVolume", modify) {
        // Without ModifyVolume a start works; the boot boost just stays on.
        Outcome::Fail(text) => list.add(
            "ec2:ModifyVolume",
            Outcome::Warn(format!(
                "{text}; without it the boot boost is never dropped (or set boot-boost: false)"
            )),
        ),
        other => list.add("ec2:ModifyVolume", other),
    }
    let terminate = client
        .terminate_instances()
        .dry_run(true)
        .instance_ids(NO_INSTANCE)
        .send()
        .await;
    list.add(
        "ec2:TerminateInstances",
        dry_run("TerminateInstances", terminate),
    );
    let prices = client
        .describe_spot_price_history()
        .dry_run(true)
        .instance_types(Ec2InstanceType::from(instance_type.as_str()))
        .send()
        .await;
    list.add(
        "ec2:DescribeSpotPriceHistory",
        dry_run("DescribeSpotPriceHistory", prices),
    );
    let console = client
        .get_console_output()
        .dry_run(true)
        .instance_id(NO_INSTANCE)
        .send()
        .await;
    let listed = settings
        .start
        .as_ref()
        .is_some_and(|s| s.extras.get_console_output);
    list.add(
        "ec2:GetConsoleOutput (optional; probed by doctor)",
        match dry_run("GetConsoleOutput", console) {
            Outcome::Fail(_) => optional(listed, false, gain("ec2:GetConsoleOutput")),
            Outcome::Pass(_) => optional(listed, true, gain("ec2:GetConsoleOutput")),
            other => other,
        },
    );
}

/// The bake's own actions, each dry-run: a DryRun is authorised before EC2
/// looks the placeholder resource up. Tags at creation are part of the
/// CreateImage dry run, as they are of the real one.
async fn check_bake(client: &Client, list: &mut Checklist) {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let fix = "`ec2-spot-runner policy --bake` prints the statements";
    let mut add = |what: &str, outcome: Outcome| {
        let outcome = match outcome {
            Outcome::Fail(text) => Outcome::Fail(format!("{text}; the bake needs it: {fix}")),
            other => other,
        };
        list.add(format!("{what} (bake)"), outcome);
    };
    let managed = Tag::builder()
        .key(crate::tags::MANAGED)
        .value("true")
        .build();
    let spec = |kind: ResourceType| {
        TagSpecification::builder()
            .resource_type(kind)
            .tags(managed.clone())
            .build()
    };
    let image = client
        .create_image()
        .dry_run(true)
        .instance_id(NO_INSTANCE)
        .name("ec2-spot-runner-doctor")
        .tag_specifications(spec(ResourceType::Image))
        .tag_specifications(spec(ResourceType::Snapshot))
        .send()
        .await;
    add(
        "ec2:CreateImage + ec2:CreateTags",
        dry_run("CreateImage", image),
    );
    let images = client
        .describe_images()
        .dry_run(true)
        .owners("self")
        .send()
        .await;
    add("ec2:DescribeImages", dry_run("DescribeImages", images));
    let deregister = client
        .deregister_image()
        .dry_run(true)
        .image_id(NO_IMAGE)
        .send()
        .await;
    add(
        "ec2:DeregisterImage",
        dry_run("DeregisterImage", deregister),
    );
    let snapshot = client
        .delete_snapshot()
        .dry_run(true)
        .snapshot_id(NO_SNAPSHOT)
        .send()
        .await;
    add("ec2:DeleteSnapshot", dry_run("DeleteSnapshot", snapshot));
    let console = client
        .get_console_output()
        .dry_run(true)
        .instance_id(NO_INSTANCE)
        .send()
        .await;
    add(
        "ec2:GetConsoleOutput (the builder's verdict)",
        dry_run("GetConsoleOutput", console),
    );
}

/// What start gains from an optional action, as `policy` explains it.
fn gain(action: &str) -> &'static str {
    crate::modes::policy::OPTIONAL
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, why)| *why)
        .unwrap_or_default()
}

/// How an optional action stands: granted or not (as doctor's probe found
/// it), and listed in `extra-permissions` or not. Only a listed action
/// that is denied is a failure: every start would make a denied call.
fn optional(listed: bool, granted: bool, gain: &str) -> Outcome {
    match (listed, granted) {
        (true, true) => Outcome::Pass(format!(
            "allowed and listed in extra-permissions: start will {gain}"
        )),
        (true, false) => Outcome::Fail(
            "listed in extra-permissions but denied: every start would make a call IAM denies. Grant it (`ec2-spot-runner policy --optional` prints the statements) or remove it from extra-permissions".into(),
        ),
        (false, true) => Outcome::Pass(format!(
            "allowed but not listed in extra-permissions, so start never calls it; list it there to {gain}"
        )),
        (false, false) => Outcome::Pass(format!(
            "not granted and not listed: start never calls it (grant it and list it in extra-permissions to {gain})"
        )),
    }
}

/// Dry-runs the RunInstances request a start with these inputs would send
/// (same builder: IMDSv2, the encrypted gp3 root mapping, tags on instance
/// and volumes, terminate on shutdown, the market), so an SCP or a policy
/// condition on any of them shows up as what it is. EC2 authorises the
/// tags' ec2:CreateTags with the same request, so that is checked too.
async fn check_launch(client: &Client, start: &mut StartSettings, list: &mut Checklist) {
    if let Some(wanted) = start.instance.launch_template.clone() {
        let what = "ec2:DescribeLaunchTemplateVersions (needed for launch-template)";
        let template = match templates::read(client, &wanted).await {
            Ok(template) => template,
            Err(err) => {
                list.add(what, Outcome::Fail(err.to_string()));
                return;
            }
        };
        match templates::apply(start, &template) {
            Ok(applied) => list.add(
                what,
                Outcome::Pass(format!(
                    "allowed: {}",
                    templates::announce(&template, &applied)
                )),
            ),
            Err(why) => {
                list.add(what, Outcome::Fail(why));
                return;
            }
        }
    }
    let start = &*start;
    let instance = &start.instance;
    let Some(source) = &instance.image else {
        return;
    };
    if let ImageSource::Parameter(name) = source {
        list.add(
            "ssm:GetParameter (needed for resolve:ssm)",
            match images::parameter(name).await {
                Ok(id) => Outcome::Pass(format!("allowed: {name} holds {id}")),
                Err(err) => Outcome::Fail(err.to_string()),
            },
        );
    }
    // The image lookup. Doctor probes ec2:DescribeImages even when start
    // would not call it (an image-id without it in extra-permissions), and
    // says so; the launch below is dry-run with what start would know.
    let listed = start.extras.describe_images;
    let (image_id, image) =
        match images::resolve(client, source, &instance.instance_types, true).await {
            Ok((id, lookup)) => {
                if let ImageSource::Name { .. } = source {
                    if let Lookup::Found(found) = &lookup {
                        list.add(
                            "ec2:DescribeImages (needed for image-name)",
                            Outcome::Pass(format!(
                                "allowed: {id}, root device {}, architecture {}",
                                found.root_device_name.as_deref().unwrap_or("unknown"),
                                found.architecture.as_deref().unwrap_or("unknown")
                            )),
                        );
                    }
                    (id, lookup)
                } else {
                    list.add(
                        "ec2:DescribeImages (optional with image-id; probed by doctor)",
                        optional(
                            listed,
                            matches!(lookup, Lookup::Found(_)),
                            gain("ec2:DescribeImages"),
                        ),
                    );
                    match lookup {
                        Lookup::Found(_) if listed => (id, lookup),
                        _ => (id, Lookup::Unavailable(images::NOT_LISTED.to_owned())),
                    }
                }
            }
            Err(err) => {
                list.add("image", Outcome::Fail(err.to_string()));
                return;
            }
        };
    let (types, root) = match start::image_facts(start, &image_id, image) {
        Ok(facts) => facts,
        Err(err) => {
            list.add("image-id", Outcome::Fail(err.to_string()));
            return;
        }
    };
    if !instance.subnet_ids.is_empty() {
        let zones = placement::subnet_zones(client, &instance.subnet_ids, true).await;
        list.add(
            "ec2:DescribeSubnets (optional with subnet-ids; probed by doctor)",
            optional(
                start.extras.describe_subnets,
                zones.iter().all(|(_, z)| z.is_some()),
                gain("ec2:DescribeSubnets"),
            ),
        );
    }
    let learned = Learned::new(root);
    let spec = match start::launch_spec(
        start,
        &image_id,
        &learned,
        &instance.runner_release,
        "doctor",
        &format!("{}-1", instance.runner_prefix),
        "doctor-dry-run",
    ) {
        Ok(spec) => spec,
        Err(err) => {
            list.add("ec2:RunInstances", Outcome::Fail(err.to_string()));
            return;
        }
    };
    let market = if start.market == MarketPolicy::OnDemand {
        Market::OnDemand
    } else {
        Market::Spot
    };
    let Some(instance_type) = types.first() else {
        return;
    };
    let candidate = Candidate {
        instance_type: instance_type.clone(),
        zone: None,
        subnet: instance.subnet_ids.first().cloned(),
        market,
        spot_price: None,
    };
    let root = learned.root();
    let result = launch::request(client, &spec, &candidate, &root)
        .dry_run(true)
        .send()
        .await;
    list.add(
        format!(
            "ec2:RunInstances + ec2:CreateTags (the request start sends: {}, IMDSv2, encrypted gp3 root at {}, tags on instance and volumes)",
            launch::describe(&candidate),
            root.name()
        ),
        match result {
            Err(err)
                if !instance.template_tagged.is_empty()
                    && templates::refuses_template_tags(&aws::AwsError::from_sdk(
                        "RunInstances",
                        &err,
                    )) =>
            {
                Outcome::Fail(format!(
                    "denied; {}",
                    templates::tagging_hint(&instance.template_tagged)
                ))
            }
            result => dry_run("RunInstances", result),
        },
    );
}

async fn check_github(settings: &DoctorSettings, list: &mut Checklist) {
    let scope = settings.github.scope.clone();
    let gh = match github::connect(&settings.github).await {
        Ok(gh) => {
            list.add(
                "GitHub credential",
                Outcome::Pass(format!("authenticated for {scope}")),
            );
            gh
        }
        Err(err) => {
            list.add("GitHub credential", Outcome::Fail(err.to_string()));
            return;
        }
    };
    if let Some(permissions) = gh.permissions() {
        let (name, wanted) = match &scope {
            Scope::Repository(_) => ("administration", "Administration"),
            Scope::Organization(_) => ("organization_self_hosted_runners", "Self-hosted runners"),
        };
        match permissions.get(name).map(String::as_str) {
            Some("write" | "admin") => list.add("GitHub App permission", Outcome::Pass(format!("{wanted}: write"))),
            other => list.add(
                "GitHub App permission",
                Outcome::Fail(format!(
                    "{wanted} is {}; the App needs {wanted}: Read and write to create JIT runners (App settings → Permissions, then accept the change on the installation)",
                    other.unwrap_or("not granted")
                )),
            ),
        }
        let what = "GitHub App permission Actions (for mode rerun)";
        match permissions.get("actions").map(String::as_str) {
            Some("write" | "admin") => list.add(
                what,
                Outcome::Pass("Actions: write: rerun may re-run a job".into()),
            ),
            other => list.add(
                what,
                Outcome::Warn(format!(
                    "Actions is {}; only `mode: rerun` needs it, at Read and write (App settings → Permissions, then accept the change on the installation)",
                    other.unwrap_or("not granted")
                )),
            ),
        }
    }
    match gh.list_runners().await {
        Ok(runners) => list.add(
            "GitHub runner access",
            Outcome::Pass(format!(
                "can list the {} runner(s) of {scope}",
                runners.len()
            )),
        ),
        Err(err) => list.add("GitHub runner access", Outcome::Fail(err.to_string())),
    }
}

/// Runs `doctor`; exits 1 when anything would stop a start.
pub(crate) async fn run(args: DoctorArgs) -> Result<(), Error> {
    let mut settings = DoctorSettings::from_args(&args)?;
    let mut list = Checklist::default();
    match aws::ec2_client(settings.region.clone()).await {
        Ok(client) => {
            list.add(
                "AWS region",
                Outcome::Pass(
                    client
                        .config()
                        .region()
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                ),
            );
            check_aws(&client, &mut settings, &mut list).await;
            if settings.bake {
                check_bake(&client, &mut list).await;
            }
        }
        Err(err) => list.add("AWS region", Outcome::Fail(err.to_string())),
    }
    check_github(&settings, &mut list).await;
    let failures = list.failures();
    if failures.is_empty() {
        println!("\nAll checks passed: a start should work with this setup.");
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "doctor found {} problem(s) that would stop a start: {}",
            failures.len(),
            failures.join(", ")
        )))
    }
}
