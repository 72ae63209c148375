//! The image to launch: what ec2:DescribeImages (an optional extra, outside
//! the six actions) says of it, and the checks made before anything is
//! launched — root device, architecture against the instance types,
//! platform, and the root snapshot's size.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ArchitectureValues, Filter, PlatformValues};

use crate::aws::AwsError;
use crate::settings::{ImageId, ImageSource, InstanceType};

/// What the start needs to know of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// The device name of the root volume (`/dev/sda1`, `/dev/xvda`).
    pub(crate) root_device_name: Option<String>,
    /// `x86_64`, `arm64`, …
    pub(crate) architecture: Option<String>,
    /// Whether it is a Windows image.
    pub(crate) windows: bool,
    /// The size of the root device's snapshot, in GiB.
    pub(crate) root_snapshot_size: Option<i32>,
    /// When it is an image `bake` made: the runner version it holds and
    /// when it was baked (its tags).
    pub(crate) baked: Option<Baked>,
}

/// What a baked image's tags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Baked {
    /// The actions/runner version baked in.
    pub(crate) runner_version: String,
    /// When, RFC 3339.
    pub(crate) baked_at: Option<String>,
}

/// How the lookup went.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// EC2 described the image.
    Found(Image),
    /// Not allowed or not answered: the start goes on without it.
    Unavailable(String),
}

/// Why an image given by id is not described.
pub(crate) const NOT_LISTED: &str = "ec2:DescribeImages is not in extra-permissions";

/// Describes one image. A denial is not an error (the action is an optional
/// extra); an image EC2 does not know is, since no launch could succeed.
pub(crate) async fn describe(client: &Client, image_id: &ImageId) -> Result<Lookup, AwsError> {
    let result = client
        .describe_images()
        .image_ids(image_id.as_str())
        .send()
        .await;
    let output = match result {
        Ok(output) => output,
        Err(err) => {
            let err = AwsError::from_sdk("DescribeImages", &err);
            return match err.code.as_deref() {
                Some(code) if code.starts_with("InvalidAMIID") => Err(err),
                Some("UnauthorizedOperation" | "AccessDenied") => Ok(Lookup::Unavailable(
                    "extra-permissions lists ec2:DescribeImages, but it was denied: grant it (`ec2-spot-runner policy --optional`) or remove it from the list".to_owned(),
                )),
                _ => Ok(Lookup::Unavailable(err.to_string())),
            };
        }
    };
    let Some(image) = output.images().first() else {
        // NOTE: EC2 answers an empty list, not an error, for an image that
        // exists but is not shared with the account (and for some deregistered ones).
        // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html
        return Err(AwsError {
            action: "DescribeImages",
            code: Some("InvalidAMIID.NotFound".to_owned()),
            detail: format!(
                "image {image_id} is not visible to this account in this region"
            ),
            hint: Some("Check `image-id`: the AMI must exist in this region and be public or shared with this account".to_owned()),
        });
    };
    Ok(Lookup::Found(facts(image)))
}

/// What the start needs of a described image.
fn facts(image: &aws_sdk_ec2::types::Image) -> Image {
    let root_device_name = image.root_device_name().map(str::to_owned);
    let root_snapshot_size = image
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name().is_some() && m.device_name() == root_device_name.as_deref())
        .and_then(|m| m.ebs())
        .and_then(|e| e.volume_size());
    Image {
        root_device_name,
        architecture: image.architecture().map(|a| match a {
            ArchitectureValues::X8664 => "x86_64".to_owned(),
            other => other.as_str().to_owned(),
        }),
        // `Platform` is `windows` for Windows images and absent otherwise;
        // `PlatformDetails` names the operating system (`Windows`, `Linux/UNIX`, …).
        windows: image.platform().is_some_and(|p| {
            p.as_str()
                .eq_ignore_ascii_case(PlatformValues::Windows.as_str())
        }) || image
            .platform_details()
            .is_some_and(|d| d.to_ascii_lowercase().starts_with("windows")),
        root_snapshot_size,
        baked: baked(image.tags()),
    }
}

/// The bake's tags, on an image the tool made.
fn baked(tags: &[aws_sdk_ec2::types::Tag]) -> Option<Baked> {
    if crate::tags::value(tags, crate::tags::MANAGED) != Some("true") {
        return None;
    }
    Some(Baked {
        runner_version: crate::tags::value(tags, crate::tags::RUNNER_VERSION)?.to_owned(),
        baked_at: crate::tags::value(tags, crate::tags::BAKED_AT).map(str::to_owned),
    })
}

