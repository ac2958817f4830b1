//! The job control plane alone over TCP, programming a dataplane that
//! lives elsewhere (a BMv2 `simple_switch` through
//! [`crate::p4config::bmv2_target::Bmv2Target`]): the driver of
//! `switch-emu controller`. Same protocol, same [`Controller`] and the same
//! connection handling ([`ControlIo`]) as the emulator's drivers; only the
//! data path is absent, because the switch itself aggregates.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::control::{ControlConfig, ControlConfigError, Controller};
use crate::control_io::ControlIo;
use crate::dataplane::Dataplane;

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
    control: ControlIo,
    dp: D,
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
        Ok(ControlServer {
            control: ControlIo::new(listener, controller)?,
            dp,
        })
    }

    /// The bound control address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.control.local_addr()
    }

    /// The dataplane (e.g. to inspect a recording target).
    pub fn dataplane(&self) -> &D {
        &self.dp
    }

    /// Serves until `stop` is set (checked at least every 200 ms).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), ControlServerError> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            fds.clear();
            self.control.pollfds(&mut fds);
            let mut wait = STOP_POLL;
            if let Some(at) = self.control.poll_timeout() {
                wait = wait.min(at.saturating_duration_since(Instant::now()));
            }
            // Whole milliseconds, rounded up: a timer is never handled early.
            let wait = Duration::from_millis(wait.as_micros().div_ceil(1000) as u64);
            udp_batch::poll(&mut fds, Some(wait))?;
            self.control.serve(&fds, &mut self.dp, &BTreeMap::new);
        }
        Ok(())
    }
}
