//! The plumbing that turns one sync cycle into a systemd service: notifications to the service
//! manager, signals, config reload on SIGHUP or on an edit of the file, a jittered schedule,
//! on-demand cycles, and a stop that lets the in-flight batch finish.
//!
//! It is kept apart from `agent.rs` so the cycle stays an ordinary async function that knows
//! nothing about systemd or signals, and so this plumbing can be tested against a fake cycle in
//! milliseconds. [`run_loop`] is generic over [`Service`]: the agent implements it, tests fake it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::io::{self, IsTerminal};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::error::{Classify, ErrorClass};

/// How long a stop waits for the in-flight cycle. `dialsync run` must exit within 10 s of
/// SIGTERM; a second is left for everything after the loop (closing the database, the listener).
pub const STOP_GRACE: Duration = Duration::from_secs(9);

/// How long the config file must stay quiet before a change reloads it: editors and deploy tools
/// write, rename and chmod in bursts, and one reload per burst is enough.
pub const RELOAD_DEBOUNCE: Duration = Duration::from_millis(500);

/// A notification the service manager could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor an @abstract socket name")]
    UnsupportedAddress(OsString),
    #[error("sending {message:?} to the notify socket {socket:?}: {source}")]
    Send {
        message: String,
        socket: OsString,
        source: io::Error,
    },
    #[error("recording the reload in {}: {source}", path.display())]
    RecordReload { path: PathBuf, source: io::Error },
}

/// The daemon plumbing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("signal handlers and the config watcher need a running Tokio runtime")]
    NoRuntime,
    #[error("installing the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        source: io::Error,
    },
    #[error("config path {}: {source}", path.display())]
    ConfigPath { path: PathBuf, source: io::Error },
    #[error("config path {} names no file", .0.display())]
    NoFileName(PathBuf),
    #[error("watching {} for config changes: {source}", dir.display())]
    Watch { dir: PathBuf, source: notify::Error },
    #[error("RUST_LOG={spec:?} is not a valid log filter: {reason}")]
    LogFilter { spec: String, reason: String },
    #[error("a logger is already installed: {0}")]
    Logging(String),
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        // A lost notification is repeated by the next one (watchdog, status): never fatal.
        ErrorClass::Transient
    }
}

impl Classify for DaemonError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

// ---------------------------------------------------------------------------------------------
// sd_notify
// ---------------------------------------------------------------------------------------------

/// Where the service manager listens.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NotifyAddr {
    Path(PathBuf),
    /// A Linux abstract socket: `@name` in `NOTIFY_SOCKET`, the name without the `@`.
    Abstract(Vec<u8>),
    /// Kept rather than refused at start, so the operator hears about it where notifications
    /// fail instead of the service refusing to start (e.g. `vsock:` from a newer systemd).
    Unsupported(OsString),
}

impl NotifyAddr {
    fn parse(raw: &OsStr) -> Option<NotifyAddr> {
        let bytes = raw.as_bytes();
        match bytes.first() {
            None => None,
            Some(b'/') => Some(NotifyAddr::Path(PathBuf::from(raw))),
            Some(b'@') => Some(NotifyAddr::Abstract(bytes[1..].to_vec())),
            Some(_) => Some(NotifyAddr::Unsupported(raw.to_os_string())),
        }
    }

    fn describe(&self) -> OsString {
        match self {
            NotifyAddr::Path(path) => path.clone().into_os_string(),
            NotifyAddr::Abstract(name) => {
                let mut shown = OsString::from("@");
                shown.push(OsStr::from_bytes(name));
                shown
            }
            NotifyAddr::Unsupported(raw) => raw.clone(),
        }
    }
}

