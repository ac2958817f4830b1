//! One control connection: newline-delimited JSON in, replies out,
//! non-blocking on both sides.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use packet_format::control::{Reply, Request};

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// Most reply bytes buffered for a client that does not read.
pub const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;

/// What reading a connection produced.
#[derive(Debug, Default)]
pub struct Input {
    /// Parsed requests, or the parse error of a line.
    pub requests: Vec<Result<Request, String>>,
    /// The peer closed, failed, or broke the line limit: the connection is done.
    pub closed: bool,
}

/// A control connection's buffers.
#[derive(Debug)]
pub struct Conn {
    /// The socket (non-blocking).
    pub stream: TcpStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
}

impl Conn {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
        })
    }

    /// Reads everything available and splits it into requests.
    pub fn read(&mut self) -> Input {
        let mut input = Input::default();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    input.closed = true;
                    break;
                }
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    input.closed = true;
                    break;
                }
            }
        }
        let mut start = 0;
        while let Some(pos) = self.inbuf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.inbuf[start..start + pos];
            start += pos + 1;
            let text = String::from_utf8_lossy(line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            input
                .requests
                .push(serde_json::from_str(text).map_err(|e| e.to_string()));
        }
        self.inbuf.drain(..start);
        if self.inbuf.len() > MAX_LINE {
            input
                .requests
                .push(Err(format!("request line longer than {MAX_LINE} bytes")));
            input.closed = true;
        }
        input
    }

    /// Queues a reply (one JSON line).
    pub fn queue(&mut self, reply: &Reply) {
        if let Ok(mut line) = serde_json::to_vec(reply) {
            line.push(b'\n');
            self.outbuf.extend_from_slice(&line);
        }
    }

    /// Whether replies are waiting for the socket to drain.
    pub fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Writes what the socket takes. Err: the connection is unusable (or
    /// its peer stopped reading while too much piled up).
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.outbuf.len() > MAX_PENDING_OUTPUT {
            return Err(io::Error::other("client does not read its replies"));
        }
        Ok(())
    }
}
