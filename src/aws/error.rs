//! AWS errors as a user reads them: the action, AWS's code and words, and
//! advice; small predicates sort them into what a user must fix, what falls
//! back to other capacity, and what is worth retrying.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// An EC2 call that failed, with the action, AWS's words and our advice.
#[derive(Debug, thiserror::Error)]
#[error("{}:{action} failed: {detail}{}", service(action), hint.as_ref().map(|h| format!(". {h}")).unwrap_or_default())]
pub(crate) struct AwsError {
    /// The action (RunInstances, …; GetParameter is Systems Manager's).
    pub(crate) action: &'static str,
    /// AWS's error code, when there is one.
    pub(crate) code: Option<String>,
    /// AWS's message, or a description of a transport failure.
    pub(crate) detail: String,
    /// What the user can do about it.
    pub(crate) hint: Option<String>,
}

impl AwsError {
    /// Builds the error from an SDK error, adding advice for the failures users meet.
    pub(crate) fn from_sdk<E, R>(action: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let code = err.code().map(str::to_owned);
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            // A failure that never reached AWS (no credentials, no region,
            // connection refused): the cause is several sources down.
            _ => crate::error_chain::chain(err),
        };
        let hint = hint_for(action, code.as_deref(), &detail);
        Self {
            action,
            code,
            detail,
            hint,
        }
    }

    /// Whether this failure is about capacity or price in one place (type × AZ ×
    /// market), so another candidate may well succeed.
    pub(crate) fn is_capacity(&self) -> bool {
        self.code.as_deref().is_some_and(is_capacity_code)
    }
}

/// The IAM service prefix of an action this tool calls.
fn service(action: &str) -> &'static str {
    match action {
        "GetParameter" => "ssm",
        _ => "ec2",
    }
}

/// Codes that mean "no capacity or price here, try elsewhere".
pub(crate) fn is_capacity_code(code: &str) -> bool {
    matches!(
        code,
        "InsufficientInstanceCapacity"
            | "InsufficientHostCapacity"
            | "InsufficientReservedInstanceCapacity"
            | "InsufficientCapacity"
            | "InsufficientFreeAddressesInSubnet"
            | "SpotMaxPriceTooLow"
            | "MaxSpotInstanceCountExceeded"
            | "Unsupported"
            | "InstanceLimitExceeded"
            | "VcpuLimitExceeded"
    )
}

fn hint_for(action: &str, code: Option<&str>, detail: &str) -> Option<String> {
    let hint = match code {
        // NOTE: EC2 checks iam:PassRole on the instance profile's role.
        // https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
        Some("UnauthorizedOperation" | "AccessDenied") if detail.contains("iam:PassRole") => "These credentials may not pass the instance profile's role to EC2: allow iam:PassRole on that role (with the condition iam:PassedToService = ec2.amazonaws.com); `ec2-spot-runner policy --pass-role ROLE_ARN` prints the statement".to_owned(),
        Some("InvalidParameterValue") if detail.contains("iamInstanceProfile") => "Check `iam-instance-profile`: it must name an instance profile, not a role. A role made in the IAM console has a profile of the same name; for one made otherwise create it with `aws iam create-instance-profile` and `aws iam add-role-to-instance-profile`".to_owned(),
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => format!(
            "The AWS credentials may not call ec2:{action}. Add it to the role's or user's IAM policy; `ec2-spot-runner policy` prints the six actions the tool needs"
        ),
        Some("AuthFailure.ServiceLinkedRoleCreationNotPermitted") => "This account has no service-linked role for EC2 Spot yet, and these credentials may not create it. Create it once with `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`, or set `market: on-demand`".to_owned(),
        Some("AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" | "RequestExpired") => "The AWS credentials were rejected; check that aws-actions/configure-aws-credentials ran in this job and that the keys or role are current".to_owned(),
        Some("InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable") => "Check `image-id`: the AMI must exist in this region and be shared with this account".to_owned(),
        Some("InvalidSubnetID.NotFound" | "InvalidSubnet") => "Check `subnet-ids`: each subnet must exist in this region".to_owned(),
        // NOTE: a group must be in the VPC of the subnet the instance lands
        // in; without subnet-ids that is the default VPC.
        Some("InvalidParameter") if detail.contains("belong to different networks") => "The security groups are in another VPC than the subnet the instance would land in. Without subnet-ids the tool launches into the default VPC: give subnet-ids of the groups' VPC, or groups of the default VPC".to_owned(),
        Some("InvalidGroup.NotFound" | "InvalidSecurityGroupID.NotFound") => "Check `security-group-ids`: the groups must exist in the subnet's VPC".to_owned(),
        Some("VPCIdNotSpecified" | "MissingInput") => "This region has no default VPC; give `subnet-ids`".to_owned(),
        Some("InvalidParameterValue" | "InvalidParameterCombination") => "Check the instance inputs (instance-types, volume-size, root-device-name) against what the image and region support".to_owned(),
        Some("IdempotentParameterMismatch") => "A launch with the same client token but different settings exists; use a new `label`".to_owned(),
        Some("VcpuLimitExceeded" | "InstanceLimitExceeded" | "MaxSpotInstanceCountExceeded") => "An account quota is reached; request a higher \"Running On-Demand\" or \"All Standard Spot Instance Requests\" vCPU quota in Service Quotas, or list smaller instance-types".to_owned(),
        Some(code) if is_capacity_code(code) => "No capacity for this type and zone right now; list more instance-types or allow on-demand with `market: spot-then-on-demand`".to_owned(),
        Some("RequestLimitExceeded") => "EC2 kept throttling the calls; try again later or raise the account's API rate".to_owned(),
        None if detail.contains("region") => "No AWS region is configured; set `aws-region`, or AWS_REGION (aws-actions/configure-aws-credentials does)".to_owned(),
        None if detail.contains("credentials") => "No AWS credentials were found; run aws-actions/configure-aws-credentials before this step, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE".to_owned(),
        None => "Check the network path to EC2 (AWS_ENDPOINT_URL, proxy settings)".to_owned(),
        Some(_) => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_codes_fall_back_and_others_do_not() {
        for code in [
            "InsufficientInstanceCapacity",
            "SpotMaxPriceTooLow",
            "MaxSpotInstanceCountExceeded",
            "Unsupported",
            "InsufficientFreeAddressesInSubnet",
        ] {
            assert!(is_capacity_code(code), "{code}");
        }
        for code in [
            "UnauthorizedOperation",
            "InvalidAMIID.NotFound",
            "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
        ] {
            assert!(!is_capacity_code(code), "{code}");
        }
    }

    #[test]
    fn missing_spot_role_names_the_one_time_fix() {
        let hint = hint_for(
            "RunInstances",
            Some("AuthFailure.ServiceLinkedRoleCreationNotPermitted"),
            "",
        )
        .unwrap();
        assert!(
            hint.contains(
                "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"
            )
        );
    }

    #[test]
    fn denied_action_names_the_action() {
        let hint = hint_for("ModifyVolume", Some("UnauthorizedOperation"), "").unwrap();
        assert!(hint.contains("ec2:ModifyVolume"));
    }
}
