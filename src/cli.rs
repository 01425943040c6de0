//! The command line of `dialsync`, as clap definitions and nothing else.
//!
//! Two crates compile this file: the binary (`main.rs`, which runs the commands) and the build
//! script (`build.rs`, which renders the man page `dialsync(1)` and the shell completions from
//! it), so the manual can never drift from the parser. A build script cannot use the library
//! of its own package, so the two library items the definitions name, `Encoding` and
//! `DEFAULT_PATH`, come from the including module (`super::`): `main.rs` imports the real ones,
//! `build.rs` declares stand-ins.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::{Encoding, DEFAULT_PATH};

#[derive(Parser)]
#[command(
    name = "dialsync",
    version,
    about = "Keeps an AudioCodes SBC dial plan equal to the numbers provisioned upstream"
)]
pub struct Cli {
    /// The configuration file
    #[arg(long, global = true, env = "DIALSYNC_CONFIG", default_value = DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run as a service: a cycle every interval, on SIGUSR1 or POST /sync; reload on SIGHUP
    /// or when the config file changes; stop on SIGTERM after the batch in flight
    Run,
    /// Run one cycle now. Exits 0 converged, 2 blocked by the safety gate or capacity, 1 on
    /// an error (a source replaced by its last good snapshot included)
    Sync {
        /// Plan and record, write nothing to the SBC
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what the next sync would change, writing nothing. Exits 0 no changes, 2 changes
    /// (or blocked), 1 on an error
    Plan {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Apply a plan the safety gate blocked, exactly as shown by `plan`: refused if the plan
    /// has changed since (its checksum differs)
    Apply {
        /// Required: says you mean to override the safety gate
        #[arg(long, required = true)]
        force: bool,
        /// The plan's checksum, as `plan`, `status` or `check` show it
        #[arg(long)]
        checksum: String,
    },
    /// The rule the SBC picks for each number, the source item it should come from, and any
    /// conflict involving it (from the state database; no network)
    Lookup {
        /// E.164 numbers such as +3226127001
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        numbers: Vec<String>,
        /// Read the numbers from a file, one a line (`-` for stdin); blank lines and `#`
        /// comments are skipped. Exit 1 when a line is not a number (each is named on stderr)
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// JSON: one array for numbers given as arguments, JSON Lines for --file
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV, one row per number: rule, owner, desired tag, source item and verdict
        #[arg(long)]
        csv: bool,
    },
    /// Whether every number the sources assign routes to its tag on the dial plan as last
    /// read (foreign rules included), from the state database; exit 0 clean, 1 when numbers
    /// are misrouted, shadowed or unrouted or an owned rule is stray
    Audit {
        /// Every finding as CSV: verdict, first, last, count, rule_index, rule_name, prefix,
        /// winning_tag, desired_tag, source, item
        #[arg(long)]
        csv: bool,
    },
    /// Monitoring plugin (Nagios/Icinga): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one
    /// line with perfdata
    Check {
        /// WARNING when the last success is older than this (default 3 x interval), e.g. 5m;
        /// before the first is recorded, when the agent started longer ago than this
        #[arg(short = 'w', long = "warning", value_parser = parse_age)]
        warning: Option<Duration>,
        /// CRITICAL when the last success is older than this (default 10 x interval); before
        /// the first is recorded, when the agent started longer ago than this
        #[arg(short = 'c', long = "critical", value_parser = parse_age)]
        critical: Option<Duration>,
    },
    /// The last cycle, the sources and the dial plan as the state database holds them
    Status,
    /// The recorded cycles, newest first
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Configuration tools
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a running `dialsync run` to reload its configuration (SIGHUP) and wait until it has:
    /// the unit's ExecReload=, so `systemctl reload` returns once the new configuration is in
    /// force. Exits 0 reloaded, 1 if the agent refused the new configuration (the previous one
    /// stays in force), exited, or did not finish in time (a running cycle defers a reload
    /// until it ends)
    Reload {
        /// The agent's process id ($MAINPID in the unit)
        #[arg(long)]
        pid: u32,
        /// Where the agent records each reload: the unit's RuntimeDirectory=, which systemd
        /// passes to both processes
        #[arg(long, env = "RUNTIME_DIRECTORY")]
        runtime_dir: PathBuf,
        /// How long to wait, e.g. 80s; keep it below the unit's TimeoutStartSec=, which also
        /// bounds ExecReload=
        #[arg(long, default_value = "80s", value_parser = parse_age)]
        timeout: Duration,
    },
    /// Show dialsync at work on emulators started on this machine (no network, no config)
    Demo,
    /// Preview the dial-plan rules a number list becomes: reads the static CSV format
    /// (start,end,tag) and prints `prefix,tag` rows; refused lines and conflicts go to stderr.
    /// Exits 1 when any line was refused.
    Compile {
        /// ranges (one rule per range, brackets), prefixes (digits and x only), numbers (one
        /// rule per number)
        #[arg(long, default_value = "ranges")]
        encoding: Encoding,
        /// Widest bracket in a rule, in digits
        #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u8).range(1..=15))]
        max_bracket_digits: u8,
        /// Longest tag accepted
        #[arg(long, default_value_t = 64)]
        max_tag_len: usize,
        /// Larger ranges are refused as suspicious
        #[arg(long, default_value_t = 1_000_000)]
        max_range_size: u64,
        /// The CSV file, or - for standard input
        #[arg(default_value = "-")]
        file: String,
    },
    /// Run an emulator of a system dialsync talks to, for staging and demos
    #[command(subcommand)]
    Sim(Sim),
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the config and read its secret files, without touching the network
    Check,
}

#[derive(Subcommand)]
pub enum Sim {
    /// The AudioCodes SBC device REST API (status, CLI script, incremental scripts, save)
    Sbc {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// JSON file keeping the dial plans between runs (created with an empty OCDialPlan)
        #[arg(long)]
        state: PathBuf,
        /// An Administrator, as NAME:PASSWORD (repeatable). This is a test device: the password
        /// is visible to other local users.
        #[arg(long = "admin", default_value = "Admin:Admin")]
        admins: Vec<String>,
        /// A Monitor (read-only) user, as NAME:PASSWORD (repeatable)
        #[arg(long = "monitor")]
        monitors: Vec<String>,
    },
    /// Netaxis Fusion (login, token refresh, phone_usage, a number-range feed), serving the
    /// items of a data file
    Fusion {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// JSON file with the test credentials, the DRaaS instance and group, and the
        /// `phoneUsages` (and `ranges`) items as Fusion sends them; see config/demo/fusion.json.
        /// The credentials are test credentials, in clear.
        #[arg(long)]
        data: PathBuf,
    },
    /// Netaxis APIO (core JWT login with the proxied gateway, gateway session login, the
    /// Immediate Trunking Connectivity numbers and prefixes), serving a data file
    Apio {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// JSON file with the test credentials and, per tenant/group, the `numbers` and
        /// `prefixes` items as the gateway sends them; see config/demo/apio.json. The
        /// credentials are test credentials, in clear.
        #[arg(long)]
        data: PathBuf,
    },
    /// AudioCodes Live Platform (OAuth2 client-credentials token endpoint, the v3 number
    /// list, a dial plan), serving a data file
    Livecloud {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8083")]
        listen: SocketAddr,
        /// JSON file with the test OAuth client (id, secret, scope), the dial plan's ids and
        /// rules, and per msTenantId the number items as the v3 list sends them; see
        /// config/demo/livecloud.json. The client secret is a test credential, in clear.
        #[arg(long)]
        data: PathBuf,
    },
}

/// A `-w`/`-c` age or a `--timeout`: seconds, or a duration such as `5m`.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string()),
    }
}
