//! `bake`: makes a runner image in the user's own account. It looks up the
//! base image and the newest runner release, launches an on-demand builder
//! whose script installs the runner and powers it off, waits until it is
//! stopped, reads the script's verdict, makes the image, waits until it is
//! available, terminates the builder and keeps the newest few images of the
//! name. A failed or cancelled bake leaves no builder and no half-made image.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;

use crate::actions::{self, Outputs};
use crate::aws::baked::{self, Available, BakedImage};
use crate::aws::builder::{self, Builder, Stopped};
use crate::aws::images::{self, Lookup};
use crate::aws::{self, AwsError, instances};
use crate::cancel::Cancel;
use crate::cli::BakeArgs;
use crate::error::Error;
use crate::github;
use crate::instance::bake::{self as script, BakeScript, Verdict};
use crate::instance::userdata::DEFAULT_DOWNLOAD_URL;
use crate::settings::{BakeSettings, RunnerDownload};
use crate::tags;

/// How long the builder's console may take to show the verdict once it is
/// stopped: EC2 posts the console "shortly after" a state transition.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html
const VERDICT_WAIT: Duration = Duration::from_secs(180);

/// The builder's log file (removed before the image is made).
const BAKE_LOG: &str = "/var/log/ec2-spot-runner-bake.log";

/// What exists so far, for the undo.
#[derive(Debug, Default)]
struct Made {
    builder: Option<String>,
    /// A RunInstances sent and not answered: the builder's label and its
    /// `created-at` tag, by which the undo looks for it.
    launch_pending: Option<(String, String)>,
    image: Option<String>,
}

type Shared = Arc<Mutex<Made>>;

fn with<T>(made: &Shared, f: impl FnOnce(&mut Made) -> T) -> T {
    let mut guard = made.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

/// What the lookups found.
struct Base {
    image_id: String,
    root_device: String,
    architecture: String,
    runner: RunnerDownload,
}

/// How long each phase took, for the summary.
#[derive(Debug, Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    fn mark(&mut self, name: &'static str, since: &mut Instant) {
        self.0.push((name, since.elapsed()));
        *since = Instant::now();
    }
}

/// What a finished bake reports.
struct Baked {
    base: Base,
    image: BakedImage,
    removed: Vec<String>,
    phases: Phases,
}

/// Runs `bake`.
pub(crate) async fn run(args: BakeArgs) -> Result<(), Error> {
    let settings = BakeSettings::from_args(&args)?;
    let began = Instant::now();
    let client = aws::ec2_client(settings.region.clone()).await?;
    let cancel = Cancel::listen();
    let made: Shared = Arc::default();
    let outcome = bake(&settings, &client, &made, began, &cancel).await;
    match outcome {
        Ok(baked) => report(&settings, &baked),
        Err(err) => {
            let budget = cancel.undo_budget().unwrap_or(Duration::from_secs(60));
            undo(&client, &made, budget).await;
            Err(err)
        }
    }
}

/// The design's steps.
async fn bake(
    settings: &BakeSettings,
    client: &Client,
    made: &Shared,
    began: Instant,
    cancel: &Cancel,
) -> Result<Baked, Error> {
    let deadline = began + settings.timeout;
    let mut phases = Phases::default();
    let mut since = began;
    let base = cancel.guard(look_up(settings, client)).await?;
    phases.mark("look-up", &mut since);
    let name = settings
        .name
        .image_name(&base.architecture, chrono::Utc::now());
    // A launch already sent finishes (or is looked for by its tags): the
    // builder it made must not outlive a cancel.
    cancel.check()?;
    let builder = cancel
        .in_flight(launch_builder(settings, client, &base, &name, made))
        .await??;
    tracing::info!(builder = %builder, image = %base.image_id, runner = %base.runner.version, "builder launched");
    cancel
        .guard(wait_until_stopped(client, &builder, deadline))
        .await?;
    phases.mark("builder", &mut since);
    cancel
        .guard(read_verdict(client, &builder, &base, deadline))
        .await?;
    let image_id = cancel
        .guard(make_image(settings, client, &builder, &base, &name, made))
        .await?;
    let image = cancel
        .guard(wait_until_available(client, &image_id, deadline))
        .await?;
    phases.mark("image", &mut since);
    terminate_builder(client, made).await?;
    let removed = rotate(settings, client, &base, &image).await;
    phases.mark("rotation", &mut since);
    Ok(Baked {
        base,
        image,
        removed,
        phases,
    })
}

