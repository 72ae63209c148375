//! `start`: validate, then in parallel authenticate to GitHub and read spot
//! prices; mint a JIT config per runner, launch on the cheapest capacity that
//! exists, wait until running, write outputs and a summary. Anything that
//! fails after a launch — or a SIGINT/SIGTERM at any point — terminates what
//! was launched and deletes the JIT runners before the process exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use futures_util::future::join_all;

use crate::actions::{self, Outputs};
use crate::aws::images::{self, Lookup};
use crate::aws::instances::{self, Wait};
use crate::aws::launch::{self, LaunchSpec, Launched, Learned, RootDevice};
use crate::aws::placement::{self, Candidate, RankInput, SpotPrice};
use crate::aws::templates;
use crate::aws::{self, AwsError};
use crate::cancel::Cancel;
use crate::cli::StartArgs;
use crate::error::Error;
use crate::github::runners::JitRunner;
use crate::github::{self, Github};
use crate::modes::user_data;
use crate::pricing;
use crate::settings::{ImageId, MarketPolicy, RunnerDownload, StartSettings, WaitFor};
use crate::summary;
use crate::tags::LaunchTags;

/// What has been created so far, so that an undo knows what to remove.
#[derive(Debug, Default)]
struct Created {
    /// Instances EC2 confirmed.
    instance_ids: Vec<String>,
    /// JIT runners GitHub confirmed: (id, name).
    runners: Vec<(u64, String)>,
    /// Runner names whose JIT request may have reached GitHub unanswered.
    runner_names_pending: Vec<String>,
    /// RunInstances calls sent and not yet answered: each may have created
    /// an instance we have no id for.
    launches_pending: usize,
}

type Shared = Arc<Mutex<Created>>;

fn with<T>(created: &Shared, f: impl FnOnce(&mut Created) -> T) -> T {
    let mut guard = created.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

/// One launched runner, for outputs and the summary.
#[derive(Debug, Clone)]
struct Started {
    runner_name: String,
    instance_id: String,
    candidate: Candidate,
    /// The candidate's place in the ranking: a relaunch goes on after it.
    index: usize,
    zone: Option<String>,
}

/// Runs `start`.
pub(crate) async fn run(args: StartArgs) -> Result<(), Error> {
    let settings = StartSettings::from_args(&args)?;
    let began = Instant::now();
    let outputs = Outputs::from_env();
    // The label goes out first: even if this step is cancelled or killed, the
    // stop job gets a label to clean up.
    outputs.set("label", settings.instance.label.as_str())?;
    outputs.set("start-id", &settings.instance.start_id)?;
    tracing::info!(label = %settings.instance.label, start_id = %settings.instance.start_id, "starting");

    let client = aws::ec2_client(settings.region.clone()).await?;
    let created: Shared = Arc::default();
    let github_slot: Arc<tokio::sync::OnceCell<Github>> = Arc::default();

    let cancel = Cancel::listen();
    // A launch template is read before anything else: it may name the image
    // and the type the lookups below need, and what cannot combine with it
    // fails here, before anything exists.
    let mut settings = settings;
    let mut notes = choices(&settings);
    if let Some(wanted) = settings.instance.launch_template.clone() {
        let template = cancel
            .guard(async { Ok(templates::read(&client, &wanted).await?) })
            .await?;
        let applied = templates::apply(&mut settings, &template).map_err(Error::Failed)?;
        notes.push(templates::announce(&template, &applied));
    }
    let settings = settings;
    let outcome = start(&settings, &client, &created, &github_slot, began, &cancel)
        .await
        .and_then(|outcome| {
            let Outcome {
                started,
                prices,
                boost,
                notes: plan_notes,
            } = outcome;
            let notes: Vec<String> = notes.iter().cloned().chain(plan_notes).collect();
            let region = client
                .config()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default();
            let report = Report {
                region: &region,
                began,
                notes: &notes,
            };
            finish(&settings, &outputs, &started, &prices, boost, &report)
        });
    match outcome {
        Ok(()) => Ok(()),
        Err(err) => {
            let undo_began = Instant::now();
            // The runner kills the step 7.5 s after its SIGINT: a cancelled
            // start must be done well before. A failed one has more time.
            let budget = cancel.undo_budget().unwrap_or(Duration::from_secs(30));
            undo(&settings, &client, &created, github_slot.get(), budget).await;
            tracing::info!(elapsed = ?undo_began.elapsed(), "undo finished");
            Err(err)
        }
    }
}

/// What the steps of a start share: the settings, the clients, the
/// record of what exists so far (for the undo), the deadline and the
/// cancellation.
struct Context<'a> {
    settings: &'a StartSettings,
    client: &'a Client,
    created: &'a Shared,
    github_slot: &'a tokio::sync::OnceCell<Github>,
    deadline: Instant,
    cancel: &'a Cancel,
}

/// What the lookups found, side by side, for every later step.
struct LookedUp<'a> {
    github: &'a Github,
    jits: Vec<JitRunner>,
    prices: Vec<SpotPrice>,
}

/// What the lookups found that only planning the launches reads.
struct Found {
    release: Option<github::releases::Lookup>,
    subnet_zones: Vec<(crate::settings::SubnetId, Option<String>)>,
    image_id: ImageId,
    image: Lookup,
}

/// Where and how the runners launch.
struct Plan {
    candidates: Vec<Candidate>,
    root: RootDevice,
    runner: RunnerDownload,
    region: String,
    /// What the summary should say of the plan (a stale bake).
    notes: Vec<String>,
}

