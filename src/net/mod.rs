//! The network plumbing that sources and sinks share, owned by neither: backoff, the
//! server's `Retry-After`, TLS failures recognised, answers shown in messages, OAuth2 client
//! credentials and secrets read from files.
//!
//! It knows nothing of the product (numbers, plans, sources, sinks): it imports only
//! [`crate::error`], so that both sides can use it without importing each other.

pub mod backoff;
pub mod client;
pub mod endpoint;
pub mod oauth;
pub mod preview;
pub mod reason;
pub mod retry;
pub mod secret;
pub mod tls;
pub mod verdict;
