//! Raw command-line arguments. Every option is a kebab-case `--flag` and an
//! `INPUT_*` environment variable, so the composite action passes its inputs
//! through `env:` and never through a `${{ }}` inside a script. Values stay
//! strings here; `settings` turns them into checked types before any work.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Run one GitHub Actions job on its own short-lived EC2 spot instance.
#[derive(Debug, Parser)]
#[command(name = "ec2-spot-runner", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log verbosity: error, warn, info, debug or trace (RUNNER_DEBUG=1 also turns on debug).
    #[arg(long, global = true, env = "INPUT_LOG_LEVEL")]
    pub(crate) log_level: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The modes of the tool; the action's `mode` input picks one.
// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Launch an instance that becomes an ephemeral runner for one job.
    Start(StartArgs),
    /// Terminate the instances of a label and remove their runners.
    Stop(StopArgs),
    /// Reap instances and runners that cancelled or crashed runs left behind.
    Cleanup(CleanupArgs),
    /// Re-run, once, the start job of a run whose spot machine EC2 reclaimed.
    Rerun(RerunArgs),
    /// Check AWS and GitHub access before a first run, launching nothing.
    Doctor(DoctorArgs),
    /// Print the minimal IAM policy the default path needs.
    Policy(PolicyArgs),
    /// Print the user-data script `start` would send (with a placeholder JIT config).
    UserData(UserDataArgs),
    /// Bake a runner image: launch a builder, install the newest runner, image it, keep the newest few.
    Bake(BakeArgs),
}

/// How to reach and authenticate to GitHub.
#[derive(Args, Clone, Default)]
pub(crate) struct GithubArgs {
    /// A token: fine-grained or classic personal access token, or an installation token.
    #[arg(
        long,
        env = "INPUT_GITHUB_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) github_token: Option<String>,
    /// GitHub App id (numeric) or client id (Iv…), for App authentication.
    #[arg(long, env = "INPUT_GITHUB_APP_ID")]
    pub(crate) github_app_id: Option<String>,
    /// The App's private key, PEM content (PKCS#1 or PKCS#8).
    #[arg(
        long,
        env = "INPUT_GITHUB_APP_PRIVATE_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub(crate) github_app_private_key: Option<String>,
    /// Installation id; looked up for the repository or organization when absent.
    #[arg(long, env = "INPUT_GITHUB_APP_INSTALLATION_ID")]
    pub(crate) github_app_installation_id: Option<String>,
    /// Repository `owner/name` the runner serves (default: GITHUB_REPOSITORY).
    #[arg(long, env = "INPUT_REPOSITORY")]
    pub(crate) repository: Option<String>,
    /// Register the runner for this organization instead of the repository.
    #[arg(long, env = "INPUT_ORGANIZATION")]
    pub(crate) organization: Option<String>,
    /// GitHub REST API base URL (default: GITHUB_API_URL, else https://api.github.com).
    #[arg(long, env = "GITHUB_API_URL")]
    pub(crate) github_api_url: Option<String>,
}

impl std::fmt::Debug for GithubArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("GithubArgs")
            .field("github_token", &hidden(&self.github_token))
            .field("github_app_id", &self.github_app_id)
            .field(
                "github_app_private_key",
                &hidden(&self.github_app_private_key),
            )
            .field(
                "github_app_installation_id",
                &self.github_app_installation_id,
            )
            .field("repository", &self.repository)
            .field("organization", &self.organization)
            .field("github_api_url", &self.github_api_url)
            .finish()
    }
}

/// Which AWS region to use, when the standard chain should be overridden.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct AwsArgs {
    /// AWS region (default: the standard chain, e.g. AWS_REGION).
    #[arg(long, env = "INPUT_AWS_REGION")]
    pub(crate) aws_region: Option<String>,
}

