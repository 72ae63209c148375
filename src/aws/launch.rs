//! EC2 launch: the RunInstances request for one candidate (IMDSv2 required,
//! encrypted gp3 root, terminate on shutdown, tags at creation, no key pair)
//! and the walk over candidates, which learns from EC2's refusals (capacity,
//! zones, types, spot, the image's root device) and never repeats a doomed try.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceType as Ec2InstanceType, LaunchTemplateSpecification,
    MarketType, Placement, ShutdownBehavior, SpotInstanceType, SpotMarketOptions, TagSpecification,
    VolumeType,
};
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::aws::placement::{Candidate, Market};
use crate::settings::{
    ImageId, InstanceProfile, InstanceType, LaunchTemplate, SecurityGroupId, TemplateRef,
    TemplateVolume,
};

/// gp3's baseline, which every gp3 volume gets at no extra charge.
pub(crate) const GP3_BASELINE_IOPS: i32 = 3000;
/// gp3's baseline throughput in MiB/s.
pub(crate) const GP3_BASELINE_THROUGHPUT: i32 = 125;

/// IOPS and throughput for the boot boost. gp3 allows at most 500 IOPS per
/// GiB, so a small (or unknown, typically 8 GiB) volume gets a smaller boost.
pub(crate) fn boot_boost(volume_size: Option<i32>) -> (i32, i32) {
    match volume_size {
        Some(size) if size >= 12 => (6000, 500),
        _ => (4000, 500),
    }
}

/// EC2's limit on user data, before base64.
pub(crate) const USER_DATA_LIMIT: usize = 16 * 1024;

/// Gzips the script (cloud-init unpacks gzipped user data by its magic
/// bytes) so that the script, the JIT config and a pre-runner script fit in
/// EC2's 16 KiB, and base64-encodes it for RunInstances. Fails with the
/// sizes when even the compressed script is too large.
pub(crate) fn encode_user_data(script: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(script.as_bytes())
        .and_then(|()| gz.finish())
        .map_err(|e| format!("could not compress the user data: {e}"))
        .and_then(|bytes| {
            if bytes.len() > USER_DATA_LIMIT {
                Err(format!(
                    "the user data is {} bytes compressed ({} bytes as text), over EC2's limit of {USER_DATA_LIMIT}; shorten pre-runner-script (or download it from the instance instead of inlining it)",
                    bytes.len(),
                    script.len()
                ))
            } else {
                Ok(aws_smithy_types::base64::encode(&bytes))
            }
        })
}

/// The code of a walk that ended without sending a request (cancelled, or
/// nothing left to try): unlike a request without an answer, it cannot have
/// created an instance.
pub(crate) const NOT_SENT: &str = "NotSent";

/// What the walk has learned that holds for every later attempt (and for
/// the other runners of a `count` launch): the image's root device, zones
/// without a usable default subnet, types the region does not know, and
/// whether spot is possible at all in this account.
#[derive(Debug)]
pub(crate) struct Learned {
    root: Mutex<RootDevice>,
    bad_zones: Mutex<HashSet<String>>,
    bad_types: Mutex<HashSet<InstanceType>>,
    spot_blocked: AtomicBool,
}

/// The image's root device name: known (from the input or DescribeImages),
/// or still to be found among the usual names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootDevice {
    /// The user set `root-device-name`.
    Input(String),
    /// DescribeImages named it, or a launch with this name succeeded.
    Known(String),
    /// Not known: these names are tried in order. Each attempt sends the
    /// root mapping without a size, which EC2 accepts only for the image's
    /// own root device, so a wrong name is refused, never applied to an
    /// extra volume.
    Probe(Vec<String>),
}

/// The root device names of nearly every Linux AMI: Ubuntu's, then Amazon
/// Linux's and Debian's.
// NOTE: https://docs.aws.amazon.com/ebs/latest/userguide/device_naming.html
pub(crate) const USUAL_ROOT_DEVICES: [&str; 2] = ["/dev/sda1", "/dev/xvda"];

