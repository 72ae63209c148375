//! The baked images: CreateImage from the stopped builder, tagged at
//! creation with its snapshots; the wait until the image is `available`;
//! the images of one bake name and architecture, newest first; and their
//! removal, image first, then its snapshots.

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Image, ImageState, ResourceType};

use crate::aws::AwsError;
use crate::aws::instances::poll_delay;
use crate::tags;

/// One baked image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BakedImage {
    /// `ami-…`.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// EC2's CreationDate (ISO 8601, so it sorts as text).
    pub(crate) created: String,
    /// The snapshots it is made of.
    pub(crate) snapshots: Vec<String>,
    /// The sum of its volumes' sizes, GiB.
    pub(crate) size_gib: i64,
}

impl BakedImage {
    fn from_image(image: &Image) -> Option<Self> {
        let ebs = image.block_device_mappings().iter().filter_map(|m| m.ebs());
        Some(Self {
            id: image.image_id()?.to_owned(),
            name: image.name().unwrap_or_default().to_owned(),
            created: image.creation_date().unwrap_or_default().to_owned(),
            snapshots: ebs
                .clone()
                .filter_map(|e| e.snapshot_id())
                .map(str::to_owned)
                .collect(),
            size_gib: ebs.filter_map(|e| e.volume_size()).map(i64::from).sum(),
        })
    }
}

/// Makes the image of the stopped builder, tagging the image and every
/// snapshot at creation (so nothing of it is ever untagged).
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html
pub(crate) async fn create(
    client: &Client,
    instance_id: &str,
    name: &str,
    description: &str,
    pairs: &[(String, String)],
) -> Result<String, AwsError> {
    let spec = |kind: ResourceType| tags::specification(kind, pairs);
    let output = client
        .create_image()
        .instance_id(instance_id)
        .name(name)
        .description(description)
        .tag_specifications(spec(ResourceType::Image))
        .tag_specifications(spec(ResourceType::Snapshot))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("CreateImage", &e))?;
    output
        .image_id()
        .map(str::to_owned)
        .ok_or_else(|| AwsError {
            action: "CreateImage",
            code: None,
            detail: "EC2 answered without an image id".into(),
            hint: None,
        })
}

/// How waiting for the image ended.
#[derive(Debug)]
pub(crate) enum Available {
    /// Ready to launch.
    Ready(BakedImage),
    /// EC2 gave up on it: the state and its reason.
    Failed(String, String),
    /// The deadline passed with the image still pending.
    TimedOut,
}

/// Waits until the image is `available`.
pub(crate) async fn wait_available(
    client: &Client,
    id: &str,
    deadline: Instant,
) -> Result<Available, AwsError> {
    let started = Instant::now();
    let mut delay = Duration::ZERO;
    loop {
        let output = client
            .describe_images()
            .image_ids(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeImages", &e));
        match output {
            Ok(output) => {
                if let Some(image) = output.images().iter().find(|i| i.image_id() == Some(id)) {
                    match image.state() {
                        Some(ImageState::Available) => {
                            if let Some(baked) = BakedImage::from_image(image) {
                                return Ok(Available::Ready(baked));
                            }
                        }
                        Some(ImageState::Pending) | None => {}
                        Some(other) => {
                            let reason = image
                                .state_reason()
                                .and_then(|r| r.message())
                                .unwrap_or("no reason given");
                            return Ok(Available::Failed(
                                other.as_str().to_owned(),
                                reason.to_owned(),
                            ));
                        }
                    }
                }
            }
            // Right after CreateImage EC2 may not know the id yet.
            Err(err) if err.code.as_deref() == Some("InvalidAMIID.NotFound") => {}
            Err(err) => return Err(err),
        }
        delay = poll_delay(started.elapsed(), delay);
        if Instant::now() + delay >= deadline {
            return Ok(Available::TimedOut);
        }
        tokio::time::sleep(delay).await;
    }
}

/// The account's images of one bake name and architecture, newest first.
pub(crate) async fn list(
    client: &Client,
    bake_name: &str,
    arch: &str,
) -> Result<Vec<BakedImage>, AwsError> {
    let filter = |name: String, value: &str| Filter::builder().name(name).values(value).build();
    let mut images = Vec::new();
    let mut pages = client
        .describe_images()
        .owners("self")
        .filters(filter(format!("tag:{}", tags::MANAGED), "true"))
        .filters(filter(format!("tag:{}", tags::BAKE), bake_name))
        .filters(filter("architecture".into(), arch))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("DescribeImages", &e))?;
        images.extend(page.images().iter().filter_map(BakedImage::from_image));
    }
    images.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
    Ok(images)
}

/// Deregisters the image, then deletes its snapshots (EC2 refuses to
/// delete a snapshot a registered image uses). Returns what it could not
/// remove, each with why.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSnapshot.html
pub(crate) async fn remove(client: &Client, image: &BakedImage) -> Vec<(String, AwsError)> {
    let mut left = Vec::new();
    if let Err(err) = client.deregister_image().image_id(&image.id).send().await {
        let err = AwsError::from_sdk("DeregisterImage", &err);
        // Gone already: nothing to deregister.
        if !matches!(
            err.code.as_deref(),
            Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
        ) {
            left.push((image.id.clone(), err));
            left.extend(image.snapshots.iter().map(|s| {
                (
                    s.clone(),
                    AwsError {
                        action: "DeleteSnapshot",
                        code: None,
                        detail: format!("not tried: {} is still registered", image.id),
                        hint: None,
                    },
                )
            }));
            return left;
        }
    }
    for snapshot in &image.snapshots {
        if let Err(err) = client.delete_snapshot().snapshot_id(snapshot).send().await {
            let err = AwsError::from_sdk("DeleteSnapshot", &err);
            if err.code.as_deref() != Some("InvalidSnapshot.NotFound") {
                left.push((snapshot.clone(), err));
            }
        }
    }
    left
}

/// The snapshots of an image that may still be pending (its mappings list
/// them as soon as EC2 knows them).
pub(crate) async fn describe(client: &Client, id: &str) -> Result<Option<BakedImage>, AwsError> {
    let output = client
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("DescribeImages", &e))?;
    Ok(output.images().first().and_then(BakedImage::from_image))
}
