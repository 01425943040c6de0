//! The daemon loop against a fake cycle and a fake systemd: what systemd is told and when, how
//! triggers turn into cycles and reloads, how a stop ends, and what the config watcher notices.
//!
//! Real signals are in `daemon_signals.rs`, a binary of their own, because they reach every test
//! in the process.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::dir::Dir;
use common::triggers::{next_trigger, no_trigger_for};
use dialsync::app::daemon::{
    run_loop, CycleContext, CycleReason, CycleSummary, LoopOptions, Notifier, ReloadCause, Service,
    Stopped, Trigger, Triggers,
};
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

const PATIENCE: Duration = Duration::from_secs(10);

/// The service manager's end of NOTIFY_SOCKET.
struct FakeSystemd {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl FakeSystemd {
    fn new() -> FakeSystemd {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        FakeSystemd {
            _dir: dir,
            path,
            socket,
        }
    }

    fn notifier(&self) -> Notifier {
        Notifier::new(&self.path)
    }

    async fn next(&self) -> String {
        let mut buf = vec![0u8; 4096];
        let n = timeout(PATIENCE, self.socket.recv(&mut buf))
            .await
            .expect("a notification in time")
            .expect("recv");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Every notification up to and including the first that satisfies `done`.
    async fn until(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let msg = self.next().await;
            let stop = done(&msg);
            seen.push(msg);
            if stop {
                return seen;
            }
        }
    }

    /// The notifications already waiting.
    fn drain(&self) -> Vec<String> {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.socket.try_recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        seen
    }
}

#[derive(Clone, Debug, PartialEq)]
struct FakeConfig {
    label: String,
    interval: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Quick,
    /// Runs this long, or stops 50 ms (its "in-flight batch") after a shutdown request.
    Hold(Duration),
    /// Runs this long whatever happens, and never pets the watchdog.
    Stubborn(Duration),
    /// Runs this long, petting the watchdog every 20 ms.
    Petting(Duration),
}

struct Fake {
    behaviour: Behaviour,
    started: mpsc::UnboundedSender<(CycleReason, String)>,
    count: usize,
}

impl Fake {
    fn new(behaviour: Behaviour) -> (Fake, mpsc::UnboundedReceiver<(CycleReason, String)>) {
        let (started, rx) = mpsc::unbounded_channel();
        (
            Fake {
                behaviour,
                started,
                count: 0,
            },
            rx,
        )
    }
}

impl Service for Fake {
    type Config = FakeConfig;
    type Error = String;

    /// `<label> <interval in ms>`.
    fn load_config(&self, path: &Path) -> Result<FakeConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let mut words = text.split_whitespace();
        let (Some(label), Some(ms), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("expected `<label> <ms>`, got {text:?}"));
        };
        let ms: u64 = ms.parse().map_err(|e| format!("interval {ms:?}: {e}"))?;
        Ok(FakeConfig {
            label: label.to_string(),
            interval: Duration::from_millis(ms),
        })
    }

    fn interval(&self, config: &FakeConfig) -> Duration {
        config.interval
    }

    async fn cycle(&mut self, config: &FakeConfig, ctx: &CycleContext) -> CycleSummary {
        self.count += 1;
        let n = self.count;
        let _ = self.started.send((ctx.reason, config.label.clone()));
        match self.behaviour {
            Behaviour::Quick => {}
            Behaviour::Hold(d) => {
                tokio::select! {
                    () = sleep(d) => {}
                    () = ctx.shutdown.requested() => {
                        sleep(Duration::from_millis(50)).await;
                        return CycleSummary::ok(format!("cycle {n} stopped early"));
                    }
                }
            }
            Behaviour::Stubborn(d) => sleep(d).await,
            Behaviour::Petting(d) => {
                let end = Instant::now() + d;
                while Instant::now() < end {
                    sleep(Duration::from_millis(20)).await;
                    ctx.watchdog.pet();
                }
            }
        }
        CycleSummary::ok(format!("cycle {n} label {}", config.label))
    }
}

