//! The admin HTTP port (DESIGN.md §7): `/livez`, `/readyz`, `/status`, `/metrics`,
//! `GET /lookup?number=...` and `POST /sync`.
//!
//! It exists so that operators, supervisors and monitoring can see what the agent is doing
//! and nudge it, without reading logs or the state database: a load balancer or systemd
//! asks `/livez` and `/readyz`, Prometheus scrapes `/metrics`, a human reads `/status` and
//! asks for a cycle now with `POST /sync`.
//!
//! The module owns no agent logic. The agent publishes a [`Status`] through a
//! [`tokio::sync::watch`] channel after every cycle (and whenever something worth showing
//! changes, such as `cycle_running`); every request renders the latest value. Readiness
//! needs one thing the status cannot say, whether the database is writable now, so the
//! caller supplies that as a probe closure, and `POST /sync` calls a trigger closure that
//! the daemon wires to its own request coalescing. The caller binds the listener (so tests
//! bind port 0 and the daemon can report the bound address before serving).
//!
//! Nothing here may carry a secret: [`Status`] has no field for credentials or URLs with
//! user info by construction, and error bodies are plain text built from the status and the
//! probe's message.
//!
//! - `status`: the [`Status`] model the agent publishes;
//! - `readiness`: the judgement `/readyz` makes of it;
//! - `routes`: the HTTP side, the routes, their handlers and what they read;
//! - `metrics`: the Prometheus rendering of a [`Status`].

mod metrics;
mod readiness;
mod routes;
mod status;

pub use metrics::{render_metrics, METRICS_CONTENT_TYPE};
pub use routes::{
    listen_warning, router, serve, AdminState, ReadyProbe, SyncTrigger, PROBE_TIMEOUT,
};
pub use status::{
    capped, AuditStatus, BlockedPlan, CycleOutcome, CycleStatus, ItemIssue, OpCounts, RuleCounts,
    SourceState, SourceStatus, Status, Totals, MAX_LISTED,
};
