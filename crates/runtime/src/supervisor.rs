//! [`Supervisor`]: runs the process's roles as tasks and owns their shutdown.
//!
//! Every role (`ingress`, `stream judge`, `projector`, ...) is spawned under one supervisor with a
//! name. The roles watch the supervisor's [`CancellationToken`]; shutdown is cooperative:
//!
//! - the first role that fails (returns `Err`, panics, or stops on its own while nothing asked it
//!   to) cancels the token, so the other roles drain and stop;
//! - a signal ([`Supervisor::shutdown_on_signals`]) or [`Supervisor::shutdown`] cancels it too;
//! - [`Supervisor::wait`] returns when every task has finished, giving them at most a grace
//!   period after cancellation, and reports the first failure with its cause chain.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A role or task name, as given to [`Supervisor::spawn`].
pub type RoleName = Cow<'static, str>;

/// Why the supervised tasks stopped, when it was not a requested, clean shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A role returned an error. The error's own chain is kept as the source.
    #[error("role `{role}` failed")]
    RoleFailed {
        /// The role's name.
        role: RoleName,
        /// What the role returned (an `anyhow::Error`, chain preserved).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A role panicked.
    #[error("role `{role}` panicked: {message}")]
    RolePanicked {
        /// The role's name.
        role: RoleName,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// A long-lived role returned `Ok` although no shutdown had been requested.
    #[error("role `{role}` stopped before shutdown was requested")]
    RoleExited {
        /// The role's name.
        role: RoleName,
    },
    /// Tasks still running when the grace period after cancellation ran out.
    #[error("tasks still running {grace:?} after shutdown began: {}", roles.join(", "))]
    ShutdownTimedOut {
        /// The grace period that was given.
        grace: Duration,
        /// Names of the tasks that had not finished.
        roles: Vec<RoleName>,
    },
}

impl SupervisorError {
    /// Returns a low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SupervisorError::RoleFailed { .. } => "role_failed",
            SupervisorError::RolePanicked { .. } => "role_panicked",
            SupervisorError::RoleExited { .. } => "role_exited",
            SupervisorError::ShutdownTimedOut { .. } => "shutdown_timed_out",
        }
    }
}

/// How a finished task is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    /// Runs until shutdown; stopping on its own is a failure.
    UntilShutdown,
    /// May finish by itself; only an error or a panic is a failure.
    Finite,
}

#[derive(Debug, Default)]
struct State {
    first_failure: Option<SupervisorError>,
    running: BTreeMap<u64, RoleName>,
}

/// Runs named roles and shuts them all down when one fails or a signal arrives.
///
/// Cloning gives another handle to the same set of tasks (roles use it to spawn helper tasks
/// with [`spawn_task`](Supervisor::spawn_task)).
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
}

impl Supervisor {
    /// Returns a supervisor with no tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the token roles watch: it is cancelled when shutdown begins. Cancelling it
    /// starts a clean shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Starts a clean shutdown: cancels the token every role watches.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Returns true once shutdown has begun, for whatever reason.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Spawns a long-lived role. It should run until the shutdown token is cancelled and then
    /// return `Ok(())`. If it returns an error, panics, or returns before shutdown was requested,
    /// the other roles are cancelled and [`wait`](Supervisor::wait) reports it.
    pub fn spawn<F>(&self, role: impl Into<RoleName>, future: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_with(role.into(), Lifetime::UntilShutdown, future, None);
    }

