//! The control plane on sockets, shared by every driver (UDP, L2): the TCP
//! listener, its connections and the [`Controller`]'s timers, served from
//! the driver's own `poll` loop so that one thread owns the core.
//!
//! Each turn the driver appends [`ControlIo::pollfds`] to its poll set and,
//! after `poll`, hands the same entries back to [`ControlIo::serve`]; the
//! next deadline is [`ControlIo::poll_timeout`].

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::time::Instant;

use packet_format::control::{ControlError, ControlErrorKind, Reply};

use crate::control::status::StatusReport;
use crate::control::{ConnId, Controller, Outbox};
use crate::dataplane::Dataplane;

mod conn;

use conn::Conn;

/// Most control connections served at once; more are closed on accept.
const MAX_CONNS: usize = 1024;

/// Counters of the control sockets (the controller counts joins and jobs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ControlIoCounters {
    /// Connections accepted.
    pub connections: u64,
    /// Request lines that did not parse.
    pub bad_requests: u64,
}

impl ControlIoCounters {
    /// As `name -> value`, for a status document's `driver` map.
    pub fn map(&self) -> BTreeMap<String, u64> {
        [
            ("control_connections", self.connections),
            ("control_bad_requests", self.bad_requests),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The control listener, its connections and the control plane.
#[derive(Debug)]
pub struct ControlIo {
    listener: TcpListener,
    controller: Controller,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
    /// Connections in the order of the last [`ControlIo::pollfds`] call.
    polled: Vec<ConnId>,
    counters: ControlIoCounters,
}

/// A `pollfd` entry.
pub fn pollfd(fd: std::os::fd::RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl ControlIo {
    /// Serves `controller` on `listener` (made non-blocking here).
    pub fn new(listener: TcpListener, controller: Controller) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(ControlIo {
            listener,
            controller,
            conns: HashMap::new(),
            next_conn: 1,
            polled: Vec::new(),
            counters: ControlIoCounters::default(),
        })
    }

    /// The listener's address (with the port chosen for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The control plane.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// Counters of the sockets.
    pub fn counters(&self) -> ControlIoCounters {
        self.counters
    }

    /// The earliest timer of the control plane.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.controller.poll_timeout()
    }

    /// The status document with `driver` (the caller's counters) and the
    /// control sockets' counters in its `driver` map.
    pub fn status(
        &self,
        now: Instant,
        dp: &dyn Dataplane,
        driver: BTreeMap<String, u64>,
    ) -> StatusReport {
        let mut report = self.controller.status(now, dp);
        report.driver = driver;
        report.driver.extend(self.counters.map());
        report
    }

    /// Appends the listener and every connection to `fds` (POLLOUT where
    /// replies wait). Pass the same entries, in order, to [`ControlIo::serve`].
    pub fn pollfds(&mut self, fds: &mut Vec<libc::pollfd>) {
        fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        self.polled.clear();
        for (&id, conn) in &self.conns {
            let events = if conn.wants_write() {
                libc::POLLIN | libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(pollfd(conn.stream.as_raw_fd(), events));
            self.polled.push(id);
        }
    }

    /// Accepts, reads and answers what `ready` (the entries of the last
    /// [`ControlIo::pollfds`], after `poll`) reports, runs due timers and
    /// writes pending replies. `driver` gives the caller's counters for
    /// status replies; it runs only when one is sent.
    pub fn serve(
        &mut self,
        ready: &[libc::pollfd],
        dp: &mut dyn Dataplane,
        driver: &dyn Fn() -> BTreeMap<String, u64>,
    ) {
        if ready.first().is_some_and(|p| p.revents != 0) {
            self.accept();
        }
        let polled = std::mem::take(&mut self.polled);
        for (k, &id) in polled.iter().enumerate() {
            if ready.get(1 + k).is_some_and(|p| p.revents != 0) {
                self.serve_conn(id, dp, driver);
            }
        }
        self.polled = polled;
        let now = Instant::now();
        if self.controller.poll_timeout().is_some_and(|at| at <= now) {
            let outbox = self.controller.handle_timeout(now, dp);
            self.deliver(outbox, driver);
        }
        self.flush_conns(dp, driver);
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.conns.len() >= MAX_CONNS {
                        continue; // dropped: closes the connection
                    }
                    if let Ok(conn) = Conn::new(stream) {
                        self.counters.connections += 1;
                        self.conns.insert(self.next_conn, conn);
                        self.next_conn += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn serve_conn(
        &mut self,
        id: ConnId,
        dp: &mut dyn Dataplane,
        driver: &dyn Fn() -> BTreeMap<String, u64>,
    ) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let input = conn.read();
        for request in input.requests {
            let now = Instant::now();
            let outbox = match request {
                Ok(request) => self.controller.handle_request(now, id, request, dp),
                Err(message) => {
                    self.counters.bad_requests += 1;
                    vec![(
                        id,
                        Reply::Error(ControlError {
                            kind: ControlErrorKind::BadRequest,
                            message,
                        }),
                    )]
                }
            };
            self.deliver(outbox, driver);
        }
        if input.closed {
            if let Some(mut conn) = self.conns.remove(&id) {
                let _ = conn.flush();
            }
            let outbox = self.controller.handle_disconnect(Instant::now(), id, dp);
            self.deliver(outbox, driver);
        }
    }

    fn deliver(&mut self, outbox: Outbox, driver: &dyn Fn() -> BTreeMap<String, u64>) {
        for (id, mut reply) in outbox {
            if let Reply::Status(value) = &mut reply {
                if let Some(obj) = value.as_object_mut() {
                    let mut counters = driver();
                    counters.extend(self.counters.map());
                    obj.insert(
                        "driver".into(),
                        serde_json::to_value(counters).unwrap_or_default(),
                    );
                }
            }
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.queue(&reply);
            }
        }
    }

    fn flush_conns(&mut self, dp: &mut dyn Dataplane, driver: &dyn Fn() -> BTreeMap<String, u64>) {
        let broken: Vec<ConnId> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.wants_write())
            .filter_map(|(&id, c)| c.flush().is_err().then_some(id))
            .collect();
        for id in broken {
            self.conns.remove(&id);
            let outbox = self.controller.handle_disconnect(Instant::now(), id, dp);
            self.deliver(outbox, driver);
        }
    }
}
