//! The AWS clients: EC2, built once from the standard chain (env, profile,
//! web identity for OIDC, …) with our retry policy and the retry classifier
//! that keeps capacity errors from being retried in place; and SSM, from the
//! same configuration, for images named by a Parameter Store parameter.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::interceptors::InterceptorContext;
use aws_sdk_ec2::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::operation::run_instances::RunInstancesError;

use super::error::{AwsError, is_capacity_code};

/// How many attempts the SDK makes per call: throttling and 5xx answers are
/// retried with jittered exponential backoff (the SDK's standard mode).
const MAX_ATTEMPTS: u32 = 5;

/// Builds the EC2 client from the standard credential and region chain.
pub(crate) async fn ec2_client(region: Option<String>) -> Result<Client, AwsError> {
    let attempts = std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=20).contains(n))
        .unwrap_or(MAX_ATTEMPTS);
    let retry = RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10));
    tracing::debug!(
        attempts,
        "EC2 retry policy: standard mode, jittered exponential backoff 200ms..10s"
    );
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(AwsError {
            action: "(configuration)",
            code: None,
            detail: "no AWS region is configured".to_owned(),
            hint: Some("Set the `aws-region` input, or AWS_REGION (aws-actions/configure-aws-credentials does)".to_owned()),
        });
    }
    let ec2_config = aws_sdk_ec2::config::Builder::from(&config)
        .retry_classifier(CapacityIsFinal)
        .build();
    // The first configuration loaded is the one every client of this run uses.
    let _ = LOADED.set(config);
    Ok(Client::from_conf(ec2_config))
}

/// The configuration [`ec2_client`] loaded.
static LOADED: OnceLock<aws_config::SdkConfig> = OnceLock::new();

/// The SSM client, with the EC2 client's region, credentials and retries.
pub(crate) fn ssm_client() -> Option<aws_sdk_ssm::Client> {
    LOADED.get().map(aws_sdk_ssm::Client::new)
}

/// EC2 answers some capacity errors (InsufficientInstanceCapacity) with a
/// 500, which the SDK would retry in the same place with backoff. Another
/// zone or type is the better next try, so these are final here and the
/// launch walk moves on at once.
#[derive(Debug)]
struct CapacityIsFinal;

impl ClassifyRetry for CapacityIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let code = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|e| e.as_operation_error())
            .and_then(|e| e.downcast_ref::<RunInstancesError>())
            .and_then(ProvideErrorMetadata::code);
        match code {
            Some(code) if is_capacity_code(code) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "CapacityIsFinal"
    }
}
