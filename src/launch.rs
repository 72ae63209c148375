//! EC2 launch: the RunInstances request for one candidate (IMDSv2 required,
//! encrypted gp3 root, terminate on shutdown, tags at creation, no key pair)
//! and the walk over candidates that falls back on capacity errors only.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceType as Ec2InstanceType, MarketType, Placement, ShutdownBehavior, SpotInstanceType,
    SpotMarketOptions, TagSpecification, VolumeType,
};
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::placement::{Candidate, Market};
use crate::settings::{ImageId, SecurityGroupId};

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

/// What every launch attempt of one runner shares.
pub(crate) struct LaunchSpec<'a> {
    /// The AMI.
    pub(crate) image_id: &'a ImageId,
    /// Security groups (empty: the VPC default).
    pub(crate) security_group_ids: &'a [SecurityGroupId],
    /// The image's root device, to size and tune the root volume.
    pub(crate) root_device_name: &'a str,
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
}

impl std::fmt::Debug for LaunchSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("image_id", &self.image_id)
            .field("root_device_name", &self.root_device_name)
            .field("volume_size", &self.volume_size)
            .field("user_data", &"*** (holds the JIT config)")
            .finish_non_exhaustive()
    }
}

/// The ClientToken of one attempt: the same for every SDK retry of that
/// attempt (so a lost answer cannot create a second instance), different for
/// each candidate (so falling back is a new launch). At most 64 ASCII chars.
pub(crate) fn client_token(seed: &str, candidate: &Candidate) -> String {
    let mut hash = Sha256::new();
    for part in [
        seed,
        candidate.instance_type.as_str(),
        candidate.zone.as_deref().unwrap_or("-"),
        candidate.subnet.as_ref().map(|s| s.as_str()).unwrap_or("-"),
        candidate.market.as_str(),
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

/// Launches one instance for one candidate and returns its id.
pub(crate) async fn run_instance(
    client: &Client,
    spec: &LaunchSpec<'_>,
    candidate: &Candidate,
) -> Result<String, AwsError> {
    let mut ebs = EbsBlockDevice::builder()
        .volume_type(VolumeType::Gp3)
        .encrypted(true)
        .delete_on_termination(true);
    if let Some(size) = spec.volume_size {
        ebs = ebs.volume_size(size);
    }
    if let Some(rate) = spec.volume_initialization_rate {
        ebs = ebs.volume_initialization_rate(rate);
    }
    if spec.boot_boost {
        let (iops, throughput) = boot_boost(spec.volume_size);
        ebs = ebs.iops(iops).throughput(throughput);
    }
    let mut request = client
        .run_instances()
        .image_id(spec.image_id.as_str())
        .instance_type(Ec2InstanceType::from(candidate.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(client_token(&spec.token_seed, candidate))
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
                .device_name(spec.root_device_name)
                .ebs(ebs.build())
                .build(),
        )
        .set_tag_specifications(Some(spec.tags.clone()));
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
    let output = request
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("RunInstances", &e))?;
    output
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .ok_or_else(|| AwsError {
            action: "RunInstances",
            code: None,
            detail: "EC2 answered without an instance id".to_owned(),
            hint: None,
        })
}

/// One failed attempt, for the log and the error message.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The candidate tried.
    pub(crate) candidate: Candidate,
    /// Why it failed.
    pub(crate) error: String,
}

/// Tries the candidates in order. Capacity errors move on to the next one;
/// anything else (a bad AMI, a denied permission) stops at once, since every
/// other candidate would fail the same way.
///
/// `stop` is asked before each candidate: after a cancellation the walk ends
/// rather than launching anything new.
pub(crate) async fn launch_first(
    client: &Client,
    spec: &LaunchSpec<'_>,
    candidates: &[Candidate],
    stop: impl Fn() -> bool,
) -> Result<(String, Candidate, Vec<Failure>), (AwsError, Vec<Failure>)> {
    let mut failures = Vec::new();
    let mut last = None;
    for candidate in candidates {
        if stop() {
            let err = AwsError {
                action: "RunInstances",
                code: None,
                detail: "not tried: the start was cancelled".to_owned(),
                hint: None,
            };
            return Err((err, failures));
        }
        tracing::info!(
            instance_type = %candidate.instance_type,
            zone = candidate.zone.as_deref().unwrap_or("any"),
            subnet = candidate.subnet.as_ref().map(|s| s.as_str()).unwrap_or("default VPC"),
            market = candidate.market.as_str(),
            "launching"
        );
        match run_instance(client, spec, candidate).await {
            Ok(id) => return Ok((id, candidate.clone(), failures)),
            Err(err) if err.is_capacity() => {
                tracing::warn!(
                    "{}: {}; trying the next candidate",
                    describe(candidate),
                    err.detail
                );
                failures.push(Failure {
                    candidate: candidate.clone(),
                    error: err.detail.clone(),
                });
                last = Some(err);
            }
            Err(err) => return Err((err, failures)),
        }
    }
    let err = last.unwrap_or_else(|| AwsError {
        action: "RunInstances",
        code: None,
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
        let token = client_token("label/runner-1", &a);
        assert_eq!(token, client_token("label/runner-1", &a));
        assert_eq!(token.len(), 64);
        assert_ne!(token, client_token("label/runner-1", &b));
        assert_ne!(token, client_token("label/runner-1", &c));
        assert_ne!(token, client_token("label/runner-2", &a));
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
