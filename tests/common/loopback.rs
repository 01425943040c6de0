//! Loopback, where every server of the tests listens: a free port, and an HTTP client that
//! speaks to it directly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Loopback, port 0: the kernel picks a free port.
pub const ANY_PORT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// An HTTP client for servers on loopback: no proxy from the environment stands between, and
/// a request that hangs fails the test after 10 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}
