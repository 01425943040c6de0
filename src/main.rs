//! The `dialsync` command: parses the command line and hands over to the library.

use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use dialsync::app::daemon::{self, init_logging};
use dialsync::app::preview::{compile_csv, PreviewOptions};
use dialsync::app::{clock, commands, service};
use dialsync::compile::Encoding;
use dialsync::config::{Config, DEFAULT_PATH};
use dialsync::sim::apio::ApioSim;
use dialsync::sim::fusion::FusionSim;
use dialsync::sim::livecloud::LiveCloudSim;
use dialsync::sim::sbc::{SbcSim, SbcState, SimUser};
use dialsync::source::ItemLimits;

use cli::{Cli, Command, ConfigCommand, Sim};

mod cli;
mod malloc_tuning;

fn main() -> ExitCode {
    malloc_tuning::tune();
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
            eprintln!("dialsync: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: most of the crate's errors already end with
/// their cause's text, which `{:#}` would repeat.
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the runtime")
}

/// The runtime of a one-shot cycle (`sync`, `plan`, `apply`): one thread. A cycle's work is a
/// sequence of phases; what runs at once is the sources' requests, which wait on the network,
/// not on a core. On two worker threads, handing each of an unchanged cycle's 4,000 APIO
/// answers between threads was a tenth of its CPU.
fn one_cycle_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Absolute, so that the reload watcher finds the file's directory whatever the working
    // directory later is (a relative `--config x.toml` has no directory part to watch).
    let config_path = std::path::absolute(&cli.config).unwrap_or(cli.config);
    match cli.command {
        Command::Run => {
            init_logging("info")?;
            let config = load(&config_path)?;
            Ok(code(runtime()?.block_on(service::run(config))?))
        }
        Command::Sync { dry_run } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                one_cycle_runtime()?.block_on(commands::sync(config, dry_run, &mut out))?,
            ))
        }
        Command::Plan { json } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                one_cycle_runtime()?.block_on(commands::plan(config, json, &mut out))?,
            ))
        }
        Command::Apply { force: _, checksum } => {
            init_logging("warn")?;
            let config = load(&config_path)?;
            let mut out = io::stdout().lock();
            Ok(code(
                one_cycle_runtime()?.block_on(commands::apply(config, &checksum, &mut out))?,
            ))
        }
        Command::Lookup {
            numbers,
            file,
            json,
            csv,
        } => {
            let config = load(&config_path)?;
            let input = match &file {
                Some(path) => commands::LookupInput::File(path),
                None => commands::LookupInput::Numbers(&numbers),
            };
            let format = match (json, csv) {
                (true, _) => commands::LookupFormat::Json,
                (_, true) => commands::LookupFormat::Csv,
                _ => commands::LookupFormat::Text,
            };
            let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
            Ok(code(commands::lookup_numbers(
                &config, input, format, &mut out, &mut err,
            )?))
        }
        Command::Audit { csv } => {
            // 1 means "found something", so a script must be able to tell a failed audit
            // apart: 2, as `diff` and `grep` do.
            let audited = load(&config_path)
                .and_then(|config| Ok(commands::audit(&config, csv, &mut io::stdout().lock())?));
            match audited {
                Ok(found) => Ok(code(found)),
                Err(error) => {
                    eprintln!("dialsync: {}", describe(&error));
                    Ok(code(2))
                }
            }
        }
        Command::Check { warning, critical } => {
            let verdict = commands::check(
                Config::load(&config_path),
                warning,
                critical,
                clock::now_unix_ms(),
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
        Command::Config(ConfigCommand::Check) => {
            // Building the clients warns (plain http off loopback, unverified TLS).
            init_logging("warn")?;
            Ok(code(commands::config_check(
                &config_path,
                &mut io::stdout().lock(),
            )?))
        }
        Command::Reload {
            pid,
            runtime_dir,
            timeout,
        } => {
            let ack = daemon::reload_ack_path(runtime_dir.as_os_str())
                .context("--runtime-dir is empty")?;
            daemon::request_reload(pid, &ack, timeout)?;
            println!("dialsync: process {pid} reloaded its configuration");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            let mut out = io::stdout().lock();
            runtime()?.block_on(dialsync::app::demo::run(&mut out))?;
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
