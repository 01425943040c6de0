//! Emulators of the systems dialsync talks to, strict enough to test against: the SBC's device
//! REST API and the upstreams (Fusion, APIO, Live Platform). Used by the tests, by
//! `dialsync demo` and by `dialsync sim` for staging, where the upstreams serve the items of a
//! JSON data file (see each module's `load_data`).

pub mod apio;
pub mod device_rule;
pub mod fusion;
pub mod livecloud;
pub mod sbc;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A data file for `dialsync sim fusion|apio|livecloud` that cannot be used. Every message
/// names the file.
///
/// The underlying error is part of the message rather than a `#[source]`: `main` prints the
/// whole chain, and a reason that were both would be printed twice.
#[derive(Debug, thiserror::Error)]
pub enum SimDataError {
    #[error("emulator data {path}: cannot read: {reason}")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    /// Not JSON, or JSON of another shape; serde_json's reason carries line and column.
    #[error("emulator data {path} is not valid {kind} data: {reason}")]
    Json {
        path: PathBuf,
        kind: &'static str,
        reason: serde_json::Error,
    },
    /// Well-formed, but the emulator cannot serve it as written.
    #[error("emulator data {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Reads the data file at `path` as a `T` (`kind` names the emulator in errors).
pub(crate) fn load_json<T: DeserializeOwned>(
    path: &Path,
    kind: &'static str,
) -> Result<T, SimDataError> {
    let text = std::fs::read_to_string(path).map_err(|reason| SimDataError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    serde_json::from_str(&text).map_err(|reason| SimDataError::Json {
        path: path.to_path_buf(),
        kind,
        reason,
    })
}

/// Whether `text` may be one segment of a route path. The emulators build routes from data
/// files, and the router panics on capture syntax (`{`, `:`, `*`), so anything beyond URL
/// unreserved characters is refused up front with a message instead.
pub(crate) fn is_path_segment(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Serves `app` on `listener` in the background until the returned sender is dropped or
/// fired: each emulator keeps it as a field, so dropping the emulator stops its server.
pub(crate) fn serve(listener: TcpListener, app: axum::Router) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}

/// The emulator's state behind its lock. A panic while holding it only happens in a failing
/// test (or on purpose, to drop a connection), and the state is still the best evidence of what
/// happened: read through the poison.
pub(crate) fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fault in the body of a list answer, the same for every upstream emulator: the emulator
/// builds the page it would have answered, and [`BodyFault::answer`] spoils it. Status 200
/// and `Content-Type: application/json` in every case, as a proxy or a buggy release would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// The documented page with one more page-level field, `padding`, a string of this many
    /// bytes: valid JSON of the right shape, only huge.
    Padded(usize),
    /// This many bytes of an HTML error page: not JSON at all.
    NotJson(usize),
    /// The documented page (headers included), trickled `chunk` bytes at a time with `pause`
    /// before each write: an answer that keeps coming but never ends in time.
    Drip { chunk: usize, pause: Duration },
    /// The documented page with two bytes that are not UTF-8 (`FF FE`) at the start of the
    /// first string value inside the list.
    InvalidUtf8,
    /// Valid JSON, but not of the documented shape.
    Shape(WrongShape),
}

/// How a [`BodyFault::Shape`] answer departs from the documented page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrongShape {
    /// The list is an object keyed by position (`{"0": {...}, "1": {...}}`), not an array.
    ListAsObject,
    /// The items' number fields are JSON integers (digits only), not strings.
    NumbersAsIntegers,
    /// The page has no list field at all.
    MissingList,
    /// The answer is the bare array of items, where the page object was documented.
    ArrayForPage,
}

/// The list a page holds: where it is and which item fields are phone numbers.
pub(crate) struct PageShape<'a> {
    pub list_key: &'a str,
    pub number_keys: &'a [&'a str],
}

