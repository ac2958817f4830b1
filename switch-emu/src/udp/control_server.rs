//! The job control plane alone over TCP, programming a dataplane that
//! lives elsewhere (a BMv2 `simple_switch` through
//! [`crate::p4config::bmv2_target::Bmv2Target`]): the driver of
//! `switch-emu controller`. Same protocol, same [`Controller`] as the
//! emulator's server ([`super::Server`]); only the data path is absent,
//! because the switch itself aggregates.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use packet_format::control::{ControlError, ControlErrorKind, Reply};

use super::conn::Conn;
use super::sys;
use crate::control::{ConnId, ControlConfig, ControlConfigError, Controller, Outbox};
use crate::dataplane::Dataplane;

/// Most control connections served at once; more are closed on accept.
const MAX_CONNS: usize = 4096;

/// Longest sleep between checks of the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Why the control server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControlServerError {
    /// The control plane settings are unusable.
    #[error("control plane: {0}")]
    Config(#[from] ControlConfigError),
    /// Binding or polling failed.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
}

/// A TCP control plane driving dataplane `D`.
#[derive(Debug)]
pub struct ControlServer<D: Dataplane> {
    listener: TcpListener,
    controller: Controller,
    dp: D,
    conns: HashMap<ConnId, Conn>,
    next_conn: ConnId,
}

impl<D: Dataplane> ControlServer<D> {
    /// Listens on `addr` for control connections.
    pub fn bind(
        addr: SocketAddrV4,
        config: ControlConfig,
        dp: D,
    ) -> Result<Self, ControlServerError> {
        let controller = Controller::new(config)?;
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer {
            listener,
            controller,
            dp,
            conns: HashMap::new(),
            next_conn: 1,
        })
    }

    /// The bound control address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The dataplane (e.g. to inspect a recording target).
    pub fn dataplane(&self) -> &D {
        &self.dp
    }

    /// Serves until `stop` is set (checked at least every 200 ms).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), ControlServerError> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut ids: Vec<ConnId> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            fds.clear();
            ids.clear();
            fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
            for (&id, conn) in &self.conns {
                let events = if conn.wants_write() {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                fds.push(pollfd(conn.stream.as_raw_fd(), events));
                ids.push(id);
            }
            let mut wait = STOP_POLL;
            if let Some(at) = self.controller.poll_timeout() {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            // Round up so that a timer is never handled early.
            sys::poll(&mut fds, wait.as_micros().div_ceil(1000) as i32)?;
            if fds[0].revents != 0 {
                self.accept();
            }
            for (k, &id) in ids.iter().enumerate() {
                if fds[1 + k].revents != 0 {
                    self.serve_conn(id);
                }
            }
            let now = Instant::now();
            if self.controller.poll_timeout().is_some_and(|at| at <= now) {
                let outbox = self.controller.handle_timeout(now, &mut self.dp);
                self.deliver(outbox);
            }
            self.flush_conns();
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.conns.len() >= MAX_CONNS {
                        continue; // dropped: closes the connection
                    }
                    if let Ok(conn) = Conn::new(stream) {
                        self.conns.insert(self.next_conn, conn);
                        self.next_conn += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn serve_conn(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let input = conn.read();
        for request in input.requests {
            let now = Instant::now();
            let outbox = match request {
                Ok(request) => self
                    .controller
                    .handle_request(now, id, request, &mut self.dp),
                Err(message) => vec![(
                    id,
                    Reply::Error(ControlError {
                        kind: ControlErrorKind::BadRequest,
                        message,
                    }),
                )],
            };
            self.deliver(outbox);
        }
        if input.closed {
            if let Some(mut conn) = self.conns.remove(&id) {
                let _ = conn.flush();
            }
            let outbox = self
                .controller
                .handle_disconnect(Instant::now(), id, &mut self.dp);
            self.deliver(outbox);
        }
    }

    fn deliver(&mut self, outbox: Outbox) {
        for (id, reply) in outbox {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.queue(&reply);
            }
        }
    }

    fn flush_conns(&mut self) {
        let broken: Vec<ConnId> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.wants_write())
            .filter_map(|(&id, c)| c.flush().is_err().then_some(id))
            .collect();
        for id in broken {
            self.conns.remove(&id);
            let outbox = self
                .controller
                .handle_disconnect(Instant::now(), id, &mut self.dp);
            self.deliver(outbox);
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
