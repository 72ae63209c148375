//! The bake's builder instance: launched on demand with "stop" as its
//! instance-initiated shutdown behaviour, so that the script powering it
//! off leaves a stopped instance whose volume becomes the image; waited on
//! until it is stopped; and its console read for the script's verdict.

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceMetadataEndpointState,
    InstanceMetadataOptionsRequest, InstanceStateName, ResourceType, ShutdownBehavior, VolumeType,
};

use crate::aws::AwsError;
use crate::aws::instances::poll_delay;

/// What the builder is launched with.
pub(crate) struct Builder<'a> {
    /// The base image.
    pub(crate) image_id: &'a str,
    /// Its root device name.
    pub(crate) root_device: &'a str,
    /// The root volume's size in GiB (`None`: the image's).
    pub(crate) volume_size: Option<i32>,
    /// The instance type.
    pub(crate) instance_type: &'a str,
    /// The subnet (`None`: the default VPC).
    pub(crate) subnet: Option<&'a str>,
    /// Security groups.
    pub(crate) security_group_ids: &'a [String],
    /// Tags for the instance and its volume.
    pub(crate) tags: &'a [(String, String)],
    /// Base64 of the gzipped bake script.
    pub(crate) user_data: &'a str,
    /// Idempotency token: a retried request launches no second builder.
    pub(crate) client_token: &'a str,
}

/// Launches the builder; returns its instance id.
// NOTE: "By default, when you initiate a shutdown from an Amazon EBS backed
// instance (using a command such as shutdown or poweroff), the instance
// stops." The tool says so explicitly.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingInstanceInitiatedShutdownBehavior.html
pub(crate) async fn launch(client: &Client, b: &Builder<'_>) -> Result<String, AwsError> {
    let spec = |kind: ResourceType| crate::tags::specification(kind, b.tags);
    let root = EbsBlockDevice::builder()
        .volume_type(VolumeType::Gp3)
        .encrypted(true)
        .delete_on_termination(true)
        .set_volume_size(b.volume_size)
        .build();
    let mut request = client
        .run_instances()
        .image_id(b.image_id)
        .instance_type(b.instance_type.into())
        .min_count(1)
        .max_count(1)
        .client_token(b.client_token)
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(1)
                .build(),
        )
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(b.root_device)
                .ebs(root)
                .build(),
        )
        .tag_specifications(spec(ResourceType::Instance))
        .tag_specifications(spec(ResourceType::Volume))
        .user_data(b.user_data);
    if let Some(subnet) = b.subnet {
        request = request.subnet_id(subnet);
    }
    if !b.security_group_ids.is_empty() {
        request = request.set_security_group_ids(Some(b.security_group_ids.to_vec()));
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
            detail: "EC2 answered without an instance".into(),
            hint: None,
        })
}

/// How waiting for the builder ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Its OS powered it off.
    PoweredOff,
    /// It ended another way: the state, EC2's reason code and message.
    Ended(String, String, String),
    /// The deadline passed with the builder still up.
    TimedOut,
}

/// Waits until the builder is `stopped`.
pub(crate) async fn wait_stopped(
    client: &Client,
    id: &str,
    deadline: Instant,
) -> Result<Stopped, AwsError> {
    let started = Instant::now();
    let mut delay = Duration::ZERO;
    loop {
        match client.describe_instances().instance_ids(id).send().await {
            Ok(output) => {
                let instance = output
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .find(|i| i.instance_id() == Some(id));
                if let Some(instance) = instance {
                    let reason = instance.state_reason();
                    let code = reason.and_then(|r| r.code()).unwrap_or_default();
                    let message = reason.and_then(|r| r.message()).unwrap_or_default();
                    match instance.state().and_then(|s| s.name()) {
                        Some(InstanceStateName::Stopped) => return Ok(Stopped::PoweredOff),
                        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => {
                            let state = instance
                                .state()
                                .and_then(|s| s.name())
                                .map(|n| n.as_str().to_owned())
                                .unwrap_or_default();
                            return Ok(Stopped::Ended(state, code.to_owned(), message.to_owned()));
                        }
                        _ => {}
                    }
                }
            }
            Err(err) => {
                let err = AwsError::from_sdk("DescribeInstances", &err);
                // Right after RunInstances EC2 may not know the id yet.
                if err.code.as_deref() != Some("InvalidInstanceID.NotFound") {
                    return Err(err);
                }
            }
        }
        delay = poll_delay(started.elapsed(), delay);
        if Instant::now() + delay >= deadline {
            return Ok(Stopped::TimedOut);
        }
        tokio::time::sleep(delay).await;
    }
}
