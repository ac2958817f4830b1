//! The worker's side of the control protocol (`packet_format::control`):
//! newline-delimited JSON over one TCP connection to the switch, which is
//! also the worker's membership in its job (closing it leaves the job).
//!
//! The socket stays non-blocking so that the allreduce loop can look for a
//! `job_failed` notice between batches without waiting; blocking reads
//! (the join) wait with `poll` up to a deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use packet_format::control::{Reply, Request};

/// Longest reply line accepted (a status document of a busy switch is the largest).
const MAX_LINE: usize = 16 << 20;

/// Why a control exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlClientError {
    /// The switch's control port could not be reached.
    #[error("cannot reach the switch's control plane at {addr}: {source}")]
    Connect {
        /// The control address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("control connection: {0}")]
    Io(#[from] io::Error),
    /// The switch closed the connection.
    #[error("the switch closed the control connection")]
    Closed,
    /// The switch sent something that is not a reply of the protocol.
    #[error("unreadable reply from the switch: {0}")]
    Protocol(String),
}

/// One control connection (see the module docs).
#[derive(Debug)]
pub struct ControlClient {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes received and not yet consumed as lines.
    inbox: Vec<u8>,
}

impl ControlClient {
    /// Connects to the switch's control plane within `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, ControlClientError> {
        let connect = |source| ControlClientError::Connect { addr, source };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        stream.set_nonblocking(true).map_err(connect)?;
        Ok(ControlClient {
            stream,
            peer: addr,
            inbox: Vec::new(),
        })
    }

    /// The switch's control address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local IP of the connection: the address this host uses to reach
    /// the switch (a sensible data-plane address when none is given).
    pub fn local_ip(&self) -> io::Result<IpAddr> {
        Ok(self.stream.local_addr()?.ip())
    }

    /// Sends one request line.
    pub fn send(&mut self, request: &Request) -> Result<(), ControlClientError> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| ControlClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        // Requests are a few hundred bytes into an otherwise idle socket;
        // blocking briefly for them is simpler than queueing.
        self.stream.set_nonblocking(false)?;
        let result = self.stream.write_all(&line);
        self.stream.set_nonblocking(true)?;
        Ok(result?)
    }

    /// The next reply, waiting until `deadline` (`None`: do not wait).
    /// `Ok(None)`: no complete reply by then.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Option<Reply>, ControlClientError> {
        loop {
            if let Some(reply) = self.take_line()? {
                return Ok(Some(reply));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ControlClientError::Closed),
                Ok(n) => {
                    self.inbox.extend_from_slice(&chunk[..n]);
                    if self.inbox.len() > MAX_LINE {
                        return Err(ControlClientError::Protocol(format!(
                            "reply longer than {MAX_LINE} bytes"
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let Some(deadline) = deadline else {
                        return Ok(None);
                    };
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    let mut fds = [libc::pollfd {
                        fd: self.stream.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    udp_batch::poll(&mut fds, Some(left))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn take_line(&mut self) -> Result<Option<Reply>, ControlClientError> {
        let Some(end) = self.inbox.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line: Vec<u8> = self.inbox.drain(..=end).collect();
        serde_json::from_slice(&line).map(Some).map_err(|e| {
            ControlClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&line)))
        })
    }
}

impl AsRawFd for ControlClient {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// Sends one request on a fresh connection and returns the reply (tools,
/// and the agent's status query when a peer is late).
pub fn request(
    addr: SocketAddr,
    request: &Request,
    timeout: Duration,
) -> Result<Reply, ControlClientError> {
    let mut client = ControlClient::connect(addr, timeout)?;
    client.send(request)?;
    client
        .recv(Some(Instant::now() + timeout))?
        .ok_or_else(|| ControlClientError::Protocol(format!("no reply within {timeout:?}")))
}

/// The ranks a job's incomplete rounds on `slots` wait for, from a status
/// document (`Reply::Status`): the `missing` lists of the job's
/// `incomplete_slots` whose slot is among `slots`, merged and sorted.
/// `None` if the document does not describe the job.
pub fn missing_ranks(status: &serde_json::Value, job_id: u16, slots: &[u16]) -> Option<Vec<u16>> {
    let job = status
        .get("jobs")?
        .as_array()?
        .iter()
        .find(|j| j.get("id").and_then(|v| v.as_u64()) == Some(u64::from(job_id)))?;
    let mut ranks: Vec<u16> = job
        .get("incomplete_slots")?
        .as_array()?
        .iter()
        .filter(|s| {
            s.get("slot")
                .and_then(|v| v.as_u64())
                .is_some_and(|slot| slots.iter().any(|&x| u64::from(x) == slot))
        })
        .flat_map(|s| {
            s.get("missing")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_u64().and_then(|r| u16::try_from(r).ok()))
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    Some(ranks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    #[test]
    fn missing_ranks_of_the_stalled_slots_only() {
        let status = serde_json::json!({
            "jobs": [
                {"id": 3, "incomplete_slots": [{"slot": 9, "missing": [7]}]},
                {"id": 4, "incomplete_slots": [
                    {"slot": 10, "missing": [2, 1]},
                    {"slot": 11, "missing": [1]},
                    {"slot": 12, "missing": [5]}
                ]}
            ]
        });
        assert_eq!(missing_ranks(&status, 4, &[10, 11]), Some(vec![1, 2]));
        assert_eq!(missing_ranks(&status, 4, &[99]), Some(vec![]));
        assert_eq!(missing_ranks(&status, 5, &[10]), None);
    }

    #[test]
    fn reply_lines_split_across_reads_and_eof() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "{\"op\":\"leave\"}\n");
            let mut s = stream;
            s.write_all(b"{\"reply\":").unwrap();
            s.flush().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(b"\"left\"}\n{\"reply\":\"job_failed\",\"reason\":\"x\",\"ranks\":[2]}\n")
                .unwrap();
        });
        let mut client = ControlClient::connect(addr, Duration::from_secs(2)).unwrap();
        client.send(&Request::Leave).unwrap();
        let deadline = Some(Instant::now() + Duration::from_secs(2));
        assert_eq!(client.recv(deadline).unwrap(), Some(Reply::Left));
        assert_eq!(
            client.recv(deadline).unwrap(),
            Some(Reply::JobFailed {
                reason: "x".into(),
                ranks: vec![2]
            })
        );
        server.join().unwrap();
        assert!(matches!(
            client.recv(deadline),
            Err(ControlClientError::Closed)
        ));
    }

    #[test]
    fn nothing_to_read_without_deadline_returns_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client =
            ControlClient::connect(listener.local_addr().unwrap(), Duration::from_secs(2)).unwrap();
        let _held = listener.accept().unwrap();
        assert_eq!(client.recv(None).unwrap(), None);
    }

    #[test]
    fn unreachable_switch_is_a_connect_error() {
        // Bind then drop: the port is (almost certainly) closed now.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            ControlClient::connect(addr, Duration::from_secs(1)),
            Err(ControlClientError::Connect { .. })
        ));
    }
}