/// Inputs of `start`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct StartArgs {
    #[command(flatten)]
    pub(crate) github: GithubArgs,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    #[command(flatten)]
    pub(crate) instance: InstanceArgs,
    /// How to buy capacity: spot, on-demand, or spot-then-on-demand (default).
    #[arg(long, env = "INPUT_MARKET")]
    pub(crate) market: Option<String>,
    /// Restrict launches to these availability zones, comma or newline separated.
    #[arg(long, env = "INPUT_AVAILABILITY_ZONES")]
    pub(crate) availability_zones: Option<String>,
    /// Highest acceptable spot price in USD per hour, e.g. 0.05.
    #[arg(long, env = "INPUT_MAX_SPOT_PRICE")]
    pub(crate) max_spot_price: Option<String>,
    /// How spot candidates are ordered: price (default) or price-per-vcpu.
    #[arg(long, env = "INPUT_RANK_BY")]
    pub(crate) rank_by: Option<String>,
    /// On a re-run (GITHUB_RUN_ATTEMPT > 1) go on-demand straight away: true (default) or false.
    #[arg(long, env = "INPUT_ON_DEMAND_ON_RETRY")]
    pub(crate) on_demand_on_retry: Option<String>,
    /// How many runners to launch with the same label (default 1).
    #[arg(long, env = "INPUT_COUNT")]
    pub(crate) count: Option<String>,
    /// With count > 1: succeed when at least one runner started (default false).
    #[arg(long, env = "INPUT_ALLOW_PARTIAL")]
    pub(crate) allow_partial: Option<String>,
    /// Launch the root volume with raised IOPS/throughput, dropped to baseline after boot (default true).
    #[arg(long, env = "INPUT_BOOT_BOOST")]
    pub(crate) boot_boost: Option<String>,
    /// What to wait for before returning: running (default), online, or none.
    #[arg(long, env = "INPUT_WAIT_FOR")]
    pub(crate) wait_for: Option<String>,
    /// How long start may take in all, e.g. 5m (default 5m).
    #[arg(long, env = "INPUT_TIMEOUT")]
    pub(crate) timeout: Option<String>,
    /// Where to read the newest actions/runner release (default: GITHUB_API_URL/repos/actions/runner/releases/latest).
    #[arg(long, env = "INPUT_RUNNER_RELEASES_URL")]
    pub(crate) runner_releases_url: Option<String>,
    /// Optional EC2 actions granted to these credentials that start may use: ec2:DescribeImages, ec2:DescribeSubnets, ec2:GetConsoleOutput (default: none).
    #[arg(long, env = "INPUT_EXTRA_PERMISSIONS")]
    pub(crate) extra_permissions: Option<String>,
}

/// Which image to launch (`bake`: the base image).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ImageArgs {
    /// AMI id, e.g. ami-0123456789abcdef0, or `resolve:ssm:PARAMETER` (this or image-name is required).
    #[arg(long, env = "INPUT_IMAGE_ID")]
    pub(crate) image_id: Option<String>,
    /// Launch the newest AMI whose name matches this pattern (`*` wildcards), owned by image-owner.
    #[arg(long, env = "INPUT_IMAGE_NAME")]
    pub(crate) image_name: Option<String>,
    /// Owners trusted for image-name: account ids or amazon, self, aws-marketplace, comma separated.
    #[arg(long, env = "INPUT_IMAGE_OWNER")]
    pub(crate) image_owner: Option<String>,
}