/// The design's steps: validate (done by the caller), look everything up
/// in parallel, plan the launches, walk them, wait, and return what the
/// outputs and the summary need. The caller undoes on failure.
async fn start(
    settings: &StartSettings,
    client: &Client,
    created: &Shared,
    github_slot: &tokio::sync::OnceCell<Github>,
    began: Instant,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let ctx = Context {
        settings,
        client,
        created,
        github_slot,
        deadline: began + settings.timeout,
        cancel,
    };
    announce_matched_types(settings);
    let (looked_up, found) = look_up(&ctx).await?;
    let (plan, image_id) = plan_launches(&ctx, found, &looked_up.prices)?;
    let learned = Learned::new(plan.root.clone());
    let scope = looked_up.github.scope().tag();
    let launch = Launch {
        settings,
        client,
        created,
        candidates: &plan.candidates,
        scope: &scope,
        learned: &learned,
        runner: &plan.runner,
        image_id: &image_id,
        cancel,
    };
    let mut started = launch_runners(&ctx, &launch, &looked_up).await?;
    let boost = settings.boot_boost.then(|| {
        let (iops, throughput) = launch::boot_boost(
            settings
                .instance
                .volume_size
                .filter(|_| learned.root().may_size()),
        );
        summary::Boost {
            iops,
            throughput,
            kept: true,
        }
    });
    if settings.wait_for == WaitFor::None {
        if let Some(boost) = boost {
            actions::warning(&format!(
                "with wait-for: none the boot boost is never dropped (about ${:.3} an hour more for each root volume); use wait-for: running or boot-boost: false",
                pricing::gp3_boost_per_hour(boost.iops, boost.throughput)
            ));
        }
        cancel.check()?;
        return Ok(Outcome {
            started,
            prices: looked_up.prices,
            boost,
            notes: plan.notes,
        });
    }
    let described = wait_until_running(&ctx, &launch, &looked_up, &plan, &mut started).await?;
    tracing::info!(elapsed = ?began.elapsed(), "running");
    check_what_runs(&learned, &described, &mut started)?;
    if settings.wait_for == WaitFor::Online {
        wait_until_online(&ctx, &looked_up, &started).await?;
        tracing::info!(elapsed = ?began.elapsed(), "runner online");
    }
    let boost = match boost {
        // The boost is only worth paying for while the machine boots. EC2
        // moves a volume to new settings gradually, so even with
        // `wait-for: running` the first minutes keep most of the boost.
        Some(boost) => {
            let dropped = drop_boot_boost(client, &described).await;
            Some(summary::Boost {
                kept: !dropped,
                ..boost
            })
        }
        None => None,
    };
    cancel.check()?;
    Ok(Outcome {
        started,
        prices: looked_up.prices,
        boost,
        notes: plan.notes,
    })
}

/// What a start that succeeded hands to its outputs and summary.
struct Outcome {
    started: Vec<Started>,
    prices: Vec<SpotPrice>,
    boost: Option<summary::Boost>,
    /// Notes the plan added for the summary.
    notes: Vec<String>,
}

/// Says how many types `instance-requirements` matched, and how many are priced.
fn announce_matched_types(settings: &StartSettings) {
    let instance = &settings.instance;
    if let Some(matched) = instance.matched_types {
        let shown = instance.instance_types.len();
        tracing::info!(
            "instance-requirements matched {matched} instance types{}",
            if matched > shown {
                format!(
                    "; the {shown} smallest are priced (narrow vcpu, memory or family to choose among the others)"
                )
            } else {
                String::new()
            }
        );
    }
}

/// GitHub (auth, one JIT config per runner, the newest runner release),
/// the spot prices and the image, all side by side: none depends on
/// another, and the launches go out as soon as all are in.
async fn look_up<'a>(ctx: &Context<'a>) -> Result<(LookedUp<'a>, Found), Error> {
    let Context {
        settings,
        client,
        created,
        github_slot,
        deadline,
        cancel,
        ..
    } = *ctx;
    let instance = &settings.instance;
    let image = async {
        match &instance.image {
            Some(source) => {
                images::resolve(
                    client,
                    source,
                    &instance.instance_types,
                    settings.extras.describe_images,
                )
                .await
            }
            None => Err(AwsError {
                action: "RunInstances",
                code: None,
                detail: "no image-id or image-name".into(),
                hint: None,
            }),
        }
    };
    let prices = async {
        if settings.market == MarketPolicy::OnDemand {
            return Ok::<_, Error>((Vec::new(), Vec::new()));
        }
        let (prices, subnets) = tokio::join!(
            placement::spot_prices(client, &instance.instance_types),
            placement::subnet_zones(
                client,
                &instance.subnet_ids,
                settings.extras.describe_subnets
            )
        );
        let prices = match prices {
            Ok(prices) => prices,
            Err(err) if err.code.as_deref() == Some("UnauthorizedOperation") => {
                return Err(err.into());
            }
            Err(err) => {
                actions::warning(&format!(
                    "could not read spot prices ({err}); launching without a price ranking"
                ));
                Vec::new()
            }
        };
        Ok((prices, subnets))
    };
    // GitHub (auth, then one JIT config per runner) and the price lookup
    // run side by side; the launches go out as soon as both are done.
    let mint = async {
        let github = github::connect(&settings.github).await?;
        // Kept outside this future so that an undo can still delete runners
        // after a cancellation dropped it.
        let github = github_slot.get_or_init(|| async move { github }).await;
        // Organization runners: a public repository in a group that admits
        // only private ones never gets its job. Checked beside the minting.
        let group_check = async {
            if let Some(repository) = settings.run.repository.as_deref() {
                if let Some(warning) = github
                    .public_repository_refused(repository, instance.runner_group_id)
                    .await
                {
                    actions::warning(&warning);
                }
            }
        };
        let names: Vec<String> = (1..=settings.count)
            .map(|index| format!("{}-{index}", instance.runner_prefix))
            .collect();
        // GitHub asks for mutating requests not to go out concurrently and,
        // when there are many, to be spaced: a few at a time, a second apart.
        // NOTE: https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#avoid-concurrent-requests
        let gate = tokio::sync::Semaphore::new(MINT_CONCURRENCY);
        let spacing = if names.len() > MINT_CONCURRENCY {
            MINT_SPACING
        } else {
            Duration::ZERO
        };
        let minting = join_all(names.iter().enumerate().map(|(i, name)| {
            let gate = &gate;
            async move {
                tokio::time::sleep(spacing * i as u32).await;
                let _permit = gate.acquire().await;
                mint_runner(settings, github, created, name).await
            }
        }));
        // The newest actions/runner release whose packages for these
        // instance types are uploaded, so the machine does not run a version
        // GitHub stops serving.
        let release = async {
            let archs = github::releases::packages(&instance.instance_types);
            match &settings.runner_releases_url {
                Some(url) => Some(github::releases::newest_usable(github, url, &archs).await),
                None => None,
            }
        };
        let (jits, (), release) = tokio::join!(minting, group_check, release);
        jits.into_iter()
            .collect::<Result<Vec<_>, Error>>()
            .map(|jits| (github, jits, release))
    };
    let (minted, prices, image) = cancel
        .guard(async {
            tokio::time::timeout_at(deadline.into(), async { tokio::join!(mint, prices, image) })
                .await
                .map_err(|_| Error::Timeout {
                    what:
                        "authenticating to GitHub, minting the JIT configs and reading spot prices"
                            .into(),
                    timeout: humantime::format_duration(settings.timeout).to_string(),
                    hint: match github::last_retried() {
                        Some(last) => {
                            format!("the last GitHub call retried, which failed with: {last}")
                        }
                        None => "the log above for retried EC2 calls".into(),
                    },
                })
        })
        .await?;
    let (github, jits, release) = minted?;
    let (prices, subnet_zones): (Vec<SpotPrice>, _) = prices?;
    let (image_id, image) = image?;
    Ok((
        LookedUp {
            github,
            jits,
            prices,
        },
        Found {
            release,
            subnet_zones,
            image_id,
            image,
        },
    ))
}