impl RootDevice {
    /// The name the next attempt uses.
    pub(crate) fn name(&self) -> &str {
        match self {
            RootDevice::Input(name) | RootDevice::Known(name) => name,
            RootDevice::Probe(left) => left.first().map(String::as_str).unwrap_or_default(),
        }
    }

    /// Whether a size may go into the mapping: only once the name is known
    /// (else a wrong guess would add an extra volume instead of refusing).
    pub(crate) fn may_size(&self) -> bool {
        !matches!(self, RootDevice::Probe(_))
    }
}

impl Learned {
    /// Starts with what is known of the root device.
    pub(crate) fn new(root: RootDevice) -> Self {
        Self {
            root: Mutex::new(root),
            bad_zones: Mutex::default(),
            bad_types: Mutex::default(),
            spot_blocked: AtomicBool::new(false),
        }
    }

    /// The root device as known now.
    pub(crate) fn root(&self) -> RootDevice {
        lock(&self.root).clone()
    }

    fn skips(&self, candidate: &Candidate) -> bool {
        (candidate.market == Market::Spot && self.spot_blocked.load(Ordering::Relaxed))
            || lock(&self.bad_types).contains(&candidate.instance_type)
            || (candidate.subnet.is_none()
                && candidate
                    .zone
                    .as_ref()
                    .is_some_and(|z| lock(&self.bad_zones).contains(z)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every launch attempt of one runner shares.
pub(crate) struct LaunchSpec<'a> {
    /// The AMI.
    pub(crate) image_id: &'a ImageId,
    /// Security groups (empty: the VPC default).
    pub(crate) security_group_ids: &'a [SecurityGroupId],
    /// What the walk knows so far, shared by every runner of the start.
    pub(crate) learned: &'a Learned,
    /// Root volume size in GiB.
    pub(crate) volume_size: Option<i32>,
    /// Launch the root volume with raised IOPS and throughput.
    pub(crate) boot_boost: bool,
    /// Provisioned rate for initializing the root volume from its snapshot.
    pub(crate) volume_initialization_rate: Option<i32>,
    /// Tags for the instance and its volumes.
    pub(crate) tags: Vec<TagSpecification>,
    /// Base64 user-data.
    pub(crate) user_data: String,
    /// Unique per runner (label, runner name, run): seeds the client tokens.
    pub(crate) token_seed: String,
    /// The spot price cap, also sent to EC2 so the instance is never billed above it.
    pub(crate) max_spot_price: Option<f64>,
    /// The instance profile that gives the machine a role.
    pub(crate) instance_profile: Option<&'a InstanceProfile>,
    /// The launch template, pinned to the version that was read and checked.
    pub(crate) launch_template: Option<&'a LaunchTemplate>,
    /// The template's volumes to mark DeleteOnTermination.
    pub(crate) template_volumes: &'a [TemplateVolume],
}

impl std::fmt::Debug for LaunchSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("image_id", &self.image_id)
            .field("learned", &self.learned)
            .field("volume_size", &self.volume_size)
            .field("user_data", &"*** (holds the JIT config)")
            .finish_non_exhaustive()
    }
}

/// The ClientToken of one attempt: the same for every SDK retry of that
/// attempt (so a lost answer cannot create a second instance), different for
/// each candidate and root device name (so falling back is a new launch).
/// At most 64 ASCII chars.
pub(crate) fn client_token(seed: &str, candidate: &Candidate, root_device: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        seed,
        candidate.instance_type.as_str(),
        candidate.zone.as_deref().unwrap_or("-"),
        candidate.subnet.as_ref().map(|s| s.as_str()).unwrap_or("-"),
        candidate.market.as_str(),
        root_device,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..64]
        .to_owned()
}