/// A config file in a directory of its own.
fn config_file(text: &str) -> Dir {
    let dir = Dir::new();
    dir.write_config(text);
    dir
}

/// Runs the loop and `script` side by side; the script must end by stopping the loop.
async fn drive<T>(
    fake: &mut Fake,
    config: &Dir,
    triggers: &mut Triggers,
    notifier: &Notifier,
    options: &LoopOptions,
    script: impl Future<Output = T>,
) -> (Stopped, T) {
    let path = config.config_path();
    let initial = fake.load_config(&path).expect("initial config");
    timeout(PATIENCE * 3, async {
        tokio::join!(
            run_loop(fake, initial, &path, triggers, notifier, options),
            script
        )
    })
    .await
    .expect("the loop stopped in time")
}

async fn next_cycle(
    rx: &mut mpsc::UnboundedReceiver<(CycleReason, String)>,
) -> (CycleReason, String) {
    timeout(PATIENCE, rx.recv())
        .await
        .expect("a cycle in time")
        .expect("the fake is alive")
}

async fn no_cycle_for(rx: &mut mpsc::UnboundedReceiver<(CycleReason, String)>, quiet: Duration) {
    if let Ok(cycle) = timeout(quiet, rx.recv()).await {
        panic!("unexpected cycle {cycle:?}");
    }
}

fn stop(by: &'static str) -> Trigger {
    Trigger::Stop(by)
}

#[tokio::test]
async fn ready_first_then_a_status_after_each_cycle_then_stopping() {
    let systemd = FakeSystemd::new();
    let notifier = systemd.notifier();
    let config = config_file("a 150");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let (stopped, seen) = drive(
        &mut fake,
        &config,
        &mut triggers,
        &notifier,
        &LoopOptions::default(),
        async {
            let seen = systemd.until(|m| m == "STATUS=cycle 2 label a").await;
            assert_eq!(next_cycle(&mut cycles).await.0, CycleReason::Startup);
            assert_eq!(next_cycle(&mut cycles).await.0, CycleReason::Scheduled);
            sender.send(stop("test"));
            seen
        },
    )
    .await;
    assert_eq!(
        stopped,
        Stopped {
            by: "test",
            abandoned: false
        }
    );
    assert_eq!(seen.first().map(String::as_str), Some("READY=1"));
    assert!(
        seen.contains(&"STATUS=cycle 1 label a".to_string()),
        "{seen:?}"
    );
    assert!(
        systemd.drain().contains(&"STOPPING=1".to_string()),
        "no STOPPING=1"
    );
}

#[tokio::test]
async fn scheduled_cycles_wait_the_interval_give_or_take_ten_percent() {
    let config = config_file("a 300");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let (_, gaps) = drive(
        &mut fake,
        &config,
        &mut triggers,
        &Notifier::disabled(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            let mut last = Instant::now();
            let mut gaps = Vec::new();
            for _ in 0..3 {
                next_cycle(&mut cycles).await;
                gaps.push(last.elapsed());
                last = Instant::now();
            }
            sender.send(stop("test"));
            gaps
        },
    )
    .await;
    for gap in gaps {
        assert!(gap >= Duration::from_millis(265), "{gap:?} < 300 ms - 10 %");
        assert!(
            gap <= Duration::from_millis(330 + 500),
            "{gap:?} far above 300 ms + 10 %"
        );
    }
}

