//! The L2 driver: reads frames from every port, lets [`L2Switch`] decide,
//! and sends the results in batches, one `sendmmsg` per port per round.
//!
//! One thread does everything (ports, core and, through the caller's hook,
//! the control plane): on this 2-core machine the system calls are the cost,
//! and a second thread would only add hand-offs.
//!
//! # Receive path: measured
//! `cargo run --release --example l2_forward_bench -- ring|recv 1000000 322`
//! (2 workers, no rate limit, worker 0 blasting 322-byte frames at worker 1
//! with AF_PACKET `sendmmsg`, on this 2-core machine shared with other
//! builds, so the figures are noisy):
//!
//! | receive path | offered (frames/s) | delivered through the switch |
//! |---|---:|---:|
//! | TPACKET_V3 ring, 64 KiB x 64 blocks | 472 k | 97.4 % (about 460 k/s) |
//! | TPACKET_V3 ring, 8 KiB x 512 blocks | 238-268 k | 87.7-100 % |
//! | `recv` per frame | 243 k | 66.9 % |
//!
//! The ring is the default ([`super::port::RxMode::Ring`]): it forwards
//! more and drops less at the same CPU. Its cost is latency at low load: a
//! partly filled block is handed over only when its retire timer (1 ms)
//! fires, so a lone ping sees 1-2 ms RTT through the switch; the default
//! 8 KiB blocks (about 25 aggregation frames) fill quickly under load.

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::logic::{Decision, L2Config, L2Counters, L2Switch, PortMask, TxFrames, MAX_PORTS};
use super::port::{Port, PortOptions};
use crate::core::SwitchCore;

/// Frames read from one port before moving to the next (fairness).
const RX_BUDGET: usize = 256;

/// Frames staged for one port.
#[derive(Debug, Default)]
struct Staged {
    buf: Vec<u8>,
    frames: Vec<Range<usize>>,
}

impl Staged {
    fn push(&mut self, frame: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(frame);
        self.frames.push(start..self.buf.len());
    }
}

/// Counters of the driver (the switch logic and the core count the rest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Frames received, all ports.
    pub rx_frames: u64,
    /// Frames sent, all ports.
    pub tx_frames: u64,
    /// Frames the kernel refused on send (full buffers).
    pub tx_dropped: u64,
}

/// The switch's ports and L2 logic.
#[derive(Debug)]
pub struct L2Driver {
    ports: Vec<Port>,
    switch: L2Switch,
    staged: Vec<Staged>,
    originated: TxFrames,
    counters: DriverCounters,
    last_expire: Instant,
}

/// How to open the switch.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Interfaces, in port order.
    pub ports: Vec<String>,
    /// The interface (one of `ports`) facing the switch's own kernel interface.
    pub cpu_port: Option<String>,
    /// Switch IP.
    pub ip: std::net::Ipv4Addr,
    /// Switch MAC; default: the MAC of the first port.
    pub mac: Option<[u8; 6]>,
    /// Socket options.
    pub port_options: PortOptions,
    /// MAC/neighbour aging.
    pub aging: Duration,
}

