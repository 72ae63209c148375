//! The validated settings of each mode (start, stop, cleanup, doctor), and
//! the run and region they share.

use super::*;

/// Which markets a start may use, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarketPolicy {
    /// Spot only; fail when no spot capacity is found.
    Spot,
    /// On-demand only.
    OnDemand,
    /// Spot first, on-demand when every spot candidate failed.
    SpotThenOnDemand,
}

/// How spot candidates are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankBy {
    /// The cheapest machine first.
    Price,
    /// The cheapest vCPU first: a bigger machine that costs less per vCPU
    /// wins (for jobs that use every core).
    PricePerVcpu,
}

/// What `start` waits for before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFor {
    /// Return once EC2 reports the instance `running`.
    Running,
    /// Return once the runner is online on GitHub (two polls in a row).
    Online,
    /// Return right after the launch request succeeded.
    None,
}

/// The workflow run this invocation belongs to (from the Actions environment).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunContext {
    /// `GITHUB_RUN_ID`.
    pub(crate) run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub(crate) run_attempt: Option<String>,
    /// `GITHUB_JOB`.
    pub(crate) job: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub(crate) repository: Option<String>,
    /// `RUNNER_NAME`: the runner this step runs on.
    pub(crate) runner_name: Option<String>,
}

impl RunContext {
    /// Reads the run from the environment Actions sets.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            run_id: var("GITHUB_RUN_ID"),
            run_attempt: var("GITHUB_RUN_ATTEMPT"),
            job: var("GITHUB_JOB"),
            repository: var("GITHUB_REPOSITORY"),
            runner_name: var("RUNNER_NAME"),
        }
    }
}

/// The region override, when given.
pub(crate) fn aws_region(args: &AwsArgs) -> Result<Option<String>, InvalidInput> {
    let Some(region) = present(&args.aws_region) else {
        return Ok(None);
    };
    let ok = region.len() <= 32
        && region.split('-').count() >= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(Some(region.to_owned()))
    } else {
        Err(InvalidInput::new(
            "aws-region",
            Some(region),
            "not an AWS region name, e.g. us-east-1",
        ))
    }
}

/// Validated inputs of `start`.
#[derive(Debug)]
pub(crate) struct StartSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The instance and its runner.
    pub(crate) instance: InstanceSettings,
    /// What to wait for.
    pub(crate) wait_for: WaitFor,
    /// The whole start's deadline.
    pub(crate) timeout: Duration,
    /// Which markets to use, after `on-demand-on-retry` was applied.
    pub(crate) market: MarketPolicy,
    /// Allowed zones (empty: all).
    pub(crate) zones: Vec<String>,
    /// Spot price cap, USD per hour.
    pub(crate) max_spot_price: Option<f64>,
    /// How spot candidates are ordered.
    pub(crate) rank_by: RankBy,
    /// Number of runners.
    pub(crate) count: u32,
    /// Whether fewer than `count` runners is still a success.
    pub(crate) allow_partial: bool,
    /// Launch with raised gp3 IOPS/throughput and drop them after boot.
    pub(crate) boot_boost: bool,
    /// The run this start belongs to.
    pub(crate) run: RunContext,
    /// Where to read the newest actions/runner release; `None` when
    /// `runner-version` pins one.
    pub(crate) runner_releases_url: Option<String>,
    /// The optional actions the user granted and listed.
    pub(crate) extras: ExtraPermissions,
}