/// What the lookups mean for the launches: the runner release, the types
/// that can run the image and its root device, and the candidates ranked
/// by price. Fails before anything is launched when the image cannot work.
fn plan_launches(
    ctx: &Context<'_>,
    found: Found,
    prices: &[SpotPrice],
) -> Result<(Plan, ImageId), Error> {
    let Context {
        settings, client, ..
    } = *ctx;
    let instance = &settings.instance;
    let Found {
        release,
        subnet_zones,
        image_id,
        image,
    } = found;
    let runner = runner_release(settings, release);
    let notes: Vec<String> = match &image {
        Lookup::Found(found) => found
            .baked
            .as_ref()
            .and_then(|baked| stale_bake(&image_id, baked, &runner, chrono::Utc::now()))
            .into_iter()
            .collect(),
        Lookup::Unavailable(_) => Vec::new(),
    };
    for note in &notes {
        actions::warning(note);
    }
    let (types, root) = image_facts(settings, &image_id, image)?;
    if root.may_size() {
        let note = templates::root_override(
            &instance.template_volumes,
            root.name(),
            instance.volume_size,
        );
        if let Some(note) = note {
            actions::warning(&note);
        }
    }
    let subnet_zones = if subnet_zones.is_empty() {
        instance
            .subnet_ids
            .iter()
            .map(|s| (s.clone(), None))
            .collect()
    } else {
        subnet_zones
    };
    let region = client
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    if !prices.is_empty() {
        for kind in placement::unpriced_types(&types, prices) {
            actions::warning(&format!(
                "no spot price for {kind} in {region}: the region does not offer it, or the name is mistyped (check `instance-types`); the other types are ranked by price"
            ));
        }
    }
    let candidates = placement::rank(
        &RankInput {
            types: &types,
            region: &region,
            zones: &settings.zones,
            subnets: &subnet_zones,
            max_spot_price: settings.max_spot_price,
            policy: settings.market,
            rank_by: settings.rank_by,
            try_unpriced: settings.instance.matched_types.is_none(),
        },
        prices,
    );
    tracing::debug!(candidates = candidates.len(), "ranked launch candidates");

    Ok((
        Plan {
            candidates,
            root,
            runner,
            region,
            notes,
        },
        image_id,
    ))
}

/// A baked image whose runner is older than the release a start would
/// download: each machine then updates its runner at boot (as with any
/// pre-installed runner, `runner-update`), and GitHub stops giving jobs to a
/// runner 30 days after the release that follows it. Says how old the bake is.
// NOTE: https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/autoscaling-with-self-hosted-runners#controlling-runner-software-updates-on-self-hosted-runners
fn stale_bake(
    image_id: &ImageId,
    baked: &images::Baked,
    runner: &RunnerDownload,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    use github::releases::version_key;
    if version_key(&baked.runner_version)? >= version_key(&runner.version)? {
        return None;
    }
    let age = baked
        .baked_at
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| format!(" {} days ago", (now - at.to_utc()).num_days()))
        .unwrap_or_default();
    Some(format!(
        "the baked image {image_id} holds actions/runner {}, baked{age}; {} is out, so each machine updates its runner at boot (runner-update). Bake again: GitHub stops giving jobs to a runner 30 days after the release that follows it",
        baked.runner_version, runner.version
    ))
}

/// Launches every runner's machine together (a `count` launch), each
/// walking the candidates. With `allow-partial`, a runner that did not
/// start is named and its JIT runner removed; at least one must start.
async fn launch_runners(
    ctx: &Context<'_>,
    launch: &Launch<'_>,
    looked_up: &LookedUp<'_>,
) -> Result<Vec<Started>, Error> {
    let Context {
        settings, created, ..
    } = *ctx;
    let (github, jits) = (looked_up.github, &looked_up.jits);
    // All machines of a `count` launch go out together.
    let results = join_all(jits.iter().map(|jit| launch.runner(jit, 0))).await;
    let mut started = Vec::new();
    let mut failures = Vec::new();
    for (jit, result) in jits.iter().zip(results) {
        match result {
            Ok(s) => started.push(s),
            Err(err @ Error::Cancelled { .. }) => return Err(err),
            Err(err) if settings.allow_partial => {
                actions::warning(&format!("runner {} did not start: {err}", jit.name));
                // Its JIT runner would never come online: remove it now.
                if let Err(e) = github.delete_runner(jit.id, &jit.name).await {
                    actions::warning(&format!("could not delete runner {}: {e}", jit.name));
                }
                with(created, |c| c.runners.retain(|(id, _)| *id != jit.id));
                failures.push(err);
            }
            Err(err) => return Err(err),
        }
    }
    if started.is_empty() {
        return Err(failures
            .into_iter()
            .next()
            .unwrap_or(Error::Failed("no runner started".into())));
    }
    Ok(started)
}