/// The base image (its root device and architecture) and the runner
/// release, side by side.
async fn look_up(settings: &BakeSettings, client: &Client) -> Result<Base, Error> {
    let image = async {
        let (id, lookup) = images::resolve(client, &settings.image, &[], true).await?;
        let Lookup::Found(found) = lookup else {
            return Err(Error::Failed(format!(
                "could not describe the base image {id}; the bake needs ec2:DescribeImages (`ec2-spot-runner policy --bake` prints it)"
            )));
        };
        if found.windows {
            return Err(Error::Failed(format!(
                "the base image {id} is a Windows image; the bake makes Linux runner images: give a Linux image-id"
            )));
        }
        Ok((id, found))
    };
    let release = async {
        match &settings.runner_releases_url {
            None => Ok(settings.runner_release.clone()),
            Some(url) => {
                let github = github::connect(&settings.github).await?;
                newest_release(&github, url).await
            }
        }
    };
    let (image, runner) = tokio::join!(image, release);
    let ((id, found), runner) = (image?, runner?);
    let architecture = found.architecture.unwrap_or_else(|| "x86_64".into());
    let root_device = match (&settings.root_device_name, found.root_device_name) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => name,
        (None, None) => {
            return Err(Error::Failed(format!(
                "EC2 did not say which device is the root of {id}; give root-device-name (e.g. /dev/sda1 or /dev/xvda)"
            )));
        }
    };
    Ok(Base {
        image_id: id.as_str().to_owned(),
        root_device,
        architecture,
        runner,
    })
}

/// The newest actions/runner release with both packages uploaded (or the
/// one before it, with a warning). A bake that cannot read it fails: an
/// image with a runner of unknown age is what the bake exists to avoid.
async fn newest_release(github: &github::Github, url: &str) -> Result<RunnerDownload, Error> {
    use github::releases::Lookup as Release;
    match github::releases::newest_usable(github, url, &["arm64", "x64"]).await {
        Release::Newest(download) => Ok(download),
        Release::Earlier { download, newest } => {
            actions::warning(&format!(
                "{newest}; baking {}, the newest earlier release that has both packages",
                download.version
            ));
            Ok(download)
        }
        Release::Incomplete { newest, earlier } => Err(Error::Failed(format!(
            "{newest}, and no earlier release was found ({earlier}); bake again later, or pin runner-version with runner-sha256"
        ))),
        Release::Failed(why) => Err(Error::Failed(format!(
            "could not read the newest actions/runner release from {url} ({why}); check github-token and runner-releases-url, or pin runner-version with runner-sha256"
        ))),
    }
}

/// The builder's type: the one given, else a current general-purpose type
/// of the base image's architecture.
fn builder_type(settings: &BakeSettings, architecture: &str) -> String {
    match &settings.instance_type {
        Some(kind) => kind.as_str().to_owned(),
        None if architecture == "arm64" => "c7g.large".into(),
        None => "c7i.large".into(),
    }
}