impl StartSettings {
    /// Validates every input of `start`.
    pub(crate) fn from_args(args: &StartArgs) -> Result<Self, InvalidInput> {
        let run = RunContext::from_env();
        let instance = InstanceSettings::from_args(&args.instance, &run, true)?;
        let github = GithubSettings::from_args(&args.github)?;
        let runner_releases_url = releases_url(
            &args.runner_releases_url,
            instance.runner_version_pinned,
            &github.api_url,
        )?;
        let chosen = parse_choice(
            "market",
            &args.market,
            MarketPolicy::SpotThenOnDemand,
            &[
                ("spot-then-on-demand", MarketPolicy::SpotThenOnDemand),
                ("spot", MarketPolicy::Spot),
                ("on-demand", MarketPolicy::OnDemand),
            ],
        )?;
        let on_demand_on_retry = parse_bool("on-demand-on-retry", &args.on_demand_on_retry, true)?;
        let attempt: u32 = run
            .run_attempt
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1);
        // A re-run most often follows a spot interruption: take capacity that stays.
        let market =
            if on_demand_on_retry && attempt > 1 && chosen == MarketPolicy::SpotThenOnDemand {
                MarketPolicy::OnDemand
            } else {
                chosen
            };
        let zones = list(&args.availability_zones);
        for zone in &zones {
            let ok = zone.len() <= 32
                && zone.split('-').count() >= 3
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(InvalidInput::new(
                    "availability-zones",
                    Some(zone),
                    "not an availability zone name, e.g. us-east-1a",
                ));
            }
        }
        let max_spot_price = match present(&args.max_spot_price) {
            None => None,
            Some(raw) => match raw.trim_start_matches('$').parse::<f64>() {
                Ok(p) if p.is_finite() && p > 0.0 && p < 1000.0 => Some(p),
                _ => {
                    return Err(InvalidInput::new(
                        "max-spot-price",
                        Some(raw),
                        "must be a price in USD per hour, greater than 0, e.g. 0.05",
                    ));
                }
            },
        };
        if max_spot_price.is_some() && chosen == MarketPolicy::OnDemand {
            return Err(InvalidInput::new(
                "max-spot-price",
                present(&args.max_spot_price),
                "has no effect with `market: on-demand`; remove it or use a spot market",
            ));
        }
        Ok(Self {
            market,
            zones,
            max_spot_price,
            rank_by: parse_choice(
                "rank-by",
                &args.rank_by,
                RankBy::Price,
                &[
                    ("price", RankBy::Price),
                    ("price-per-vcpu", RankBy::PricePerVcpu),
                ],
            )?,
            count: parse_number("count", &args.count, 1, 50)?.unwrap_or(1),
            allow_partial: parse_bool("allow-partial", &args.allow_partial, false)?,
            boot_boost: parse_bool("boot-boost", &args.boot_boost, true)?,
            github,
            region: aws_region(&args.aws)?,
            instance,
            wait_for: parse_choice(
                "wait-for",
                &args.wait_for,
                WaitFor::Running,
                &[
                    ("running", WaitFor::Running),
                    ("online", WaitFor::Online),
                    ("none", WaitFor::None),
                ],
            )?,
            timeout: parse_duration(
                "timeout",
                &args.timeout,
                Duration::from_secs(300),
                Duration::from_secs(10),
                Duration::from_secs(3600),
            )?,
            runner_releases_url,
            extras: ExtraPermissions::parse(&args.extra_permissions)?,
            run,
        })
    }
}

/// Validated inputs of `stop`.
#[derive(Debug)]
pub(crate) struct StopSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The label to stop.
    pub(crate) label: Label,
    /// Only what this start launched (its `start-id` output).
    pub(crate) start_id: Option<String>,
}

impl StopSettings {
    /// Validates every input of `stop`.
    pub(crate) fn from_args(args: &StopArgs) -> Result<Self, InvalidInput> {
        let label = Label::parse("label", present(&args.label).unwrap_or(""))?;
        let start_id = present(&args.start_id).map(str::to_owned);
        if let Some(id) = &start_id {
            if id.len() != 6
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(InvalidInput::new(
                    "start-id",
                    Some(id),
                    "not a start id; pass the `start-id` output of the start step (six lowercase letters and digits)",
                ));
            }
        }
        Ok(Self {
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
            label,
            start_id,
        })
    }
}