/// Waits until every machine runs. A spot machine taken back right after
/// its launch never ran, so its runner's unused JIT config goes to the
/// next candidate; any other end before running fails the start.
async fn wait_until_running(
    ctx: &Context<'_>,
    launch: &Launch<'_>,
    looked_up: &LookedUp<'_>,
    plan: &Plan,
    started: &mut [Started],
) -> Result<Vec<aws_sdk_ec2::types::Instance>, Error> {
    let Context {
        settings,
        client,
        deadline,
        cancel,
        ..
    } = *ctx;
    let (jits, region) = (&looked_up.jits, &plan.region);
    loop {
        let ids: Vec<String> = started.iter().map(|s| s.instance_id.clone()).collect();
        let waited = cancel
            .guard(async { Ok(instances::wait_running(client, &ids, deadline).await?) })
            .await?;
        match waited {
            Wait::Running(described) => return Ok(described),
            Wait::Failed {
                id,
                state,
                code,
                reason,
            } => {
                if !is_reclaimed(&code) {
                    return Err(ended_at_launch(&id, &state, &code, &reason, region));
                }
                // Spot capacity taken back right after the launch: this
                // machine never ran, so its runner's JIT config is unused
                // and the next candidate gets it.
                let Some(at) = started.iter().position(|s| s.instance_id == id) else {
                    return Err(ended_at_launch(&id, &state, &code, &reason, region));
                };
                actions::warning(&format!(
                    "instance {id} ({}) was terminated right after launch ({code}: {reason}); trying the next candidate",
                    launch::describe(&started[at].candidate)
                ));
                let jit = jits
                    .iter()
                    .find(|j| j.name == started[at].runner_name)
                    .ok_or_else(|| Error::Failed(format!("no JIT runner for instance {id}")))?;
                started[at] = launch.runner(jit, started[at].index + 1).await?;
            }
            Wait::TimedOut => {
                return Err(Error::Timeout {
                    what: format!("waiting for instance(s) {} to be running", ids.join(", ")),
                    timeout: humantime::format_duration(settings.timeout).to_string(),
                    hint: "the instance's state and state reason in the EC2 console".into(),
                });
            }
        }
    }
}

/// Records each machine's zone and checks that its root device is where
/// the root settings went.
fn check_what_runs(
    learned: &Learned,
    described: &[aws_sdk_ec2::types::Instance],
    started: &mut [Started],
) -> Result<(), Error> {
    for s in started.iter_mut() {
        if let Some(i) = described
            .iter()
            .find(|i| i.instance_id() == Some(s.instance_id.as_str()))
        {
            s.zone = i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(str::to_owned);
            let root = learned.root();
            if let Some(actual) = i.root_device_name().filter(|r| *r != root.name()) {
                return Err(wrong_root_device(&s.instance_id, actual, root.name()));
            }
        }
    }
    Ok(())
}

/// Waits until every runner is online on GitHub, within the deadline. On
/// a timeout the machines' consoles are shown (when allowed) before the
/// undo ends them.
async fn wait_until_online(
    ctx: &Context<'_>,
    looked_up: &LookedUp<'_>,
    started: &[Started],
) -> Result<(), Error> {
    let Context {
        settings,
        client,
        deadline,
        cancel,
        ..
    } = *ctx;
    let (github, jits) = (looked_up.github, &looked_up.jits);
    let names: Vec<String> = started.iter().map(|s| s.runner_name.clone()).collect();
    // The deadline bounds the whole wait, a GitHub call waiting out a
    // rate limit included.
    let online = cancel
        .guard(async {
            tokio::time::timeout_at(
                deadline.into(),
                wait_online(github, &names, deadline, settings),
            )
            .await
            .unwrap_or_else(|_| Err(online_timeout(&names, settings)))
        })
        .await;
    if let Err(err @ Error::Timeout { .. }) = online {
        if !settings.extras.get_console_output {
            tracing::info!(
                "to see the instance's console here when a runner never comes online, grant ec2:GetConsoleOutput and list it in extra-permissions"
            );
            return Err(err);
        }
        // Before the undo ends the machines: what their consoles say,
        // read side by side and within a few seconds, and not at all
        // once the job is being cancelled (the undo needs the time).
        let secrets: Vec<&str> = jits
            .iter()
            .map(|j| crate::settings::expose(&j.config))
            .collect();
        let consoles = join_all(
            started
                .iter()
                .map(|s| show_console(client, &s.instance_id, &secrets)),
        );
        let _ = cancel
            .guard(async {
                let _ = tokio::time::timeout(CONSOLE_BUDGET, consoles).await;
                Ok(())
            })
            .await;
        return Err(err);
    }
    online
}

/// How many console lines a runner that never came online shows.
const CONSOLE_TAIL: usize = 60;
/// How long reading the consoles may hold the undo up.
const CONSOLE_BUDGET: Duration = Duration::from_secs(5);

/// Prints the tail of an instance's console, so a runner that never came
/// online shows why before its machine is gone. The text comes from the
/// machine, so it cannot issue workflow commands (they are stopped around
/// it) and the runner's JIT config is blanked out should it appear.
async fn show_console(client: &Client, id: &str, secrets: &[&str]) {
    match instances::console_tail(client, id, CONSOLE_TAIL).await {
        Ok(Some(tail)) => {
            let tail = secrets
                .iter()
                .filter(|s| !s.is_empty())
                .fold(tail, |text, secret| text.replace(secret, "***"));
            actions::untrusted_block(
                &format!("console of {id} (last {CONSOLE_TAIL} lines)"),
                &tail,
            );
        }
        Ok(None) => tracing::info!(instance = id, "the console of {id} is empty so far"),
        Err(err) if err.code.as_deref() == Some("UnauthorizedOperation") => tracing::info!(
            "extra-permissions lists ec2:GetConsoleOutput, but it was denied: grant it (`ec2-spot-runner policy --optional`) or remove it from the list"
        ),
        Err(err) => tracing::info!("could not read the console of {id}: {err}"),
    }
}

/// Waits until every runner is online on GitHub on two polls in a row (a
/// runner that registers and drops straight off is not ready). Polls every
/// 2 s, slowing to 10 s when the rate-limit window runs low.
async fn wait_online(
    github: &Github,
    names: &[String],
    deadline: Instant,
    settings: &StartSettings,
) -> Result<(), Error> {
    let mut streak = 0;
    loop {
        let online = if names.len() == 1 {
            github
                .find_runner(&names[0])
                .await?
                .is_some_and(|r| r.status == "online")
        } else {
            let runners = github.list_runners().await?;
            names
                .iter()
                .all(|n| runners.iter().any(|r| &r.name == n && r.status == "online"))
        };
        streak = if online { streak + 1 } else { 0 };
        if streak >= 2 {
            return Ok(());
        }
        let delay = match github.rate_remaining() {
            Some(left) if left < 200 => Duration::from_secs(10),
            _ => Duration::from_secs(2),
        };
        let delay = if online {
            Duration::from_millis(500)
        } else {
            delay
        };
        if Instant::now() + delay >= deadline {
            return Err(online_timeout(names, settings));
        }
        tokio::time::sleep(delay).await;
    }
}

