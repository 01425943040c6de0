//! The rig most whole-agent tests run on: an SBC holding others' rules, a Fusion group (acme: 100
//! numbers, globex: 50), a static file with one range, and a config tying them up, either on a
//! runtime of its own (for tests that run the real binary and block on it) or on the test's
//! (for tests that drive the agent in process).

use std::fs;
use std::path::PathBuf;

use dialsync::app::agent::Agent;
use dialsync::config::Config;
use dialsync::sim::fusion::{FusionSim, FusionSimConfig};
use dialsync::sim::sbc::{SbcSim, SbcState};

use super::binary::{command, run, Out};
use super::config::{fusion_source, sbc_table};
use super::dir::Dir;
use super::emulators::{own_runtime, start_fusion, start_sbc};
use super::sbc::{self, pbx_device, sbc_users, SBC_PASSWORD};

/// What the config says beyond the emulators' addresses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub policy: &'static str,
    pub interval: &'static str,
    pub batch_size: usize,
    /// The file (in the rig's directory) holding the SBC password.
    pub sbc_password_file: &'static str,
    /// Appended verbatim: more sources, or whatever a test needs.
    pub extra: String,
    /// `sbc.timeout`: short where a test stalls the SBC on purpose (the `[sbc]` table cannot be
    /// reopened from `extra`).
    pub sbc_timeout: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: "sync",
            interval: "60s",
            batch_size: 200,
            sbc_password_file: "sbc-password",
            extra: String::new(),
            sbc_timeout: "5s",
        }
    }
}

/// The SBC, the Fusion group, the static file and the config, in a directory of their own.
pub struct Rig {
    pub dir: Dir,
    pub sbc: SbcSim,
    pub fusion: FusionSim,
    /// The runtime the emulators serve from when the rig has one of its own; declared last so
    /// it is dropped last.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Rig {
    /// The rig on a runtime of its own, its SBC holding [`pbx_device`]'s rules: the emulators
    /// serve from the runtime's threads while a test blocks on the child process.
    pub fn start() -> Rig {
        let runtime = own_runtime(2);
        let mut rig = runtime.block_on(Rig::serve(pbx_device()));
        rig.runtime = Some(runtime);
        rig
    }

    /// The rig on the caller's runtime, its SBC holding `device`.
    pub async fn serve(device: SbcState) -> Rig {
        let sbc = start_sbc(device, sbc_users()).await;
        let fusion = start_fusion(FusionSimConfig::default()).await;
        {
            let mut state = fusion.state();
            state.add_numbers(3226120000, 100, "acme");
            state.add_numbers(3226130000, 50, "globex");
        }
        let rig = Rig {
            dir: Dir::new(),
            sbc,
            fusion,
            runtime: None,
        };
        rig.secret("sbc-password", SBC_PASSWORD);
        rig.secret("fusion-password", &rig.fusion.config().password.clone());
        rig.write(
            "static.csv",
            "start,end,tag\n+3225000000,+3225000009,Trunk=static\n",
        );
        rig.write_config(&Settings::default());
        rig
    }

    /// Runs `future` on the emulators' runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        let runtime = self
            .runtime
            .as_ref()
            .expect("a rig on a runtime of its own");
        runtime.block_on(future)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.config_path()
    }

    /// A secret file, mode 0600 as the agent demands.
    pub fn secret(&self, name: &str, value: &str) {
        self.dir.secret(name, value);
    }

    pub fn write(&self, name: &str, text: &str) {
        self.dir.write(name, text);
    }

    /// The config for `settings`. Paths are absolute, so the file works from anywhere (a
    /// symlink to it in another directory included).
    pub fn config_text(&self, settings: &Settings) -> String {
        format!(
            r#"[agent]
policy = "{policy}"
interval = "{interval}"
state_db = "{state_db}"

[admin]
listen = "127.0.0.1:0"

{sbc}batch_size = {batch_size}

{fusion}
[[sources]]
name = "static"
kind = "file"
path = "{static_csv}"
{extra}"#,
            policy = settings.policy,
            interval = settings.interval,
            state_db = self.path("state.db").display(),
            sbc = sbc_table(
                &self.sbc.url(),
                self.path(settings.sbc_password_file).display(),
                settings.sbc_timeout,
            ),
            batch_size = settings.batch_size,
            fusion = fusion_source(&self.fusion, self.path("fusion-password").display(), "2s"),
            static_csv = self.path("static.csv").display(),
            extra = settings.extra,
        )
    }

    pub fn write_config(&self, settings: &Settings) {
        fs::write(self.config_path(), self.config_text(settings)).expect("write config");
    }

    /// `dialsync ARGS... --config <the rig's config>` (the global flag after the subcommand).
    pub fn dialsync(&self, args: &[&str]) -> Out {
        run(command().args(args).arg("--config").arg(self.config_path()))
    }

    /// `dialsync --config <the rig's config> ARGS...` (the global flag before the subcommand).
    pub fn dialsync_config_first(&self, args: &[&str]) -> Out {
        run(command().arg("--config").arg(self.config_path()).args(args))
    }

    /// The rig's config as the agent loads it.
    pub fn config(&self) -> Config {
        Config::load(&self.config_path()).expect("config loads")
    }

    /// An agent on the rig's config, in process.
    pub fn agent(&self) -> Agent {
        Agent::new(self.config()).expect("agent starts")
    }

    /// The tag the SBC routes `number` with.
    pub fn sbc_tag(&self, number: &str) -> Option<String> {
        sbc::tag_of(&self.sbc, number)
    }

    /// [`Rig::sbc_tag`] of each of `numbers`, the rules parsed once.
    pub fn sbc_tags(&self, numbers: &[&str]) -> Vec<Option<String>> {
        self.sbc.state().lookup_many("OCDialPlan", numbers)
    }

    /// dialsync's rules on the SBC: (index, prefix, tag), by index.
    pub fn owned_rules(&self) -> Vec<(u32, String, String)> {
        sbc::owned_rules(&self.sbc)
    }

    /// Everyone else's rules on the SBC: (index, name, prefix, tag), by index.
    pub fn foreign_rules(&self) -> Vec<(u32, String, String, String)> {
        sbc::foreign_rules(&self.sbc)
    }

    /// Incremental scripts the SBC was sent so far.
    pub fn writes(&self) -> usize {
        sbc::scripts_written(&self.sbc)
    }

    pub fn assert_no_unexpected(&self) {
        assert_eq!(self.sbc.state().unexpected, Vec::<String>::new());
        assert_eq!(self.fusion.state().unexpected, Vec::<String>::new());
    }
}
