//! Renders the manual page `dialsync(1)` and the bash, zsh and fish completions from the clap
//! definitions in `src/cli.rs`, so they always match the parser the binary uses, and
//! compresses the Debian changelog (`packaging/changelog`) as the package must ship it.
//!
//! Everything is written under `OUT_DIR/assets` and mirrored to `<target dir>/<profile>/assets`,
//! the one place next to the binary that `cargo deb` can name (`target/release/assets/...`, a
//! prefix it maps to the real target directory and profile). Nothing is written into the
//! source tree.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_complete::Shell;
use flate2::write::GzEncoder;
use flate2::Compression;
use roff::{bold, italic, roman, Roff};

// Only the parser's shape is needed here, not the values it would hold.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

/// Stand-in for `dialsync::config::DEFAULT_PATH` (a build script cannot use its own library);
/// a test in `main.rs` keeps the two equal.
const DEFAULT_PATH: &str = "/etc/dialsync/dialsync.toml";

/// Stand-in for `dialsync::dialplan::compile::Encoding`: only parsed by the real binary.
#[derive(Clone)]
struct Encoding;

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(_: &str) -> Result<Self, Self::Err> {
        Ok(Encoding)
    }
}

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=packaging/changelog");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let assets = out_dir.join("assets");
    fs::create_dir_all(&assets)?;

    fs::write(
        assets.join("changelog.gz"),
        gzip(&fs::read("packaging/changelog")?)?,
    )?;

    let mut command = cli::Cli::command();
    command.build();
    fs::write(
        assets.join("dialsync.1.gz"),
        gzip(manual(&command).render().as_bytes())?,
    )?;
    for (shell, file) in [
        (Shell::Bash, "dialsync.bash"),
        (Shell::Zsh, "_dialsync"),
        (Shell::Fish, "dialsync.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli::Cli::command(), "dialsync", &mut script);
        fs::write(assets.join(file), script)?;
    }

    match profile_dir(&out_dir) {
        Some(profile) => mirror(&assets, &profile.join("assets"))?,
        None => println!(
            "cargo:warning=OUT_DIR {} is not <target>/<profile>/build/<pkg>/out: \
             the man page and completions stay there, where cargo deb will not find them",
            out_dir.display()
        ),
    }
    Ok(())
}

/// `<target>/<profile>` for an `OUT_DIR` of `<target>/<profile>/build/<package>-<hash>/out`.
fn profile_dir(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir.parent()?.parent()?;
    (build.file_name()? == "build").then(|| build.parent().map(Path::to_path_buf))?
}

fn mirror(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// gzip -9n: no name, no timestamp, so the package is reproducible.
fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

// ---------------------------------------------------------------------------------------------
// The manual page: the options and commands come from clap; the sections about running the
// service are prose kept here.
// ---------------------------------------------------------------------------------------------

fn manual(command: &Command) -> Roff {
    let mut page = Roff::new();
    let version = command.get_version().unwrap_or_default();
    let source = format!("dialsync {version}");
    page.control(
        "TH",
        ["DIALSYNC", "1", "", source.as_str(), "User Commands"],
    );

    page.control("SH", ["NAME"]);
    let about = command
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default();
    page.text([roman(format!("dialsync - {}", lowercase_first(&about)))]);

    page.control("SH", ["SYNOPSIS"]);
    page.text([
        bold("dialsync"),
        roman(" ["),
        bold("--config"),
        roman(" "),
        italic("FILE"),
        roman("] "),
        italic("COMMAND"),
        roman(" ["),
        italic("OPTIONS"),
        roman("]"),
    ]);

    page.control("SH", ["DESCRIPTION"]);
    paragraphs(&mut page, DESCRIPTION);

    page.control("SH", ["OPTIONS"]);
    page.text([roman(
        "These apply to every command and may stand before or after it.",
    )]);
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        option(&mut page, arg);
    }

    page.control("SH", ["COMMANDS"]);
    for sub in listed(command) {
        subcommand(&mut page, sub, "dialsync");
    }

    for (heading, text) in SECTIONS {
        page.control("SH", [*heading]);
        paragraphs(&mut page, text);
    }
    page
}