/// The error of runners that did not come online within the deadline.
fn online_timeout(names: &[String], settings: &StartSettings) -> Error {
    Error::Timeout {
        what: format!(
            "waiting for runner(s) {} to come online on GitHub",
            names.join(", ")
        ),
        timeout: humantime::format_duration(settings.timeout).to_string(),
        hint: "why the runner never registered: the instance's system log (EC2 console: Actions > Monitor and troubleshoot > Get system log) and /var/log/ec2-spot-runner.log show every boot step; the instance was terminated".into(),
    }
}

/// Brings boosted root volumes back to the gp3 baseline. Volume ids come
/// from DescribeInstances (DescribeVolumes is not in the policy). A failure
/// only costs money, never the job: it is a warning.
async fn drop_boot_boost(client: &Client, described: &[aws_sdk_ec2::types::Instance]) -> bool {
    let mut all = true;
    for instance in described {
        // The boosted volume is the root (the launch made sure the mapping
        // went to the image's root device).
        let volume = instance
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name().is_some() && m.device_name() == instance.root_device_name())
            .and_then(|m| m.ebs())
            .and_then(|e| e.volume_id());
        let Some(volume) = volume else {
            all = false;
            continue;
        };
        let result = client
            .modify_volume()
            .volume_id(volume)
            .iops(launch::GP3_BASELINE_IOPS)
            .throughput(launch::GP3_BASELINE_THROUGHPUT)
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(volume, "boot boost dropped to the gp3 baseline"),
            Err(err) => {
                all = false;
                actions::warning(&format!(
                    "could not drop the boot boost of {volume}: {}; the volume keeps its raised IOPS and throughput until the machine ends",
                    AwsError::from_sdk("ModifyVolume", &err)
                ));
            }
        }
    }
    all
}

/// How many JIT configs are minted at the same time.
const MINT_CONCURRENCY: usize = 3;
/// Between the starts of two JIT requests, when there are more than a few.
const MINT_SPACING: Duration = Duration::from_secs(1);

/// How many names a runner may try when GitHub says a name is taken.
const JIT_NAME_TRIES: u32 = 3;

/// Mints one runner's JIT config, recording it for the undo. A 409 means a
/// runner of that name exists: most often this start's own, created by a
/// request whose answer was lost and then repeated, but that cannot be
/// proved, so it is never deleted here (stop, given the start id, and
/// cleanup remove it). The runner gets a fresh name instead: the start's
/// prefix, its number, and a new random part.
async fn mint_runner(
    settings: &StartSettings,
    github: &Github,
    created: &Shared,
    runner_name: &str,
) -> Result<JitRunner, Error> {
    let instance = &settings.instance;
    let mut labels = vec![instance.label.as_str().to_owned()];
    labels.extend(instance.extra_labels.iter().cloned());
    // Only this tool sets this label: cleanup recognises its runners by it.
    if !labels
        .iter()
        .any(|l| l.eq_ignore_ascii_case(crate::tags::RUNNER_MARK))
    {
        labels.push(crate::tags::RUNNER_MARK.to_owned());
    }
    let mut name = runner_name.to_owned();
    let mut attempt = 0;
    loop {
        attempt += 1;
        with(created, |c| c.runner_names_pending.push(name.clone()));
        match github
            .create_jit_runner(&name, instance.runner_group_id, &labels)
            .await
        {
            Ok(jit) => {
                with(created, |c| {
                    c.runner_names_pending.retain(|n| *n != name);
                    c.runners.push((jit.id, jit.name.clone()));
                });
                tracing::info!(runner = %jit.name, id = jit.id, "JIT runner config created");
                return Ok(jit);
            }
            Err(err) if err.status() == Some(409) && attempt < JIT_NAME_TRIES => {
                with(created, |c| c.runner_names_pending.retain(|n| *n != name));
                let fresh = crate::tags::retry_name(runner_name, &crate::settings::random_part(4));
                tracing::info!(
                    "GitHub already has a runner named {name} (a lost answer to an earlier attempt, most likely); trying the name {fresh}"
                );
                // GitHub's runner list is eventually consistent: give it a moment.
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                name = fresh;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// What every runner's launch shares.
struct Launch<'a> {
    settings: &'a StartSettings,
    client: &'a Client,
    created: &'a Shared,
    candidates: &'a [Candidate],
    scope: &'a str,
    learned: &'a Learned,
    runner: &'a RunnerDownload,
    image_id: &'a ImageId,
    cancel: &'a Cancel,
}

impl Launch<'_> {
    /// Launches one runner's instance, walking the candidates from `from`.
    async fn runner(&self, jit: &JitRunner, from: usize) -> Result<Started, Error> {
        let Launch {
            settings,
            client,
            created,
            candidates,
            cancel,
            ..
        } = *self;
        let runner_name = jit.name.as_str();
        let spec = launch_spec(
            settings,
            self.image_id,
            self.learned,
            self.runner,
            self.scope,
            runner_name,
            crate::settings::expose(&jit.config),
        )?;
        cancel.check()?;
        with(created, |c| c.launches_pending += 1);
        // Not abandoned at once on a signal (see `Cancel::in_flight`): its
        // answer names the instance to terminate. Given up on, it stays
        // counted as pending, so the undo searches for it by tag.
        let result = cancel
            .in_flight(launch::launch_first(
                client,
                &spec,
                candidates,
                from,
                || cancel.check().is_err(),
            ))
            .await?;
        match result {
            Ok((launched, _failures)) => {
                let Launched {
                    id,
                    candidate,
                    index,
                    mapped_device,
                    root_device_name,
                } = launched;
                with(created, |c| {
                    c.instance_ids.push(id.clone());
                    c.launches_pending -= 1;
                });
                tracing::info!(instance = %id, "launched {}", launch::describe(&candidate));
                if let Some(actual) = root_device_name.filter(|r| *r != mapped_device) {
                    // Ended here, so that no path (allow-partial among
                    // them) leaves it running; what EC2 cannot confirm yet
                    // stays for the undo.
                    let left = instances::terminate_launched(
                        client,
                        std::slice::from_ref(&id),
                        Duration::from_secs(20),
                    )
                    .await;
                    if left.is_empty() {
                        with(created, |c| c.instance_ids.retain(|i| *i != id));
                    }
                    return Err(wrong_root_device(&id, &actual, &mapped_device));
                }
                cancel.check()?;
                Ok(Started {
                    runner_name: runner_name.to_owned(),
                    instance_id: id,
                    zone: candidate.zone.clone(),
                    candidate,
                    index,
                })
            }
            Err((err, failures)) => {
                // Without an answer from EC2 (a transport failure after the SDK's
                // retries) the request may still have created the instance: leave
                // it counted as in flight, so the undo looks for it by tag.
                if err.code.is_some() {
                    with(created, |c| c.launches_pending -= 1);
                }
                let instance = &self.settings.instance;
                let err = match &instance.launch_template {
                    Some(template) if err.code.is_some() && !err.is_capacity() => {
                        template_hint(err, template, &instance.template_tagged)
                    }
                    _ => err,
                };
                Err(launch_error(err, &failures))
            }
        }
    }
}

/// The launch request's settings for one runner, shared by `start` and by
/// `doctor`, which dry-runs exactly what a start would send.
pub(crate) fn launch_spec<'a>(
    settings: &'a StartSettings,
    image_id: &'a ImageId,
    learned: &'a Learned,
    runner: &RunnerDownload,
    scope: &str,
    runner_name: &str,
    jit_config: &str,
) -> Result<LaunchSpec<'a>, Error> {
    let instance = &settings.instance;
    let script = user_data::render_for(instance, runner, runner_name, jit_config);
    let tags = LaunchTags {
        label: &instance.label,
        start_id: &instance.start_id,
        runner_name,
        scope: scope.to_owned(),
        run: &settings.run,
        created_at: chrono::Utc::now(),
        max_lifetime_secs: instance.max_lifetime.as_secs(),
        user: &instance.tags,
    };
    Ok(LaunchSpec {
        image_id,
        security_group_ids: &instance.security_group_ids,
        learned,
        volume_size: instance.volume_size,
        boot_boost: settings.boot_boost,
        volume_initialization_rate: instance.volume_initialization_rate,
        tags: tags.specifications(),
        user_data: launch::encode_user_data(&script).map_err(Error::Failed)?,
        // The run id and job make a reused fixed label safe: another run
        // never gets this run's tokens (and so never its instances).
        token_seed: format!(
            "{}/{runner_name}/{}/{}/{}",
            instance.label,
            settings.run.run_id.as_deref().unwrap_or("-"),
            settings.run.run_attempt.as_deref().unwrap_or("1"),
            settings.run.job.as_deref().unwrap_or("-"),
        ),
        max_spot_price: settings.max_spot_price,
        instance_profile: instance.instance_profile.as_ref(),
        launch_template: instance.launch_template.as_ref(),
        template_volumes: &instance.template_volumes,
    })
}

