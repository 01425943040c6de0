//! A notify socket the unit tests read, standing in for systemd's.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn receiver() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    (dir, path, socket)
}

pub(super) fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a datagram");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub(super) fn nothing_waiting(socket: &UnixDatagram) -> bool {
    socket.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    let empty = socket.recv(&mut buf).is_err();
    socket.set_nonblocking(false).expect("blocking");
    empty
}
