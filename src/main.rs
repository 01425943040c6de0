//! The `dialsync` command: parses the command line and hands over to the library.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use dialsync::commands;
use dialsync::config::{Config, DEFAULT_PATH};
use dialsync::daemon::init_logging;
use dialsync::dialplan::compile::Encoding;
use dialsync::preview::{compile_csv, PreviewOptions};
use dialsync::sim::apio::ApioSim;
use dialsync::sim::fusion::FusionSim;
use dialsync::sim::livecloud::LiveCloudSim;
use dialsync::sim::sbc::{SbcSim, SbcState, SimUser};
use dialsync::source::ItemLimits;

#[derive(Parser)]
#[command(
    name = "dialsync",
    version,
    about = "Keeps an AudioCodes SBC dial plan equal to the numbers provisioned upstream"
)]
struct Cli {
    /// The configuration file
    #[arg(long, global = true, env = "DIALSYNC_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Monitoring plugin (Nagios/Icinga): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one
    /// line with perfdata
    Check {
        /// WARNING when the last success is older than this (default 3 x interval), e.g. 5m
        #[arg(short = 'w', long = "warning", value_parser = parse_age)]
        warning: Option<Duration>,
        /// CRITICAL when the last success is older than this (default 10 x interval)
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
enum ConfigCommand {
    /// Validate the config and read its secret files, without touching the network
    Check,
}

#[derive(Subcommand)]
enum Sim {
    /// The AudioCodes SBC device REST API (status, CLI script, incremental scripts, save)
    Sbc {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// JSON file keeping the dial plans between runs (created with an empty OCDialPlan)
        #[arg(long)]
        state: std::path::PathBuf,
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
        listen: std::net::SocketAddr,
        /// JSON file with the test credentials, the DRaaS instance and group, and the
        /// `phoneUsages` (and `ranges`) items as Fusion sends them; see config/demo/fusion.json.
        /// The credentials are test credentials, in clear.
        #[arg(long)]
        data: std::path::PathBuf,
    },
    /// Netaxis APIO (core JWT login with the proxied gateway, gateway session login, the
    /// Immediate Trunking Connectivity numbers and prefixes), serving a data file
    Apio {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: std::net::SocketAddr,
        /// JSON file with the test credentials and, per tenant/group, the `numbers` and
        /// `prefixes` items as the gateway sends them; see config/demo/apio.json. The
        /// credentials are test credentials, in clear.
        #[arg(long)]
        data: std::path::PathBuf,
    },
    /// AudioCodes Live Platform (OAuth2 client-credentials token endpoint, the v3 number
    /// list, a dial plan), serving a data file
    Livecloud {
        /// Address to listen on; port 0 picks a free one (printed on start)
        #[arg(long, default_value = "127.0.0.1:8083")]
        listen: std::net::SocketAddr,
        /// JSON file with the test OAuth client (id, secret, scope), the dial plan's ids and
        /// rules, and per msTenantId the number items as the v3 list sends them; see
        /// config/demo/livecloud.json. The client secret is a test credential, in clear.
        #[arg(long)]
        data: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A monitoring plugin reports bad arguments as UNKNOWN (3), not clap's 2, which
            // would read as CRITICAL.
            let is_check = std::env::args().skip(1).any(|a| a == "check")
                && !std::env::args().any(|a| a == "config");
            if is_check && error.use_stderr() {
                println!(
                    "DIALSYNC UNKNOWN - {}",
                    error.to_string().lines().next().unwrap_or("")
                );
                return ExitCode::from(3);
            }
            error.exit();
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dialsync: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A `-w`/`-c` age: seconds, or a duration such as `5m`.
fn parse_age(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the runtime")
}

fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config;
    match cli.command {
        Command::Run => {
            init_logging("info")?;
            let config = load(&config_path)?;
            Ok(code(runtime()?.block_on(commands::run(config))?))
        }
        Command::Sync { dry_run } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                runtime()?.block_on(commands::sync(config, dry_run, &mut out))?,
            ))
        }
        Command::Plan { json } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                runtime()?.block_on(commands::plan(config, json, &mut out))?,
            ))
        }
        Command::Apply { force: _, checksum } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                runtime()?.block_on(commands::apply(config, &checksum, &mut out))?,
            ))
        }
        Command::Lookup { numbers, json } => {
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(commands::lookup_numbers(
                &config, &numbers, json, &mut out,
            )?))
        }
        Command::Check { warning, critical } => {
            let verdict = commands::check(
                Config::load(&config_path),
                warning,
                critical,
                commands::now_unix_ms(),
            );
            println!("{}", verdict.line);
            Ok(code(verdict.status.code()))
        }
        Command::Status => {
            let config = load(&config_path)?;
            Ok(code(commands::status(&config, &mut io::stdout().lock())?))
        }
        Command::History { limit } => {
            let config = load(&config_path)?;
            Ok(code(commands::history(
                &config,
                limit,
                &mut io::stdout().lock(),
            )?))
        }
        Command::Config(ConfigCommand::Check) => Ok(code(commands::config_check(
            &config_path,
            &mut io::stdout().lock(),
        )?)),
        Command::Demo => {
            let mut out = io::stdout().lock();
            runtime()?.block_on(dialsync::demo::run(&mut out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile {
            encoding,
            max_bracket_digits,
            max_tag_len,
            max_range_size,
            file,
        } => {
            let (input, name): (Box<dyn Read>, &str) = if file == "-" {
                (Box::new(io::stdin().lock()), "stdin")
            } else {
                let opened = File::open(&file).with_context(|| format!("cannot open {file}"))?;
                (Box::new(io::BufReader::new(opened)), file.as_str())
            };
            let options = PreviewOptions {
                encoding,
                max_bracket_digits: usize::from(max_bracket_digits),
                limits: ItemLimits {
                    max_range_size,
                    max_tag_len,
                },
            };
            let report = compile_csv(
                input,
                name,
                io::stdout().lock(),
                io::stderr().lock(),
                options,
            )?;
            Ok(if report.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sim(Sim::Sbc {
            listen,
            state,
            admins,
            monitors,
        }) => {
            let users = admins
                .iter()
                .map(|spec| sim_user(spec, true))
                .chain(monitors.iter().map(|spec| sim_user(spec, false)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let device = SbcState::persistent(&state)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(async {
                let stopped = until_stopped()?;
                let sim = SbcSim::start(listen, device, users)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                println!(
                    "dialsync sim sbc: listening on {} (state in {})",
                    sim.url(),
                    state.display()
                );
                io::stdout().flush().context("stdout")?;
                stopped.await;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(Sim::Fusion { listen, data }) => {
            let loaded = dialsync::sim::fusion::load_data(&data)?;
            run_sim(listen, async {
                let sim = FusionSim::start_with_data(listen, loaded).await?;
                let line = format!(
                    "dialsync sim fusion: listening on {} (data from {})",
                    sim.url(),
                    data.display()
                );
                Ok((sim, line))
            })
        }
        Command::Sim(Sim::Apio { listen, data }) => {
            let loaded = dialsync::sim::apio::load_data(&data)?;
            run_sim(listen, async {
                let sim = ApioSim::start_with_data(listen, loaded).await?;
                let line = format!(
                    "dialsync sim apio: listening on {} (data from {})",
                    sim.url(),
                    data.display()
                );
                Ok((sim, line))
            })
        }
        Command::Sim(Sim::Livecloud { listen, data }) => {
            let loaded = dialsync::sim::livecloud::load_data(&data)?;
            run_sim(listen, async {
                let sim = LiveCloudSim::start_with_data(listen, loaded).await?;
                let line = format!(
                    "dialsync sim livecloud: listening on {} (token URL {}; data from {})",
                    sim.url(),
                    sim.token_url(),
                    data.display()
                );
                Ok((sim, line))
            })
        }
    }
}

/// Runs the emulator `start` binds until Ctrl-C or SIGTERM, after printing the line it
/// returns: scripts and tests read the URL from that first line, so it is flushed at once.
fn run_sim<S>(
    listen: std::net::SocketAddr,
    start: impl std::future::Future<Output = io::Result<(S, String)>>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    runtime.block_on(async {
        let stopped = until_stopped()?;
        let (_sim, line) = start
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("{line}");
        io::stdout().flush().context("stdout")?;
        stopped.await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn sim_user(spec: &str, administrator: bool) -> anyhow::Result<SimUser> {
    let (username, password) = spec
        .split_once(':')
        .with_context(|| format!("user {spec:?} must be NAME:PASSWORD"))?;
    Ok(SimUser {
        username: username.to_string(),
        password: password.to_string(),
        administrator,
    })
}

/// Watches Ctrl-C and SIGTERM from this call on; the future it returns ends on either.
///
/// Both are watched before an emulator announces itself: a supervisor that stops it right
/// after reading the "listening on" line must get a clean exit, not the default action.
fn until_stopped() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch Ctrl-C")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
