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
use crate::aws::{self, AwsError};
use crate::cli::StartArgs;
use crate::error::Error;
use crate::github::runners::JitRunner;
use crate::github::{self, Github};
use crate::instances::{self, Wait};
use crate::launch::{self, LaunchSpec};
use crate::modes::user_data;
use crate::placement::{self, Candidate, RankInput, SpotPrice};
use crate::settings::{MarketPolicy, StartSettings, WaitFor};
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
    tracing::info!(label = %settings.instance.label, "starting");

    let client = aws::ec2_client(settings.region.clone()).await?;
    let created: Shared = Arc::default();
    let github_slot: Arc<tokio::sync::OnceCell<Github>> = Arc::default();

    let cancel = Cancel::listen();
    let outcome = start(&settings, &client, &created, &github_slot, began, &cancel)
        .await
        .and_then(|(started, prices)| {
            let region = client
                .config()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default();
            finish(&settings, &outputs, &started, &prices, &region, began)
        });
    match outcome {
        Ok(()) => Ok(()),
        Err(err) => {
            let undo_began = Instant::now();
            undo(&settings, &client, &created, github_slot.get()).await;
            tracing::info!(elapsed = ?undo_began.elapsed(), "undo finished");
            Err(err)
        }
    }
}

/// Cancellation, as seen by the start: a signal sets it, and the start
/// checks it at every point where stopping is safe. Waits (GitHub calls,
/// price lookups, polling) are abandoned at once; a RunInstances in flight
/// is allowed to answer, so that its instance id is known and terminated
/// rather than left to a tag search that EC2's eventual consistency can miss.
#[derive(Clone)]
struct Cancel(tokio::sync::watch::Receiver<Option<&'static str>>);

impl Cancel {
    /// Starts listening for SIGINT and SIGTERM.
    fn listen() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let signal = cancelled().await;
            tracing::warn!("{signal} received: removing what this start created");
            let _ = tx.send(Some(signal));
            // Keep listening, so a second signal (GitHub sends SIGINT, then
            // SIGTERM) does not kill the process in the middle of the undo.
            loop {
                let again = cancelled().await;
                tracing::warn!("{again} received again: still cleaning up");
            }
        });
        Self(rx)
    }

    /// Fails with `Cancelled` once a signal has arrived.
    fn check(&self) -> Result<(), Error> {
        match *self.0.borrow() {
            Some(signal) => Err(Error::Cancelled { signal }),
            None => Ok(()),
        }
    }

    /// Runs `work`, abandoning it when a signal arrives.
    async fn guard<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.check()?;
        let mut rx = self.0.clone();
        tokio::select! {
            result = work => result,
            _ = rx.wait_for(Option::is_some) => {
                self.check()?;
                Err(Error::Cancelled { signal: "a signal" })
            }
        }
    }
}

