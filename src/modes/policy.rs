//! `policy`: prints the IAM policy of the default path — exactly six EC2
//! actions, scoped the way AWS recommends: tags only at launch, terminate
//! and modify only what carries the tool's managed tag. No key pairs, no
//! volume contents, no snapshots, no IAM.

use serde_json::{Value, json};

use crate::cli::PolicyArgs;
use crate::error::Error;
use crate::tags;

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

/// Read-only actions outside the six that make a start better when allowed.
pub(crate) const OPTIONAL: [(&str, &str); 5] = [
    (
        "ec2:DescribeImages",
        "read the image's root device, architecture and platform before launch",
    ),
    (
        "ec2:DescribeSubnets",
        "rank subnet-ids by their zone's spot price",
    ),
    (
        "ec2:DescribeLaunchTemplateVersions",
        "read a `launch-template` and check it against what the tool sets (needed with launch-template)",
    ),
    (
        "ec2:GetConsoleOutput",
        "show the console of a machine whose runner never came online",
    ),
    (
        "ssm:GetParameter",
        "read the AMI id of an `image-id: resolve:ssm:NAME` parameter",
    ),
];

/// The instances and volumes the tool launches, in any region and account.
const LAUNCHED: [&str; 2] = ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"];

/// What else a launch template may tag at launch; EC2 authorises
/// ec2:CreateTags on it as on the request's own tags.
// NOTE: "The ec2:CreateTags action is also evaluated if tags are provided in
// a launch template."
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
// A template tags instance, volume, network-interface or
// spot-instances-request only:
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateTagSpecificationRequest.html
const TEMPLATE_TAGGED: [&str; 2] = [
    "arn:aws:ec2:*:*:network-interface/*",
    "arn:aws:ec2:*:*:spot-instances-request/*",
];

