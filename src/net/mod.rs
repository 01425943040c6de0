//! The network plumbing that sources and sinks share, owned by neither.
//!
//! It knows nothing of the product (numbers, plans, sources, sinks): it imports only
//! [`crate::error`], so that both sides use it without importing each other. One concept per
//! file:
//!
//! - [`client`]: the one client builder (timeouts, `ca_file`, `insecure_skip_verify`, the
//!   User-Agent, no redirects);
//! - [`endpoint`]: a configured URL checked, and plain `http://` off loopback warned about;
//! - [`verdict`]: what an HTTP outcome says about the request (not applied, unknown, refused
//!   content, final), for a read or a write;
//! - [`backoff`] and [`retry`]: capped exponential backoff with jitter, the server's
//!   `Retry-After` within a budget, and the loop around them;
//! - [`tls`]: a failed TLS handshake told from other connection failures;
//! - [`reason`] and [`preview`]: failures and answers in words fit for a log line;
//! - [`oauth`]: OAuth2 client credentials, fetched and cached;
//! - [`secret`]: secrets read from files that only the service may read.
//!
//! Warnings go through `tracing`, like every other log line.
//!
//! # For a sink
//!
//! A sink adopts the layer in three steps, each on its own:
//!
//! 1. Build its client with [`client::build_client`]`("sbc", &settings)` from a
//!    [`client::ClientSettings`] carrying its `timeout`, `ca_file` and
//!    `insecure_skip_verify`, check its URL with [`endpoint::check_url`], and call
//!    [`client::warn_insecure`] each cycle while verification is off. Map
//!    [`client::ClientError`] and [`endpoint::UrlError`] to its own TLS and URL errors.
//! 2. Sort each outcome with [`verdict::of_response`] or [`verdict::of_error`], passing
//!    [`verdict::Access::Write`] for a script or a PATCH and [`verdict::Access::Read`] for a
//!    read or a save. [`verdict::Verdict::RefusedContent`] is the device's 400 or Live
//!    Platform's problem-details 400 to a write: find the refused op. A 401 the sink can cure
//!    (a new token) is its own business before it calls the verdict final.
//! 3. Drive the attempts with [`retry::retry`], or, where it verifies between attempts, with
//!    its own `loop` around [`retry::next_attempt`]. [`retry::GaveUp::Exhausted`] carries
//!    the attempts, the time spent and the server's last `Retry-After` for a "device busy"
//!    message.

pub mod backoff;
pub mod client;
pub mod endpoint;
pub mod oauth;
pub mod preview;
pub mod reason;
pub mod retry;
pub mod secret;
#[cfg(test)]
mod test_servers;
pub mod tls;
pub mod verdict;