/// The runner release the instance downloads (when it has none
/// installed): the newest one whose packages are uploaded, as looked up,
/// else the release before it; the user's `runner-version`; or, when no
/// usable release was found, the newest compiled pin, with a warning that
/// says why and how old that pin is.
fn runner_release(
    settings: &StartSettings,
    looked_up: Option<github::releases::Lookup>,
) -> RunnerDownload {
    use github::releases::{Lookup, version_key};
    let pinned = &settings.instance.runner_release;
    let pin = &crate::instance::RUNNER_RELEASES[0];
    let age = chrono::NaiveDate::parse_from_str(pin.pinned_on, "%Y-%m-%d")
        .ok()
        .map(|d| (chrono::Utc::now().date_naive() - d).num_days())
        .map(|days| format!(", pinned {days} days ago ({})", pin.pinned_on))
        .unwrap_or_default();
    let url = settings.runner_releases_url.as_deref().unwrap_or_default();
    match looked_up {
        None => pinned.clone(),
        Some(Lookup::Newest(newest)) => {
            tracing::info!(version = %newest.version, "newest actions/runner release");
            newest
        }
        // An earlier release no older than the pin: the machine runs it.
        Some(Lookup::Earlier { download, newest })
            if version_key(&download.version) >= version_key(&pinned.version) =>
        {
            actions::warning(&format!(
                "{newest}; using {}, the newest earlier release that has it, instead",
                download.version
            ));
            download
        }
        Some(Lookup::Earlier { download, newest }) => {
            actions::warning(&format!(
                "{newest}; the newest earlier release that has it, {}, is older than the compiled pin: using the compiled pin {}{age}",
                download.version, pinned.version
            ));
            pinned.clone()
        }
        Some(Lookup::Incomplete { newest, earlier }) => {
            actions::warning(&format!(
                "{newest}, and no earlier release was found ({earlier}); using the compiled pin {}{age}",
                pinned.version
            ));
            pinned.clone()
        }
        Some(Lookup::Failed(why)) => {
            actions::warning(&format!(
                "could not read the newest actions/runner release from {url} ({why}); using the compiled pin {}{age}. GitHub stops queuing jobs to runners that fall behind: set runner-releases-url to a mirror, or pin runner-version with runner-sha256",
                pinned.version
            ));
            pinned.clone()
        }
    }
}

/// What the image lookup means for the launch: the instance types that can
/// run it, and what is known of its root device. Fails before anything is
/// launched when the image cannot work (Windows, wrong architecture, a
/// volume-size smaller than its snapshot, or a size that cannot be placed
/// safely).
pub(crate) fn image_facts(
    settings: &StartSettings,
    image_id: &ImageId,
    image: Lookup,
) -> Result<(Vec<crate::settings::InstanceType>, RootDevice), Error> {
    let instance = &settings.instance;
    let (types, from_image) = match &image {
        Lookup::Found(found) => (
            images::check(
                image_id,
                found,
                &instance.instance_types,
                instance.volume_size,
            )
            .map_err(Error::Failed)?,
            found.root_device_name.clone(),
        ),
        Lookup::Unavailable(why) => {
            if why == images::NOT_LISTED {
                tracing::info!(
                    "image not described ({why}); the root device is found from EC2's answers"
                );
            } else {
                actions::warning(&format!(
                    "image not described: {why}; the root device is found from EC2's answers"
                ));
            }
            (instance.instance_types.clone(), None)
        }
    };
    let root = match (&instance.root_device_name, from_image) {
        (Some(input), Some(image)) if *input != image => {
            return Err(Error::Failed(format!(
                "root-device-name is {input}, but the image's root device is {image}; set root-device-name: {image}, or leave it empty"
            )));
        }
        (Some(input), _) => RootDevice::Input(input.clone()),
        (None, Some(image)) => RootDevice::Known(image),
        (None, None) => RootDevice::Probe(
            launch::USUAL_ROOT_DEVICES
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
        ),
    };
    if !root.may_size() {
        if let Some(size) = instance.volume_size {
            return Err(Error::Failed(format!(
                "volume-size {size} needs the image's root device name, which is not known: without it the size could land on an extra volume. Set root-device-name (/dev/sda1 for Ubuntu, /dev/xvda for Amazon Linux and Debian), or grant ec2:DescribeImages and list it in extra-permissions so the tool reads it"
            )));
        }
    }
    Ok((types, root))
}

