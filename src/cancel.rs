//! Cancellation as the Actions runner delivers it: SIGINT to the step's
//! process, SIGTERM 7.5 s later, SIGKILL 2.5 s after that
//! (actions/runner, src/Runner.Sdk/ProcessInvoker.cs). A signal sets a flag
//! that every mode checks where stopping is safe; waits are abandoned at
//! once; a second signal never interrupts the undo; and the time left until
//! the kill bounds what the undo may still do.

use std::time::{Duration, Instant};

use crate::error::Error;

/// How long after SIGINT the runner sends SIGTERM; SIGKILL follows 2.5 s
/// later, so this is the time to finish in.
pub(crate) const SIGINT_WINDOW: Duration = Duration::from_millis(7500);

/// What the undo keeps in hand before the window closes: the exit itself,
/// and slack for a busy machine.
const MARGIN: Duration = Duration::from_millis(1000);

/// How long a RunInstances already sent may still answer after a signal:
/// its answer names the instance to terminate, which a tag search, being
/// eventually consistent, might not find yet. Past this the start gives up
/// waiting and searches by tag.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(2500);

/// The cancellation state, shared by everything a mode runs.
#[derive(Clone)]
pub(crate) struct Cancel(tokio::sync::watch::Receiver<Option<(&'static str, Instant)>>);

impl Cancel {
    /// Starts listening for SIGINT and SIGTERM.
    pub(crate) fn listen() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let signal = next_signal().await;
            tracing::warn!(
                "{signal} received: finishing the removal of what this run created, then exiting"
            );
            let _ = tx.send(Some((signal, Instant::now())));
            // Keep listening, so a second signal (the runner sends SIGINT,
            // then SIGTERM) does not kill the process in the middle of the undo.
            loop {
                let again = next_signal().await;
                tracing::warn!("{again} received again: still cleaning up");
            }
        });
        Self(rx)
    }

    /// Fails with `Cancelled` once a signal has arrived.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match *self.0.borrow() {
            Some((signal, _)) => Err(Error::Cancelled { signal }),
            None => Ok(()),
        }
    }

    /// Resolves when a signal has arrived.
    async fn signalled(&self) -> Instant {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(state) => state.map(|(_, at)| at).unwrap_or_else(Instant::now),
            // The listener is gone: no signal can come any more.
            Err(_) => std::future::pending().await,
        }
    }

    /// Runs `work`, abandoning it when a signal arrives.
    pub(crate) async fn guard<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.check()?;
        tokio::select! {
            result = work => result,
            _ = self.signalled() => {
                self.check()?;
                Err(Error::Cancelled { signal: "a signal" })
            }
        }
    }

    /// Runs `work` (a launch already sent), letting it finish for a short
    /// grace after a signal, then abandoning it.
    pub(crate) async fn in_flight<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Error> {
        tokio::select! {
            result = work => Ok(result),
            _ = async {
                let at = self.signalled().await;
                tokio::time::sleep_until((at + IN_FLIGHT_GRACE).into()).await;
            } => {
                tracing::warn!("the launch in flight did not answer within {IN_FLIGHT_GRACE:?} of the signal; looking for its instance by tag");
                self.check()?;
                Err(Error::Cancelled { signal: "a signal" })
            }
        }
    }

    /// Runs `work` to its end, or until shortly before the runner's kill
    /// once a signal has arrived: for stop and cleanup, whose work is the
    /// removal itself.
    pub(crate) async fn finish<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::select! {
            result = work => result,
            _ = async {
                let at = self.signalled().await;
                tokio::time::sleep_until((at + SIGINT_WINDOW - MARGIN).into()).await;
            } => {
                self.check()?;
                Err(Error::Cancelled { signal: "a signal" })
            }
        }
    }

    /// After a signal: the time the undo may take before the runner kills
    /// the step; `None` when no signal came.
    pub(crate) fn undo_budget(&self) -> Option<Duration> {
        let at = (*self.0.borrow())?.1;
        let left = (at + SIGINT_WINDOW).saturating_duration_since(Instant::now());
        Some(left.saturating_sub(MARGIN).max(Duration::from_secs(1)))
    }
}

/// Resolves with the name of the next SIGINT or SIGTERM.
async fn next_signal() -> &'static str {
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