/// A command's entry: its synopsis, what it does and its own options; nested commands (`config
/// check`, `sim sbc`) each get an entry of their own.
fn subcommand(page: &mut Roff, command: &Command, parent: &str) {
    let name = format!("{parent} {}", command.get_name());
    if command.has_subcommands() {
        for sub in listed(command) {
            subcommand(page, sub, &name);
        }
        return;
    }
    let args: Vec<&Arg> = command.get_arguments().filter(|a| shown(a)).collect();
    let synopsis: Vec<String> = std::iter::once(name)
        .chain(args.iter().map(|a| usage(a)))
        .collect();
    page.control("SS", [synopsis.join(" ").as_str()]);
    if let Some(about) = command.get_long_about().or_else(|| command.get_about()) {
        page.text([roman(about.to_string())]);
    }
    for arg in args {
        option(page, arg);
    }
}

/// The subcommands worth an entry: not hidden, and not clap's own `help`.
fn listed(command: &Command) -> impl Iterator<Item = &Command> {
    command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// Arguments worth a line: not hidden, not `--help`, and not the global `--config`, which the
/// OPTIONS section already describes.
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !arg.is_global_set() && !matches!(arg.get_action(), ArgAction::Help)
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|names| names.first())
        .map_or_else(
            || arg.get_id().to_string().to_uppercase(),
            |n| n.to_string(),
        )
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

/// How an argument shows in a command's synopsis: `[--dry-run]`, `--checksum CHECKSUM`,
/// `[FILE]`, `NUMBERS...`. One that an environment variable can supply shows as optional.
fn usage(arg: &Arg) -> String {
    let mut text = if arg.is_positional() {
        value_name(arg)
    } else {
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => String::new(),
        };
        if takes_value(arg) {
            format!("{flag} {}", value_name(arg))
        } else {
            flag
        }
    };
    if matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
    {
        text.push_str("...");
    }
    if arg.is_required_set() && arg.get_env().is_none() {
        text
    } else {
        format!("[{text}]")
    }
}

/// One `.TP` entry: the flags, then the help with the default and the environment variable.
fn option(page: &mut Roff, arg: &Arg) {
    let mut head = Vec::new();
    if arg.is_positional() {
        head.push(italic(value_name(arg)));
    } else {
        if let Some(short) = arg.get_short() {
            head.push(bold(format!("-{short}")));
            if arg.get_long().is_some() {
                head.push(roman(", "));
            }
        }
        if let Some(long) = arg.get_long() {
            head.push(bold(format!("--{long}")));
        }
        if takes_value(arg) {
            head.push(roman(" "));
            head.push(italic(value_name(arg)));
        }
    }
    page.control("TP", []);
    page.text(head);
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if takes_value(arg) && !defaults.is_empty() {
        help.push_str(&format!(" [default: {}]", defaults.join(", ")));
    }
    if let Some(env) = arg.get_env() {
        help.push_str(&format!(" [env: {}]", env.to_string_lossy()));
    }
    page.text([roman(help.trim().to_string())]);
}

/// Blank-line-separated paragraphs; one starting with `* ` is a tagged entry whose first line is
/// the tag.
fn paragraphs(page: &mut Roff, text: &str) {
    for paragraph in text.trim().split("\n\n") {
        let paragraph = paragraph.trim();
        if let Some(tagged) = paragraph.strip_prefix("* ") {
            let (tag, body) = tagged.split_once('\n').unwrap_or((tagged, ""));
            page.control("TP", []);
            page.text([bold(tag.trim())]);
            page.text([roman(join_lines(body))]);
        } else {
            page.control("PP", []);
            page.text([roman(join_lines(paragraph))]);
        }
    }
}

