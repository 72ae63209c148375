//! `policy`: prints the IAM policy of the default path — exactly six EC2
//! actions. No key pairs, no volume contents, no snapshots, no IAM.

use crate::cli::PolicyArgs;
use crate::error::Error;

/// The six EC2 actions, and why each is needed.
pub(crate) const ACTIONS: [(&str, &str); 6] = [
    (
        "ec2:RunInstances",
        "launch the runner instance (spot or on-demand)",
    ),
    (
        "ec2:CreateTags",
        "tag the instance and its volumes at launch",
    ),
    (
        "ec2:DescribeInstances",
        "find runner instances by tag and wait for them",
    ),
    (
        "ec2:ModifyVolume",
        "drop the boot boost back to the gp3 baseline",
    ),
    (
        "ec2:TerminateInstances",
        "stop, cleanup, and undo of a failed start",
    ),
    (
        "ec2:DescribeSpotPriceHistory",
        "pick the cheapest zone and type",
    ),
];

/// The policy document.
pub(crate) fn document() -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "Ec2SpotRunner",
            "Effect": "Allow",
            "Action": ACTIONS.iter().map(|(action, _)| *action).collect::<Vec<_>>(),
            "Resource": "*"
        }]
    })
}

/// Prints the policy JSON on stdout.
pub(crate) fn run(_args: &PolicyArgs) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_is_exactly_the_six_actions() {
        insta::assert_json_snapshot!(super::document(), @r#"
        {
          "Statement": [
            {
              "Action": [
                "ec2:RunInstances",
                "ec2:CreateTags",
                "ec2:DescribeInstances",
                "ec2:ModifyVolume",
                "ec2:TerminateInstances",
                "ec2:DescribeSpotPriceHistory"
              ],
              "Effect": "Allow",
              "Resource": "*",
              "Sid": "Ec2SpotRunner"
            }
          ],
          "Version": "2012-10-17"
        }
        "#);
    }
}