/// Everything that shapes the launched instance and its runner.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct InstanceArgs {
    #[command(flatten)]
    pub(crate) image: ImageArgs,
    /// Acceptable instance types, comma or newline separated, preferred first.
    #[arg(long, env = "INPUT_INSTANCE_TYPES")]
    pub(crate) instance_types: Option<String>,
    /// Instance types by size instead: e.g. `vcpu=4-8,memory=16+,arch=arm64,family=c7g|m7g`.
    #[arg(long, env = "INPUT_INSTANCE_REQUIREMENTS")]
    pub(crate) instance_requirements: Option<String>,
    /// Subnet ids, comma or newline separated (default: the default VPC).
    #[arg(long, env = "INPUT_SUBNET_IDS")]
    pub(crate) subnet_ids: Option<String>,
    /// Security group ids, comma or newline separated (default: the VPC's default group).
    #[arg(long, env = "INPUT_SECURITY_GROUP_IDS")]
    pub(crate) security_group_ids: Option<String>,
    /// Runner label (default: unique per run, attempt and job).
    #[arg(long, env = "INPUT_LABEL")]
    pub(crate) label: Option<String>,
    /// Extra runner labels, comma or newline separated.
    #[arg(long, env = "INPUT_LABELS")]
    pub(crate) labels: Option<String>,
    /// Extra tags `key=value`, one per line or comma separated, for the instance and its volumes.
    #[arg(long, env = "INPUT_TAGS", allow_hyphen_values = true)]
    pub(crate) tags: Option<String>,
    /// Root volume size in GiB (default: the image's).
    #[arg(long, env = "INPUT_VOLUME_SIZE")]
    pub(crate) volume_size: Option<String>,
    /// Provisioned rate (MiB/s, 100-300) at which the root volume is initialized from its snapshot.
    #[arg(long, env = "INPUT_VOLUME_INITIALIZATION_RATE")]
    pub(crate) volume_initialization_rate: Option<String>,
    /// Device name of the image's root volume (default /dev/sda1; Amazon Linux uses /dev/xvda).
    #[arg(long, env = "INPUT_ROOT_DEVICE_NAME")]
    pub(crate) root_device_name: Option<String>,
    /// Runner group id for the JIT config (default 1).
    #[arg(long, env = "INPUT_RUNNER_GROUP_ID")]
    pub(crate) runner_group_id: Option<String>,
    /// Power the machine off after this long whatever happens (default 6h).
    #[arg(long, env = "INPUT_MAX_LIFETIME")]
    pub(crate) max_lifetime: Option<String>,
    /// Power the machine off when no job started within this time (default 15m).
    #[arg(long, env = "INPUT_IDLE_TIMEOUT")]
    pub(crate) idle_timeout: Option<String>,
    /// Directory of a runner pre-installed in the image.
    #[arg(long, env = "INPUT_RUNNER_DIR")]
    pub(crate) runner_dir: Option<String>,
    /// actions/runner version to download when the image has none (default: the newest pinned).
    #[arg(long, env = "INPUT_RUNNER_VERSION")]
    pub(crate) runner_version: Option<String>,
    /// SHA-256 checksums `x64=HEX,arm64=HEX` for a runner-version the binary does not know.
    #[arg(long, env = "INPUT_RUNNER_SHA256")]
    pub(crate) runner_sha256: Option<String>,
    /// Replace a pre-installed runner older than the runner release with its download (default true).
    #[arg(long, env = "INPUT_RUNNER_UPDATE")]
    pub(crate) runner_update: Option<String>,
    /// Give the runner user passwordless sudo, as on GitHub-hosted runners (default true).
    #[arg(long, env = "INPUT_RUNNER_SUDO")]
    pub(crate) runner_sudo: Option<String>,
    /// On an image without libicu, install it before the runner starts (default false: the runner starts at once with invariant globalization).
    #[arg(long, env = "INPUT_INSTALL_LIBICU")]
    pub(crate) install_libicu: Option<String>,
    /// NVMe instance store as the work folder and Docker's data root: auto (default) or off.
    #[arg(long, env = "INPUT_INSTANCE_STORE")]
    pub(crate) instance_store: Option<String>,
    /// Launch template (id lt-… or name) that supplies what the other inputs leave unset.
    #[arg(long, env = "INPUT_LAUNCH_TEMPLATE")]
    pub(crate) launch_template: Option<String>,
    /// The launch template's version: $Default (the default), $Latest or a number.
    #[arg(long, env = "INPUT_LAUNCH_TEMPLATE_VERSION")]
    pub(crate) launch_template_version: Option<String>,
    /// Instance profile (name or ARN) that gives the machine an IAM role; needs iam:PassRole on its role.
    #[arg(long, env = "INPUT_IAM_INSTANCE_PROFILE")]
    pub(crate) iam_instance_profile: Option<String>,
    /// Bash run as root on the instance before the runner starts.
    #[arg(long, env = "INPUT_PRE_RUNNER_SCRIPT", allow_hyphen_values = true)]
    pub(crate) pre_runner_script: Option<String>,
}

/// Inputs of `stop`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct StopArgs {
    #[command(flatten)]
    pub(crate) github: GithubArgs,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The label `start` printed (its `label` output).
    #[arg(long, env = "INPUT_LABEL")]
    pub(crate) label: Option<String>,
    /// The start's `start-id` output: only what that start launched is stopped, even when other runs share the label.
    #[arg(long, env = "INPUT_START_ID")]
    pub(crate) start_id: Option<String>,
}