    /// [`spawn`](Supervisor::spawn) on another runtime (`handle`): the role runs on that
    /// runtime's threads, supervised here like any other.
    pub fn spawn_on<F>(&self, role: impl Into<RoleName>, future: F, handle: &tokio::runtime::Handle)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_with(role.into(), Lifetime::UntilShutdown, future, Some(handle));
    }

    /// Spawns a helper task that may finish by itself (a flush, a one-off load). Shutdown waits
    /// for it like for a role; an error or a panic cancels everything, a clean finish does not.
    pub fn spawn_task<F>(&self, name: impl Into<RoleName>, future: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_with(name.into(), Lifetime::Finite, future, None);
    }

    fn spawn_with<F>(
        &self,
        role: RoleName,
        lifetime: Lifetime,
        future: F,
        handle: Option<&tokio::runtime::Handle>,
    ) where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.state).running.insert(id, role.clone());
        tracing::debug!(role = %role, "starting");

        let task = match handle {
            Some(handle) => self.tracker.spawn_on(future, handle),
            None => self.tracker.spawn(future),
        };
        let shutdown = self.shutdown.clone();
        let state = Arc::clone(&self.state);
        // The watcher is tracked too, so `wait` also waits for the outcome to be recorded.
        self.tracker.spawn(async move {
            let outcome = task.await;
            let failure = judge(&role, lifetime, shutdown.is_cancelled(), outcome);
            let mut state = lock(&state);
            state.running.remove(&id);
            let Some(failure) = failure else {
                tracing::debug!(role = %role, "stopped");
                return;
            };
            if state.first_failure.is_none() {
                // Reported once, by `wait`'s caller; here only the decision is logged.
                tracing::info!(role = %role, "role stopped unexpectedly; shutting down the other roles");
                state.first_failure = Some(failure);
            } else {
                // Not returned by `wait`, so this is the only place it can be seen.
                tracing::error!(role = %role, error = %ErrorChain(&failure), "role failed during shutdown");
            }
            drop(state);
            shutdown.cancel();
        });
    }

    /// Cancels the shutdown token on SIGTERM or SIGINT (Ctrl-C on non-Unix platforms).
    ///
    /// The handlers are installed before this returns, so a signal that arrives afterwards is
    /// never lost. Must be called inside a Tokio runtime.
    pub fn shutdown_on_signals(&self) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        let signals = Signals::install()?;
        // Not tracked: the listener must not keep `wait` from returning once the roles are done.
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                name = signals.recv() => {
                    tracing::info!(signal = name, "shutdown requested");
                    shutdown.cancel();
                }
            }
        });
        Ok(())
    }

    /// Waits for every task to finish and returns the first failure, if any.
    ///
    /// Once shutdown has begun (a failure, a signal, [`shutdown`](Supervisor::shutdown)), the
    /// tasks get `grace` to finish; tasks still running after that are named in
    /// [`SupervisorError::ShutdownTimedOut`] (unless a role failure caused the shutdown, which is
    /// then the error reported) and are left to be dropped with the runtime.
    pub async fn wait(self, grace: Duration) -> Result<(), SupervisorError> {
        self.tracker.close();
        tokio::select! {
            () = self.tracker.wait() => {}
            () = self.shutdown.cancelled() => {
                if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
                    let mut state = lock(&self.state);
                    let roles: Vec<RoleName> = state.running.values().cloned().collect();
                    let timed_out = SupervisorError::ShutdownTimedOut { grace, roles };
                    if state.first_failure.is_none() {
                        state.first_failure = Some(timed_out);
                    } else {
                        tracing::error!(error = %timed_out, "shutdown did not complete");
                    }
                }
            }
        }
        // Stops the signal listener when the roles ended by themselves.
        self.shutdown.cancel();
        match lock(&self.state).first_failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

fn judge(
    role: &RoleName,
    lifetime: Lifetime,
    shutdown_requested: bool,
    outcome: Result<anyhow::Result<()>, JoinError>,
) -> Option<SupervisorError> {
    match outcome {
        Ok(Ok(())) if shutdown_requested || lifetime == Lifetime::Finite => None,
        Ok(Ok(())) => Some(SupervisorError::RoleExited { role: role.clone() }),
        Ok(Err(error)) => Some(SupervisorError::RoleFailed {
            role: role.clone(),
            source: error.into(),
        }),
        Err(join_error) if join_error.is_panic() => {
            let payload = join_error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            Some(SupervisorError::RolePanicked {
                role: role.clone(),
                message,
            })
        }
        // Aborted: only the runtime shutting down does that, which is not a role's fault.
        Err(_) => None,
    }
}

