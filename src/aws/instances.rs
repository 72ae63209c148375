//! Instance lookup and lifecycle: find managed instances by tag (one
//! DescribeInstances with filters, paginated), wait for `running` with
//! adaptive polling, and terminate in batches.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};

use crate::aws::AwsError;
use crate::tags;

/// The states in which an instance still costs money or is about to.
const LIVE_STATES: [&str; 5] = ["pending", "running", "stopping", "stopped", "shutting-down"];

/// TerminateInstances accepts up to 1000 ids; we keep batches smaller so one
/// bad id cannot hide the others' results for long.
const TERMINATE_BATCH: usize = 200;

/// Lists the live managed instances, optionally for one label.
pub(crate) async fn find_managed(
    client: &Client,
    label: Option<&str>,
) -> Result<Vec<Instance>, AwsError> {
    let mut filters = vec![
        Filter::builder()
            .name(format!("tag:{}", tags::MANAGED))
            .values("true")
            .build(),
        Filter::builder()
            .name("instance-state-name")
            .set_values(Some(LIVE_STATES.iter().map(|s| (*s).to_owned()).collect()))
            .build(),
    ];
    if let Some(label) = label {
        filters.push(
            Filter::builder()
                .name(format!("tag:{}", tags::LABEL))
                .values(label)
                .build(),
        );
    }
    describe_all(client, filters).await
}

/// Lists the managed instances one attempt of a workflow run launched, in
/// any state: EC2 keeps terminated instances visible for about an hour,
/// with the reason they ended.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html
pub(crate) async fn find_by_run(
    client: &Client,
    repository: &str,
    run_id: u64,
    run_attempt: u32,
) -> Result<Vec<Instance>, AwsError> {
    let tag = |key: &str, value: String| {
        Filter::builder()
            .name(format!("tag:{key}"))
            .values(value)
            .build()
    };
    let filters = vec![
        tag(tags::MANAGED, "true".to_owned()),
        tag(tags::REPOSITORY, repository.to_owned()),
        tag(tags::RUN_ID, run_id.to_string()),
        tag(tags::RUN_ATTEMPT, run_attempt.to_string()),
    ];
    describe_all(client, filters).await
}

/// Every instance matching the filters, following the pages.
async fn describe_all(client: &Client, filters: Vec<Filter>) -> Result<Vec<Instance>, AwsError> {
    let mut found = Vec::new();
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("DescribeInstances", &e))?;
        for reservation in page.reservations() {
            found.extend(reservation.instances().iter().cloned());
        }
    }
    Ok(found)
}

