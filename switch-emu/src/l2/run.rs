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
//! Again with offloads on and the copy path taking up to 16 frames per
//! `recvmmsg` (2026-11-29, two runs each, the ping RTT the example measures
//! through the switch first):
//!
//! | receive path | offered (frames/s) | delivered | ping RTT |
//! |---|---:|---:|---:|
//! | TPACKET_V3 ring, 128 KiB x 128 blocks | 447-465 k | 87.5-90.2 % | 1.6-2.8 ms |
//! | `recvmmsg`, 16 frames per call | 485-556 k | 52.8-58.2 % | 0.17-0.21 ms |
//!
//! In allreduce runs (`topo bench --serve-arg=--rx --serve-arg=recv`, A/B
//! pairs, BENCHMARKS.md run E10) `recvmmsg` was ahead in 4 of 6 pairs with
//! 64 KiB packets and did not separate with 1 KiB packets.
//!
//! The ring forwards more and drops less at the same CPU when frames are
//! blasted without flow control. Its cost is latency at low load: a partly
//! filled block is handed over only when its retire timer (1 ms) fires, so
//! a lone ping sees 1-2 ms RTT through the switch, and every packet of a
//! small allreduce waits up to 1 ms. `recvmmsg` is the default
//! ([`super::port::RxMode::Recv`]) since 2026-11-30: allreduce jobs keep
//! their load within their window, and there the two paths did not
//! separate in throughput (`topo bench`, shaped and unshaped, 1 KiB and
//! 64 KiB packets, three pairs each, BENCHMARKS.md), while a 4-byte
//! allreduce of two workers took 89 us with `recvmmsg` against 1992 us with
//! the ring (64 KiB: 388 against 2103 us). `--rx ring` keeps the ring. Blocks are
//! 128 KiB ([`super::port::auto_block_size`] of a 64 KiB super-frame, 16 MiB
//! per port): with offloads on (every frame's offload header crosses the
//! socket, [`super::offload`]) a frame can be a whole GSO run of up to 64
//! KiB whatever the MTU; the fixed 8 KiB blocks measured above truncated
//! jumbo frames. The table was measured with plain frames (offloads off on
//! the workers); the allreduce figures in BENCHMARKS.md ("Emulated cluster")
//! say which they used.
//!
//! # Send path
//! Frames leave in one `sendmmsg` per port per round. Results to one worker
//! staged in a row with payloads of one size are merged into one UDP GSO
//! super-frame ([`super::staging`]), which the worker's kernel takes
//! whole into its GRO socket, as the UDP driver's GSO sends are.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::logic::{Decision, L2Config, L2Counters, L2Switch, TxFrames, MAX_PORTS};
use super::offload::{for_each_datagram, Offload};
use super::port::{Port, PortOptions};
use super::staging::{stage_originated, Staged};
use crate::core::SwitchCore;
use crate::taps::Taps;

/// Frames read from one port before moving to the next (fairness).
const RX_BUDGET: usize = 256;

/// Counters of the driver (the switch logic and the core count the rest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Frames received, all ports.
    pub rx_frames: u64,
    /// Frames sent, all ports (a super-frame counts once).
    pub tx_frames: u64,
    /// Super-frames among them: runs of results to one worker.
    pub tx_super_frames: u64,
    /// Frames the kernel refused on send (full buffers).
    pub tx_dropped: u64,
}

/// The switch's ports and L2 logic.
#[derive(Debug)]
pub struct L2Driver {
    /// The switch ports (`L2Config::ports` of them), then the replication
    /// port if there is one (sent to, never read).
    ports: Vec<Port>,
    switch: L2Switch,
    staged: Vec<Staged>,
    originated: TxFrames,
    counters: DriverCounters,
    last_expire: Instant,
    /// Capture of every frame received and sent (`--pcap`); off by default.
    capture: Taps,
    /// Where a super-frame's datagrams are written one by one for the capture.
    capture_scratch: Vec<u8>,
    /// Where a frame sent in pieces is put together for the capture.
    capture_frame: Vec<u8>,
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
    /// Base of the jobs' result groups ([`L2Config::result_groups`]).
    pub result_groups: Option<std::net::Ipv4Addr>,
    /// An interface (not one of `ports`) behind which a group result is copied
    /// to the switch ports ([`L2Config::replication_port`]).
    pub replication_port: Option<String>,
}

