//! Where the log goes and how it looks: `RUST_LOG` filters; under systemd, journald
//! priorities and no timestamps; on a terminal, colours unless `NO_COLOR`.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, IsTerminal};
use std::os::unix::fs::MetadataExt;

use super::error::DaemonError;

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
    fn journal_priorities_follow_syslog() {
        assert_eq!(syslog_priority(tracing::Level::ERROR), 3);
        assert_eq!(syslog_priority(tracing::Level::WARN), 4);
        assert_eq!(syslog_priority(tracing::Level::INFO), 6);
        assert_eq!(syslog_priority(tracing::Level::DEBUG), 7);
        assert_eq!(syslog_priority(tracing::Level::TRACE), 7);
    }
}