impl BodyFault {
    /// The answer to a list request whose documented answer is `page`. A drip is set on
    /// `conn`, the connection the answer goes out on.
    pub(crate) fn answer(&self, page: Value, shape: &PageShape<'_>, conn: &Conn) -> Response {
        let body = match self {
            BodyFault::Padded(bytes) => padded(&page, *bytes),
            BodyFault::NotJson(bytes) => not_json(*bytes),
            BodyFault::Drip { chunk, pause } => {
                conn.drip(*chunk, *pause);
                serde_json::to_vec(&page).unwrap_or_default()
            }
            BodyFault::InvalidUtf8 => {
                let mut body = serde_json::to_vec(&page).unwrap_or_default();
                let list = find(&body, format!("\"{}\":", shape.list_key).as_bytes()).unwrap_or(0);
                if let Some(at) = find(&body[list..], b"\":\"") {
                    let at = list + at + 3;
                    body.splice(at..at, [0xFF, 0xFE]);
                }
                body
            }
            BodyFault::Shape(wrong) => {
                serde_json::to_vec(&reshape(page, *wrong, shape)).unwrap_or_default()
            }
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `page` serialised with a `padding` string of `bytes` bytes added: a field at page level
/// for an object, one more (string) item for an array.
fn padded(page: &Value, bytes: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(page).unwrap_or_default();
    let Some(close) = body.pop() else {
        return body;
    };
    body.reserve(bytes + 16);
    let empty = body.len() == 1;
    if !empty {
        body.push(b',');
    }
    if close == b'}' {
        body.extend_from_slice(b"\"padding\":");
    }
    body.push(b'"');
    body.resize(body.len() + bytes, b'x');
    body.push(b'"');
    body.push(close);
    body
}

/// `bytes` bytes of an HTML error page that goes on and on.
fn not_json(bytes: usize) -> Vec<u8> {
    const LINE: &[u8] = b"<p>502 Bad Gateway: the upstream answered garbage</p>\n";
    let mut body = Vec::with_capacity(bytes);
    body.extend_from_slice(b"<html><body>\n");
    while body.len() < bytes {
        let take = LINE.len().min(bytes - body.len());
        body.extend_from_slice(&LINE[..take]);
    }
    body
}

fn reshape(page: Value, wrong: WrongShape, shape: &PageShape<'_>) -> Value {
    let Value::Object(mut page) = page else {
        return page;
    };
    let key = shape.list_key;
    match wrong {
        WrongShape::ListAsObject => {
            if let Some(Value::Array(items)) = page.remove(key) {
                let keyed: Map<String, Value> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| (i.to_string(), item))
                    .collect();
                page.insert(key.to_string(), Value::Object(keyed));
            }
            Value::Object(page)
        }
        WrongShape::NumbersAsIntegers => {
            if let Some(Value::Array(items)) = page.get_mut(key) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    for field in shape.number_keys {
                        let digits: Option<u64> = item
                            .get(*field)
                            .and_then(Value::as_str)
                            .map(|s| s.chars().filter(char::is_ascii_digit).collect::<String>())
                            .and_then(|d| d.parse().ok());
                        if let Some(digits) = digits {
                            item.insert(field.to_string(), Value::from(digits));
                        }
                    }
                }
            }
            Value::Object(page)
        }
        WrongShape::MissingList => {
            page.remove(key);
            Value::Object(page)
        }
        WrongShape::ArrayForPage => page.remove(key).unwrap_or(Value::Array(Vec::new())),
    }
}

/// One accepted connection of an emulator served by [`serve_with_faults`], as its handlers
/// see it (extract it with `ConnectInfo<Conn>`): a handler can make the rest of what goes out
/// on it drip.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    drip: Arc<Mutex<Option<(usize, Duration)>>>,
    remote: Option<SocketAddr>,
}

impl Conn {
    /// From now on, everything written on this connection goes out `chunk` bytes at a time
    /// with `pause` before each write. The client gives up and closes it; nothing else uses it.
    pub fn drip(&self, chunk: usize, pause: Duration) {
        *lock(&self.drip) = Some((chunk.max(1), pause));
    }

    fn dripping(&self) -> Option<(usize, Duration)> {
        *lock(&self.drip)
    }

    /// The peer's address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }
}

impl Connected<IncomingStream<'_, FaultListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Conn {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be made to drip ([`Conn::drip`]).
pub(crate) struct FaultListener(TcpListener);

impl axum::serve::Listener for FaultListener {
    type Io = FaultIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (FaultIo, Conn) {
        loop {
            match self.0.accept().await {
                Ok((stream, remote)) => {
                    let conn = Conn {
                        remote: Some(remote),
                        ..Conn::default()
                    };
                    let io = FaultIo {
                        stream,
                        conn: conn.clone(),
                        pause: None,
                    };
                    return (io, conn);
                }
                // Out of descriptors, a connection reset before accept: wait a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Conn> {
        Ok(Conn {
            remote: Some(self.0.local_addr()?),
            ..Conn::default()
        })
    }
}

/// A connection of a [`FaultListener`]: the TCP stream, throttled while its [`Conn`] drips.
pub(crate) struct FaultIo {
    stream: TcpStream,
    conn: Conn,
    /// The pause before the next dripped write, once started.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some((chunk, pause)) = this.conn.dripping() else {
            return Pin::new(&mut this.stream).poll_write(cx, buf);
        };
        let sleep = this
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(pause)));
        ready!(sleep.as_mut().poll(cx));
        let take = buf.len().min(chunk);
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, &buf[..take]));
        this.pause = None;
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// [`serve`], with each connection's [`Conn`] available to the handlers (`ConnectInfo<Conn>`)
/// so that a fault can make an answer drip.
pub(crate) fn serve_with_faults(listener: TcpListener, app: axum::Router) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let make = app.into_make_service_with_connect_info::<Conn>();
        let _ = axum::serve(FaultListener(listener), make)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}