/// Locks the state. A panic while holding this lock cannot leave it inconsistent (every
/// critical section is a single insert/remove/take), so poisoning is ignored.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Displays an error with its sources: `a: b: c`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "ctrl-c",
            // Without a handler there is no signal to wait for: never resolve.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use anyhow::Context as _;

    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    /// A role that runs until shutdown and records that it saw the cancellation.
    async fn well_behaved(
        token: CancellationToken,
        stopped: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        token.cancelled().await;
        stopped.store(true, Ordering::SeqCst);
        Ok(())
    }

    #[tokio::test]
    async fn first_failure_cancels_the_others_and_is_returned_with_its_cause_chain() {
        let supervisor = Supervisor::new();
        let stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn(
            "projector",
            well_behaved(supervisor.shutdown_token(), Arc::clone(&stopped)),
        );
        supervisor.spawn("stream judge", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err(std::io::Error::other("connection refused")).context("failed to subscribe to topic")
        });
        // A second role that fails only after shutdown began is logged, not returned.
        let token = supervisor.shutdown_token();
        supervisor.spawn("sink", async move {
            token.cancelled().await;
            anyhow::bail!("flush failed")
        });

        let error = supervisor.wait(GRACE).await.unwrap_err();
        assert!(
            stopped.load(Ordering::SeqCst),
            "the healthy role saw the cancellation"
        );
        assert!(
            matches!(&error, SupervisorError::RoleFailed { role, .. } if role == "stream judge")
        );
        assert_eq!(
            format!("{:#}", anyhow::Error::from(error)),
            "role `stream judge` failed: failed to subscribe to topic: connection refused"
        );
    }

    #[tokio::test]
    async fn clean_shutdown_returns_ok() {
        let supervisor = Supervisor::new();
        let stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn(
            "ingress",
            well_behaved(supervisor.shutdown_token(), Arc::clone(&stopped)),
        );
        supervisor.spawn(
            "projector",
            well_behaved(
                supervisor.shutdown_token(),
                Arc::new(AtomicBool::new(false)),
            ),
        );
        supervisor.spawn_task("warm-up", async { Ok(()) });

        let handle = supervisor.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            handle.shutdown();
        });
        supervisor.wait(GRACE).await.unwrap();
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panic_is_a_failure() {
        let supervisor = Supervisor::new();
        supervisor.spawn(
            "ingress",
            well_behaved(
                supervisor.shutdown_token(),
                Arc::new(AtomicBool::new(false)),
            ),
        );
        supervisor.spawn("stream regression", async { panic!("window underflow") });
        let error = supervisor.wait(GRACE).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "role `stream regression` panicked: window underflow"
        );
    }

    #[tokio::test]
    async fn a_role_that_returns_before_shutdown_is_a_failure() {
        let supervisor = Supervisor::new();
        supervisor.spawn(
            "ingress",
            well_behaved(
                supervisor.shutdown_token(),
                Arc::new(AtomicBool::new(false)),
            ),
        );
        supervisor.spawn("projector", async { Ok(()) });
        let error = supervisor.wait(GRACE).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "role `projector` stopped before shutdown was requested"
        );
        assert_eq!(error.metric_label(), "role_exited");
    }

    #[tokio::test]
    async fn tasks_that_ignore_shutdown_are_named_after_the_grace_period() {
        let supervisor = Supervisor::new();
        supervisor.spawn("stubborn", std::future::pending::<anyhow::Result<()>>());
        supervisor.spawn(
            "ingress",
            well_behaved(
                supervisor.shutdown_token(),
                Arc::new(AtomicBool::new(false)),
            ),
        );
        supervisor.shutdown();
        let error = supervisor
            .wait(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, SupervisorError::ShutdownTimedOut { roles, .. } if roles == &["stubborn"]),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn finite_tasks_finishing_do_not_stop_anything() {
        let supervisor = Supervisor::new();
        supervisor.spawn_task("load", async { Ok(()) });
        supervisor.spawn_task("load-2", async { Ok(()) });
        // Nothing long-lived: wait returns once both are done, without a shutdown.
        supervisor.wait(GRACE).await.unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        let supervisor = Supervisor::new();
        let stopped = Arc::new(AtomicBool::new(false));
        supervisor.spawn(
            "ingress",
            well_behaved(supervisor.shutdown_token(), Arc::clone(&stopped)),
        );
        supervisor.shutdown_on_signals().unwrap();
        // The handler is installed, so SIGTERM to ourselves is caught instead of killing the
        // test process.
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", std::process::id())])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(GRACE, supervisor.wait(GRACE))
            .await
            .unwrap()
            .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
    }
}