/// Validated inputs of `cleanup`.
#[derive(Debug)]
pub(crate) struct CleanupSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// Report only.
    pub(crate) dry_run: bool,
    /// Minimum age before anything is touched.
    pub(crate) grace_period: Duration,
    /// Deadline for a runner to come online.
    pub(crate) registration_timeout: Duration,
    /// Lifetime assumed for instances without a lifetime tag.
    pub(crate) default_max_lifetime: Duration,
    /// Only runners whose names start with this.
    pub(crate) runner_prefix: Option<String>,
    /// Pause before deleting machine-less runners.
    pub(crate) settle: Duration,
}

impl CleanupSettings {
    /// Validates every input of `cleanup`.
    pub(crate) fn from_args(args: &crate::cli::CleanupArgs) -> Result<Self, InvalidInput> {
        let runner_prefix = present(&args.runner_prefix).map(str::to_owned);
        if let Some(prefix) = runner_prefix.as_ref().filter(|p| p.len() < 3) {
            return Err(InvalidInput::new(
                "runner-prefix",
                Some(prefix),
                "must be at least 3 characters, so cleanup cannot match every runner",
            ));
        }
        Ok(Self {
            dry_run: parse_bool("dry-run", &args.dry_run, false)?,
            grace_period: parse_duration(
                "grace-period",
                &args.grace_period,
                Duration::from_secs(300),
                Duration::ZERO,
                Duration::from_secs(24 * 3600),
            )?,
            registration_timeout: parse_duration(
                "registration-timeout",
                &args.registration_timeout,
                Duration::from_secs(600),
                Duration::from_secs(60),
                Duration::from_secs(24 * 3600),
            )?,
            default_max_lifetime: parse_duration(
                "max-lifetime",
                &args.max_lifetime,
                Duration::from_secs(6 * 3600),
                Duration::from_secs(5 * 60),
                Duration::from_secs(7 * 24 * 3600),
            )?,
            settle: parse_duration(
                "settle",
                &args.settle,
                Duration::from_secs(60),
                Duration::ZERO,
                Duration::from_secs(600),
            )?,
            runner_prefix,
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
        })
    }
}

/// Validated inputs of `doctor`.
#[derive(Debug)]
pub(crate) struct DoctorSettings {
    /// GitHub side.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The start to check the launch of, when `image-id` is given.
    pub(crate) start: Option<StartSettings>,
    /// Type for the price check.
    pub(crate) instance_type: Option<InstanceType>,
    /// Check the bake's permissions too (`--mode bake`).
    pub(crate) bake: bool,
}

impl DoctorSettings {
    /// Validates every input of `doctor`: with `image-id`, exactly as `start` does.
    pub(crate) fn from_args(args: &crate::cli::DoctorArgs) -> Result<Self, InvalidInput> {
        let bake = match present(&args.mode) {
            None | Some("start") => false,
            Some("bake") => true,
            Some(other) => {
                return Err(InvalidInput::new(
                    "mode",
                    Some(other),
                    "doctor checks start (the default) and, with --mode bake, the bake's permissions too",
                ));
            }
        };
        let args = &args.start;
        let start = (present(&args.instance.image.image_id).is_some()
            || present(&args.instance.image.image_name).is_some()
            || present(&args.instance.launch_template).is_some())
        .then(|| StartSettings::from_args(args))
        .transpose()?;
        let instance_type = list(&args.instance.instance_types)
            .first()
            .map(|t| InstanceType::parse(t))
            .transpose()?;
        Ok(Self {
            github: GithubSettings::from_args(&args.github)?,
            region: aws_region(&args.aws)?,
            start,
            instance_type,
            bake,
        })
    }
}

/// Validated inputs of `rerun`.
#[derive(Debug)]
pub(crate) struct RerunSettings {
    /// GitHub side, scoped to the run's repository.
    pub(crate) github: GithubSettings,
    /// Region override.
    pub(crate) region: Option<String>,
    /// The run's repository.
    pub(crate) repository: Repository,
    /// The finished run.
    pub(crate) run_id: u64,
    /// The attempt that finished.
    pub(crate) run_attempt: u32,
    /// Report only.
    pub(crate) dry_run: bool,
}