async fn launch_builder(
    settings: &BakeSettings,
    client: &Client,
    base: &Base,
    name: &str,
    made: &Shared,
) -> Result<String, Error> {
    let kind = builder_type(settings, &base.architecture);
    if let Some(info) = crate::catalogue::lookup(&kind) {
        if info.arch != base.architecture {
            return Err(Error::Failed(format!(
                "instance-types {kind} is {}, and the base image {} is {}; give a type of the image's architecture",
                info.arch, base.image_id, base.architecture
            )));
        }
    }
    let sha = |s: &Option<String>| s.clone().unwrap_or_default();
    let (x64, arm64) = (sha(&base.runner.sha256_x64), sha(&base.runner.sha256_arm64));
    let text = script::user_data(&BakeScript {
        runner_version: &base.runner.version,
        sha256_x64: &x64,
        sha256_arm64: &arm64,
        download_url: DEFAULT_DOWNLOAD_URL,
        docker: settings.docker,
        script: settings.script.as_deref(),
        log_file: BAKE_LOG,
    });
    let user_data = aws::launch::encode_user_data(&text).map_err(Error::Failed)?;
    let created_at = chrono::Utc::now();
    let tags = builder_tags(settings, name, created_at);
    let pending = (
        builder_label(settings),
        created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    with(made, |m| m.launch_pending = Some(pending));
    let groups: Vec<String> = settings
        .security_group_ids
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    // One token per bake: a retried request launches no second builder.
    let token = format!(
        "ec2sr-bake-{}-{}",
        created_at.timestamp_millis(),
        base.architecture
    );
    let id = builder::launch(
        client,
        &Builder {
            image_id: &base.image_id,
            root_device: &base.root_device,
            volume_size: settings.volume_size,
            instance_type: &kind,
            subnet: settings.subnet.as_ref().map(|s| s.as_str()),
            security_group_ids: &groups,
            tags: &tags,
            user_data: &user_data,
            client_token: &token,
        },
    )
    .await;
    with(made, |m| {
        // An answer, even an error, settles the launch; without one, the
        // request may still have made a builder.
        if id.as_ref().map_or_else(|e| e.code.is_some(), |_| true) {
            m.launch_pending = None;
        }
        if let Ok(id) = &id {
            m.builder = Some(id.clone());
        }
    });
    Ok(id?)
}

/// The builder's label: `bake-` and the bake name in label characters.
fn builder_label(settings: &BakeSettings) -> String {
    format!("bake-{}", label_part(settings.name.as_str()))
}

/// The builder's tags: managed, with the bake's name, and a max lifetime
/// (the bake's timeout) by which cleanup reaps a builder a killed bake left.
fn builder_tags(
    settings: &BakeSettings,
    name: &str,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("Name".to_owned(), format!("{name} builder")),
        (tags::MANAGED.to_owned(), "true".to_owned()),
        (tags::LABEL.to_owned(), builder_label(settings)),
        (tags::BAKE.to_owned(), settings.name.as_str().to_owned()),
        (
            tags::CREATED_AT.to_owned(),
            created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        (
            tags::MAX_LIFETIME.to_owned(),
            settings.timeout.as_secs().to_string(),
        ),
    ];
    pairs.extend(
        settings
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone())),
    );
    pairs
}

/// A bake name as label characters.
fn label_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

async fn wait_until_stopped(client: &Client, id: &str, deadline: Instant) -> Result<(), Error> {
    match builder::wait_stopped(client, id, deadline).await? {
        Stopped::PoweredOff => {
            tracing::info!(builder = %id, "the builder powered itself off");
            Ok(())
        }
        Stopped::Ended(state, code, message) => Err(Error::Failed(format!(
            "the builder {id} ended {state} before the bake finished ({code}: {message}); nothing was imaged. The console (EC2 console → instance → Monitor → Get system log) shows how far the script got"
        ))),
        Stopped::TimedOut => Err(Error::Failed(format!(
            "the builder {id} was still up when the timeout ran out; the script may be stuck. Raise timeout, or look at its console"
        ))),
    }
}