#[tokio::test]
async fn requests_during_a_cycle_add_exactly_one_more_cycle() {
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Hold(Duration::from_millis(300)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let requester = triggers.sync_requester();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &Notifier::disabled(),
        &LoopOptions::default(),
        async {
            assert_eq!(next_cycle(&mut cycles).await.0, CycleReason::Startup);
            for i in 0..20 {
                assert!(requester.request("POST /sync"));
                if i % 5 == 0 {
                    sleep(Duration::from_millis(20)).await;
                }
            }
            assert!(sender.send(Trigger::SyncNow("SIGUSR1")));
            assert_eq!(
                next_cycle(&mut cycles).await.0,
                CycleReason::Requested("POST /sync")
            );
            // The second cycle takes 300 ms; nothing asked for a third.
            no_cycle_for(&mut cycles, Duration::from_millis(800)).await;
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn an_idle_request_runs_a_cycle_now() {
    let systemd = FakeSystemd::new();
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let requester = triggers.sync_requester();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &systemd.notifier(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            systemd.until(|m| m.starts_with("STATUS=")).await;
            let asked = Instant::now();
            requester.request("POST /sync");
            let (reason, _) = next_cycle(&mut cycles).await;
            assert_eq!(reason, CycleReason::Requested("POST /sync"));
            assert!(asked.elapsed() < Duration::from_secs(1));
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_stop_lets_the_in_flight_batch_finish() {
    let systemd = FakeSystemd::new();
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Hold(Duration::from_secs(3600)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let (stopped, asked) = drive(
        &mut fake,
        &config,
        &mut triggers,
        &systemd.notifier(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            let asked = Instant::now();
            sender.send(stop("SIGTERM"));
            asked
        },
    )
    .await;
    assert_eq!(
        stopped,
        Stopped {
            by: "SIGTERM",
            abandoned: false
        }
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let seen = systemd.drain();
    let stopping = seen.iter().position(|m| m == "STOPPING=1");
    let status = seen
        .iter()
        .position(|m| m == "STATUS=cycle 1 stopped early");
    assert!(
        stopping.is_some() && status.is_some() && stopping < status,
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_stop_abandons_a_cycle_that_overruns_the_grace_period() {
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Stubborn(Duration::from_secs(3600)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let options = LoopOptions {
        grace: Duration::from_millis(300),
        ..LoopOptions::default()
    };
    let (stopped, asked) = drive(
        &mut fake,
        &config,
        &mut triggers,
        &Notifier::disabled(),
        &options,
        async {
            next_cycle(&mut cycles).await;
            let asked = Instant::now();
            sender.send(stop("SIGTERM"));
            asked
        },
    )
    .await;
    let took = asked.elapsed();
    assert_eq!(
        stopped,
        Stopped {
            by: "SIGTERM",
            abandoned: true
        }
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_second_stop_abandons_the_cycle_at_once() {
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Stubborn(Duration::from_secs(3600)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let options = LoopOptions {
        grace: Duration::from_secs(3600),
        ..LoopOptions::default()
    };
    let (stopped, ()) = drive(
        &mut fake,
        &config,
        &mut triggers,
        &Notifier::disabled(),
        &options,
        async {
            next_cycle(&mut cycles).await;
            sender.send(stop("SIGTERM"));
            sleep(Duration::from_millis(50)).await;
            sender.send(stop("SIGINT"));
        },
    )
    .await;
    assert_eq!(
        stopped,
        Stopped {
            by: "SIGTERM",
            abandoned: true
        }
    );
}

#[tokio::test]
async fn a_reload_swaps_a_valid_config_and_keeps_the_old_one_on_error() {
    let systemd = FakeSystemd::new();
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let requester = triggers.sync_requester();
    let reload = Trigger::Reload(ReloadCause::Requested("test"));
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &systemd.notifier(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            systemd.until(|m| m.starts_with("STATUS=")).await;

            config.write_config("b 3600000");
            sender.send(reload);
            let seen = systemd.until(|m| m == "READY=1").await;
            assert!(
                seen[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
                "{seen:?}"
            );
            // A successful reload runs a cycle under the new config.
            assert_eq!(
                next_cycle(&mut cycles).await,
                (CycleReason::Requested("config reload"), "b".to_string())
            );
            systemd.until(|m| m.starts_with("STATUS=")).await;

            config.write_config("not a config at all");
            sender.send(reload);
            let seen = systemd.until(|m| m == "READY=1").await;
            assert!(seen[0].starts_with("RELOADING=1\n"), "{seen:?}");
            assert!(
                seen.iter()
                    .any(|m| m.starts_with("STATUS=config reload failed, previous config kept")),
                "{seen:?}"
            );
            no_cycle_for(&mut cycles, Duration::from_millis(200)).await;
            requester.request("test");
            assert_eq!(next_cycle(&mut cycles).await.1, "b");
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_reload_during_a_cycle_waits_for_the_cycle_to_end() {
    let systemd = FakeSystemd::new();
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Hold(Duration::from_millis(300)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &systemd.notifier(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            config.write_config("b 3600000");
            sender.send(Trigger::Reload(ReloadCause::Signal));
            let seen = systemd.until(|m| m.starts_with("RELOADING=1")).await;
            assert!(
                seen.contains(&"STATUS=cycle 1 label a".to_string()),
                "the config changed under a running cycle: {seen:?}"
            );
            assert_eq!(next_cycle(&mut cycles).await.1, "b");
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn without_sync_after_reload_the_new_interval_reschedules() {
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let options = LoopOptions {
        sync_after_reload: false,
        ..LoopOptions::default()
    };
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &Notifier::disabled(),
        &options,
        async {
            next_cycle(&mut cycles).await;
            config.write_config("b 200");
            sender.send(Trigger::Reload(ReloadCause::Signal));
            assert_eq!(
                next_cycle(&mut cycles).await,
                (CycleReason::Scheduled, "b".to_string())
            );
            sender.send(stop("test"));
        },
    )
    .await;
}

fn count(seen: &[String], what: &str) -> usize {
    seen.iter().filter(|m| *m == what).count()
}

#[tokio::test]
async fn the_loop_feeds_the_watchdog_while_idle() {
    let systemd = FakeSystemd::new();
    let notifier = systemd
        .notifier()
        .with_watchdog(Some(Duration::from_millis(200)));
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &notifier,
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            systemd.until(|m| m.starts_with("STATUS=")).await;
            sleep(Duration::from_millis(700)).await;
            let seen = systemd.drain();
            // One ping per 100 ms (half the timeout).
            assert!(count(&seen, "WATCHDOG=1") >= 4, "{seen:?}");
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_wedged_cycle_starves_the_watchdog() {
    let systemd = FakeSystemd::new();
    let notifier = systemd
        .notifier()
        .with_watchdog(Some(Duration::from_millis(200)));
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Stubborn(Duration::from_secs(3600)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    let options = LoopOptions {
        grace: Duration::from_millis(50),
        ..LoopOptions::default()
    };
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &notifier,
        &options,
        async {
            next_cycle(&mut cycles).await;
            sleep(Duration::from_millis(50)).await;
            systemd.drain(); // READY=1 and the ping as the cycle starts
            sleep(Duration::from_millis(600)).await;
            let seen = systemd.drain();
            assert_eq!(count(&seen, "WATCHDOG=1"), 0, "{seen:?}");
            sender.send(stop("test"));
        },
    )
    .await;
}

#[tokio::test]
async fn a_cycle_that_pets_keeps_the_watchdog_fed() {
    let systemd = FakeSystemd::new();
    let notifier = systemd
        .notifier()
        .with_watchdog(Some(Duration::from_millis(200)));
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Petting(Duration::from_millis(900)));
    let mut triggers = Triggers::new();
    let sender = triggers.sender();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &notifier,
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            sleep(Duration::from_millis(50)).await;
            systemd.drain();
            sleep(Duration::from_millis(600)).await;
            let seen = systemd.drain();
            assert!(count(&seen, "WATCHDOG=1") >= 3, "{seen:?}");
            sender.send(stop("test"));
        },
    )
    .await;
}

// --- the config file watcher ---------------------------------------------------------------

const QUIET: Duration = Duration::from_millis(300);

async fn expect_reload(triggers: &mut Triggers) {
    assert_eq!(
        next_trigger(triggers).await,
        Trigger::Reload(ReloadCause::FileChanged)
    );
}

#[tokio::test]
async fn three_quick_writes_make_one_reload() {
    let config = config_file("a 1000");
    let mut triggers = Triggers::new();
    triggers
        .watch_config(&config.config_path(), QUIET)
        .expect("watch");
    for text in ["b 1000", "c 1000", "d 1000"] {
        config.write_config(text);
        sleep(Duration::from_millis(30)).await;
    }
    let written = Instant::now();
    expect_reload(&mut triggers).await;
    assert!(
        written.elapsed() >= QUIET - Duration::from_millis(60),
        "reloaded before the file was quiet"
    );
    no_trigger_for(&mut triggers, QUIET * 3).await;
}

#[tokio::test]
async fn a_rename_over_the_file_is_noticed() {
    let config = config_file("a 1000");
    let mut triggers = Triggers::new();
    triggers
        .watch_config(&config.config_path(), QUIET)
        .expect("watch");
    // As editors and `install`/Ansible do: write a new file beside it, rename it over.
    let tmp = config.path(".dialsync.toml.swp");
    std::fs::write(&tmp, "b 1000").expect("write");
    std::fs::rename(&tmp, config.config_path()).expect("rename");
    expect_reload(&mut triggers).await;
    no_trigger_for(&mut triggers, QUIET * 2).await;
    // The watch survives the inode it started with.
    config.write_config("c 1000");
    expect_reload(&mut triggers).await;
}

#[tokio::test]
async fn a_swapped_symlink_is_noticed() {
    // The layout of a Kubernetes ConfigMap volume: the config is a link through `..data`,
    // and an update swaps `..data` to a new directory with one rename.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let v1 = root.join("..v1");
    std::fs::create_dir(&v1).expect("mkdir");
    std::fs::write(v1.join("dialsync.toml"), "a 1000").expect("write");
    std::os::unix::fs::symlink("..v1", root.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/dialsync.toml", root.join("dialsync.toml")).expect("link");

    let mut triggers = Triggers::new();
    triggers
        .watch_config(&root.join("dialsync.toml"), QUIET)
        .expect("watch");
    let v2 = root.join("..v2");
    std::fs::create_dir(&v2).expect("mkdir");
    std::fs::write(v2.join("dialsync.toml"), "b 1000").expect("write");
    // Preparing the new version is not yet a change.
    no_trigger_for(&mut triggers, QUIET * 2).await;
    std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).expect("link");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    expect_reload(&mut triggers).await;
}

#[tokio::test]
async fn other_files_and_reading_the_config_are_ignored() {
    let config = config_file("a 1000");
    let mut triggers = Triggers::new();
    triggers
        .watch_config(&config.config_path(), QUIET)
        .expect("watch");
    std::fs::write(config.path("static.csv"), "start,end,tag\n").expect("write");
    std::fs::read_to_string(config.config_path()).expect("read");
    no_trigger_for(&mut triggers, QUIET * 3).await;
}

#[tokio::test]
async fn an_edit_of_the_file_reloads_the_running_loop() {
    let systemd = FakeSystemd::new();
    let config = config_file("a 3600000");
    let (mut fake, mut cycles) = Fake::new(Behaviour::Quick);
    let mut triggers = Triggers::new();
    triggers
        .watch_config(&config.config_path(), QUIET)
        .expect("watch");
    let sender = triggers.sender();
    drive(
        &mut fake,
        &config,
        &mut triggers,
        &systemd.notifier(),
        &LoopOptions::default(),
        async {
            next_cycle(&mut cycles).await;
            config.write_config("b 3600000");
            assert_eq!(
                next_cycle(&mut cycles).await,
                (CycleReason::Requested("config reload"), "b".to_string())
            );
            // Reading the file for the reload did not set off another one.
            no_cycle_for(&mut cycles, QUIET * 3).await;
            let seen = systemd.drain();
            assert_eq!(
                seen.iter().filter(|m| m.starts_with("RELOADING=1")).count(),
                1,
                "{seen:?}"
            );
            sender.send(stop("test"));
        },
    )
    .await;
}