/// The instance's root device is not where the root settings went: they
/// made an extra volume, and the root has the image's own size and type.
fn wrong_root_device(id: &str, actual: &str, mapped: &str) -> Error {
    Error::Failed(format!(
        "instance {id}'s root device is {actual}, but root-device-name is {mapped}: volume-size and the gp3 settings went to an extra volume, so the instance was terminated. Set root-device-name: {actual}, or leave it empty to detect it"
    ))
}

/// State reasons that mean "capacity taken back at once", worth another candidate.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html
fn is_reclaimed(code: &str) -> bool {
    matches!(
        code,
        "Server.SpotInstanceTermination" | "Server.InsufficientInstanceCapacity"
    )
}

/// The error for an instance that ended before it ran, with the cause a
/// user can act on.
fn ended_at_launch(id: &str, state: &str, code: &str, reason: &str, region: &str) -> Error {
    let why = if code == "Client.InternalError" {
        // NOTE: an EBS volume encrypted with a customer-managed KMS key that
        // the caller may not use ends the instance at launch with this reason.
        // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-internal
        format!(
            "This is EBS encryption failing: the volume's KMS key (the account's default EBS key, or the image's) is customer-managed and these credentials may not use it. Allow kms:CreateGrant, kms:Decrypt, kms:DescribeKey, kms:GenerateDataKeyWithoutPlaintext and kms:ReEncrypt* on that key to this role, with the condition kms:ViaService = ec2.{region}.amazonaws.com, in the key policy or an IAM statement (see the README, \"Encrypted volumes with your own KMS key\")"
        )
    } else {
        "Check the state reason in the EC2 console; for spot, re-run or use `market: spot-then-on-demand`".to_owned()
    };
    Error::Failed(format!(
        "instance {id} reached state {state} before running ({code}: {reason}). {why}"
    ))
}

/// A refused templated launch: the value EC2 names may be the template's,
/// not an input's, and a refused tag may be one only the template sets.
fn template_hint(
    err: AwsError,
    template: &crate::settings::LaunchTemplate,
    tagged: &[String],
) -> AwsError {
    if !tagged.is_empty() && templates::refuses_template_tags(&err) {
        return AwsError {
            hint: Some(templates::tagging_hint(tagged)),
            ..err
        };
    }
    let look = format!(
        "the launch template supplied what no input set: `aws ec2 describe-launch-template-versions --launch-template-id {} --versions {}` shows its values",
        template.template,
        template.version.as_param()
    );
    AwsError {
        hint: Some(match err.hint {
            Some(hint) => format!("{hint}; {look}"),
            None => format!("Check {look}"),
        }),
        ..err
    }
}

fn launch_error(err: AwsError, failures: &[launch::Failure]) -> Error {
    if !err.is_capacity() {
        // The walk stopped on something else (a denied on-demand fallback,
        // throttling, no answer): that is the error to show.
        if failures.is_empty() {
            return err.into();
        }
        let tried: Vec<String> = failures
            .iter()
            .map(|f| launch::describe(&f.candidate))
            .collect();
        return Error::Failed(format!(
            "{err} (after no capacity for: {})",
            tried.join(", ")
        ));
    }
    if failures.len() <= 1 {
        return err.into();
    }
    let tried: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", launch::describe(&f.candidate), f.error))
        .collect();
    Error::Failed(format!(
        "no capacity for any candidate ({} tried): {}. List more instance-types or zones, raise max-spot-price, or allow on-demand with `market: spot-then-on-demand`",
        tried.len(),
        tried.join("; ")
    ))
}

/// Removes whatever this start created. Runs on failure and cancellation;
/// a cancelled start must be done before the runner kills the step (7.5 s
/// after its SIGINT), so everything happens within `budget`: the instances
/// and the runners are removed side by side, and what could not be removed
/// is named, with the label, for the stop job or cleanup to finish.
/// How long the undo keeps looking for a runner whose JIT request was in
/// flight, and how often.
const PENDING_RUNNER_WATCH: Duration = Duration::from_secs(2);
const PENDING_RUNNER_POLL: Duration = Duration::from_millis(250);

async fn undo(
    settings: &StartSettings,
    client: &Client,
    created: &Shared,
    github: Option<&Github>,
    budget: Duration,
) {
    let deadline = Instant::now() + budget;
    let (ids, runners, pending_names, launch_pending) = with(created, |c| {
        (
            c.instance_ids.clone(),
            c.runners.clone(),
            c.runner_names_pending.clone(),
            c.launches_pending,
        )
    });
    let label = settings.instance.label.as_str();
    let machines = async {
        // The known machines are terminated while the ones of unanswered
        // launches are searched for; the search stops in time for those it
        // finds to be terminated too.
        let remaining = || deadline.saturating_duration_since(Instant::now());
        let known = async {
            if ids.is_empty() {
                Vec::new()
            } else {
                instances::terminate_launched(client, &ids, remaining()).await
            }
        };
        let search_until = deadline
            .checked_sub(Duration::from_millis(1500))
            .unwrap_or(deadline);
        let search = async {
            if launch_pending == 0 {
                Vec::new()
            } else {
                let names = (runners.as_slice(), pending_names.as_slice());
                find_unanswered(client, label, names, &ids, launch_pending, search_until).await
            }
        };
        let (mut left, found) = tokio::join!(known, search);
        if !found.is_empty() {
            left.extend(instances::terminate_launched(client, &found, remaining()).await);
        }
        let ids: Vec<String> = ids.iter().chain(&found).cloned().collect();
        if ids.is_empty() {
            return;
        }
        if left.is_empty() {
            tracing::info!(instances = %ids.join(", "), "terminated after the failed start");
        } else {
            actions::error_line(&format!(
                "could not confirm the termination of {} within {} (EC2 did not show it shutting down; right after a launch it may not list the instance yet). The stop job or the cleanup mode will terminate it by its label {label}",
                left.join(", "),
                humantime::format_duration(budget)
            ));
        }
    };
    let runners = async {
        let Some(github) = github else { return };
        // Runners whose JIT answer never came are looked up by name first.
        // A request sent just before a cancellation may still be creating
        // its runner when the first lookup arrives: look again for a moment
        // (what appears later is an offline runner without a machine, which
        // cleanup deletes).
        let lookups = pending_names.iter().map(|name| async move {
            let until = (Instant::now() + PENDING_RUNNER_WATCH).min(deadline);
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, github.find_runner(name)).await {
                    Ok(Ok(Some(runner))) => return Some((runner.id, name.clone())),
                    _ if Instant::now() + PENDING_RUNNER_POLL < until => {
                        tokio::time::sleep(PENDING_RUNNER_POLL).await;
                    }
                    _ => return None,
                }
            }
        });
        let found = join_all(lookups).await;
        let all: Vec<(u64, String)> = runners
            .iter()
            .cloned()
            .chain(found.into_iter().flatten())
            .collect();
        // A few at a time, as GitHub asks of mutating requests.
        let gate = tokio::sync::Semaphore::new(MINT_CONCURRENCY);
        let gate = &gate;
        let removals = all.iter().map(|(id, name)| async move {
            let _permit = gate.acquire().await;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, github.delete_runner(*id, name)).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(format!("{name} ({err})")),
                Err(_) => Some(format!("{name} (no answer in time)")),
            }
        });
        let failed: Vec<String> = join_all(removals).await.into_iter().flatten().collect();
        if !failed.is_empty() {
            actions::warning(&format!(
                "could not delete runner(s) {} after the failed start; the stop job or the cleanup mode removes them (label {label})",
                failed.join(", ")
            ));
        }
    };
    tokio::join!(machines, runners);
}

