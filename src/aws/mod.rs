//! The AWS side: the EC2 client and its errors, the launch request and
//! walk, placement (prices and ranking), images, launch templates, instance
//! lifecycle, and the bake's builder and images.

pub(crate) mod baked;
pub(crate) mod builder;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod images;
pub(crate) mod instances;
pub(crate) mod launch;
pub(crate) mod placement;
pub(crate) mod templates;

pub(crate) use client::{ec2_client, ssm_client};
pub(crate) use error::AwsError;
