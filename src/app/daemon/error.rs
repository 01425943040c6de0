//! Why the daemon plumbing could not be set up: the signal handlers, the config watcher or the
//! logger. Each stops `dialsync run` before it reports READY, so one type with one class says
//! it for all of them.

use std::io;
use std::path::PathBuf;

use crate::error::{Classify, ErrorClass};

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

impl Classify for DaemonError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}
