//! Connection-level faults shared by the front door and the cluster API servers:
//! a request handler that draws a `reset` fault signals its connection, which is then
//! closed with `SO_LINGER` 0, so the client sees a reset (RST) instead of an answer.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Put in each request's extensions; [`ConnReset::reset`] resets its connection.
#[derive(Debug, Clone, Default)]
pub struct ConnReset(Arc<Notify>);

impl ConnReset {
    /// Asks the connection to reset (the handler then never answers).
    pub fn reset(&self) {
        self.0.notify_one();
    }

    /// Resolves once a handler asked for a reset.
    pub async fn requested(&self) {
        self.0.notified().await;
    }
}

/// Splits an accepted socket: the stream to serve, and a second handle to the same
/// socket that [`reset_now`] uses once the served stream has been dropped.
pub fn keep_handle(tcp: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = tcp.into_std()?;
    let keep = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, keep))
}

/// Closes the socket with `SO_LINGER` 0: the peer gets RST.
pub fn reset_now(keep: std::net::TcpStream) {
    if let Ok(t) = TcpStream::from_std(keep) {
        let _ = t.set_zero_linger();
    }
}
