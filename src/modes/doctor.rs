//! `doctor`: checks a setup before the first real run, without launching
//! anything. AWS: credentials and region resolve, and each of the six
//! actions is allowed (EC2's `DryRun`, which checks permissions and stops).
//! GitHub: the credential works and may manage runners for the scope. It
//! prints a checklist with a fix for every failure.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    InstanceMarketOptionsRequest, InstanceType as Ec2InstanceType, MarketType, ResourceType, Tag,
    TagSpecification,
};

use crate::aws;
use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::github;
use crate::settings::{DoctorSettings, Scope};

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

async fn check_aws(client: &Client, settings: &DoctorSettings, list: &mut Checklist) {
    let instance_type = settings
        .instance_type
        .as_ref()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|| "t3.micro".into());
    if let Some(image) = &settings.image_id {
        let spot = client
            .run_instances()
            .dry_run(true)
            .image_id(image.as_str())
            .instance_type(Ec2InstanceType::from(instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(
                        Tag::builder()
                            .key("ec2-spot-runner:doctor")
                            .value("true")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await;
        list.add(
            "ec2:RunInstances (spot, with tags)",
            dry_run("RunInstances", spot),
        );
    } else {
        list.add(
            "ec2:RunInstances",
            Outcome::Warn(
                "not checked: give `image-id` (and `instance-types`) to check the launch".into(),
            ),
        );
    }
    let tags = client
        .create_tags()
        .dry_run(true)
        .resources(NO_INSTANCE)
        .tags(
            Tag::builder()
                .key("ec2-spot-runner:doctor")
                .value("true")
                .build(),
        )
        .send()
        .await;
    list.add("ec2:CreateTags", dry_run("CreateTags", tags));
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
    let settings = DoctorSettings::from_args(&args)?;
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
            check_aws(&client, &settings, &mut list).await;
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