/// The RunInstances request for one candidate, as `start` sends it and
/// `doctor` dry-runs it: IMDSv2 required, an encrypted gp3 root mapped at
/// `root_device`, terminate on shutdown, tags on instance and volumes, and
/// with a launch template no termination protection; the template supplies
/// the rest.
pub(crate) fn request(
    client: &Client,
    spec: &LaunchSpec<'_>,
    candidate: &Candidate,
    root: &RootDevice,
) -> RunInstancesFluentBuilder {
    let mut ebs = EbsBlockDevice::builder()
        .volume_type(VolumeType::Gp3)
        .encrypted(true)
        .delete_on_termination(true);
    // A size is sent only for a known root device: for any other device
    // name EC2 would add a second, empty volume and leave the root as the
    // image made it. Without a size EC2 refuses a wrong name instead.
    // NOTE: https://docs.aws.amazon.com/ebs/latest/userguide/block-device-mapping-concepts.html
    let size = spec.volume_size.filter(|_| root.may_size());
    if let Some(size) = size {
        ebs = ebs.volume_size(size);
    }
    if let Some(rate) = spec.volume_initialization_rate {
        ebs = ebs.volume_initialization_rate(rate);
    }
    if spec.boot_boost {
        let (iops, throughput) = boot_boost(size);
        ebs = ebs.iops(iops).throughput(throughput);
    }
    let mut request = client
        .run_instances()
        .image_id(spec.image_id.as_str())
        .instance_type(Ec2InstanceType::from(candidate.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(client_token(&spec.token_seed, candidate, root.name()))
        .user_data(&spec.user_data)
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_tokens(HttpTokensState::Required)
                // Two hops so containers on the runner reach IMDSv2 too.
                .http_put_response_hop_limit(2)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(root.name())
                .ebs(ebs.build())
                .build(),
        )
        .set_tag_specifications(Some(spec.tags.clone()));
    // The template's volumes again, each with all its settings and
    // DeleteOnTermination: right whether EC2 merges a mapping into the
    // template's field by field or takes the request's entry whole, which
    // its documentation leaves open (only "nested structures merge").
    // NOTE: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-instances-from-launch-template.html
    for volume in spec.template_volumes {
        if volume.device != root.name() {
            request = request.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(&volume.device)
                    .ebs(template_ebs(volume))
                    .build(),
            );
        }
    }
    if let Some(template) = spec.launch_template {
        let builder = LaunchTemplateSpecification::builder().version(template.version.as_param());
        request = request
            .launch_template(match &template.template {
                TemplateRef::Id(id) => builder.launch_template_id(id).build(),
                TemplateRef::Name(name) => builder.launch_template_name(name).build(),
            })
            // A template's termination protection would make stop, cleanup
            // and the undo fail: the request's value overrides it.
            .disable_api_termination(false);
    }
    if let Some(profile) = spec.instance_profile {
        let builder = IamInstanceProfileSpecification::builder();
        request = request.iam_instance_profile(match profile {
            InstanceProfile::Name(name) => builder.name(name).build(),
            InstanceProfile::Arn(arn) => builder.arn(arn).build(),
        });
    }
    if !spec.security_group_ids.is_empty() {
        request = request.set_security_group_ids(Some(
            spec.security_group_ids
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
        ));
    }
    match (&candidate.subnet, &candidate.zone) {
        (Some(subnet), _) => request = request.subnet_id(subnet.as_str()),
        (None, Some(zone)) => {
            request = request.placement(Placement::builder().availability_zone(zone).build())
        }
        (None, None) => {}
    }
    if candidate.market == Market::Spot {
        request = request.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .set_max_price(spec.max_spot_price.map(|p| format!("{p}")))
                        .build(),
                )
                .build(),
        );
    }
    request
}

/// One instance EC2 accepted.
#[derive(Debug, Clone)]
pub(crate) struct Launched {
    /// Its id.
    pub(crate) id: String,
    /// The candidate that worked.
    pub(crate) candidate: Candidate,
    /// Its place in the ranking, so a relaunch can go on from the next one.
    pub(crate) index: usize,
    /// The device name the root mapping went to.
    pub(crate) mapped_device: String,
    /// The instance's root device as EC2 reported it, when it did.
    pub(crate) root_device_name: Option<String>,
}

