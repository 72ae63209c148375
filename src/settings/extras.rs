//! `extra-permissions`: the optional EC2 actions the user has granted and
//! wants a start to use. Anything not listed here is never called, so the
//! six-action policy sees no denied call.

use super::{InvalidInput, list};

/// The optional actions a start calls only when they are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExtraPermissions {
    /// ec2:DescribeImages for an `image-id` (an `image-name` needs it anyway).
    pub(crate) describe_images: bool,
    /// ec2:DescribeSubnets, to rank `subnet-ids` by their zone's price.
    pub(crate) describe_subnets: bool,
    /// ec2:GetConsoleOutput, to show the console of a runner that never came online.
    pub(crate) get_console_output: bool,
}

/// The names `extra-permissions` takes, as IAM spells them.
pub(crate) const EXTRA_ACTIONS: [&str; 3] = [
    "ec2:DescribeImages",
    "ec2:DescribeSubnets",
    "ec2:GetConsoleOutput",
];

/// Optional actions that an input already implies: listing them changes nothing.
const IMPLIED: [(&str, &str); 2] = [
    ("ec2:DescribeLaunchTemplateVersions", "launch-template"),
    ("ssm:GetParameter", "an `image-id` of resolve:ssm:"),
];

impl ExtraPermissions {
    /// Parses the list. IAM action names are case-insensitive; the service
    /// prefix may be left out for EC2's.
    // NOTE: "Action names are not case-sensitive" — IAM JSON policy elements: Action.
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
    pub(crate) fn parse(raw: &Option<String>) -> Result<Self, InvalidInput> {
        let mut extras = Self::default();
        for item in list(raw)
            .iter()
            .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        {
            let name = if item.contains(':') {
                item.clone()
            } else {
                format!("ec2:{item}")
            };
            let known = |wanted: &str| name.eq_ignore_ascii_case(wanted);
            if known(EXTRA_ACTIONS[0]) {
                extras.describe_images = true;
            } else if known(EXTRA_ACTIONS[1]) {
                extras.describe_subnets = true;
            } else if known(EXTRA_ACTIONS[2]) {
                extras.get_console_output = true;
            } else if let Some((action, by)) = IMPLIED.iter().find(|(a, _)| known(a)) {
                return Err(InvalidInput::new(
                    "extra-permissions",
                    Some(&item),
                    format!(
                        "{action} is used whenever {by} needs it and never otherwise; remove it from the list"
                    ),
                ));
            } else {
                return Err(InvalidInput::new(
                    "extra-permissions",
                    Some(&item),
                    format!(
                        "not an optional action of this tool; list any of {} (grant them first: `ec2-spot-runner policy --optional` prints the statements)",
                        EXTRA_ACTIONS.join(", ")
                    ),
                ));
            }
        }
        Ok(extras)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<ExtraPermissions, InvalidInput> {
        ExtraPermissions::parse(&Some(raw.to_owned()))
    }

    #[test]
    fn nothing_is_listed_by_default() {
        assert_eq!(
            ExtraPermissions::parse(&None).unwrap(),
            ExtraPermissions::default()
        );
        assert_eq!(parse("  ").unwrap(), ExtraPermissions::default());
    }

    #[test]
    fn actions_are_read_as_iam_names_them_in_any_case_and_separation() {
        let all = parse("ec2:DescribeImages, describesubnets\nEC2:GetConsoleOutput").unwrap();
        assert!(all.describe_images && all.describe_subnets && all.get_console_output);
        let one = parse("ec2:DescribeSubnets").unwrap();
        assert!(one.describe_subnets && !one.describe_images && !one.get_console_output);
        let spaced = parse("ec2:DescribeImages ec2:GetConsoleOutput").unwrap();
        assert!(spaced.describe_images && spaced.get_console_output);
    }

    #[test]
    fn unknown_and_implied_actions_are_refused_with_the_fix() {
        let err = parse("ec2:DescribeVolumes").unwrap_err().to_string();
        assert!(err.contains("extra-permissions"), "{err}");
        assert!(err.contains("ec2:DescribeVolumes"), "{err}");
        assert!(err.contains("ec2:GetConsoleOutput"), "{err}");
        let err = parse("ssm:GetParameter").unwrap_err().to_string();
        assert!(err.contains("resolve:ssm"), "{err}");
    }
}