/// The image a start launches: by id (described only when `describe`:
/// the user listed ec2:DescribeImages in `extra-permissions`), or the
/// newest of the user's trusted owners whose name matches, which needs
/// ec2:DescribeImages. With one architecture among the instance types,
/// only images of that architecture match.
pub(crate) async fn resolve(
    client: &Client,
    source: &ImageSource,
    types: &[InstanceType],
    describe_allowed: bool,
) -> Result<(ImageId, Lookup), AwsError> {
    let described = |id: ImageId| async move {
        if !describe_allowed {
            // Never called unless asked for: under the six-action policy it
            // would be denied, and every denial is a CloudTrail event that
            // accounts alarm on.
            return Ok((id, Lookup::Unavailable(NOT_LISTED.to_owned())));
        }
        let lookup = describe(client, &id).await?;
        Ok((id, lookup))
    };
    let (pattern, owners) = match source {
        ImageSource::Id(id) => return described(id.clone()).await,
        ImageSource::Parameter(name) => {
            let id = parameter(name).await?;
            tracing::info!(image = %id, parameter = %name, "image from Parameter Store");
            return described(id).await;
        }
        ImageSource::Name { pattern, owners } => (pattern, owners),
    };
    let mut archs: Vec<&str> = types
        .iter()
        .filter_map(InstanceType::architecture)
        .collect();
    archs.sort_unstable();
    archs.dedup();
    let mut request = client
        .describe_images()
        .set_owners(Some(owners.clone()))
        .filters(Filter::builder().name("name").values(pattern).build())
        .filters(Filter::builder().name("state").values("available").build())
        .filters(
            Filter::builder()
                .name("image-type")
                .values("machine")
                .build(),
        );
    if let [arch] = archs.as_slice() {
        request = request.filters(Filter::builder().name("architecture").values(*arch).build());
    }
    let output = request.send().await.map_err(|e| {
        let err = AwsError::from_sdk("DescribeImages", &e);
        if err.code.as_deref() == Some("UnauthorizedOperation") {
            AwsError {
                hint: Some("image-name needs ec2:DescribeImages (`ec2-spot-runner policy --optional` adds it); or give image-id".to_owned()),
                ..err
            }
        } else {
            err
        }
    })?;
    // The newest: by creation date, then by name (image names carry their
    // build date).
    let newest = output
        .images()
        .iter()
        .filter(|i| i.image_id().is_some())
        .max_by(|a, b| {
            a.creation_date()
                .cmp(&b.creation_date())
                .then_with(|| a.name().cmp(&b.name()))
        });
    let Some(image) = newest else {
        return Err(AwsError {
            action: "DescribeImages",
            code: None,
            detail: format!(
                "no available image named {pattern} is owned by {}{}",
                owners.join(", "),
                match archs.as_slice() {
                    [arch] => format!(" for {arch}"),
                    _ => String::new(),
                }
            ),
            hint: Some("Check image-name (the AMI's Name, with `*` wildcards) and image-owner, and that the image exists in this region".to_owned()),
        });
    };
    let id = image.image_id().unwrap_or_default();
    let id = ImageId::parse("image-name", id).map_err(|e| AwsError {
        action: "DescribeImages",
        code: None,
        detail: e.to_string(),
        hint: None,
    })?;
    tracing::info!(image = %id, name = image.name().unwrap_or_default(), "newest image matching image-name");
    Ok((id, Lookup::Found(facts(image))))
}

/// The AMI id a Parameter Store parameter holds, read with ssm:GetParameter
/// (an option outside the six actions, needed only for `resolve:ssm:`).
pub(crate) async fn parameter(name: &str) -> Result<ImageId, AwsError> {
    let Some(ssm) = crate::aws::ssm_client() else {
        return Err(AwsError {
            action: "GetParameter",
            code: None,
            detail: "no AWS configuration was loaded".to_owned(),
            hint: None,
        });
    };
    let out = ssm.get_parameter().name(name).send().await.map_err(|e| {
        let err = AwsError::from_sdk("GetParameter", &e);
        let hint = match err.code.as_deref() {
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => format!(
                "image-id resolve:ssm:{name} needs ssm:GetParameter on that parameter (`ec2-spot-runner policy --optional` adds it); or give the AMI id"
            ),
            Some("ParameterNotFound" | "ParameterVersionNotFound") => format!(
                "Check image-id: Parameter Store has no {name} in this region (AWS's public image parameters are listed with `aws ssm get-parameters-by-path --path /aws/service/ami-amazon-linux-latest`)"
            ),
            _ => return err,
        };
        AwsError {
            hint: Some(hint),
            ..err
        }
    })?;
    let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
    ImageId::parse("image-id", value).map_err(|_| AwsError {
        action: "GetParameter",
        code: None,
        detail: format!("parameter {name} holds {value:?}, not an AMI id"),
        hint: Some("Point image-id at a parameter whose value is an AMI id (ami-…)".to_owned()),
    })
}