/// Terminates instances in batches; ids already gone are not an error.
pub(crate) async fn terminate(client: &Client, ids: &[String]) -> Result<(), AwsError> {
    for batch in ids.chunks(TERMINATE_BATCH) {
        let result = client
            .terminate_instances()
            .set_instance_ids(Some(batch.to_vec()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(err) => {
                let err = AwsError::from_sdk("TerminateInstances", &err);
                if err.code.as_deref() == Some("InvalidInstanceID.NotFound") {
                    // One unknown id fails the whole batch: retry the ids one by one.
                    for id in batch {
                        if let Err(e) = client.terminate_instances().instance_ids(id).send().await {
                            let e = AwsError::from_sdk("TerminateInstances", &e);
                            if e.code.as_deref() != Some("InvalidInstanceID.NotFound") {
                                return Err(e);
                            }
                        }
                    }
                } else {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

/// Terminates instances that this process launched, whose ids came from
/// RunInstances answers. Right after a launch EC2 may answer
/// `InvalidInstanceID.NotFound` for such an id: that means "not visible
/// yet", not "gone", so it keeps trying (with backoff, each call bounded)
/// until EC2 confirms `shutting-down` or `terminated` for every id or
/// `budget` runs out. Returns the ids it could not confirm.
// NOTE: https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
pub(crate) async fn terminate_launched(
    client: &Client,
    ids: &[String],
    budget: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + budget;
    let mut left: Vec<String> = ids.to_vec();
    let mut delay = Duration::from_millis(200);
    while !left.is_empty() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        // One call at a time, each within what is left of the budget: the
        // SDK's own retries must not outlast it.
        let call = client
            .terminate_instances()
            .set_instance_ids(Some(left.clone()))
            .send();
        match tokio::time::timeout(remaining, call).await {
            Ok(Ok(output)) => {
                let confirmed: Vec<&str> = output
                    .terminating_instances()
                    .iter()
                    .filter(|c| {
                        matches!(
                            c.current_state().and_then(|s| s.name()),
                            Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
                        )
                    })
                    .filter_map(|c| c.instance_id())
                    .collect();
                left.retain(|id| !confirmed.contains(&id.as_str()));
                continue;
            }
            Ok(Err(err)) => {
                let err = AwsError::from_sdk("TerminateInstances", &err);
                if err.code.as_deref() == Some("InvalidInstanceID.NotFound") && left.len() > 1 {
                    // One id not visible yet fails the batch: go one by one.
                    let mut still = Vec::new();
                    for id in &left {
                        let one = client.terminate_instances().instance_ids(id).send();
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        match tokio::time::timeout(remaining, one).await {
                            Ok(Ok(_)) => {}
                            _ => still.push(id.clone()),
                        }
                    }
                    left = still;
                } else {
                    tracing::debug!("terminate not confirmed yet: {err}");
                }
            }
            Err(_) => break,
        }
        if left.is_empty() {
            break;
        }
        let pause = delay.min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    left
}

/// The last `lines` lines of an instance's console (its serial output: the
/// kernel, cloud-init, and the user-data script's log). Needs the optional
/// ec2:GetConsoleOutput.
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html
pub(crate) async fn console_tail(
    client: &Client,
    id: &str,
    lines: usize,
) -> Result<Option<String>, AwsError> {
    let Some(text) = console_text(client, id, true).await? else {
        return Ok(None);
    };
    let all: Vec<&str> = text.lines().collect();
    Ok(Some(all[all.len().saturating_sub(lines)..].join("\n")))
}

/// An instance's console: the latest output (`latest`, Nitro instances
/// while they run), or what EC2 posted after its last state transition
/// (start, stop, reboot, terminate).
// NOTE: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html
pub(crate) async fn console_text(
    client: &Client,
    id: &str,
    latest: bool,
) -> Result<Option<String>, AwsError> {
    let output = client
        .get_console_output()
        .instance_id(id)
        .set_latest(latest.then_some(true))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetConsoleOutput", &e))?;
    let Some(encoded) = output.output() else {
        return Ok(None);
    };
    let bytes = aws_smithy_types::base64::decode(encoded.trim()).map_err(|e| AwsError {
        action: "GetConsoleOutput",
        code: None,
        detail: format!("the console output is not base64: {e}"),
        hint: None,
    })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The polling schedule while waiting: fast at first (an instance is often
/// `running` within seconds), never slower than 1 s during the first 30 s,
/// then backing off to 5 s so a long wait costs few calls.
pub(crate) fn poll_delay(elapsed: Duration, previous: Duration) -> Duration {
    let grown = previous.mul_f32(1.5).max(Duration::from_millis(200));
    let cap = if elapsed < Duration::from_secs(30) {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    grown.min(cap)
}

/// The outcome of waiting for instances.
pub(crate) enum Wait {
    /// All are running, with their current descriptions.
    Running(Vec<Instance>),
    /// One ended before running (terminated, or a spot request reclaimed).
    Failed {
        /// The instance id.
        id: String,
        /// The state it reached.
        state: String,
        /// EC2's state reason code (`Client.InternalError`, `Server.SpotInstanceTermination`, …).
        code: String,
        /// EC2's state reason message.
        reason: String,
    },
    /// The deadline passed.
    TimedOut,
}

/// Waits until every instance is `running`, with one DescribeInstances per
/// poll covering all of them.
pub(crate) async fn wait_running(
    client: &Client,
    ids: &[String],
    deadline: Instant,
) -> Result<Wait, AwsError> {
    let started = Instant::now();
    let mut delay = Duration::ZERO;
    loop {
        match client
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(output) => {
                let mut by_id: HashMap<String, Instance> = HashMap::new();
                for reservation in output.reservations() {
                    for instance in reservation.instances() {
                        if let Some(id) = instance.instance_id() {
                            by_id.insert(id.to_owned(), instance.clone());
                        }
                    }
                }
                let mut running = Vec::new();
                for id in ids {
                    let Some(instance) = by_id.get(id) else { break };
                    let state = instance.state().and_then(|s| s.name()).cloned();
                    match state {
                        Some(InstanceStateName::Running) => running.push(instance.clone()),
                        Some(InstanceStateName::Pending) | None => {}
                        Some(other) => {
                            return Ok(Wait::Failed {
                                id: id.clone(),
                                state: other.as_str().to_owned(),
                                code: instance
                                    .state_reason()
                                    .and_then(|r| r.code())
                                    .unwrap_or_default()
                                    .to_owned(),
                                reason: instance
                                    .state_reason()
                                    .and_then(|r| r.message())
                                    .unwrap_or("no reason given")
                                    .to_owned(),
                            });
                        }
                    }
                }
                if running.len() == ids.len() {
                    tracing::debug!(elapsed = ?started.elapsed(), "all instances running");
                    return Ok(Wait::Running(running));
                }
            }
            Err(err) => {
                let err = AwsError::from_sdk("DescribeInstances", &err);
                // Right after RunInstances, EC2 may not know the id yet
                // (eventual consistency): keep polling.
                if err.code.as_deref() != Some("InvalidInstanceID.NotFound") {
                    return Err(err);
                }
            }
        }
        delay = poll_delay(started.elapsed(), delay);
        if Instant::now() + delay >= deadline {
            return Ok(Wait::TimedOut);
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_is_fast_early_and_bounded_later() {
        let mut delay = Duration::ZERO;
        let mut at = Duration::ZERO;
        let mut calls_first_30s = 0;
        while at < Duration::from_secs(30) {
            delay = poll_delay(at, delay);
            assert!(delay <= Duration::from_secs(1));
            at += delay;
            calls_first_30s += 1;
        }
        assert!(calls_first_30s >= 30);
        let mut calls_next_minute = 0;
        let end = at + Duration::from_secs(60);
        while at < end {
            delay = poll_delay(at, delay);
            at += delay;
            calls_next_minute += 1;
        }
        assert!(
            calls_next_minute <= 15,
            "{calls_next_minute} calls per minute"
        );
        // In the steady state: one call every 5 s, 12 a minute.
        assert_eq!(
            poll_delay(Duration::from_secs(300), delay),
            Duration::from_secs(5)
        );
    }
}