/// Launches one instance for one candidate.
async fn run_instance(
    client: &Client,
    spec: &LaunchSpec<'_>,
    candidate: &Candidate,
    root: &RootDevice,
) -> Result<(String, Option<String>), AwsError> {
    let output = request(client, spec, candidate, root)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("RunInstances", &e))?;
    let instance = output.instances().first();
    let id = instance
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .ok_or_else(|| AwsError {
            action: "RunInstances",
            code: None,
            detail: "EC2 answered without an instance id".to_owned(),
            hint: None,
        })?;
    Ok((
        id,
        instance
            .and_then(|i| i.root_device_name())
            .map(str::to_owned),
    ))
}

/// One failed attempt, for the log and the error message.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The candidate tried.
    pub(crate) candidate: Candidate,
    /// Why it failed.
    pub(crate) error: String,
}

/// What a failed attempt means for the rest of the walk.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// No capacity or price here: the next candidate may work.
    Next,
    /// The zone cannot take this launch at all (no default subnet, no gp3):
    /// skip every candidate in it.
    BadZone,
    /// The region does not know the instance type: skip the type.
    BadType,
    /// Spot is impossible in this account (no service-linked role).
    NoSpot,
    /// EC2 refused the root mapping's device name.
    WrongRootDevice,
    /// EC2 refused another mapping for having neither snapshot nor size.
    UnsizedVolume,
    /// Every other candidate would fail the same way.
    Stop,
}

/// The device EC2's "Either snapshot ID or volume size must be provided
/// for: DEVICE" names, when that is the refusal.
fn unsized_device(err: &AwsError) -> Option<&str> {
    let (_, device) = err
        .detail
        .split_once("snapshot ID or volume size must be provided for:")?;
    Some(device.trim().trim_end_matches('.'))
}

fn verdict(err: &AwsError, candidate: &Candidate, root: &str) -> Verdict {
    let code = err.code.as_deref().unwrap_or_default();
    let placed_by_zone = candidate.subnet.is_none() && candidate.zone.is_some();
    match code {
        // NOTE: EC2 refuses a mapping without size or snapshot for a device
        // that is not the image's root device, and names that device. Only
        // a refusal of the root mapping says the root device name is wrong;
        // one of another mapping (a template's volume) says nothing of it.
        // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
        "InvalidBlockDeviceMapping" if unsized_device(err).is_some() => {
            if unsized_device(err) == Some(root) {
                Verdict::WrongRootDevice
            } else {
                Verdict::UnsizedVolume
            }
        }
        // NOTE: a zone of the default VPC without a default subnet (added
        // later, or its subnet deleted): on-demand says so, spot names the
        // subnet 'null'. https://docs.aws.amazon.com/vpc/latest/userguide/work-with-default-vpc.html
        "InvalidInput" if placed_by_zone && err.detail.contains("No default subnet") => {
            Verdict::BadZone
        }
        "InvalidSubnetID.NotFound" if placed_by_zone => Verdict::BadZone,
        "VolumeTypeNotAvailableInZone" if placed_by_zone => Verdict::BadZone,
        code if code.starts_with("AuthFailure.ServiceLinkedRole")
            && candidate.market == Market::Spot =>
        {
            Verdict::NoSpot
        }
        "InvalidInstanceType" => Verdict::BadType,
        "InvalidParameterValue"
            if err.detail.contains(candidate.instance_type.as_str())
                && err.detail.to_ascii_lowercase().contains("instance") =>
        {
            Verdict::BadType
        }
        _ if err.is_capacity() => Verdict::Next,
        _ => Verdict::Stop,
    }
}

/// A template volume's mapping as the launch sends it: the template's
/// settings, deleted with the instance.
fn template_ebs(volume: &TemplateVolume) -> EbsBlockDevice {
    EbsBlockDevice::builder()
        .set_volume_size(volume.size)
        .set_volume_type(volume.volume_type.as_deref().map(VolumeType::from))
        .set_iops(volume.iops)
        .set_throughput(volume.throughput)
        .set_snapshot_id(volume.snapshot_id.clone())
        .set_encrypted(volume.encrypted)
        .set_kms_key_id(volume.kms_key_id.clone())
        .delete_on_termination(true)
        .build()
}