impl L2Driver {
    /// Opens every port.
    pub fn open(opts: &DriverOptions) -> io::Result<Self> {
        if opts.ports.is_empty() || opts.ports.len() > MAX_PORTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("need 1..={MAX_PORTS} ports"),
            ));
        }
        let cpu_port = match &opts.cpu_port {
            Some(name) => Some(opts.ports.iter().position(|p| p == name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("--cpu-port {name} is not one of the --port interfaces"),
                )
            })?),
            None => None,
        };
        let ports = opts
            .ports
            .iter()
            .map(|name| {
                Port::open(name, opts.port_options)
                    .map_err(|e| io::Error::new(e.kind(), format!("port {name}: {e}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mac = opts.mac.unwrap_or_else(|| ports[0].mac());
        let switch = L2Switch::new(L2Config {
            mac,
            ip: opts.ip,
            ports: ports.len(),
            aging: opts.aging,
            cpu_port,
        });
        let staged = ports.iter().map(|_| Staged::default()).collect();
        Ok(L2Driver {
            ports,
            switch,
            staged,
            originated: TxFrames::default(),
            counters: DriverCounters::default(),
            last_expire: Instant::now(),
        })
    }

    /// Descriptors to poll for readability.
    pub fn fds(&self) -> Vec<RawFd> {
        self.ports.iter().map(Port::raw_fd).collect()
    }

    /// The L2 logic's counters.
    pub fn switch_counters(&self) -> &L2Counters {
        self.switch.counters()
    }

    /// The driver's counters.
    pub fn counters(&self) -> &DriverCounters {
        &self.counters
    }

    /// The switch's MAC and IP settings.
    pub fn config(&self) -> &L2Config {
        self.switch.config()
    }

    /// Reads what every port has ready, runs it through the switch and
    /// sends the results. Returns the number of frames received.
    pub fn process(&mut self, now: Instant, core: &mut SwitchCore) -> io::Result<usize> {
        let mut total = 0;
        for index in 0..self.ports.len() {
            let (switch, staged, originated) =
                (&mut self.switch, &mut self.staged, &mut self.originated);
            total += self.ports[index].recv_batch(RX_BUDGET, |frame| {
                if let Decision::Forward(mask) =
                    switch.handle_frame(now, index, frame, core, originated)
                {
                    stage(staged, mask, frame);
                }
            })?;
        }
        for (frame, mask) in self.originated.iter() {
            stage(&mut self.staged, mask, frame);
        }
        self.originated.clear();
        self.flush()?;
        self.counters.rx_frames += total as u64;
        if now.saturating_duration_since(self.last_expire) > Duration::from_secs(1) {
            self.switch.expire(now);
            self.last_expire = now;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        for (port, staged) in self.ports.iter_mut().zip(&mut self.staged) {
            if staged.frames.is_empty() {
                continue;
            }
            let frames: Vec<&[u8]> = staged
                .frames
                .iter()
                .map(|r| &staged.buf[r.clone()])
                .collect();
            let before = port.tx_dropped;
            let sent = port.send_batch(&frames)?;
            self.counters.tx_frames += sent as u64;
            self.counters.tx_dropped += port.tx_dropped - before;
            staged.buf.clear();
            staged.frames.clear();
        }
        Ok(())
    }
}

fn stage(staged: &mut [Staged], mask: PortMask, frame: &[u8]) {
    for port in mask.iter() {
        if let Some(s) = staged.get_mut(port) {
            s.push(frame);
        }
    }
}

/// Waits until one of `fds` is readable or `timeout` passes.
#[allow(unsafe_code)]
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> io::Result<()> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfds` is a live array of pollfd of the length passed.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Runs the switch until `stop` is set. Each wake-up (a port or one of
/// `extra_fds` readable, or the deadline returned last time) processes every
/// port, then calls `on_wake(now, state)`: the caller's control plane (the
/// TCP listener and [`crate::dataplane::Dataplane`] owner) does its work
/// there and returns its next deadline. `core_of` reaches the core inside
/// the caller's state, so the control plane and the ports share one core.
pub fn serve_loop<S>(
    driver: &mut L2Driver,
    state: &mut S,
    core_of: fn(&mut S) -> &mut SwitchCore,
    extra_fds: &[RawFd],
    stop: &std::sync::atomic::AtomicBool,
    mut on_wake: impl FnMut(Instant, &mut S) -> io::Result<Option<Instant>>,
) -> io::Result<()> {
    let mut fds = driver.fds();
    fds.extend_from_slice(extra_fds);
    let mut deadline: Option<Instant> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let now = Instant::now();
        // Bounded wait so that `stop` is noticed within 100 ms.
        let wait = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        wait_readable(&fds, wait)?;
        let now = Instant::now();
        // Drain until the ports are idle, so a burst costs one poll.
        while driver.process(now, core_of(state))? > 0 {}
        deadline = on_wake(Instant::now(), state)?;
    }
    Ok(())
}