/// What a `workflow_run` event says of its run.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkflowRunEvent {
    /// `workflow_run.id`.
    pub(crate) run_id: Option<u64>,
    /// `workflow_run.run_attempt`.
    pub(crate) run_attempt: Option<u32>,
    /// `workflow_run.repository.full_name`.
    pub(crate) repository: Option<String>,
}

impl WorkflowRunEvent {
    /// Reads the event payload Actions writes to GITHUB_EVENT_PATH.
    // NOTE: https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
    pub(crate) fn parse(payload: &str) -> Self {
        let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
        let run = &value["workflow_run"];
        Self {
            run_id: run["id"].as_u64(),
            run_attempt: run["run_attempt"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok()),
            repository: run["repository"]["full_name"].as_str().map(str::to_owned),
        }
    }

    fn from_env() -> Self {
        std::env::var("GITHUB_EVENT_PATH")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }
}

impl RerunSettings {
    /// Validates every input of `rerun`; the run comes from the inputs or,
    /// by default, from the `workflow_run` event that triggered the job.
    pub(crate) fn from_args(args: &crate::cli::RerunArgs) -> Result<Self, InvalidInput> {
        let event = WorkflowRunEvent::from_env();
        let missing = "is missing; run rerun from a workflow triggered by `workflow_run: types: [completed]` (see examples/rerun.yml), or give run-id and run-attempt";
        let run_id = match parse_number("run-id", &args.run_id, 1, u64::MAX)? {
            Some(id) => id,
            None => event
                .run_id
                .ok_or_else(|| InvalidInput::new("run-id", None, missing))?,
        };
        let run_attempt = match parse_number("run-attempt", &args.run_attempt, 1, 1000)? {
            Some(n) => n,
            None if present(&args.run_id).is_some() => {
                return Err(InvalidInput::new(
                    "run-attempt",
                    None,
                    "is needed with run-id: the attempt whose machines to look at (1 for a first run)",
                ));
            }
            None => event
                .run_attempt
                .ok_or_else(|| InvalidInput::new("run-attempt", None, missing))?,
        };
        // The run's own repository, whatever scope the runners had.
        let repository = present(&args.github.repository)
            .map(str::to_owned)
            .or(event.repository)
            .or_else(|| std::env::var("GITHUB_REPOSITORY").ok())
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| {
                InvalidInput::new(
                    "repository",
                    None,
                    "is missing; give the run's `owner/name` (GITHUB_REPOSITORY is not set outside Actions)",
                )
            })?;
        let repository = Repository::parse(&repository)?;
        let mut github_args = args.github.clone();
        github_args.organization = None;
        github_args.repository = Some(repository.to_string());
        Ok(Self {
            github: GithubSettings::from_args(&github_args)?,
            region: aws_region(&args.aws)?,
            repository,
            run_id,
            run_attempt,
            dry_run: parse_bool("dry-run", &args.dry_run, false)?,
        })
    }
}

/// Where the newest actions/runner release is read: `runner-releases-url`,
/// else GitHub's API; `None` when `runner-version` pins the release.
pub(super) fn releases_url(
    raw: &Option<String>,
    pinned: bool,
    api_url: &str,
) -> Result<Option<String>, InvalidInput> {
    Ok(match present(raw) {
        Some(url) => {
            let ok = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
            if !ok {
                return Err(InvalidInput::new(
                    "runner-releases-url",
                    Some(url),
                    "not an http(s) URL; give the URL of a `latest release` answer, e.g. https://api.github.com/repos/actions/runner/releases/latest",
                ));
            }
            if pinned {
                return Err(InvalidInput::new(
                    "runner-releases-url",
                    Some(url),
                    "has no effect with runner-version, which pins the release; remove one of them",
                ));
            }
            Some(url.to_owned())
        }
        None if pinned => None,
        None => Some(format!("{}/repos/actions/runner/releases/latest", api_url)),
    })
}