/// Talks to systemd's notify socket (`sd_notify(3)`).
///
/// Hand-rolled over a unix datagram rather than the `sd-notify` crate because that crate only
/// reads the socket from the environment (tests would race on process-wide env vars) and does
/// not reach abstract sockets. Every method is a no-op when there is no socket, so the same code
/// runs under systemd, in a terminal and in tests.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    addr: Option<NotifyAddr>,
    /// The whole watchdog timeout (`WATCHDOG_USEC`), when the watchdog is ours.
    watchdog: Option<Duration>,
    /// Whether a failed send was already logged loudly: under a broken socket every watchdog
    /// ping would otherwise warn.
    complained: Arc<AtomicBool>,
    /// Where each reload is recorded for `dialsync reload` (see [`ReloadAck`]).
    reload_ack: Option<PathBuf>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`, as systemd sets them, and
    /// `RUNTIME_DIRECTORY` (`RuntimeDirectory=`) for the reload record.
    pub fn from_env() -> Notifier {
        Notifier::from_vars(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            std::env::var_os("WATCHDOG_USEC").as_deref(),
            std::env::var_os("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
        .with_reload_ack(
            std::env::var_os("RUNTIME_DIRECTORY")
                .as_deref()
                .and_then(reload_ack_path),
        )
    }

    /// Sends to `socket`: an absolute path, or `@name` for an abstract socket.
    pub fn new(socket: impl AsRef<OsStr>) -> Notifier {
        Notifier {
            addr: NotifyAddr::parse(socket.as_ref()),
            ..Notifier::default()
        }
    }

    /// Sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::default()
    }

    /// Records each reload in `path` for `dialsync reload` (`None`: nowhere).
    pub fn with_reload_ack(mut self, path: Option<PathBuf>) -> Notifier {
        self.reload_ack = path;
        self
    }

    /// Sets the watchdog timeout, as `WatchdogSec=` would (`None` turns the watchdog off).
    pub fn with_watchdog(mut self, timeout: Option<Duration>) -> Notifier {
        self.watchdog = timeout.filter(|t| !t.is_zero());
        self
    }

    fn from_vars(
        socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
        our_pid: u32,
    ) -> Notifier {
        fn parse(v: Option<&OsStr>) -> Option<&str> {
            v.and_then(|v| v.to_str()).map(str::trim)
        }
        // As sd_watchdog_enabled(3): a WATCHDOG_PID that is not ours (or not a number) means the
        // watchdog belongs to another process, e.g. the parent that exec'd us without it.
        let ours = match watchdog_pid {
            None => true,
            Some(pid) => parse(Some(pid)).and_then(|p| p.parse::<u32>().ok()) == Some(our_pid),
        };
        let timeout = parse(watchdog_usec)
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|_| ours)
            .map(Duration::from_micros);
        Notifier {
            addr: socket.and_then(NotifyAddr::parse),
            ..Notifier::default()
        }
        .with_watchdog(timeout)
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.addr.is_some()
    }

    /// How often to send WATCHDOG=1: half the timeout, as `sd_watchdog_enabled(3)` advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// READY=1: start-up (or a reload) is complete.
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.send("READY=1")
    }

    /// RELOADING=1 with the MONOTONIC_USEC= that `Type=notify-reload` (systemd >= 253) needs to
    /// match this reload with the one it asked for; older systemd ignores the extra field.
    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.reloading_at(monotonic_usec())
    }

    fn reloading_at(&self, usec: u64) -> Result<(), NotifyError> {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"))
    }

    /// Records a finished reload where `dialsync reload` waits for it, if anywhere. Sent after
    /// the READY=1 that ends the reload, so the service manager has heard of the end first.
    pub fn reloaded(&self, ack: &ReloadAck) -> Result<(), NotifyError> {
        let Some(path) = &self.reload_ack else {
            return Ok(());
        };
        ack.write(path).map_err(|source| NotifyError::RecordReload {
            path: path.clone(),
            source,
        })
    }

    /// STOPPING=1: the service is shutting down.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1")
    }

    /// STATUS=: shown by `systemctl status`. Newlines would start new assignments, so they
    /// become spaces.
    pub fn status(&self, line: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(line)))
    }

    /// WATCHDOG=1: the main loop is alive.
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// Sends `message` (newline-separated assignments) as one datagram.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(addr) = &self.addr else {
            return Ok(());
        };
        let fail = |source| NotifyError::Send {
            message: message.to_string(),
            socket: addr.describe(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(fail)?;
        // A full queue at the service manager must not stall the loop: a lost status or ping is
        // replaced by the next one, a stalled loop is not.
        socket.set_nonblocking(true).map_err(fail)?;
        let sent = match addr {
            NotifyAddr::Path(path) => socket.send_to(message.as_bytes(), path),
            NotifyAddr::Abstract(name) => send_abstract(&socket, name, message.as_bytes()),
            NotifyAddr::Unsupported(raw) => {
                return Err(NotifyError::UnsupportedAddress(raw.clone()));
            }
        };
        match sent {
            Ok(n) if n == message.len() => Ok(()),
            Ok(_) => Err(fail(io::Error::new(
                io::ErrorKind::WriteZero,
                "short datagram",
            ))),
            Err(e) => Err(fail(e)),
        }
    }

    /// Logs a failed notification: loudly the first time, quietly after.
    fn log_failure(&self, result: Result<(), NotifyError>) {
        if let Err(e) = result {
            if self.complained.swap(true, Ordering::Relaxed) {
                debug!(error = %e, "systemd notification failed");
            } else {
                warn!(
                    error = %e,
                    "systemd notification failed (further failures are logged at debug)"
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd stamps reloads with (std's `Instant`
/// hides its value).
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1_000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Proof of life for systemd's watchdog, handed to the cycle.
///
/// The loop pings while it sleeps, but not during a cycle: a cycle stuck on a lock or a request
/// without a timeout must let the watchdog fire. A cycle that legitimately runs long calls
/// [`Watchdog::pet`] between phases and batches. Pings are sent from whoever calls, never from a
/// thread of their own, so a wedged loop goes quiet.
#[derive(Clone, Debug, Default)]
pub struct Watchdog {
    inner: Option<Arc<WatchdogInner>>,
}

#[derive(Debug)]
struct WatchdogInner {
    notifier: Notifier,
    interval: Duration,
    last: Mutex<Instant>,
}

impl Watchdog {
    /// Pings through `notifier` when it has a watchdog interval; otherwise does nothing.
    pub fn new(notifier: &Notifier) -> Watchdog {
        Watchdog {
            inner: notifier.watchdog_interval().map(|interval| {
                Arc::new(WatchdogInner {
                    notifier: notifier.clone(),
                    interval,
                    last: Mutex::new(Instant::now()),
                })
            }),
        }
    }

    /// Whether systemd is watching.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Says "still making progress". Cheap enough to call per batch: at most one datagram per
    /// half interval goes out.
    pub fn pet(&self) {
        if let Some(inner) = &self.inner {
            let last = *inner.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() >= inner.interval / 2 {
                self.ping();
            }
        }
    }

    fn ping(&self) {
        if let Some(inner) = &self.inner {
            *inner.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
            inner.notifier.log_failure(inner.notifier.watchdog());
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.inner.as_ref().map(|inner| {
            *inner.last.lock().unwrap_or_else(PoisonError::into_inner) + inner.interval
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Triggers: signals, the config watcher, POST /sync
// ---------------------------------------------------------------------------------------------

/// Why the config is being reloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// The config file, or the symlink leading to it, changed.
    FileChanged,
    /// Asked for in code; the name of who asked.
    Requested(&'static str),
}

impl fmt::Display for ReloadCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadCause::Signal => f.write_str("SIGHUP"),
            ReloadCause::FileChanged => f.write_str("config file changed"),
            ReloadCause::Requested(who) => f.write_str(who),
        }
    }
}

/// Something the main loop must react to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Reload(ReloadCause),
    /// Run a cycle now; who asked (`"SIGUSR1"`, `"POST /sync"`).
    SyncNow(&'static str),
    /// Stop after the in-flight batch; the signal's name.
    Stop(&'static str),
}

/// Feeds [`Triggers`] from anywhere: a signal task, a watcher thread, an HTTP handler.
#[derive(Clone, Debug)]
pub struct TriggerSender {
    tx: mpsc::UnboundedSender<Trigger>,
    /// Set while a SyncNow is queued and not yet received, so a flood of requests queues one.
    sync_queued: Arc<AtomicBool>,
}

impl TriggerSender {
    /// Queues `trigger`; a SyncNow while another is queued is merged into it. Returns false when
    /// the loop is gone.
    pub fn send(&self, trigger: Trigger) -> bool {
        if let Trigger::SyncNow(_) = trigger {
            if self.sync_queued.swap(true, Ordering::AcqRel) {
                return !self.tx.is_closed();
            }
            if self.tx.send(trigger).is_err() {
                self.sync_queued.store(false, Ordering::Release);
                return false;
            }
            return true;
        }
        self.tx.send(trigger).is_ok()
    }
}

/// The handle the admin server gets for `POST /sync`: it can ask for a cycle and nothing else.
#[derive(Clone, Debug)]
pub struct SyncRequester(TriggerSender);

impl SyncRequester {
    /// Asks for a cycle now. Requests that arrive while one is queued, or while a cycle runs,
    /// add up to one more cycle, not one each. Returns false when the loop is gone.
    pub fn request(&self, who: &'static str) -> bool {
        self.0.send(Trigger::SyncNow(who))
    }
}

/// The main loop's inbox: everything that can wake it besides its own timer.
///
/// Dropping it stops the signal forwarding and the config watcher.
#[derive(Debug)]
pub struct Triggers {
    rx: mpsc::UnboundedReceiver<Trigger>,
    sender: TriggerSender,
    tasks: Vec<JoinHandle<()>>,
    watchers: Vec<notify::RecommendedWatcher>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::new()
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Triggers {
    /// An inbox fed only through [`Triggers::sender`] until signals or a watcher are added.
    pub fn new() -> Triggers {
        let (tx, rx) = mpsc::unbounded_channel();
        Triggers {
            rx,
            sender: TriggerSender {
                tx,
                sync_queued: Arc::new(AtomicBool::new(false)),
            },
            tasks: Vec::new(),
            watchers: Vec::new(),
        }
    }

    pub fn sender(&self) -> TriggerSender {
        self.sender.clone()
    }

    pub fn sync_requester(&self) -> SyncRequester {
        SyncRequester(self.sender.clone())
    }

    /// SIGHUP reloads, SIGUSR1 syncs now, SIGTERM and SIGINT stop. From here on those signals
    /// no longer have their default effect on the process.
    pub fn listen_signals(&mut self) -> Result<(), DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DaemonError::NoRuntime)?;
        let install = |kind, name| {
            signal(kind).map_err(|source| DaemonError::Signal {
                signal: name,
                source,
            })
        };
        let mut hup = install(SignalKind::hangup(), "SIGHUP")?;
        let mut usr1 = install(SignalKind::user_defined1(), "SIGUSR1")?;
        let mut term = install(SignalKind::terminate(), "SIGTERM")?;
        let mut int = install(SignalKind::interrupt(), "SIGINT")?;
        let sender = self.sender.clone();
        self.tasks.push(runtime.spawn(async move {
            loop {
                let trigger = tokio::select! {
                    Some(()) = hup.recv() => Trigger::Reload(ReloadCause::Signal),
                    Some(()) = usr1.recv() => Trigger::SyncNow("SIGUSR1"),
                    Some(()) = term.recv() => Trigger::Stop("SIGTERM"),
                    Some(()) = int.recv() => Trigger::Stop("SIGINT"),
                    else => break,
                };
                debug!(?trigger, "signal received");
                if !sender.send(trigger) {
                    break;
                }
            }
        }));
        Ok(())
    }

    /// Reloads when the config file changes, once it has been quiet for `quiet`.
    ///
    /// The directory is watched, not the file: editors and deploy tools replace a file by
    /// renaming a new one over it, which a watch on the old inode would miss. Events are kept
    /// when they name the file, or when what the path resolves to has changed, which catches a
    /// symlinked config whose link (or a link it goes through, as a Kubernetes ConfigMap's
    /// `..data`) is swapped.
    pub fn watch_config(&mut self, path: &Path, quiet: Duration) -> Result<(), DaemonError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DaemonError::NoRuntime)?;
        let path = std::path::absolute(path).map_err(|source| DaemonError::ConfigPath {
            path: path.to_path_buf(),
            source,
        })?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(DaemonError::NoFileName(path));
        };
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // Fails only once the debounce task is gone, i.e. the Triggers were dropped.
            let _ = raw_tx.send(event);
        })
        .map_err(|source| DaemonError::Watch {
            dir: dir.to_path_buf(),
            source,
        })?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| DaemonError::Watch {
                dir: dir.to_path_buf(),
                source,
            })?;
        let filter = ConfigFilter {
            name: name.to_os_string(),
            seen: FileIdentity::of(&path),
            path,
        };
        self.tasks
            .push(runtime.spawn(debounce(raw_rx, filter, quiet, self.sender.clone())));
        self.watchers.push(watcher);
        Ok(())
    }

    /// The next trigger. Never ends: the inbox holds a sender of its own.
    pub async fn recv(&mut self) -> Trigger {
        match self.rx.recv().await {
            Some(trigger) => {
                if let Trigger::SyncNow(_) = trigger {
                    self.sender.sync_queued.store(false, Ordering::Release);
                }
                trigger
            }
            None => std::future::pending().await,
        }
    }
}

/// What the config path resolves to: a rename over it, or a swapped symlink, changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<FileIdentity> {
        std::fs::metadata(path).ok().map(|m| FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

#[derive(Debug)]
struct ConfigFilter {
    path: PathBuf,
    name: OsString,
    seen: Option<FileIdentity>,
}

impl ConfigFilter {
    fn is_relevant(&self, event: &notify::Event) -> bool {
        if event.need_rescan() {
            // The kernel dropped events: something may have changed.
            return true;
        }
        match event.kind {
            // Opening or reading the file, which every reload does, must not cause another.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return false,
            _ => {}
        }
        event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(self.name.as_os_str()))
            || FileIdentity::of(&self.path) != self.seen
    }
}

async fn debounce(
    mut raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut filter: ConfigFilter,
    quiet: Duration,
    sender: TriggerSender,
) {
    loop {
        loop {
            match raw.recv().await {
                None => return,
                Some(Ok(event)) if filter.is_relevant(&event) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => warn!(error = %e, "config file watcher"),
            }
        }
        let mut deadline = Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, raw.recv()).await {
                Err(_quiet) => break,
                Ok(None) => return,
                Ok(Some(Ok(event))) => {
                    if filter.is_relevant(&event) {
                        deadline = Instant::now() + quiet;
                    }
                }
                Ok(Some(Err(e))) => warn!(error = %e, "config file watcher"),
            }
        }
        filter.seen = FileIdentity::of(&filter.path);
        debug!(path = %filter.path.display(), "config file changed");
        if !sender.send(Trigger::Reload(ReloadCause::FileChanged)) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduling and shutdown
// ---------------------------------------------------------------------------------------------

/// `interval` ± 10 %, uniformly: agents started together (a fleet rebooted at once) drift apart
/// instead of hitting the sources in lockstep. Exact in nanoseconds; saturates instead of
/// overflowing.
pub fn jittered<R: Rng + ?Sized>(interval: Duration, rng: &mut R) -> Duration {
    let nanos = interval.as_nanos();
    let spread = nanos / 10;
    let offset = rng.random_range(0..=2 * spread);
    let total = nanos - spread + offset;
    match u64::try_from(total / 1_000_000_000) {
        // The remainder is below 10^9, so it fits.
        Ok(secs) => Duration::new(secs, (total % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

/// When the next scheduled cycle is due: a jittered `interval` from now. An interval too long
/// for the clock lands far in the future instead of panicking.
pub fn next_wakeup<R: Rng + ?Sized>(interval: Duration, rng: &mut R) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(jittered(interval, rng))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// Tells a running cycle to stop after its in-flight batch.
///
/// A cycle checks [`Shutdown::is_requested`] between batches, and may race long waits (a slow
/// source) against [`Shutdown::requested`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side of a [`Shutdown`] that asks for it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A linked pair, for callers that run a cycle outside [`run_loop`] (e.g. `dialsync sync`
    /// stopping on Ctrl-C).
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// One that is never requested.
    pub fn never() -> Shutdown {
        Shutdown::new().1
    }

    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a shutdown is requested; never, if its trigger is dropped unused.
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Runs `work` to completion, calling `on_request` once if a shutdown is requested
    /// meanwhile: the bridge to code that checks a stop flag of its own between batches (the
    /// sinks' `ApplyControl`), so that code need not know about this type.
    pub async fn relay<F: Future>(&self, work: F, on_request: impl FnOnce()) -> F::Output {
        tokio::pin!(work);
        tokio::select! {
            output = &mut work => output,
            () = self.requested() => {
                on_request();
                work.await
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

/// Why a cycle runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleReason {
    /// The first cycle, right after start.
    Startup,
    /// The interval elapsed.
    Scheduled,
    /// SIGUSR1, `POST /sync`, a reload: who asked.
    Requested(&'static str),
}

impl fmt::Display for CycleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CycleReason::Startup => f.write_str("startup"),
            CycleReason::Scheduled => f.write_str("scheduled"),
            CycleReason::Requested(who) => f.write_str(who),
        }
    }
}

/// What a cycle gets besides its config.
#[derive(Clone, Debug)]
pub struct CycleContext {
    pub reason: CycleReason,
    pub shutdown: Shutdown,
    pub watchdog: Watchdog,
}

/// How a cycle went, in one line for STATUS= and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleSummary {
    /// False logs the line as a warning; the loop carries on either way.
    pub ok: bool,
    pub status: String,
}

impl CycleSummary {
    pub fn ok(status: impl Into<String>) -> CycleSummary {
        CycleSummary {
            ok: true,
            status: status.into(),
        }
    }

    pub fn failed(status: impl Into<String>) -> CycleSummary {
        CycleSummary {
            ok: false,
            status: status.into(),
        }
    }
}

/// What [`run_loop`] drives: the agent in production, a fake in tests.
pub trait Service {
    type Config;
    type Error: fmt::Display;

    /// Parses and validates the config at `path`. On a reload, an error keeps the running
    /// config, so everything that can be checked without side effects belongs here.
    fn load_config(&self, path: &Path) -> Result<Self::Config, Self::Error>;

    /// The interval between scheduled cycles under `config`.
    fn interval(&self, config: &Self::Config) -> Duration;

    /// A last say on a reloaded config before it replaces `current`: refuse a change that
    /// needs a restart (the state database, the admin address), or re-open what changed.
    /// An error keeps `current`.
    fn accept_reload(
        &mut self,
        current: &Self::Config,
        new: &Self::Config,
    ) -> Result<(), Self::Error> {
        let _ = (current, new);
        Ok(())
    }

    /// One cycle. It should stop after its in-flight batch once `ctx.shutdown` is requested,
    /// and call `ctx.watchdog.pet()` between phases and batches.
    fn cycle(
        &mut self,
        config: &Self::Config,
        ctx: &CycleContext,
    ) -> impl Future<Output = CycleSummary>;
}

/// Tuning of [`run_loop`].
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// How long a stop waits for the in-flight cycle before abandoning it.
    pub grace: Duration,
    /// Run a cycle right after a successful reload, so a new source or tag takes effect now
    /// rather than up to an interval later.
    pub sync_after_reload: bool,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            grace: STOP_GRACE,
            sync_after_reload: true,
        }
    }
}

/// How [`run_loop`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The stop's origin (`"SIGTERM"`, ...).
    pub by: &'static str,
    /// The in-flight cycle did not finish within the grace period (or a second stop came) and
    /// was dropped at its next await; its journal lets the next run recover.
    pub abandoned: bool,
}

/// Runs `service` until a stop: READY=1 at once (the caller has loaded the config, opened the
/// database and bound the admin listener), a first cycle right away, then cycles at a jittered
/// interval, on SyncNow, and after reloads; STATUS= after each cycle; WATCHDOG=1 while idle.
pub async fn run_loop<S: Service>(
    service: &mut S,
    config: S::Config,
    config_path: &Path,
    triggers: &mut Triggers,
    notifier: &Notifier,
    options: &LoopOptions,
) -> Stopped {
    let (stop, shutdown) = Shutdown::new();
    let mut driver = Driver {
        service,
        config_path,
        triggers,
        notifier,
        options,
        watchdog: Watchdog::new(notifier),
        shutdown,
        stop,
        due: Some(CycleReason::Startup),
        pending_reload: None,
    };
    driver.run(config).await
}

struct Driver<'a, S: Service> {
    service: &'a mut S,
    config_path: &'a Path,
    triggers: &'a mut Triggers,
    notifier: &'a Notifier,
    options: &'a LoopOptions,
    watchdog: Watchdog,
    shutdown: Shutdown,
    stop: ShutdownTrigger,
    /// A cycle to run as soon as the loop is idle; at most one, however many asked.
    due: Option<CycleReason>,
    /// A reload that arrived during a cycle: the config cannot change under a running cycle.
    pending_reload: Option<ReloadCause>,
}

enum CycleEnd {
    Finished,
    Stopped(Stopped),
}

impl<S: Service> Driver<'_, S> {
    async fn run(&mut self, mut config: S::Config) -> Stopped {
        // Jitter only has to differ between hosts; a clock-seeded fallback is good enough.
        let mut rng = SmallRng::try_from_os_rng().unwrap_or_else(|_| {
            SmallRng::seed_from_u64(monotonic_usec() ^ u64::from(std::process::id()))
        });
        self.notifier.log_failure(self.notifier.ready());
        info!(
            config = %self.config_path.display(),
            watchdog = ?self.notifier.watchdog_interval(),
            "running"
        );
        let mut next_at = Instant::now();
        loop {
            if let Some(cause) = self.pending_reload.take() {
                let interval = self.service.interval(&config);
                if self.reload(&mut config, cause) {
                    if self.options.sync_after_reload {
                        self.due
                            .get_or_insert(CycleReason::Requested("config reload"));
                    } else if self.service.interval(&config) != interval {
                        next_at = next_wakeup(self.service.interval(&config), &mut rng);
                    }
                }
                continue;
            }
            if let Some(reason) = self.due.take() {
                match self.cycle(&config, reason).await {
                    CycleEnd::Finished => {
                        next_at = next_wakeup(self.service.interval(&config), &mut rng);
                    }
                    CycleEnd::Stopped(stopped) => return stopped,
                }
                continue;
            }
            tokio::select! {
                // A stop must win over a timer that is also due.
                biased;
                trigger = self.triggers.recv() => match trigger {
                    Trigger::Stop(by) => {
                        info!(signal = by, "stopping");
                        self.notifier.log_failure(self.notifier.stopping());
                        return Stopped { by, abandoned: false };
                    }
                    Trigger::Reload(cause) => self.pending_reload = Some(cause),
                    Trigger::SyncNow(who) => self.due = Some(CycleReason::Requested(who)),
                },
                () = tokio::time::sleep_until(next_at) => self.due = Some(CycleReason::Scheduled),
                () = sleep_until_opt(self.watchdog.next_due()) => self.watchdog.ping(),
            }
        }
    }

    /// Returns whether the new config is now in force.
    fn reload(&mut self, config: &mut S::Config, cause: ReloadCause) -> bool {
        let started_usec = monotonic_usec();
        self.notifier
            .log_failure(self.notifier.reloading_at(started_usec));
        info!(%cause, config = %self.config_path.display(), "reloading the configuration");
        let service = &mut *self.service;
        let outcome = service
            .load_config(self.config_path)
            .and_then(|new| service.accept_reload(config, &new).map(|()| new));
        let refused = match outcome {
            Ok(new) => {
                *config = new;
                info!(%cause, "configuration reloaded");
                None
            }
            Err(e) => {
                error!(
                    %cause,
                    error = %e,
                    "configuration reload failed; the previous configuration stays in force"
                );
                self.notifier.log_failure(
                    self.notifier
                        .status(&format!("config reload failed, previous config kept: {e}")),
                );
                Some(one_line(&e.to_string()))
            }
        };
        self.notifier.log_failure(self.notifier.ready());
        let swapped = refused.is_none();
        let ack = ReloadAck {
            started_usec,
            refused,
        };
        if let Err(e) = self.notifier.reloaded(&ack) {
            warn!(error = %e, "`dialsync reload` will not see this reload");
        }
        swapped
    }

    async fn cycle(&mut self, config: &S::Config, reason: CycleReason) -> CycleEnd {
        let ctx = CycleContext {
            reason,
            shutdown: self.shutdown.clone(),
            watchdog: self.watchdog.clone(),
        };
        self.watchdog.ping();
        debug!(%reason, "cycle starting");
        let started = Instant::now();
        let grace = self.options.grace;
        let mut stopping: Option<(&'static str, Instant)> = None;
        let cycle = self.service.cycle(config, &ctx);
        tokio::pin!(cycle);
        let summary = loop {
            tokio::select! {
                summary = &mut cycle => break summary,
                trigger = self.triggers.recv() => match trigger {
                    Trigger::Stop(by) => match stopping {
                        Some((first, _)) => {
                            warn!(signal = by, "second stop request: abandoning the cycle now");
                            return CycleEnd::Stopped(Stopped { by: first, abandoned: true });
                        }
                        None => {
                            info!(signal = by, ?grace, "stopping after the in-flight batch");
                            self.notifier.log_failure(self.notifier.stopping());
                            self.stop.trigger();
                            stopping = Some((by, Instant::now() + grace));
                        }
                    },
                    Trigger::Reload(cause) => {
                        debug!(%cause, "reload deferred until the cycle ends");
                        self.pending_reload = Some(cause);
                    }
                    Trigger::SyncNow(who) => {
                        self.due.get_or_insert(CycleReason::Requested(who));
                    }
                },
                () = sleep_until_opt(stopping.map(|(_, deadline)| deadline)) => {
                    warn!(?grace, "the cycle did not stop within the grace period: abandoning it");
                    let by = stopping.map_or("stop", |(by, _)| by);
                    return CycleEnd::Stopped(Stopped { by, abandoned: true });
                }
            }
        };
        self.watchdog.ping();
        let took = started.elapsed();
        if summary.ok {
            info!(%reason, ?took, "{}", summary.status);
        } else {
            warn!(%reason, ?took, "{}", summary.status);
        }
        self.notifier
            .log_failure(self.notifier.status(&summary.status));
        match stopping {
            Some((by, _)) => CycleEnd::Stopped(Stopped {
                by,
                abandoned: false,
            }),
            None => CycleEnd::Finished,
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// `dialsync reload`: a reload that systemd 252 waits for
// ---------------------------------------------------------------------------------------------

/// The file, in the runtime directory, where `run` records its last reload.
pub const RELOAD_ACK_FILE: &str = "reloaded";

/// How often `dialsync reload` looks for the record.
const RELOAD_POLL: Duration = Duration::from_millis(50);

/// The reload record for `RUNTIME_DIRECTORY` as systemd sets it: its first directory (several
/// are separated by colons), `None` when empty.
pub fn reload_ack_path(runtime_directory: &OsStr) -> Option<PathBuf> {
    let first = runtime_directory.as_bytes().split(|&b| b == b':').next()?;
    (!first.is_empty()).then(|| Path::new(OsStr::from_bytes(first)).join(RELOAD_ACK_FILE))
}

/// What `run` records after each reload, for `dialsync reload` to wait on.
///
/// systemd 252 (Debian 12) ends `systemctl reload` when `ExecReload=` exits, and knows nothing
/// of `RELOADING=1`/`READY=1` until `Type=notify-reload` (253). So `ExecReload=` runs
/// `dialsync reload`, which sends SIGHUP and returns once the agent has recorded a reload that
/// began after the signal: the new configuration in force, or refused with its error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadAck {
    /// CLOCK_MONOTONIC when the reload began (its RELOADING=1's MONOTONIC_USEC).
    pub started_usec: u64,
    /// The error that kept the previous configuration in force; `None` when reloaded.
    pub refused: Option<String>,
}

impl ReloadAck {
    fn render(&self) -> String {
        match &self.refused {
            None => format!("MONOTONIC_USEC={}\nRESULT=reloaded\n", self.started_usec),
            Some(error) => format!(
                "MONOTONIC_USEC={}\nRESULT=refused\nERROR={}\n",
                self.started_usec,
                one_line(error)
            ),
        }
    }

    fn parse(text: &str) -> Option<ReloadAck> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        };
        let started_usec = field("MONOTONIC_USEC")?.parse().ok()?;
        let refused = match field("RESULT")? {
            "reloaded" => None,
            "refused" => Some(field("ERROR").unwrap_or("").to_string()),
            _ => return None,
        };
        Some(ReloadAck {
            started_usec,
            refused,
        })
    }

    /// Replaces the record at `path` whole (a reader never sees half of it).
    fn write(&self, path: &Path) -> io::Result<()> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        std::fs::write(&temporary, self.render())?;
        std::fs::rename(&temporary, path)
    }

    fn read(path: &Path) -> Option<ReloadAck> {
        ReloadAck::parse(&std::fs::read_to_string(path).ok()?)
    }
}

/// Why `dialsync reload` could not confirm a reload.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0} is not a process id")]
    BadPid(u32),
    #[error("cannot signal process {pid}: {source}")]
    Signal { pid: u32, source: io::Error },
    #[error("the configuration was refused; the previous one stays in force: {0}")]
    Refused(String),
    #[error("process {pid} exited before it reloaded")]
    Exited { pid: u32 },
    #[error(
        "process {pid} has not reloaded after {}; a cycle in progress defers a reload \
         until it ends, so it may still come (see the journal)",
        humantime::format_duration(*waited)
    )]
    TimedOut { pid: u32, waited: Duration },
}

/// Sends SIGHUP to `pid` (a `dialsync run`) and waits, up to `timeout`, until it records in
/// `ack` a reload that began after the signal. `Ok` means the new configuration is in force.
pub fn request_reload(pid: u32, ack: &Path, timeout: Duration) -> Result<(), ReloadError> {
    use rustix::process::{kill_process, test_kill_process, Pid, Signal};
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(ReloadError::BadPid(pid))?;
    let asked = monotonic_usec();
    kill_process(target, Signal::HUP).map_err(|e| ReloadError::Signal {
        pid,
        source: e.into(),
    })?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let exited = test_kill_process(target).is_err();
        let late = std::time::Instant::now() >= deadline;
        // Read after those checks: an answer written just before the agent exited or the
        // time ran out still counts.
        if let Some(ack) = ReloadAck::read(ack).filter(|a| a.started_usec >= asked) {
            return ack.refused.map_or(Ok(()), |e| Err(ReloadError::Refused(e)));
        }
        if exited {
            return Err(ReloadError::Exited { pid });
        }
        if late {
            return Err(ReloadError::TimedOut {
                pid,
                waited: timeout,
            });
        }
        std::thread::sleep(RELOAD_POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------

/// Installs the global `tracing` subscriber: `RUST_LOG` filters (else `default_filter`). When
/// stderr is connected to the journal, lines carry a `<N>` syslog priority prefix, which
/// journald turns into the entry's priority, and no timestamp, which journald adds itself.
/// Elsewhere lines are coloured only on a terminal, as [`colour_logs`] decides.
pub fn init_logging(default_filter: &str) -> Result<(), DaemonError> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).map_err(|e| DaemonError::LogFilter {
            reason: e.to_string(),
            spec,
        })?,
        Err(_) => EnvFilter::new(default_filter),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    let installed = if stderr_is_journal() {
        builder
            .with_ansi(false)
            .event_format(JournalFormat(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .try_init()
    } else {
        builder
            .with_ansi(colour_logs(
                io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .try_init()
    };
    installed.map_err(|e| DaemonError::Logging(e.to_string()))
}

/// Whether log lines on stderr carry ANSI colours: only on a terminal, where someone reads
/// them. A file, a pipe or a collector would store the escape codes as text (tracing's own
/// default colours whatever stderr is). `NO_COLOR` set to anything but the empty string turns
/// them off even there (https://no-color.org).
pub fn colour_logs(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// As systemd.exec(5) advises: `JOURNAL_STREAM` is inherited, so it counts only if it still
/// names the device and inode of our stderr.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

fn syslog_priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

struct JournalFormat<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn receiver() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (dir, path, socket)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn nothing_waiting(socket: &UnixDatagram) -> bool {
        socket.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 4096];
        let empty = socket.recv(&mut buf).is_err();
        socket.set_nonblocking(false).expect("blocking");
        empty
    }

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some(OsStr::new(""))), "empty means unset");
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(
            !colour_logs(true, Some(OsStr::new("0"))),
            "any value, even 0"
        );
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some(OsStr::new(""))));
    }

    #[test]
    fn each_notification_is_one_datagram() {
        let (_dir, path, socket) = receiver();
        let n = Notifier::new(&path);
        assert!(n.is_enabled());
        n.ready().expect("ready");
        n.status("3 added\n1 deleted").expect("status");
        n.stopping().expect("stopping");
        n.watchdog().expect("watchdog");
        assert_eq!(recv(&socket), "READY=1");
        assert_eq!(recv(&socket), "STATUS=3 added 1 deleted");
        assert_eq!(recv(&socket), "STOPPING=1");
        assert_eq!(recv(&socket), "WATCHDOG=1");
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let (_dir, path, socket) = receiver();
        let before = monotonic_usec();
        Notifier::new(&path).reloading().expect("reloading");
        let after = monotonic_usec();
        let msg = recv(&socket);
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("MONOTONIC_USEC=<number>");
        assert!(
            before <= usec && usec <= after,
            "{before} <= {usec} <= {after}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_sockets_are_reached() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("dialsync-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Notifier::new(format!("@{name}"))
            .ready()
            .expect("sent to the abstract socket");
        assert_eq!(recv(&socket), "READY=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::from_vars(None, None, None, 1);
        assert!(!n.is_enabled());
        assert!(n.ready().is_ok());
        assert!(n.reloading().is_ok());
        assert_eq!(n.watchdog_interval(), None);
        assert!(!Notifier::from_vars(Some(OsStr::new("")), None, None, 1).is_enabled());
    }

    #[test]
    fn an_unsupported_socket_address_is_reported_when_sending() {
        let n = Notifier::from_vars(Some(OsStr::new("vsock:2:1234")), None, None, 1);
        assert!(matches!(n.ready(), Err(NotifyError::UnsupportedAddress(_))));
    }

    #[test]
    fn a_vanished_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Notifier::new(dir.path().join("gone.sock"));
        assert!(matches!(n.ready(), Err(NotifyError::Send { .. })));
    }

    #[test]
    fn the_watchdog_interval_is_half_the_timeout_and_only_for_us() {
        let usec = Some(OsStr::new("3000000"));
        let interval = |pid: Option<&str>| {
            Notifier::from_vars(None, usec, pid.map(OsStr::new), 42).watchdog_interval()
        };
        assert_eq!(interval(None), Some(Duration::from_millis(1500)));
        assert_eq!(interval(Some("42")), Some(Duration::from_millis(1500)));
        assert_eq!(interval(Some("43")), None);
        assert_eq!(interval(Some("x")), None);
        for bad in ["0", "", "-1", "soon"] {
            let n = Notifier::from_vars(None, Some(OsStr::new(bad)), None, 42);
            assert_eq!(n.watchdog_interval(), None, "WATCHDOG_USEC={bad:?}");
        }
    }

    #[tokio::test]
    async fn petting_is_rate_limited_to_half_the_interval() {
        let (_dir, path, socket) = receiver();
        let n = Notifier::new(&path).with_watchdog(Some(Duration::from_millis(400)));
        let dog = Watchdog::new(&n);
        assert!(dog.is_enabled());
        dog.pet(); // just created: too soon
        assert!(nothing_waiting(&socket));
        tokio::time::sleep(Duration::from_millis(120)).await;
        dog.pet();
        dog.pet();
        assert_eq!(recv(&socket), "WATCHDOG=1");
        assert!(nothing_waiting(&socket));
        assert!(!Watchdog::new(&Notifier::new(&path)).is_enabled());
    }

    proptest! {
        #[test]
        fn jitter_stays_within_ten_percent(nanos in 0u64..=u64::MAX, seed in any::<u64>()) {
            let interval = Duration::from_nanos(nanos);
            let mut rng = SmallRng::seed_from_u64(seed);
            let got = jittered(interval, &mut rng);
            let spread = interval.as_nanos() / 10;
            prop_assert!(got.as_nanos() >= interval.as_nanos() - spread);
            prop_assert!(got.as_nanos() <= interval.as_nanos() + spread);
        }
    }

    #[test]
    fn jitter_spreads_and_saturates() {
        let mut rng = SmallRng::seed_from_u64(7);
        let minute = Duration::from_secs(60);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(minute, &mut rng)).collect();
        let (min, max) = (samples.iter().min(), samples.iter().max());
        assert!(min < Some(&Duration::from_secs(55)), "{min:?}");
        assert!(max > Some(&Duration::from_secs(65)), "{max:?}");
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
        assert!(jittered(Duration::MAX, &mut rng) >= Duration::MAX.mul_f64(0.89));
        let _ = next_wakeup(Duration::MAX, &mut rng);
    }

    #[tokio::test]
    async fn sync_requests_coalesce_while_one_is_queued() {
        let mut triggers = Triggers::new();
        let requester = triggers.sync_requester();
        for _ in 0..100 {
            assert!(requester.request("test"));
        }
        assert_eq!(triggers.recv().await, Trigger::SyncNow("test"));
        let more = tokio::time::timeout(Duration::from_millis(50), triggers.recv()).await;
        assert!(more.is_err(), "a second SyncNow was queued: {more:?}");
        // Once received, the next request queues again.
        assert!(requester.request("again"));
        assert_eq!(triggers.recv().await, Trigger::SyncNow("again"));
        // Other triggers are never merged.
        let sender = triggers.sender();
        assert!(sender.send(Trigger::Reload(ReloadCause::Signal)));
        assert!(sender.send(Trigger::Reload(ReloadCause::Signal)));
        assert_eq!(triggers.recv().await, Trigger::Reload(ReloadCause::Signal));
        assert_eq!(triggers.recv().await, Trigger::Reload(ReloadCause::Signal));
    }

    #[test]
    fn a_requester_outliving_the_loop_says_so() {
        let triggers = Triggers::new();
        let requester = triggers.sync_requester();
        drop(triggers);
        assert!(!requester.request("late"));
        assert!(!requester.request("later"));
    }

    #[tokio::test]
    async fn shutdown_is_seen_by_every_clone() {
        let (trigger, shutdown) = Shutdown::new();
        let copy = shutdown.clone();
        assert!(!copy.is_requested());
        let waiter = tokio::spawn(async move { copy.requested().await });
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(shutdown.is_requested());
        let never = Shutdown::never();
        assert!(!never.is_requested());
        let waited = tokio::time::timeout(Duration::from_millis(50), never.requested()).await;
        assert!(waited.is_err(), "Shutdown::never() resolved");
    }

    #[tokio::test]
    async fn relay_passes_the_request_on_and_still_finishes_the_work() {
        let (trigger, shutdown) = Shutdown::new();
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        let work = async move {
            while !seen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            "finished its batch"
        };
        let relayed = shutdown.relay(work, || flag.store(true, Ordering::SeqCst));
        trigger.trigger();
        let out = tokio::time::timeout(Duration::from_secs(5), relayed).await;
        assert_eq!(out.ok(), Some("finished its batch"));
        let never = Shutdown::never();
        let untouched = never.relay(async { 7 }, || panic!("no shutdown was asked"));
        assert_eq!(untouched.await, 7);
    }

    #[test]
    fn reading_the_config_is_not_a_change() {
        use notify::event::{AccessKind, ModifyKind, RenameMode};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dialsync.toml");
        std::fs::write(&path, "x").expect("write");
        let filter = ConfigFilter {
            name: OsString::from("dialsync.toml"),
            seen: FileIdentity::of(&path),
            path: path.clone(),
        };
        let event = |kind, p: &Path| notify::Event::new(kind).add_path(p.to_path_buf());
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(!filter.is_relevant(&event(open, &path)));
        assert!(!filter.is_relevant(&event(read, &path)));
        assert!(filter.is_relevant(&event(written, &path)));
        assert!(filter.is_relevant(&event(renamed, &path)));
        assert!(!filter.is_relevant(&event(renamed, &dir.path().join("other.toml"))));
        let rescan = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(filter.is_relevant(&rescan));
    }

    #[test]
    fn reload_records_round_trip_and_name_the_refusal_on_one_line() {
        let ok = ReloadAck {
            started_usec: 42,
            refused: None,
        };
        assert_eq!(ok.render(), "MONOTONIC_USEC=42\nRESULT=reloaded\n");
        assert_eq!(ReloadAck::parse(&ok.render()), Some(ok));
        let refused = ReloadAck {
            started_usec: 7,
            refused: Some("dialsync.toml:3: unknown key\n`polcy`".into()),
        };
        let parsed = ReloadAck::parse(&refused.render()).expect("parsed");
        assert_eq!(parsed.started_usec, 7);
        assert_eq!(
            parsed.refused.as_deref(),
            Some("dialsync.toml:3: unknown key `polcy`")
        );
        for bad in [
            "",
            "RESULT=reloaded",
            "MONOTONIC_USEC=x\nRESULT=reloaded",
            "MONOTONIC_USEC=1\nRESULT=maybe",
        ] {
            assert_eq!(ReloadAck::parse(bad), None, "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RELOAD_ACK_FILE);
        let notifier = Notifier::disabled().with_reload_ack(Some(path.clone()));
        notifier.reloaded(&refused).expect("recorded");
        assert_eq!(ReloadAck::read(&path), Some(parsed));
        assert!(Notifier::disabled().reloaded(&refused).is_ok());
    }

    #[test]
    fn the_reload_record_lives_in_the_first_runtime_directory() {
        assert_eq!(
            reload_ack_path(OsStr::new("/run/dialsync")),
            Some(PathBuf::from("/run/dialsync/reloaded"))
        );
        assert_eq!(
            reload_ack_path(OsStr::new("/run/dialsync:/run/other")),
            Some(PathBuf::from("/run/dialsync/reloaded"))
        );
        assert_eq!(reload_ack_path(OsStr::new("")), None);
    }

    #[test]
    fn journal_priorities_follow_syslog() {
        assert_eq!(syslog_priority(tracing::Level::ERROR), 3);
        assert_eq!(syslog_priority(tracing::Level::WARN), 4);
        assert_eq!(syslog_priority(tracing::Level::INFO), 6);
        assert_eq!(syslog_priority(tracing::Level::DEBUG), 7);
        assert_eq!(syslog_priority(tracing::Level::TRACE), 7);
    }
}
