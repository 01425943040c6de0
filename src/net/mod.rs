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
//! - [`secret`]: secrets read from files that only the service may read;
//! - [`answer_digest`]: the digest of a read's answers, byte for byte, so an unchanged
//!   read is known without decoding it.
//!
//! Warnings go through `tracing`, like every other log line.
//!
//! # In the sinks
//!
//! Both sinks build their client with [`client::build_client`] and check their URLs with
//! [`endpoint::check_url`], naming the config key (`sbc.url`). `sink::reply` sorts each
//! answer with [`verdict`] ([`verdict::Access::Write`] for a script or a PATCH, `Read` for a
//! read or a save) and words only what a target knows better (a 401 a new token may cure,
//! the SBC's busy 409, Live Platform's 409 conflict). [`retry::retry`] drives their reads and
//! saves; the applier, which reads back between attempts of a write, drives its own loop
//! around [`retry::next_attempt`].

pub mod answer_digest;
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