impl L2Driver {
    /// Opens every port.
    pub fn open(opts: &DriverOptions) -> io::Result<Self> {
        let most = MAX_PORTS - usize::from(opts.replication_port.is_some());
        if opts.ports.is_empty() || opts.ports.len() > most {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("need 1..={most} ports"),
            ));
        }
        if let Some(name) = &opts.replication_port {
            if opts.ports.contains(name) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the replication port {name} cannot also be a switch port"),
                ));
            }
            if opts.result_groups.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a replication port carries group results: it needs result groups",
                ));
            }
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
        let named =
            |name: &String, e: io::Error| io::Error::new(e.kind(), format!("port {name}: {e}"));
        let mut ports = opts
            .ports
            .iter()
            .map(|name| Port::open(name, opts.port_options).map_err(|e| named(name, e)))
            .collect::<io::Result<Vec<_>>>()?;
        let switch_ports = ports.len();
        if let Some(name) = &opts.replication_port {
            ports.push(Port::open_sender(name, opts.port_options).map_err(|e| named(name, e))?);
        }
        let mac = opts.mac.unwrap_or_else(|| ports[0].mac());
        let switch = L2Switch::new(L2Config {
            mac,
            ip: opts.ip,
            ports: switch_ports,
            aging: opts.aging,
            cpu_port,
            result_groups: opts.result_groups,
            replication_port: opts.replication_port.is_some(),
        });
        let staged = ports.iter().map(|_| Staged::default()).collect();
        Ok(L2Driver {
            ports,
            switch,
            staged,
            originated: TxFrames::default(),
            counters: DriverCounters::default(),
            last_expire: Instant::now(),
            capture: Taps::default(),
            capture_scratch: Vec::new(),
            capture_frame: Vec::new(),
        })
    }

    /// Records every frame the ports receive and send from now on.
    pub fn set_capture(&mut self, capture: Taps) {
        self.capture = capture;
    }

    /// Flushes the capture; returns why it stopped early, if it did.
    pub fn finish_capture(&mut self) -> Option<String> {
        if let Err(e) = self.capture.flush() {
            self.capture.pcap_error = Some(format!("flushing the capture: {e}"));
        }
        self.capture.pcap_error.clone()
    }

    /// Descriptors to poll for readability.
    pub fn fds(&self) -> Vec<RawFd> {
        self.ports[..self.switch.config().ports]
            .iter()
            .map(Port::raw_fd)
            .collect()
    }

    /// The L2 logic's counters.
    pub fn switch_counters(&self) -> &L2Counters {
        self.switch.counters()
    }

    /// The driver's counters.
    pub fn counters(&self) -> &DriverCounters {
        &self.counters
    }

    /// The driver's and the L2 logic's counters by name, for the `driver`
    /// map of a status document.
    pub fn counter_map(&self) -> std::collections::BTreeMap<String, u64> {
        let (d, l) = (&self.counters, self.switch.counters());
        [
            ("rx_frames", d.rx_frames),
            ("tx_frames", d.tx_frames),
            ("tx_super_frames", d.tx_super_frames),
            ("tx_dropped", d.tx_dropped),
            ("frames_in", l.frames_in),
            ("unicast_forwarded", l.unicast_forwarded),
            ("flooded", l.flooded),
            ("filtered", l.filtered),
            ("arp_replies", l.arp_replies),
            ("icmp_replies", l.icmp_replies),
            ("agg_in", l.agg_in),
            ("super_frames_in", l.super_frames_in),
            ("agg_out", l.agg_out),
            ("agg_out_grouped", l.agg_out_grouped),
            ("agg_out_replicated", l.agg_out_replicated),
            ("agg_out_flooded", l.agg_out_flooded),
            ("malformed", l.malformed),
            ("not_served", l.not_served),
            ("to_cpu", l.to_cpu),
        ]
        .into_iter()
        .chain(
            (self.capture.pcap.is_some() || self.capture.pcap_error.is_some())
                .then(|| ("pcap_records", self.capture.pcap_records())),
        )
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The switch's MAC and IP settings.
    pub fn config(&self) -> &L2Config {
        self.switch.config()
    }

    /// Reads what every port has ready, runs it through the switch and
    /// sends the results. Returns the number of frames received.
    pub fn process(&mut self, now: Instant, core: &mut SwitchCore) -> io::Result<usize> {
        let mut total = 0;
        for index in 0..self.switch.config().ports {
            let (switch, staged, originated, capture, scratch) = (
                &mut self.switch,
                &mut self.staged,
                &mut self.originated,
                &mut self.capture,
                &mut self.capture_scratch,
            );
            total += self.ports[index].recv_batch(RX_BUDGET, |offload, frame| {
                record(capture, scratch, offload, frame);
                if let Decision::Forward(mask) =
                    switch.handle_offloaded(now, index, offload, frame, core, originated)
                {
                    for port in mask.iter() {
                        if let Some(s) = staged.get_mut(port) {
                            s.push(offload, frame);
                        }
                    }
                }
            })?;
        }
        stage_originated(&mut self.staged, &self.originated);
        // The staged results point into `originated`: send, then forget both.
        let flushed = self.flush();
        self.originated.clear();
        for staged in &mut self.staged {
            staged.clear();
        }
        flushed?;
        self.counters.rx_frames += total as u64;
        if now.saturating_duration_since(self.last_expire) > Duration::from_secs(1) {
            self.switch.expire(now);
            self.last_expire = now;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        let shared = self.originated.bytes();
        for (port, staged) in self.ports.iter_mut().zip(&mut self.staged) {
            if staged.is_empty() {
                continue;
            }
            self.counters.tx_super_frames += staged.finish_runs() as u64;
            if self.capture.pcap.is_some() {
                for (offload, parts) in staged.frames(shared) {
                    self.capture_frame.clear();
                    parts.for_each(|p| self.capture_frame.extend_from_slice(p));
                    record(
                        &mut self.capture,
                        &mut self.capture_scratch,
                        offload,
                        &self.capture_frame,
                    );
                }
            }
            let before = port.tx_dropped;
            let sent = port.send_batch(staged.frames(shared))?;
            self.counters.tx_frames += sent as u64;
            self.counters.tx_dropped += port.tx_dropped - before;
        }
        Ok(())
    }
}

/// Records a frame in the capture, if there is one: a super-frame as its datagrams.
fn record(capture: &mut Taps, scratch: &mut Vec<u8>, offload: Offload, frame: &[u8]) {
    if capture.pcap.is_some() {
        for_each_datagram(offload, frame, scratch, |d| capture.record_frame(d));
    }
}

/// What runs beside the ports in [`serve_loop`]: the owner of the core and,
/// in `switch-emu serve`, the control plane (see [`super::serve`]).
pub trait Companion {
    /// The core the ports feed (shared with the control plane).
    fn core(&mut self) -> &mut SwitchCore;

    /// Appends the descriptors to wait on besides the ports.
    fn pollfds(&mut self, _fds: &mut Vec<libc::pollfd>) {}

    /// Called after the ports are drained on every wake-up, with the entries
    /// [`Companion::pollfds`] appended (after `poll`); returns the next deadline.
    fn on_wake(
        &mut self,
        _now: Instant,
        _ready: &[libc::pollfd],
        _driver: &L2Driver,
    ) -> io::Result<Option<Instant>> {
        Ok(None)
    }
}

/// A bare core: an L2 switch with aggregation but no control plane (jobs
/// installed directly; tests and benchmarks).
impl Companion for SwitchCore {
    fn core(&mut self) -> &mut SwitchCore {
        self
    }
}

/// Runs the switch until `stop` is set. Each wake-up (a port or one of the
/// companion's descriptors ready, or its deadline reached) drains every
/// port, then calls [`Companion::on_wake`], where the control plane does its
/// work, so the ports and the control plane share one core on one thread.
pub fn serve_loop(
    driver: &mut L2Driver,
    companion: &mut impl Companion,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<()> {
    let ports = driver.fds();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut deadline: Option<Instant> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        fds.clear();
        fds.extend(
            ports
                .iter()
                .map(|&fd| crate::control_io::pollfd(fd, libc::POLLIN)),
        );
        companion.pollfds(&mut fds);
        // Bounded wait so that `stop` is noticed within 100 ms.
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        // Whole milliseconds, rounded up: a deadline is never handled early.
        let wait = Duration::from_millis(wait.as_micros().div_ceil(1000) as u64);
        udp_batch::poll(&mut fds, Some(wait))?;
        // Drain until the ports are idle, so a burst costs one poll.
        while driver.process(Instant::now(), companion.core())? > 0 {}
        deadline = companion.on_wake(Instant::now(), &fds[ports.len()..], driver)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(ports: &[&str], groups: bool, replication: Option<&str>) -> DriverOptions {
        DriverOptions {
            ports: ports.iter().map(|p| p.to_string()).collect(),
            cpu_port: None,
            ip: std::net::Ipv4Addr::new(10, 77, 0, 254),
            mac: None,
            port_options: PortOptions::default(),
            aging: Duration::from_secs(300),
            result_groups: groups.then_some(std::net::Ipv4Addr::new(239, 77, 0, 0)),
            replication_port: replication.map(str::to_owned),
        }
    }

    /// Refused before any interface is opened (these names do not exist).
    #[test]
    fn a_replication_port_needs_groups_and_must_not_be_a_switch_port() {
        let refused = |o: DriverOptions| L2Driver::open(&o).unwrap_err().to_string();
        assert!(refused(options(&["nx-a", "nx-b"], true, Some("nx-b"))).contains("cannot also be"),);
        assert!(refused(options(&["nx-a"], false, Some("nx-r"))).contains("needs result groups"));
        let too_many: Vec<String> = (0..MAX_PORTS).map(|k| format!("nx-{k}")).collect();
        let names: Vec<&str> = too_many.iter().map(String::as_str).collect();
        assert!(refused(options(&names, true, Some("nx-r"))).contains("need 1..=63 ports"));
    }
}