/// The script's verdict, from the console EC2 posts after the stop.
async fn read_verdict(
    client: &Client,
    id: &str,
    base: &Base,
    deadline: Instant,
) -> Result<(), Error> {
    let until = deadline.min(Instant::now() + VERDICT_WAIT);
    let mut delay = Duration::ZERO;
    let started = Instant::now();
    loop {
        let console = instances::console_text(client, id, false)
            .await
            .map_err(|err| AwsError {
                hint: Some(
                    "the bake reads the builder's verdict from its console: allow ec2:GetConsoleOutput on the managed instances (`ec2-spot-runner policy --bake` prints it)".into(),
                ),
                ..err
            })?
            .unwrap_or_default();
        match script::verdict(&console) {
            Verdict::Done(version) if version == base.runner.version => return Ok(()),
            Verdict::Done(version) => {
                return Err(Error::Failed(format!(
                    "the builder {id} installed runner {version}, not {}; nothing was imaged",
                    base.runner.version
                )));
            }
            Verdict::Failed(why) => {
                show_console_tail(&console);
                return Err(Error::Failed(format!(
                    "the bake script failed on the builder {id}: {why}; nothing was imaged (its console is above)"
                )));
            }
            Verdict::Missing => {}
        }
        delay = instances::poll_delay(started.elapsed(), delay).max(Duration::from_secs(2));
        if Instant::now() + delay >= until {
            show_console_tail(&console);
            return Err(Error::Failed(format!(
                "the builder {id} stopped without saying that the bake finished (no `ec2-spot-runner-bake: done` line on its console within {} s); nothing was imaged. It may have powered off for another reason: its console is above",
                VERDICT_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(delay).await;
    }
}

fn show_console_tail(console: &str) {
    if console.is_empty() {
        return;
    }
    let lines: Vec<&str> = console.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    actions::untrusted_block("the builder's console (last 40 lines)", &tail);
}

async fn make_image(
    settings: &BakeSettings,
    client: &Client,
    builder: &str,
    base: &Base,
    name: &str,
    made: &Shared,
) -> Result<String, Error> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut pairs = vec![
        ("Name".to_owned(), name.to_owned()),
        (tags::MANAGED.to_owned(), "true".to_owned()),
        (tags::BAKE.to_owned(), settings.name.as_str().to_owned()),
        (tags::RUNNER_VERSION.to_owned(), base.runner.version.clone()),
        (tags::BASE_IMAGE.to_owned(), base.image_id.clone()),
        (tags::ARCHITECTURE.to_owned(), base.architecture.clone()),
        (tags::BAKED_AT.to_owned(), now),
    ];
    pairs.extend(
        settings
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone())),
    );
    let description = format!(
        "ec2-spot-runner: actions/runner {} on {}",
        base.runner.version, base.image_id
    );
    let id = baked::create(client, builder, name, &description, &pairs).await?;
    with(made, |m| m.image = Some(id.clone()));
    tracing::info!(image = %id, name, "image requested");
    Ok(id)
}

async fn wait_until_available(
    client: &Client,
    id: &str,
    deadline: Instant,
) -> Result<BakedImage, Error> {
    match baked::wait_available(client, id, deadline).await? {
        Available::Ready(image) => {
            tracing::info!(image = %id, "image available");
            Ok(image)
        }
        Available::Failed(state, reason) => Err(Error::Failed(format!(
            "EC2 could not make the image {id}: it is {state} ({reason})"
        ))),
        Available::TimedOut => Err(Error::Failed(format!(
            "the image {id} was still pending when the timeout ran out; raise timeout (large volumes take longer to snapshot)"
        ))),
    }
}

/// The builder is no longer needed once the image is available.
async fn terminate_builder(client: &Client, made: &Shared) -> Result<(), Error> {
    let Some(id) = with(made, |m| m.builder.clone()) else {
        return Ok(());
    };
    instances::terminate(client, std::slice::from_ref(&id)).await?;
    with(made, |m| m.builder = None);
    Ok(())
}

/// Keeps the newest `keep` images of this name and architecture, the new
/// one among them; the older ones go with their snapshots. What cannot be
/// removed is named, and the bake still succeeds: its image is good.
async fn rotate(
    settings: &BakeSettings,
    client: &Client,
    base: &Base,
    image: &BakedImage,
) -> Vec<String> {
    let found = match baked::list(client, settings.name.as_str(), &base.architecture).await {
        Ok(found) => found,
        Err(err) => {
            actions::warning(&format!(
                "could not list the older images to keep {} of them: {err}",
                settings.keep
            ));
            return Vec::new();
        }
    };
    let keep = usize::try_from(settings.keep).unwrap_or(usize::MAX);
    // The new image counts first, whatever order EC2 listed it in.
    let older: Vec<&BakedImage> = found.iter().filter(|i| i.id != image.id).collect();
    let mut removed = Vec::new();
    for old in older.into_iter().skip(keep.saturating_sub(1)) {
        let left = baked::remove(client, old).await;
        if left.is_empty() {
            tracing::info!(image = %old.id, name = %old.name, "older image deregistered with its snapshots");
            removed.push(old.id.clone());
        } else {
            actions::warning(&format!(
                "could not remove {} ({}): {}; remove them by hand",
                old.id,
                old.name,
                left.iter()
                    .map(|(id, err)| format!("{id}: {err}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    removed
}

/// A failed or cancelled bake: the builder terminated, a half-made image
/// deregistered with its snapshots; what could not be removed is named in
/// one line.
async fn undo(client: &Client, made: &Shared, budget: Duration) {
    let (builder, pending, image) = with(made, |m| {
        (m.builder.clone(), m.launch_pending.clone(), m.image.clone())
    });
    let deadline = Instant::now() + budget;
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let machine = async {
        let mut ids: Vec<String> = builder.iter().cloned().collect();
        if let Some((label, created_at)) = &pending {
            // A launch without an answer: its builder, if it made one,
            // carries the label and this launch's creation time.
            let search = instances::find_managed(client, Some(label));
            if let Ok(Ok(found)) = tokio::time::timeout(remaining(), search).await {
                ids.extend(
                    found
                        .iter()
                        .filter(|i| tags::value(i.tags(), tags::CREATED_AT) == Some(created_at))
                        .filter_map(|i| i.instance_id().map(str::to_owned)),
                );
            }
        }
        if ids.is_empty() {
            Vec::new()
        } else {
            instances::terminate_launched(client, &ids, remaining()).await
        }
    };
    let picture = async {
        let Some(id) = &image else {
            return Vec::new();
        };
        let described = tokio::time::timeout(remaining(), baked::describe(client, id)).await;
        let found = match described {
            Ok(Ok(Some(found))) => found,
            // Not listed yet, or gone: deregister by id all the same.
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => BakedImage {
                id: id.clone(),
                name: String::new(),
                created: String::new(),
                snapshots: Vec::new(),
                size_gib: 0,
            },
        };
        match tokio::time::timeout(remaining(), baked::remove(client, &found)).await {
            Ok(left) => left.into_iter().map(|(id, _)| id).collect(),
            Err(_) => std::iter::once(found.id.clone())
                .chain(found.snapshots.clone())
                .collect(),
        }
    };
    let (mut left, images_left) = tokio::join!(machine, picture);
    left.extend(images_left);
    if left.is_empty() {
        if builder.is_some() || pending.is_some() || image.is_some() {
            tracing::info!(
                builder = builder.as_deref().unwrap_or("-"),
                image = image.as_deref().unwrap_or("-"),
                "removed after the failed bake"
            );
        }
    } else {
        actions::error_line(&format!(
            "the failed bake could not remove {}; `ec2-spot-runner cleanup` terminates a stray builder once the bake's timeout has passed, and an image or snapshot left over is removed with `aws ec2 deregister-image` and `aws ec2 delete-snapshot`",
            left.join(", ")
        ));
    }
}

/// Outputs and the step summary.
fn report(settings: &BakeSettings, baked: &Baked) -> Result<(), Error> {
    let outputs = Outputs::from_env();
    outputs.set("image-id", &baked.image.id)?;
    outputs.set("runner-version", &baked.base.runner.version)?;
    tracing::info!(image = %baked.image.id, name = %baked.image.name, runner = %baked.base.runner.version, "baked");
    let mut table = actions::Table::new(&["", ""]);
    table.row(&[
        "Image".into(),
        format!("`{}` ({})", baked.image.id, baked.image.name),
    ]);
    table.row(&["Base image".into(), format!("`{}`", baked.base.image_id)]);
    table.row(&["Runner".into(), baked.base.runner.version.clone()]);
    table.row(&["Architecture".into(), baked.base.architecture.clone()]);
    table.row(&["Size".into(), format!("{} GiB", baked.image.size_gib)]);
    for (phase, took) in &baked.phases.0 {
        table.row(&[
            format!("{phase} took"),
            format!("{:.0} s", took.as_secs_f64()),
        ]);
    }
    table.row(&[
        "Older images removed".into(),
        if baked.removed.is_empty() {
            "none".into()
        } else {
            baked.removed.join(", ")
        },
    ]);
    let text = format!(
        "### ec2-spot-runner bake: {}\n\n{}\nStart from it with `image-name: {}-{}-*` and `image-owner: self`; the newest {} of the name are kept.\n",
        baked.image.name,
        table.finish(),
        settings.name.as_str(),
        baked.base.architecture,
        settings.keep
    );
    actions::summary(&text)?;
    Ok(())
}