/// Inputs of `cleanup`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CleanupArgs {
    #[command(flatten)]
    pub(crate) github: GithubArgs,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// Decide and report, but terminate and delete nothing.
    #[arg(long, env = "INPUT_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) dry_run: Option<String>,
    /// Never touch an instance younger than this (default 5m): its start may still be running.
    #[arg(long, env = "INPUT_GRACE_PERIOD")]
    pub(crate) grace_period: Option<String>,
    /// Terminate an instance whose runner is not online this long after launch (default 10m).
    #[arg(long, env = "INPUT_REGISTRATION_TIMEOUT")]
    pub(crate) registration_timeout: Option<String>,
    /// Max lifetime for instances that carry none in their tags (default 6h).
    #[arg(long, env = "INPUT_MAX_LIFETIME")]
    pub(crate) max_lifetime: Option<String>,
    /// Only delete the tool's runners whose names start with this (default: every runner carrying the `ec2-spot-runner` label).
    #[arg(long, env = "INPUT_RUNNER_PREFIX")]
    pub(crate) runner_prefix: Option<String>,
    /// Pause before deleting runners without a machine, so a start in progress keeps its runner (default 60s).
    #[arg(long, env = "INPUT_SETTLE", hide = true)]
    pub(crate) settle: Option<String>,
}

/// Inputs of `rerun`, run from a `workflow_run: completed` workflow.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RerunArgs {
    #[command(flatten)]
    pub(crate) github: GithubArgs,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The finished run (default: the `workflow_run` event's).
    #[arg(long, env = "INPUT_RUN_ID")]
    pub(crate) run_id: Option<String>,
    /// Its attempt (default: the `workflow_run` event's).
    #[arg(long, env = "INPUT_RUN_ATTEMPT")]
    pub(crate) run_attempt: Option<String>,
    /// Decide and report, but re-run nothing.
    #[arg(long, env = "INPUT_DRY_RUN", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) dry_run: Option<String>,
}

/// Inputs of `doctor`: the same as `start`'s, so that it checks the very
/// launch request a start with these inputs would send.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) start: StartArgs,
    /// Which mode's permissions to check as well: `bake` adds the bake's (CreateImage, DeregisterImage, DeleteSnapshot, DescribeImages, GetConsoleOutput).
    #[arg(long = "mode")]
    pub(crate) mode: Option<String>,
}

/// Inputs of `bake`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct BakeArgs {
    #[command(flatten)]
    pub(crate) github: GithubArgs,
    #[command(flatten)]
    pub(crate) aws: AwsArgs,
    /// The base image.
    #[command(flatten)]
    pub(crate) image: ImageArgs,
    /// The builder's instance type (the first one listed; default: c7i.large, or c7g.large for an arm64 base).
    #[arg(long, env = "INPUT_INSTANCE_TYPES")]
    pub(crate) instance_types: Option<String>,
    /// Subnet for the builder (the first one listed; default: the default VPC).
    #[arg(long, env = "INPUT_SUBNET_IDS")]
    pub(crate) subnet_ids: Option<String>,
    /// Security groups for the builder.
    #[arg(long, env = "INPUT_SECURITY_GROUP_IDS")]
    pub(crate) security_group_ids: Option<String>,
    /// Extra tags `key=value` for the builder, the image and its snapshots.
    #[arg(long, env = "INPUT_TAGS", allow_hyphen_values = true)]
    pub(crate) tags: Option<String>,
    /// The image's root volume size in GiB (default: the base image's).
    #[arg(long, env = "INPUT_VOLUME_SIZE")]
    pub(crate) volume_size: Option<String>,
    /// The base image's root device name (default: read from the image).
    #[arg(long, env = "INPUT_ROOT_DEVICE_NAME")]
    pub(crate) root_device_name: Option<String>,
    /// actions/runner version to bake in (default: the newest release).
    #[arg(long, env = "INPUT_RUNNER_VERSION")]
    pub(crate) runner_version: Option<String>,
    /// SHA-256 checksums `x64=HEX,arm64=HEX` for a runner-version the binary does not know.
    #[arg(long, env = "INPUT_RUNNER_SHA256")]
    pub(crate) runner_sha256: Option<String>,
    /// Where to read the newest actions/runner release.
    #[arg(long, env = "INPUT_RUNNER_RELEASES_URL")]
    pub(crate) runner_releases_url: Option<String>,
    /// The baked images' name prefix: images are named PREFIX-ARCH-DATE (default ec2-spot-runner).
    #[arg(long, env = "INPUT_BAKE_NAME")]
    pub(crate) bake_name: Option<String>,
    /// Install Docker in the image too (default false).
    #[arg(long, env = "INPUT_BAKE_DOCKER")]
    pub(crate) bake_docker: Option<String>,
    /// Bash run as root on the builder after the runner and its dependencies.
    #[arg(long, env = "INPUT_BAKE_SCRIPT", allow_hyphen_values = true)]
    pub(crate) bake_script: Option<String>,
    /// How many images of this name and architecture to keep, newest first (default 3).
    #[arg(long, env = "INPUT_KEEP")]
    pub(crate) keep: Option<String>,
    /// How long the whole bake may take, e.g. 45m (default 45m).
    #[arg(long, env = "INPUT_TIMEOUT")]
    pub(crate) timeout: Option<String>,
}