fn join_lines(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

const DESCRIPTION: &str = "
dialsync keeps the dial plan of an AudioCodes SBC equal to the numbers, ranges and prefixes
that provisioning platforms (Netaxis Fusion, Netaxis APIO, AudioCodes Live Platform, a static
CSV file) say are assigned. It compresses the numbers into the fewest dial-plan rules, changes
the SBC with the fewest operations, never touches a rule it does not own, and refuses to
delete routes because an upstream misbehaved.

As a service it is dialsync run under systemd (the dialsync.service unit); one-shot commands
plan, sync, lookup, check, status and history work beside it. Check a configuration change
with dialsync config check, then dialsync plan, before systemctl reload dialsync.
";

/// The sections after COMMANDS, in order. In each, a paragraph starting with `* ` is a tagged
/// entry whose first line is the tag.
const SECTIONS: &[(&str, &str)] = &[
    (
        "FILES",
        "
* /etc/dialsync/dialsync.toml
The configuration (annotated; root:dialsync, mode 0640). Unknown keys are errors that name the
key and its line; relative paths are taken from its directory.

* /etc/dialsync/static.csv
The static source of the example configuration: CSV with the header start,end,tag.

* /etc/dialsync/secrets/
Secret files (passwords, client secrets, tokens), one per file, owned by the dialsync user with
mode 0600 or 0400. A secret file its group or others can read is refused.

* /var/lib/dialsync/state.db
The state database: the rules mirror, source snapshots, the journal of writes, the cycle
history. Removed only when the package is purged.

* /run/dialsync/reloaded
Where dialsync run records each reload for dialsync reload.

* /usr/lib/systemd/system/dialsync.service
The hardened systemd unit.
",
    ),
    (
        "ENVIRONMENT",
        "
* DIALSYNC_CONFIG
The configuration file, when --config is not given.

* RUST_LOG
Log filter, such as info or dialsync=debug. Under systemd, logs go to the journal with their
priority.

* NO_COLOR
Any non-empty value turns off the colours of log lines. Without it, they are coloured only when
stderr is a terminal; never in a file, a pipe or the journal.

* NOTIFY_SOCKET, WATCHDOG_USEC, RUNTIME_DIRECTORY
Set by systemd for dialsync run: readiness, status and watchdog notifications, and where
reloads are recorded.
",
    ),
    (
        "SIGNALS",
        "
* SIGHUP
dialsync run reloads its configuration (so does an edit of the file). A reload that arrives
during a cycle waits for the cycle to end. A configuration that fails validation is refused and
the previous one stays in force.

* SIGUSR1
dialsync run starts a cycle now (as POST /sync on the admin port does).

* SIGTERM, SIGINT
dialsync run stops after the batch in flight, within 10 seconds; a second signal abandons the
cycle at once. The journal lets the next run settle an interrupted batch.
",
    ),
    (
        "SYSTEMD",
        "
The package installs dialsync.service but neither enables nor starts it: fill in
/etc/dialsync/dialsync.toml and the secret files first, check them with dialsync config check
(as root or as the dialsync user), then run systemctl enable --now dialsync.

The unit is Type=notify: READY=1 once the configuration, the state database and the admin port
are up, WATCHDOG=1 from the main loop, and a one-line STATUS= after each cycle, shown by
systemctl status dialsync. systemctl reload dialsync runs dialsync reload, so it returns once
the new configuration is in force, and fails when the configuration was refused.

Secrets can come from systemd credentials instead of files the dialsync user owns: add
LoadCredential=sbc-password:/etc/dialsync/secrets/sbc-password to a drop-in (see
/usr/share/doc/dialsync/examples/credentials.conf) and set password_file =
\"/run/credentials/dialsync.service/sbc-password\"; the source file may then stay root's alone.
",
    ),
    (
        "EXIT STATUS",
        "
Each command above gives its exit codes. In short: 0 success; 1 an error; 2 for plan and sync,
changes pending or a plan blocked by the safety gate; for check, the Nagios conventions 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN.
",
    ),
    (
        "SEE ALSO",
        "
systemctl(1), journalctl(1), systemd.exec(5), and /usr/share/doc/dialsync/README.md, which
explains the safety rules and how to read check and /status.
",
    ),
];