/// The hint for a root mapping EC2 refused.
fn root_device_error(err: AwsError, spec: &LaunchSpec<'_>, root: &RootDevice) -> AwsError {
    let image = spec.image_id;
    let hint = match root {
        RootDevice::Input(name) => format!(
            "root-device-name {name} is not the root device of image {image}. Set root-device-name to the image's RootDeviceName (`aws ec2 describe-images --image-ids {image} --query 'Images[0].RootDeviceName'`), or leave it empty to detect it"
        ),
        _ => format!(
            "Neither {} is the root device of image {image}. Set root-device-name to the image's RootDeviceName (`aws ec2 describe-images --image-ids {image} --query 'Images[0].RootDeviceName'`), or allow ec2:DescribeImages so the tool reads it",
            USUAL_ROOT_DEVICES.join(" nor ")
        ),
    };
    AwsError {
        hint: Some(hint),
        ..err
    }
}

/// Tries the candidates in order, from `from`. Capacity errors move on to
/// the next one, zone and type errors skip every candidate they rule out, a
/// missing spot role skips to on-demand, a refused root device name is
/// tried again with the next usual name; anything else (a bad AMI, a
/// denied permission) stops at once, since every other candidate would
/// fail the same way.
///
/// `stop` is asked before each candidate: after a cancellation the walk ends
/// rather than launching anything new.
pub(crate) async fn launch_first(
    client: &Client,
    spec: &LaunchSpec<'_>,
    candidates: &[Candidate],
    from: usize,
    stop: impl Fn() -> bool,
) -> Result<(Launched, Vec<Failure>), (AwsError, Vec<Failure>)> {
    let mut failures = Vec::new();
    let mut last = None;
    let learned = spec.learned;
    for (index, candidate) in candidates.iter().enumerate().skip(from) {
        if stop() {
            let err = AwsError {
                action: "RunInstances",
                code: Some(NOT_SENT.to_owned()),
                detail: "not tried: the start was cancelled".to_owned(),
                hint: None,
            };
            return Err((err, failures));
        }
        if learned.skips(candidate) {
            tracing::debug!(
                "{}: skipped, ruled out by an earlier answer",
                describe(candidate)
            );
            continue;
        }
        tracing::info!(
            instance_type = %candidate.instance_type,
            zone = candidate.zone.as_deref().unwrap_or("any"),
            subnet = candidate.subnet.as_ref().map(|s| s.as_str()).unwrap_or("default VPC"),
            market = candidate.market.as_str(),
            "launching"
        );
        let (err, root) = loop {
            let root = learned.root();
            match run_instance(client, spec, candidate, &root).await {
                Ok((id, root_device_name)) => {
                    if let RootDevice::Probe(_) = root {
                        *lock(&learned.root) = RootDevice::Known(root.name().to_owned());
                    }
                    let launched = Launched {
                        id,
                        candidate: candidate.clone(),
                        index,
                        mapped_device: root.name().to_owned(),
                        root_device_name,
                    };
                    return Ok((launched, failures));
                }
                Err(err) => {
                    if verdict(&err, candidate, root.name()) != Verdict::WrongRootDevice {
                        break (err, root);
                    }
                    let mut current = lock(&learned.root);
                    if let RootDevice::Probe(left) = &mut *current {
                        left.retain(|n| n != root.name());
                        if !left.is_empty() {
                            tracing::info!(
                                "{} is not the image's root device; trying {}",
                                root.name(),
                                current.name()
                            );
                            continue;
                        }
                    } else if *current != root {
                        // Another runner learned the name meanwhile.
                        continue;
                    }
                    return Err((root_device_error(err, spec, &root), failures));
                }
            }
        };
        let skip = match verdict(&err, candidate, root.name()) {
            Verdict::Next => format!("{}; trying the next candidate", err.detail),
            Verdict::BadZone => {
                let zone = candidate.zone.clone().unwrap_or_default();
                lock(&learned.bad_zones).insert(zone.clone());
                format!("{}; skipping zone {zone}", err.detail)
            }
            Verdict::BadType => {
                lock(&learned.bad_types).insert(candidate.instance_type.clone());
                format!(
                    "{}; {} is not offered in this region (or mistyped), skipping it",
                    err.detail, candidate.instance_type
                )
            }
            Verdict::NoSpot
                if candidates[index..]
                    .iter()
                    .any(|c| c.market == Market::OnDemand) =>
            {
                if !learned.spot_blocked.swap(true, Ordering::Relaxed) {
                    crate::actions::warning(&format!(
                        "spot is not possible in this account yet ({}): the EC2 Spot service-linked role is missing and these credentials may not create it. Going on-demand now; create the role once with `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` to get spot prices",
                        err.detail
                    ));
                }
                failures.push(Failure {
                    candidate: candidate.clone(),
                    error: err.detail.clone(),
                });
                last = Some(err);
                continue;
            }
            Verdict::UnsizedVolume => {
                let device = unsized_device(&err).unwrap_or_default().to_owned();
                return Err((
                    AwsError {
                        hint: Some(format!(
                            "EC2 needs a size or a snapshot for every volume but the image's root ({}), and {device} has neither. If it is a launch template's volume, give it a VolumeSize or SnapshotId in a new template version",
                            root.name()
                        )),
                        ..err
                    },
                    failures,
                ));
            }
            Verdict::NoSpot | Verdict::WrongRootDevice | Verdict::Stop => {
                return Err((err, failures));
            }
        };
        tracing::warn!("{}: {skip}", describe(candidate));
        failures.push(Failure {
            candidate: candidate.clone(),
            error: err.detail.clone(),
        });
        last = Some(err);
    }
    let err = last.unwrap_or_else(|| AwsError {
        action: "RunInstances",
        code: Some(NOT_SENT.to_owned()),
        detail: "no launch candidate is left: every instance type and zone was excluded".to_owned(),
        hint: Some("Check instance-types, availability-zones and max-spot-price, or allow on-demand with `market: spot-then-on-demand`".to_owned()),
    });
    Err((err, failures))
}