/// The policy document: scoped (the default) or the six actions on `*`.
// NOTE: tag-on-create and resource-tag conditions as AWS documents them:
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
pub(crate) fn document(args: &PolicyArgs) -> Value {
    let (scoped, optional) = (!args.unscoped, args.optional);
    let mut tagged: Vec<&str> = LAUNCHED.to_vec();
    if args.launch_template {
        tagged.extend(TEMPLATE_TAGGED);
    }
    let mut statements = if scoped {
        vec![
            json!({
                "Sid": "Launch",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances"],
                "Resource": "*"
            }),
            json!({
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotPriceHistory"],
                "Resource": "*"
            }),
            json!({
                "Sid": "TagAtLaunchOnly",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": tagged,
                "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
            }),
            json!({
                "Sid": "ManagedOnly",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances", "ec2:ModifyVolume"],
                "Resource": LAUNCHED,
                "Condition": {"StringEquals": {format!("aws:ResourceTag/{}", tags::MANAGED): "true"}}
            }),
        ]
    } else {
        vec![json!({
            "Sid": "Ec2SpotRunner",
            "Effect": "Allow",
            "Action": ACTIONS.iter().map(|(action, _)| *action).collect::<Vec<_>>(),
            "Resource": "*"
        })]
    };
    if args.launch_template && !optional {
        statements.push(json!({
            "Sid": "ReadTheLaunchTemplate",
            "Effect": "Allow",
            "Action": ["ec2:DescribeLaunchTemplateVersions"],
            "Resource": "*"
        }));
    }
    if optional {
        statements.push(json!({
            "Sid": "OptionalReads",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeImages",
                "ec2:DescribeSubnets",
                "ec2:DescribeLaunchTemplateVersions"
            ],
            "Resource": "*"
        }));
        let mut console = json!({
            "Sid": "OptionalConsole",
            "Effect": "Allow",
            "Action": ["ec2:GetConsoleOutput"],
            "Resource": "*"
        });
        if scoped {
            console["Resource"] = json!(LAUNCHED[0]);
            console["Condition"] =
                json!({"StringEquals": {format!("aws:ResourceTag/{}", tags::MANAGED): "true"}});
        }
        statements.push(console);
        // AWS's public parameters have no account in their ARN.
        // NOTE: https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters.html
        statements.push(json!({
            "Sid": "OptionalImageParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": if scoped {
                json!(["arn:aws:ssm:*::parameter/aws/service/*", "arn:aws:ssm:*:*:parameter/*"])
            } else {
                json!("*")
            }
        }));
    }
    if args.bake {
        statements.extend(bake_statements(scoped, optional));
    }
    if let Some(role) = args.pass_role.as_deref() {
        // NOTE: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
        statements.push(json!({
            "Sid": "PassTheRunnerRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": role,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// What `bake` needs beyond the six: make an image of its stopped builder
/// (tagged at creation), read images and the builder's console, and remove
/// its older images with their snapshots. Scoped by the managed tag
/// wherever the service authorization reference gives the action a tag
/// condition: CreateImage on the instance (aws:ResourceTag) and on the new
/// image and snapshots (aws:RequestTag); CreateTags only at CreateImage;
/// DeregisterImage and DeleteSnapshot (aws:ResourceTag); GetConsoleOutput
/// on the managed instances. DescribeImages has no resource types: `*`.
// NOTE: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
// Image and snapshot ARNs carry no account: arn:aws:ec2:REGION::image/ID.
fn bake_statements(scoped: bool, optional: bool) -> Vec<Value> {
    let managed = |key: &str| json!({"StringEquals": {format!("{key}/{}", tags::MANAGED): "true"}});
    if !scoped {
        return vec![json!({
            "Sid": "Bake",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateImage",
                "ec2:DescribeImages",
                "ec2:DeregisterImage",
                "ec2:DeleteSnapshot",
                "ec2:GetConsoleOutput"
            ],
            "Resource": "*"
        })];
    }
    let mut out = vec![
        json!({
            "Sid": "BakeImageOfManagedBuilder",
            "Effect": "Allow",
            "Action": ["ec2:CreateImage"],
            "Resource": LAUNCHED[0],
            "Condition": managed("aws:ResourceTag")
        }),
        json!({
            "Sid": "BakeImageTaggedManaged",
            "Effect": "Allow",
            "Action": ["ec2:CreateImage"],
            "Resource": ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"],
            "Condition": managed("aws:RequestTag")
        }),
        json!({
            "Sid": "BakeTagAtCreateImageOnly",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"],
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateImage"}}
        }),
        json!({
            "Sid": "BakeRemoveManagedImages",
            "Effect": "Allow",
            "Action": ["ec2:DeregisterImage", "ec2:DeleteSnapshot"],
            "Resource": ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"],
            "Condition": managed("aws:ResourceTag")
        }),
    ];
    // With --optional, DescribeImages and the console are granted already.
    if !optional {
        out.push(json!({
            "Sid": "BakeReadImages",
            "Effect": "Allow",
            "Action": ["ec2:DescribeImages"],
            "Resource": "*"
        }));
        out.push(json!({
            "Sid": "BakeReadBuilderConsole",
            "Effect": "Allow",
            "Action": ["ec2:GetConsoleOutput"],
            "Resource": LAUNCHED[0],
            "Condition": managed("aws:ResourceTag")
        }));
    }
    out
}

/// Prints the policy JSON on stdout.
pub(crate) fn run(args: &PolicyArgs) -> Result<(), Error> {
    if let Some(role) = &args.pass_role {
        let ok = role.starts_with("arn:aws") && role.contains(":iam::") && role.contains(":role/");
        if !ok {
            return Err(crate::settings::InvalidInput {
                input: "pass-role",
                value: Some(role.clone()),
                problem: "not a role ARN; give arn:aws:iam::ACCOUNT:role/NAME, the role inside iam-instance-profile".into(),
            }
            .into());
        }
    }
    let doc = document(args);
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    println!("{text}");
    if args.optional {
        // Granted is not enough: start calls an optional EC2 action only
        // when the step lists it, so a narrower policy sees no denied call.
        eprintln!(
            "start calls the optional EC2 actions only when its `extra-permissions` input lists them: extra-permissions: {}",
            crate::settings::EXTRA_ACTIONS.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoped() -> PolicyArgs {
        PolicyArgs::default()
    }

    /// Every action the document allows, across statements.
    fn actions(doc: &Value) -> Vec<String> {
        let mut all: Vec<String> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        all.sort();
        all
    }

    #[test]
    fn both_forms_hold_exactly_the_six_actions() {
        let mut six: Vec<String> = ACTIONS.iter().map(|(a, _)| (*a).to_owned()).collect();
        six.sort();
        assert_eq!(actions(&document(&scoped())), six);
        assert_eq!(
            actions(&document(&PolicyArgs {
                unscoped: true,
                ..scoped()
            })),
            six
        );
        let with_extras = actions(&document(&PolicyArgs {
            optional: true,
            ..scoped()
        }));
        assert_eq!(with_extras.len(), 11);
        let mut optional: Vec<&str> = OPTIONAL.iter().map(|(a, _)| *a).collect();
        optional.sort_unstable();
        for action in optional {
            assert!(with_extras.iter().any(|a| a == action), "{action}");
        }
        assert!(with_extras.contains(&"ec2:DescribeImages".to_owned()));
    }

    #[test]
    fn the_scoped_policy_tags_only_at_launch_and_ends_only_managed_resources() {
        insta::assert_json_snapshot!(document(&scoped()), @r#"
        {
          "Statement": [
            {
              "Action": [
                "ec2:RunInstances"
              ],
              "Effect": "Allow",
              "Resource": "*",
              "Sid": "Launch"
            },
            {
              "Action": [
                "ec2:DescribeInstances",
                "ec2:DescribeSpotPriceHistory"
              ],
              "Effect": "Allow",
              "Resource": "*",
              "Sid": "Read"
            },
            {
              "Action": [
                "ec2:CreateTags"
              ],
              "Condition": {
                "StringEquals": {
                  "ec2:CreateAction": "RunInstances"
                }
              },
              "Effect": "Allow",
              "Resource": [
                "arn:aws:ec2:*:*:instance/*",
                "arn:aws:ec2:*:*:volume/*"
              ],
              "Sid": "TagAtLaunchOnly"
            },
            {
              "Action": [
                "ec2:TerminateInstances",
                "ec2:ModifyVolume"
              ],
              "Condition": {
                "StringEquals": {
                  "aws:ResourceTag/ec2-spot-runner:managed": "true"
                }
              },
              "Effect": "Allow",
              "Resource": [
                "arn:aws:ec2:*:*:instance/*",
                "arn:aws:ec2:*:*:volume/*"
              ],
              "Sid": "ManagedOnly"
            }
          ],
          "Version": "2012-10-17"
        }
        "#);
    }

    #[test]
    fn a_launch_template_adds_its_read_and_what_it_may_tag_at_launch_only() {
        let doc = document(&PolicyArgs {
            launch_template: true,
            ..scoped()
        });
        let statement = |sid: &str| {
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .cloned()
                .unwrap_or_else(|| panic!("no statement {sid}: {doc}"))
        };
        let tag = statement("TagAtLaunchOnly");
        assert_eq!(
            tag["Resource"],
            json!([
                "arn:aws:ec2:*:*:instance/*",
                "arn:aws:ec2:*:*:volume/*",
                "arn:aws:ec2:*:*:network-interface/*",
                "arn:aws:ec2:*:*:spot-instances-request/*"
            ])
        );
        assert_eq!(
            tag["Condition"],
            json!({"StringEquals": {"ec2:CreateAction": "RunInstances"}})
        );
        assert_eq!(
            statement("ReadTheLaunchTemplate")["Action"],
            json!(["ec2:DescribeLaunchTemplateVersions"])
        );
        // Terminate and modify stay on what the tool launched.
        assert_eq!(statement("ManagedOnly")["Resource"], json!(LAUNCHED));
        // With the optional reads, the template read is listed once.
        for unscoped in [false, true] {
            let all = actions(&document(&PolicyArgs {
                launch_template: true,
                optional: true,
                unscoped,
                ..scoped()
            }));
            let reads = all
                .iter()
                .filter(|a| *a == "ec2:DescribeLaunchTemplateVersions")
                .count();
            assert_eq!(reads, 1, "{all:?}");
        }
    }

    #[test]
    fn the_bake_statements_are_scoped_by_the_managed_tag_where_aws_allows() {
        let doc = document(&PolicyArgs {
            bake: true,
            ..scoped()
        });
        let all = actions(&doc);
        for action in [
            "ec2:CreateImage",
            "ec2:DescribeImages",
            "ec2:DeregisterImage",
            "ec2:DeleteSnapshot",
            "ec2:GetConsoleOutput",
        ] {
            assert!(all.iter().any(|a| a == action), "{action}: {all:?}");
        }
        for statement in doc["Statement"].as_array().unwrap() {
            let acts = statement["Action"].to_string();
            if acts.contains("DescribeImages") {
                assert_eq!(
                    statement["Resource"], "*",
                    "DescribeImages has no resource types"
                );
                continue;
            }
            if acts.contains("Image") || acts.contains("Snapshot") || acts.contains("Console") {
                assert!(
                    statement["Condition"].is_object(),
                    "{statement}: every other bake statement has a condition"
                );
            }
        }
        let tag = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "BakeTagAtCreateImageOnly")
            .unwrap();
        assert_eq!(
            tag["Condition"]["StringEquals"]["ec2:CreateAction"],
            "CreateImage"
        );
        // With --optional too, nothing is granted twice.
        let both = actions(&document(&PolicyArgs {
            bake: true,
            optional: true,
            ..scoped()
        }));
        let reads = both.iter().filter(|a| *a == "ec2:DescribeImages").count();
        assert_eq!(reads, 1, "{both:?}");
    }
}