/// Resolves with the name of the next SIGINT or SIGTERM.
async fn cancelled() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers we cannot be cancelled cleanly; never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn start(
    settings: &StartSettings,
    client: &Client,
    created: &Shared,
    github_slot: &tokio::sync::OnceCell<Github>,
    began: Instant,
    cancel: &Cancel,
) -> Result<(Vec<Started>, Vec<SpotPrice>), Error> {
    let deadline = began + settings.timeout;
    let instance = &settings.instance;

    // GitHub auth and the spot price lookup do not depend on each other.
    let prices = async {
        if settings.market == MarketPolicy::OnDemand {
            return Ok::<_, Error>((Vec::new(), Vec::new()));
        }
        let (prices, subnets) = tokio::join!(
            placement::spot_prices(client, &instance.instance_types),
            placement::subnet_zones(client, &instance.subnet_ids)
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
        let names: Vec<String> = (1..=settings.count)
            .map(|index| format!("{}-{index}", instance.runner_prefix))
            .collect();
        let jits = join_all(
            names
                .iter()
                .map(|name| mint_runner(settings, github, created, name)),
        )
        .await;
        jits.into_iter()
            .collect::<Result<Vec<_>, Error>>()
            .map(|jits| (github, jits))
    };
    let (minted, prices) = cancel
        .guard(async {
            tokio::time::timeout_at(deadline.into(), async { tokio::join!(mint, prices) })
                .await
                .map_err(|_| Error::Timeout {
                    what:
                        "authenticating to GitHub, minting the JIT configs and reading spot prices"
                            .into(),
                    timeout: humantime::format_duration(settings.timeout).to_string(),
                    hint: "the log above for retried GitHub or EC2 calls".into(),
                })
        })
        .await?;
    let (github, jits) = minted?;
    let (prices, subnet_zones): (Vec<SpotPrice>, _) = prices?;
    let subnet_zones = if subnet_zones.is_empty() {
        instance
            .subnet_ids
            .iter()
            .map(|s| (s.clone(), None))
            .collect()
    } else {
        subnet_zones
    };
    let candidates = placement::rank(
        &RankInput {
            types: &instance.instance_types,
            zones: &settings.zones,
            subnets: &subnet_zones,
            max_spot_price: settings.max_spot_price,
            policy: settings.market,
        },
        &prices,
    );
    tracing::debug!(candidates = candidates.len(), "ranked launch candidates");

    let scope = github.scope().tag();
    // All machines of a `count` launch go out together.
    let results = join_all(
        jits.iter()
            .map(|jit| launch_runner(settings, client, created, &candidates, &scope, jit, cancel)),
    )
    .await;
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

    if settings.wait_for == WaitFor::None {
        if settings.boot_boost {
            actions::warning(
                "with wait-for: none the boot boost is never dropped (about $0.03 an hour more for the root volume); use wait-for: running or boot-boost: false",
            );
        }
        return Ok((started, prices));
    }
    let ids: Vec<String> = started.iter().map(|s| s.instance_id.clone()).collect();
    let waited = cancel
        .guard(async { Ok(instances::wait_running(client, &ids, deadline).await?) })
        .await?;
    let described = match waited {
        Wait::Running(described) => described,
        Wait::Failed { id, state, reason } => {
            return Err(Error::Failed(format!(
                "instance {id} reached state {state} before running: {reason}. For spot, capacity may have been reclaimed at once; re-run, or use `market: spot-then-on-demand`"
            )));
        }
        Wait::TimedOut => {
            return Err(Error::Timeout {
                what: format!("waiting for instance(s) {} to be running", ids.join(", ")),
                timeout: humantime::format_duration(settings.timeout).to_string(),
                hint: "the instance's state and state reason in the EC2 console".into(),
            });
        }
    };
    tracing::info!(elapsed = ?began.elapsed(), "running");
    for s in &mut started {
        if let Some(i) = described
            .iter()
            .find(|i| i.instance_id() == Some(s.instance_id.as_str()))
        {
            s.zone = i
                .placement()
                .and_then(|p| p.availability_zone())
                .map(str::to_owned);
            let root = i.root_device_name().unwrap_or_default();
            if !root.is_empty() && root != instance.root_device_name {
                actions::warning(&format!(
                    "the image's root device is {root}, not {}: volume-size and boot-boost applied to an extra volume. Set root-device-name: {root}",
                    instance.root_device_name
                ));
            }
        }
    }
    if settings.wait_for == WaitFor::Online {
        let names: Vec<String> = started.iter().map(|s| s.runner_name.clone()).collect();
        cancel
            .guard(wait_online(github, &names, deadline, settings))
            .await?;
        tracing::info!(elapsed = ?began.elapsed(), "runner online");
    }
    if settings.boot_boost {
        // The boost is only worth paying for while the machine boots. EC2
        // moves a volume to new settings gradually, so even with
        // `wait-for: running` the first minutes keep most of the boost.
        drop_boot_boost(client, &described, &instance.root_device_name).await;
    }
    Ok((started, prices))
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
            return Err(Error::Timeout {
                what: format!("waiting for runner(s) {} to come online on GitHub", names.join(", ")),
                timeout: humantime::format_duration(settings.timeout).to_string(),
                hint: "why the runner never registered: the instance's system log (EC2 console: Actions > Monitor and troubleshoot > Get system log) and /var/log/ec2-spot-runner.log show every boot step; the instance was terminated".into(),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

/// Brings boosted root volumes back to the gp3 baseline. Volume ids come
/// from DescribeInstances (DescribeVolumes is not in the policy). A failure
/// only costs money, never the job: it is a warning.
async fn drop_boot_boost(
    client: &Client,
    described: &[aws_sdk_ec2::types::Instance],
    root_device: &str,
) {
    for instance in described {
        // The volume we boosted is the one mapped at our root device name
        // (which is an extra volume when the image's root is elsewhere).
        let volume = instance
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name() == Some(root_device))
            .and_then(|m| m.ebs())
            .and_then(|e| e.volume_id());
        let Some(volume) = volume else { continue };
        let result = client
            .modify_volume()
            .volume_id(volume)
            .iops(launch::GP3_BASELINE_IOPS)
            .throughput(launch::GP3_BASELINE_THROUGHPUT)
            .send()
            .await;
        match result {
            Ok(_) => tracing::info!(volume, "boot boost dropped to the gp3 baseline"),
            Err(err) => actions::warning(&format!(
                "could not drop the boot boost of {volume}: {}; the volume keeps its raised IOPS and throughput until the machine ends",
                AwsError::from_sdk("ModifyVolume", &err)
            )),
        }
    }
}

/// Mints one runner's JIT config, recording it for the undo.
async fn mint_runner(
    settings: &StartSettings,
    github: &Github,
    created: &Shared,
    runner_name: &str,
) -> Result<JitRunner, Error> {
    let instance = &settings.instance;
    let mut labels = vec![instance.label.as_str().to_owned()];
    labels.extend(instance.extra_labels.iter().cloned());
    with(created, |c| {
        c.runner_names_pending.push(runner_name.to_owned())
    });
    let jit = github
        .create_jit_runner(runner_name, instance.runner_group_id, &labels)
        .await?;
    with(created, |c| {
        c.runner_names_pending.retain(|n| n != runner_name);
        c.runners.push((jit.id, jit.name.clone()));
    });
    tracing::info!(runner = %jit.name, id = jit.id, "JIT runner config created");
    Ok(jit)
}

/// Launches one runner's instance, walking the candidates.
async fn launch_runner(
    settings: &StartSettings,
    client: &Client,
    created: &Shared,
    candidates: &[Candidate],
    scope: &str,
    jit: &JitRunner,
    cancel: &Cancel,
) -> Result<Started, Error> {
    let instance = &settings.instance;
    let runner_name = jit.name.as_str();
    let script = user_data::render_for(instance, runner_name, crate::settings::expose(&jit.config));
    let tags = LaunchTags {
        label: &instance.label,
        runner_name,
        scope: scope.to_owned(),
        run: &settings.run,
        created_at: chrono::Utc::now(),
        max_lifetime_secs: instance.max_lifetime.as_secs(),
        user: &instance.tags,
    };
    let image_id = instance
        .image_id
        .as_ref()
        .ok_or_else(|| Error::Failed("image-id is missing".into()))?;
    let spec = LaunchSpec {
        image_id,
        security_group_ids: &instance.security_group_ids,
        root_device_name: &instance.root_device_name,
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
    };
    cancel.check()?;
    with(created, |c| c.launches_pending += 1);
    // Not abandoned on a signal: see `Cancel`.
    let result = launch::launch_first(client, &spec, candidates, || cancel.check().is_err()).await;
    match result {
        Ok((id, candidate, _failures)) => {
            with(created, |c| {
                c.instance_ids.push(id.clone());
                c.launches_pending -= 1;
            });
            tracing::info!(instance = %id, "launched {}", launch::describe(&candidate));
            cancel.check()?;
            Ok(Started {
                runner_name: runner_name.to_owned(),
                instance_id: id,
                zone: candidate.zone.clone(),
                candidate,
            })
        }
        Err((err, failures)) => {
            // Without an answer from EC2 (a transport failure after the SDK's
            // retries) the request may still have created the instance: leave
            // it counted as in flight, so the undo looks for it by tag.
            if err.code.is_some() {
                with(created, |c| c.launches_pending -= 1);
            }
            Err(launch_error(err, &failures))
        }
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

/// Removes whatever this start created. Runs on failure and cancellation; it
/// must fit in the few seconds GitHub allows between SIGINT and the kill, so
/// it makes the fewest calls that can find everything: the known ids, plus
/// one tag search when a launch was in flight.
async fn undo(
    settings: &StartSettings,
    client: &Client,
    created: &Shared,
    github: Option<&Github>,
) {
    let (mut ids, runners, pending_names, launch_pending) = with(created, |c| {
        (
            c.instance_ids.clone(),
            c.runners.clone(),
            c.runner_names_pending.clone(),
            c.launches_pending > 0,
        )
    });
    if launch_pending {
        // An instance created by a request whose answer we never saw is still
        // tagged with the label at creation: find it by tag. EC2's search is
        // eventually consistent, so look a few times. (Without a launch in
        // flight there is nothing unseen, and a label a user reuses across
        // runs must not lead us to another run's machine.)
        let tries = 5;
        for attempt in 0..tries {
            if let Ok(found) =
                instances::find_managed(client, Some(settings.instance.label.as_str())).await
            {
                let before = ids.len();
                // Only machines of this start's runners: a label can be shared.
                let ours = found.iter().filter(|i| {
                    crate::tags::value(i.tags(), crate::tags::RUNNER_NAME).is_some_and(|n| {
                        runners.iter().any(|(_, r)| r == n) || pending_names.iter().any(|p| p == n)
                    })
                });
                for id in ours.filter_map(|i| i.instance_id()) {
                    if !ids.iter().any(|k| k == id) {
                        ids.push(id.to_owned());
                    }
                }
                if ids.len() > before || attempt + 1 == tries {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    if !ids.is_empty() {
        match instances::terminate(client, &ids).await {
            Ok(()) => {
                tracing::info!(instances = %ids.join(", "), "terminated after the failed start")
            }
            Err(err) => actions::error_line(&format!(
                "could not terminate {} after the failed start: {err}. Terminate it by hand or run the cleanup mode",
                ids.join(", ")
            )),
        }
    }
    let Some(github) = github else { return };
    for (id, name) in &runners {
        if let Err(err) = github.delete_runner(*id, name).await {
            actions::warning(&format!("could not delete runner {name}: {err}"));
        }
    }
    for name in &pending_names {
        if let Ok(Some(runner)) = github.find_runner(name).await {
            let _ = github.delete_runner(runner.id, name).await;
        }
    }
}

/// Writes the outputs and the step summary.
fn finish(
    settings: &StartSettings,
    outputs: &Outputs,
    started: &[Started],
    prices: &[SpotPrice],
    region: &str,
    began: Instant,
) -> Result<(), Error> {
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
        began.elapsed().as_secs_f64(),
    ))?)
}