/// The instance types that can run the image, or why none can. Types whose
/// architecture is not known are kept: EC2 has the last word on them.
pub(crate) fn check(
    image_id: &ImageId,
    image: &Image,
    types: &[InstanceType],
    volume_size: Option<i32>,
) -> Result<Vec<InstanceType>, String> {
    if image.windows {
        return Err(format!(
            "image-id {image_id} is a Windows image; the runner is set up by a Linux user-data script, so use a Linux AMI (Ubuntu, Amazon Linux, Debian, …)"
        ));
    }
    if let (Some(size), Some(snapshot)) = (volume_size, image.root_snapshot_size) {
        if size < snapshot {
            return Err(format!(
                "volume-size {size} is smaller than the {snapshot} GiB root snapshot of image {image_id}; set volume-size to at least {snapshot}, or leave it empty for the image's size"
            ));
        }
    }
    let Some(arch) = image.architecture.as_deref() else {
        return Ok(types.to_vec());
    };
    let (fit, misfit): (Vec<&InstanceType>, Vec<&InstanceType>) = types
        .iter()
        .partition(|t| t.architecture().is_none_or(|a| a == arch));
    if fit.is_empty() {
        let names: Vec<&str> = misfit.iter().map(|t| t.as_str()).collect();
        let example = if arch == "arm64" {
            "c7g.large, m7g.large"
        } else {
            "c7i.large, m7i.large"
        };
        return Err(format!(
            "image {image_id} is for {arch}, but instance-types {} are not; list {arch} types (e.g. {example}), or use an image built for their architecture",
            names.join(", ")
        ));
    }
    if !misfit.is_empty() {
        let names: Vec<&str> = misfit.iter().map(|t| t.as_str()).collect();
        crate::actions::warning(&format!(
            "instance-types {} cannot run image {image_id} ({arch}); trying only {}",
            names.join(", "),
            fit.iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(fit.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(names: &[&str]) -> Vec<InstanceType> {
        names
            .iter()
            .map(|n| InstanceType::parse(n).unwrap())
            .collect()
    }

    fn image(arch: &str) -> Image {
        Image {
            root_device_name: Some("/dev/xvda".into()),
            architecture: Some(arch.into()),
            windows: false,
            root_snapshot_size: Some(8),
            baked: None,
        }
    }

    #[test]
    fn an_image_only_runs_on_types_of_its_architecture() {
        let id = ImageId::parse("image-id", "ami-0123456789abcdef0").unwrap();
        let err = check(
            &id,
            &image("arm64"),
            &types(&["c7i.large", "m7i.large"]),
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("arm64") && err.contains("c7i.large, m7i.large") && err.contains("c7g"),
            "{err}"
        );
        assert_eq!(
            check(
                &id,
                &image("arm64"),
                &types(&["c7i.large", "c7g.large"]),
                None
            )
            .unwrap(),
            types(&["c7g.large"])
        );
        assert_eq!(
            check(&id, &image("x86_64"), &types(&["c7i.large"]), None).unwrap(),
            types(&["c7i.large"])
        );
    }

    #[test]
    fn windows_images_and_too_small_volumes_are_refused() {
        let id = ImageId::parse("image-id", "ami-0123456789abcdef0").unwrap();
        let windows = Image {
            windows: true,
            ..image("x86_64")
        };
        let err = check(&id, &windows, &types(&["c7i.large"]), None).unwrap_err();
        assert!(err.contains("Windows"), "{err}");
        let err = check(&id, &image("x86_64"), &types(&["c7i.large"]), Some(4)).unwrap_err();
        assert!(err.contains("at least 8"), "{err}");
        assert!(check(&id, &image("x86_64"), &types(&["c7i.large"]), Some(8)).is_ok());
    }
}