/// Finds instances created by RunInstances calls whose answer never came:
/// they are tagged at creation, so a search by label finds them once EC2's
/// eventually consistent search catches up. Only this start's runners'
/// machines count (a label can be shared), and only ones not `known`; the
/// search goes on until it has found one per unanswered launch or `until`.
async fn find_unanswered(
    client: &Client,
    label: &str,
    (runners, pending_names): (&[(u64, String)], &[String]),
    known: &[String],
    unanswered: usize,
    until: Instant,
) -> Vec<String> {
    let ours = |name: &str| {
        runners.iter().any(|(_, r)| r == name) || pending_names.iter().any(|p| p == name)
    };
    let mut found = Vec::new();
    loop {
        let remaining = until.saturating_duration_since(Instant::now());
        if let Ok(Ok(instances)) =
            tokio::time::timeout(remaining, instances::find_managed(client, Some(label))).await
        {
            found = instances
                .iter()
                .filter(|i| {
                    crate::tags::value(i.tags(), crate::tags::RUNNER_NAME).is_some_and(ours)
                })
                .filter_map(|i| i.instance_id().map(str::to_owned))
                .filter(|id| !known.contains(id))
                .collect();
            if found.len() >= unanswered {
                break;
            }
        }
        if Instant::now() + Duration::from_millis(400) >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    found
}

/// What the step summary says beyond the runners themselves.
struct Report<'a> {
    /// The region launched in.
    region: &'a str,
    /// When the start began.
    began: Instant,
    /// How the types and the template were chosen.
    notes: &'a [String],
}

/// Writes the outputs and the step summary.
fn finish(
    settings: &StartSettings,
    outputs: &Outputs,
    started: &[Started],
    prices: &[SpotPrice],
    boost: Option<summary::Boost>,
    report: &Report<'_>,
) -> Result<(), Error> {
    let region = report.region;
    let rows: Vec<summary::Row> = started
        .iter()
        .map(|s| summary::Row {
            runner: s.runner_name.clone(),
            instance: s.instance_id.clone(),
            instance_type: s.candidate.instance_type.to_string(),
            zone: s.zone.clone(),
            market: s.candidate.market,
        })
        .collect();
    let first = &rows[0];
    let ids: Vec<&str> = rows.iter().map(|r| r.instance.as_str()).collect();
    outputs.set("instance-id", &first.instance)?;
    outputs.set("instance-ids", &ids.join(","))?;
    outputs.set("instance-type", &first.instance_type)?;
    outputs.set("availability-zone", first.zone.as_deref().unwrap_or(""))?;
    outputs.set("market", first.market.as_str())?;
    outputs.set(
        "price-per-hour",
        &summary::price_per_hour(region, first, prices)
            .map(summary::decimal)
            .unwrap_or_default(),
    )?;
    Ok(actions::summary(&summary::render(
        settings.instance.label.as_str(),
        region,
        &rows,
        prices,
        boost,
        report.notes,
        report.began.elapsed().as_secs_f64(),
    ))?)
}

/// What the summary says of how the types were chosen.
fn choices(settings: &StartSettings) -> Vec<String> {
    let instance = &settings.instance;
    match instance.matched_types {
        Some(matched) => {
            let priced = instance.instance_types.len();
            vec![if matched > priced {
                format!(
                    "Instance types: {matched} matched `instance-requirements`; the {priced} smallest were priced."
                )
            } else {
                format!("Instance types: the {matched} that matched `instance-requirements`.")
            }]
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bake_older_than_the_release_is_named_with_its_age() {
        let id = ImageId::parse("image-id", "ami-0123456789abcdef0").unwrap();
        let runner = |version: &str| RunnerDownload {
            version: version.into(),
            sha256_x64: None,
            sha256_arm64: None,
        };
        let baked = |version: &str, at: Option<&str>| images::Baked {
            runner_version: version.into(),
            baked_at: at.map(str::to_owned),
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-08T00:00:00Z")
            .unwrap()
            .to_utc();
        let note = stale_bake(
            &id,
            &baked("2.337.0", Some("2026-11-20T04:17:00Z")),
            &runner("2.338.0"),
            now,
        )
        .unwrap();
        assert!(
            note.contains("holds actions/runner 2.337.0, baked 17 days ago; 2.338.0 is out")
                && note.contains("Bake again"),
            "{note}"
        );
        assert!(stale_bake(&id, &baked("2.338.0", None), &runner("2.338.0"), now).is_none());
        assert!(stale_bake(&id, &baked("2.339.0", None), &runner("2.338.0"), now).is_none());
        let undated = stale_bake(&id, &baked("2.300.0", None), &runner("2.338.0"), now).unwrap();
        assert!(undated.contains("2.300.0, baked; 2.338.0"), "{undated}");
    }
}
