//! The connections of an upstream emulator, as its handlers see them: one a handler can make
//! drip, so that a fault can send an answer that keeps coming but never ends in time.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::lock;

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

/// [`serve`](super::running::serve), with each connection's [`Conn`] available to the handlers (`ConnectInfo<Conn>`)
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
