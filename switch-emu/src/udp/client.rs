//! A blocking one-request client of the control protocol, for tools
//! (`switch-emu status`) and tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use packet_format::control::{Reply, Request};

use crate::control::status::StatusReport;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The switch could not be reached or the connection broke.
    #[error("control connection to {addr}: {source}")]
    Io {
        /// The control address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The switch closed the connection without a reply.
    #[error("the switch at {0} closed the connection without replying")]
    NoReply(SocketAddr),
    /// The reply was not what the protocol says.
    #[error("unexpected reply from the switch: {0}")]
    Protocol(String),
}

/// Sends one request on a fresh connection and reads one reply line.
pub fn request(addr: SocketAddr, req: &Request, timeout: Duration) -> Result<Reply, ClientError> {
    let io = |source| ClientError::Io { addr, source };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ClientError::NoReply(addr));
    }
    serde_json::from_str(&reply).map_err(|e| ClientError::Protocol(format!("{e}: {reply}")))
}

/// The switch's status document as raw JSON.
pub fn status_json(addr: SocketAddr, timeout: Duration) -> Result<serde_json::Value, ClientError> {
    match request(addr, &Request::Status, timeout)? {
        Reply::Status(value) => Ok(value),
        other => Err(ClientError::Protocol(format!("{other:?}"))),
    }
}

/// The switch's status document.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<StatusReport, ClientError> {
    serde_json::from_value(status_json(addr, timeout)?)
        .map_err(|e| ClientError::Protocol(e.to_string()))
}