/// A candidate in words: `spot c7i.large in us-east-1b`.
pub(crate) fn describe(candidate: &Candidate) -> String {
    let place = match (&candidate.subnet, &candidate.zone) {
        (Some(subnet), _) => format!(" in {}", subnet.as_str()),
        (None, Some(zone)) => format!(" in {zone}"),
        (None, None) => String::new(),
    };
    format!(
        "{} {}{place}",
        candidate.market.as_str(),
        candidate.instance_type
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::InstanceType;

    fn candidate(kind: &str, zone: &str, market: Market) -> Candidate {
        Candidate {
            instance_type: InstanceType::parse(kind).unwrap(),
            zone: Some(zone.into()),
            subnet: None,
            market,
            spot_price: None,
        }
    }

    #[test]
    fn client_tokens_are_stable_per_attempt_and_distinct_across_candidates() {
        let a = candidate("c7i.large", "us-east-1a", Market::Spot);
        let b = candidate("c7i.large", "us-east-1b", Market::Spot);
        let c = candidate("c7i.large", "us-east-1a", Market::OnDemand);
        let token = client_token("label/runner-1", &a, "/dev/sda1");
        assert_eq!(token, client_token("label/runner-1", &a, "/dev/sda1"));
        assert_eq!(token.len(), 64);
        assert_ne!(token, client_token("label/runner-1", &b, "/dev/sda1"));
        assert_ne!(token, client_token("label/runner-1", &c, "/dev/sda1"));
        assert_ne!(token, client_token("label/runner-2", &a, "/dev/sda1"));
        assert_ne!(token, client_token("label/runner-1", &a, "/dev/xvda"));
    }

    fn refusal(code: &str, message: &str) -> AwsError {
        AwsError {
            action: "RunInstances",
            code: Some(code.to_owned()),
            detail: format!("{code}: {message}"),
            hint: None,
        }
    }

    #[test]
    fn each_refusal_rules_out_what_it_is_about() {
        let spot = candidate("c7i.large", "us-east-1e", Market::Spot);
        let on_demand = candidate("c7i.large", "us-east-1e", Market::OnDemand);
        let cases = [
            (
                refusal(
                    "InvalidBlockDeviceMapping",
                    "Either snapshot ID or volume size must be provided for: /dev/sda1",
                ),
                &spot,
                Verdict::WrongRootDevice,
            ),
            (
                refusal(
                    "InvalidBlockDeviceMapping",
                    "Either snapshot ID or volume size must be provided for: /dev/xvdf",
                ),
                &spot,
                Verdict::UnsizedVolume,
            ),
            (
                refusal(
                    "InvalidInput",
                    "No default subnet for availability zone: 'us-east-1e'.",
                ),
                &on_demand,
                Verdict::BadZone,
            ),
            (
                refusal(
                    "InvalidSubnetID.NotFound",
                    "No default subnet for availability zone: 'null'.",
                ),
                &spot,
                Verdict::BadZone,
            ),
            (
                refusal("VolumeTypeNotAvailableInZone", "gp3 is not available"),
                &spot,
                Verdict::BadZone,
            ),
            (
                refusal(
                    "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
                    "no role",
                ),
                &spot,
                Verdict::NoSpot,
            ),
            (
                refusal(
                    "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
                    "no role",
                ),
                &on_demand,
                Verdict::Stop,
            ),
            (
                refusal(
                    "InvalidParameterValue",
                    "Invalid value 'c7i.large' for InstanceType.",
                ),
                &spot,
                Verdict::BadType,
            ),
            (
                refusal("InsufficientInstanceCapacity", "none"),
                &spot,
                Verdict::Next,
            ),
            (
                refusal("InvalidParameterValue", "Invalid IAM instance profile"),
                &spot,
                Verdict::Stop,
            ),
            (
                refusal("InvalidAMIID.NotFound", "no image"),
                &spot,
                Verdict::Stop,
            ),
        ];
        for (err, candidate, want) in cases {
            assert_eq!(
                verdict(&err, candidate, "/dev/sda1"),
                want,
                "{}",
                err.detail
            );
        }
        // A subnet the user gave is not a zone problem: it is theirs to fix.
        let mut pinned = spot.clone();
        pinned.subnet =
            Some(crate::settings::SubnetId::parse("subnet-ids", "subnet-0000000a").unwrap());
        let err = refusal(
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-0000000a' does not exist",
        );
        assert_eq!(verdict(&err, &pinned, "/dev/sda1"), Verdict::Stop);
    }

    #[test]
    fn a_size_goes_out_only_for_a_known_root_device() {
        assert!(RootDevice::Input("/dev/xvda".into()).may_size());
        assert!(RootDevice::Known("/dev/sda1".into()).may_size());
        let probe = RootDevice::Probe(USUAL_ROOT_DEVICES.iter().map(|d| (*d).to_owned()).collect());
        assert!(!probe.may_size());
        assert_eq!(probe.name(), "/dev/sda1");
    }

    #[test]
    fn user_data_is_gzipped_and_bounded() {
        use std::io::Read as _;
        let script = format!("#!/bin/bash\n{}", "echo hello\n".repeat(2000));
        let encoded = encode_user_data(&script).unwrap();
        let bytes = aws_smithy_types::base64::decode(&encoded).unwrap();
        assert_eq!(
            &bytes[..2],
            &[0x1f, 0x8b],
            "gzip magic, which cloud-init recognises"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, script);
        // Random data does not compress: past 16 KiB it is refused with the sizes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: String = (0..40_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'!' + (state % 90) as u8)
            })
            .collect();
        let err = encode_user_data(&noise).unwrap_err();
        assert!(
            err.contains("pre-runner-script") && err.contains("16384"),
            "{err}"
        );
    }

    #[test]
    fn boost_respects_gp3_iops_per_gib() {
        assert_eq!(boot_boost(None), (4000, 500));
        assert_eq!(boot_boost(Some(8)), (4000, 500));
        assert_eq!(boot_boost(Some(100)), (6000, 500));
        let (iops, throughput) = boot_boost(Some(8));
        assert!(iops <= 500 * 8 && throughput * 4 <= iops);
    }
}