/// Inputs of `policy`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PolicyArgs {
    /// Print the six actions on every resource, without the tag conditions.
    #[arg(long)]
    pub(crate) unscoped: bool,
    /// Add the optional extras (ec2:DescribeImages, ec2:DescribeSubnets, ec2:GetConsoleOutput).
    #[arg(long)]
    pub(crate) optional: bool,
    /// Add what `launch-template` needs: reading the template, and tagging at launch what a template may tag (network interfaces, spot requests).
    #[arg(long)]
    pub(crate) launch_template: bool,
    /// Add what `bake` needs: CreateImage, DescribeImages, DeregisterImage, DeleteSnapshot, GetConsoleOutput and tagging images and snapshots at creation, scoped to the managed tag.
    #[arg(long)]
    pub(crate) bake: bool,
    /// Add iam:PassRole for the role of `iam-instance-profile` (its ARN), passable to EC2 only.
    #[arg(long)]
    pub(crate) pass_role: Option<String>,
}

/// Inputs of `user-data`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct UserDataArgs {
    #[command(flatten)]
    pub(crate) instance: InstanceArgs,
    /// Runner name to render (default: the label followed by -1).
    #[arg(long)]
    pub(crate) runner_name: Option<String>,
    /// Read the JIT config to embed from this environment variable instead of a placeholder.
    #[arg(long)]
    pub(crate) jit_config_env: Option<String>,
}

/// Prefixes of GitHub credentials, so a token typed in the wrong place on a
/// command line is still recognised as one.
const TOKEN_PREFIXES: [&str; 6] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];

/// Prints a command-line error (or `--help`) the way clap would, but with
/// every secret blanked out: clap quotes the arguments it could not place,
/// and a token or key given to the wrong flag must not reach a log.
pub(crate) fn report_parse_error(err: &clap::Error) -> ExitCode {
    let mut secrets: Vec<String> = ["INPUT_GITHUB_TOKEN", "INPUT_GITHUB_APP_PRIVATE_KEY"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        let secret_flag = ["--github-token", "--github-app-private-key"]
            .iter()
            .find(|flag| arg == *flag || arg.starts_with(&format!("{flag}=")));
        if let Some(flag) = secret_flag {
            match arg.strip_prefix(&format!("{flag}=")) {
                Some(value) => secrets.push(value.to_owned()),
                None => secrets.extend(args.get(i + 1).cloned()),
            }
        }
        if TOKEN_PREFIXES.iter().any(|p| arg.starts_with(p)) || arg.contains("PRIVATE KEY") {
            secrets.push(arg.clone());
        }
    }
    let mut text = err.render().to_string();
    for secret in &secrets {
        for part in std::iter::once(secret.as_str()).chain(secret.lines()) {
            if part.trim().len() >= 8 {
                text = text.replace(part.trim(), "***");
            }
        }
    }
    if err.use_stderr() {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    // clap's own codes: 2 for a usage error, 0 for --help and --version.
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}
