//! The event loop: one thread serving the data socket and, through
//! [`ControlIo`], the control listener, its connections and the control
//! plane's timers.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use socket2::{Domain, Protocol, Socket, Type};

use super::outq::{split, OutQueue};
use super::{offload, ServerConfig, ServerError};
use crate::control::status::StatusReport;
use crate::control::{result_group, ControlConfig, Controller};
use crate::control_io::{pollfd, ControlIo};
use crate::core::{SwitchCore, Verdict};
use crate::emulated::EmulatedDataplane;
use crate::taps::Taps;
use udp_batch::{RecvBatch, GRO_BUFFER, PLAIN_BUFFER};

/// Receive batches handled per wake-up before the control side gets a turn.
const MAX_BATCHES_PER_WAKE: usize = 16;

/// Socket buffer size asked for (the kernel caps it at its `rmem_max`/`wmem_max`).
const SOCKET_BUFFER: usize = 8 << 20;

/// The addresses a server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAddrs {
    /// Data socket (aggregation packets).
    pub data: SocketAddrV4,
    /// Control listener (JSON lines over TCP).
    pub control: SocketAddrV4,
}

/// Which kernel offloads the data socket uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// UDP_GRO on receive.
    pub gro: bool,
    /// UDP_SEGMENT on send.
    pub gso: bool,
}

/// Counters of the driver itself (the core counts per job and reason).
#[derive(Debug, Default, Clone)]
struct DriverCounters {
    rx_syscalls: u64,
    rx_buffers_coalesced: u64,
    rx_datagrams: u64,
    rx_errors: u64,
    injected_loss: u64,
    tx_syscalls: u64,
    tx_gso_messages: u64,
    tx_datagrams: u64,
    /// Results sent once to their job's multicast group.
    tx_group_results: u64,
    tx_errors: u64,
    tx_dropped_full: u64,
    gso_fallbacks: u64,
}

impl DriverCounters {
    fn map(&self) -> BTreeMap<String, u64> {
        [
            ("rx_syscalls", self.rx_syscalls),
            ("rx_buffers_coalesced", self.rx_buffers_coalesced),
            ("rx_datagrams", self.rx_datagrams),
            ("rx_errors", self.rx_errors),
            ("injected_loss", self.injected_loss),
            ("tx_syscalls", self.tx_syscalls),
            ("tx_gso_messages", self.tx_gso_messages),
            ("tx_datagrams", self.tx_datagrams),
            ("tx_group_results", self.tx_group_results),
            ("tx_errors", self.tx_errors),
            ("tx_dropped_full", self.tx_dropped_full),
            ("gso_fallbacks", self.gso_fallbacks),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Shutdown and counter-dump triggers of a server; cheap to clone, usable
/// from any thread and from signal handlers.
#[derive(Debug, Clone)]
pub struct Controls {
    quit: Arc<UnixStream>,
    dump: Arc<UnixStream>,
}

impl Controls {
    /// Asks the server to stop; `run` then returns the final counters.
    pub fn shutdown(&self) {
        wake(&self.quit);
    }

    /// Asks the server to print its status table to stdout.
    pub fn dump_counters(&self) {
        wake(&self.dump);
    }

    /// SIGINT and SIGTERM shut the server down; SIGUSR1 prints its counters.
    pub fn register_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
        use signal_hook::low_level::pipe;
        pipe::register(SIGINT, self.quit.try_clone()?)?;
        pipe::register(SIGTERM, self.quit.try_clone()?)?;
        pipe::register(SIGUSR1, self.dump.try_clone()?)?;
        Ok(())
    }
}

/// Writes one wake-up byte; a full pipe already holds a wake-up, so a
/// failed write loses nothing.
fn wake(tx: &UnixStream) {
    let mut tx = tx;
    let _ = tx.write(&[1]);
}

fn wake_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (rx, tx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    Ok((rx, tx))
}

/// Drains a wake-up pipe; true if anything was in it.
fn drain(rx: &UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut woke = false;
    let mut rx = rx;
    while let Ok(n) = rx.read(&mut buf) {
        if n == 0 {
            break;
        }
        woke = true;
    }
    woke
}

/// A bound, not yet running switch (see [`super`]).
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    addrs: ServerAddrs,
    offloads: Offloads,
    udp: UdpSocket,
    quit_rx: UnixStream,
    dump_rx: UnixStream,
    controls: Controls,
    control: ControlIo,
    dp: EmulatedDataplane,
    rx: RecvBatch,
    outq: OutQueue,
    result: Vec<u8>,
    loss: Option<(f64, SmallRng)>,
    counters: DriverCounters,
    taps: Taps,
    /// The switch's address as written into captured packets.
    capture_addr: SocketAddrV4,
}

fn bind_err(what: &'static str, addr: SocketAddrV4) -> impl FnOnce(io::Error) -> ServerError {
    move |source| ServerError::Bind { what, addr, source }
}

impl Server {
    /// Binds the data socket and the control listener, detects offloads and
    /// builds the core and the control plane. Port 0 picks a free port.
    pub fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        if !(0.0..=1.0).contains(&config.drop) {
            return Err(ServerError::Invalid(format!(
                "drop probability {} is outside 0..=1",
                config.drop
            )));
        }
        if config.result_groups.is_some() && config.bind.ip().is_unspecified() {
            // Members join a group on one interface; the groups must leave by it.
            return Err(ServerError::Invalid(format!(
                "result groups need a data address on one interface, not {}",
                config.bind
            )));
        }
        let core = SwitchCore::new(config.core)?;
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind_err("data socket", config.bind))?;
        // The kernel caps these at rmem_max/wmem_max; smaller buffers still work.
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
        sock.bind(&SocketAddr::V4(config.bind).into())
            .map_err(bind_err("data socket", config.bind))?;
        sock.set_nonblocking(true)?;
        let udp: UdpSocket = sock.into();
        let listener = TcpListener::bind(config.control)
            .map_err(bind_err("control listener", config.control))?;
        let (SocketAddr::V4(data), SocketAddr::V4(control)) =
            (udp.local_addr()?, listener.local_addr()?)
        else {
            return Err(ServerError::Invalid("bound to a non-IPv4 address".into()));
        };
        let log = config.log;
        let gro = config.gro
            && match offload::enable_gro(udp.as_raw_fd()) {
                Ok(()) => true,
                Err(e) => {
                    if log {
                        eprintln!("switch-emu: UDP_GRO unavailable ({e}); receiving one datagram per buffer");
                    }
                    false
                }
            };
        let gso = config.gso
            && match offload::probe_gso() {
                Ok(()) => true,
                Err(e) => {
                    if log {
                        eprintln!("switch-emu: UDP GSO unavailable ({e}); sending one datagram per message");
                    }
                    false
                }
            };
        let mut advertised = data;
        if data.ip().is_unspecified() {
            advertised.set_ip(std::net::Ipv4Addr::LOCALHOST);
        }
        let controller = Controller::new(ControlConfig {
            slots: config.core.slots,
            max_workers: config.core.max_workers,
            max_elements_per_packet: config.core.max_elements_per_packet,
            job_quota: config.job_quota,
            join_timeout: config.join_timeout,
            worker_timeout: config.worker_timeout,
            switch_data_addr: advertised,
            key_seed: None,
            history: 32,
            result_groups: config.result_groups,
        })?;
        if config.result_groups.is_some() {
            // Groups leave by the data address's interface (where the
            // members joined them), not by the default route.
            socket2::SockRef::from(&udp).set_multicast_if_v4(data.ip())?;
        }
        let (quit_rx, quit_tx) = wake_pair()?;
        let (dump_rx, dump_tx) = wake_pair()?;
        let buf = if gro { GRO_BUFFER } else { PLAIN_BUFFER };
        let loss = (config.drop > 0.0).then(|| (config.drop, SmallRng::seed_from_u64(config.seed)));
        if log {
            eprintln!(
                "switch-emu: data {data} (GRO {}, GSO {}), control {control}, {} slots, max {} workers, max {} elements/packet{}{}",
                if gro { "on" } else { "off" },
                if gso { "on" } else { "off" },
                config.core.slots,
                config.core.max_workers,
                config.core.max_elements_per_packet,
                if config.drop > 0.0 {
                    format!(", injected loss {} (seed {})", config.drop, config.seed)
                } else {
                    String::new()
                },
                match config.result_groups {
                    Some(base) => format!(", results multicast to {base} + job id"),
                    None => String::new(),
                }
            );
        }
        Ok(Server {
            rx: RecvBatch::new(config.batch, buf),
            config,
            addrs: ServerAddrs { data, control },
            offloads: Offloads { gro, gso },
            udp,
            quit_rx,
            dump_rx,
            controls: Controls {
                quit: Arc::new(quit_tx),
                dump: Arc::new(dump_tx),
            },
            control: ControlIo::new(listener, controller)?,
            dp: EmulatedDataplane::new(core),
            outq: OutQueue::default(),
            result: Vec::new(),
            loss,
            counters: DriverCounters::default(),
            taps: Taps::default(),
            capture_addr: advertised,
        })
    }

    /// Where the server listens (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> ServerAddrs {
        self.addrs
    }

    /// The offloads in use.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Shutdown and dump triggers.
    pub fn controls(&self) -> Controls {
        self.controls.clone()
    }

    /// Attaches a packet capture and/or the metrics endpoint.
    pub fn with_taps(mut self, taps: Taps) -> Server {
        self.taps = taps;
        self
    }

    /// Runs on a new thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let controls = self.controls();
        let addrs = self.addrs;
        let thread = std::thread::Builder::new()
            .name("switch-emu".into())
            .spawn(move || self.run())?;
        Ok(ServerHandle {
            controls,
            addrs,
            thread,
        })
    }

    /// The status document, with the driver's counters.
    pub fn status(&self) -> StatusReport {
        self.control
            .status(Instant::now(), &self.dp, self.driver_counters())
    }

    fn driver_counters(&self) -> BTreeMap<String, u64> {
        driver_map(&self.counters, &self.taps)
    }

    /// Serves until [`Controls::shutdown`]; returns the final status
    /// (counters). The capture, if any, is flushed on the way out.
    pub fn run(mut self) -> Result<StatusReport, ServerError> {
        let served = self.serve();
        if let Err(e) = self.taps.flush() {
            self.taps.pcap_error = Some(format!("flushing the capture: {e}"));
        }
        if let Some(e) = &self.taps.pcap_error {
            if self.config.log {
                eprintln!("switch-emu: {e}");
            }
        }
        served?;
        Ok(self.status())
    }

    fn serve(&mut self) -> Result<(), ServerError> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let metrics_fd = self.taps.metrics_fd();
        // Fixed fds first; the metrics wake-up (if any) next, then the control plane's.
        let first_control = 3 + usize::from(metrics_fd.is_some());
        loop {
            fds.clear();
            for fd in [
                self.udp.as_raw_fd(),
                self.quit_rx.as_raw_fd(),
                self.dump_rx.as_raw_fd(),
            ]
            .into_iter()
            .chain(metrics_fd)
            {
                fds.push(pollfd(fd, libc::POLLIN));
            }
            self.control.pollfds(&mut fds);
            let wake_at = match (self.control.poll_timeout(), self.taps.metrics_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake_at.map(|at| {
                let wait = at.saturating_duration_since(Instant::now());
                // Whole milliseconds, rounded up: a timer is never handled early.
                Duration::from_millis(wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as u64)
            });
            udp_batch::poll(&mut fds, timeout)?;
            if fds[0].revents != 0 {
                self.serve_data();
            }
            if fds[1].revents != 0 && drain(&self.quit_rx) {
                break;
            }
            if fds[2].revents != 0 && drain(&self.dump_rx) {
                println!("{}", self.status().render());
                let _ = self.taps.flush();
            }
            let scrape_woke = metrics_fd.is_some() && fds[3].revents != 0;
            {
                let counters = &self.counters;
                let taps = &self.taps;
                self.control
                    .serve(&fds[first_control..], &mut self.dp, &|| {
                        driver_map(counters, taps)
                    });
            }
            self.taps.refresh_metrics(
                Instant::now(),
                scrape_woke,
                self.dp.core(),
                self.control.controller(),
            );
        }
        Ok(())
    }

    fn serve_data(&mut self) {
        let fd = self.udp.as_raw_fd();
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let n = match self.rx.recv(fd) {
                Ok(0) => break,
                Ok(n) => n,
                Err(_) => {
                    self.counters.rx_errors += 1;
                    break;
                }
            };
            self.counters.rx_syscalls += 1;
            let now = Instant::now();
            let Server {
                rx,
                dp,
                outq,
                result,
                loss,
                counters,
                taps,
                capture_addr,
                config,
                addrs,
                ..
            } = self;
            let data_port = addrs.data.port();
            for i in 0..n {
                let Some(received) = rx.get(i) else { continue };
                let Some(src) = received.src else { continue };
                if received.segment.is_some_and(|s| received.data.len() > s) {
                    counters.rx_buffers_coalesced += 1;
                }
                for datagram in received.datagrams() {
                    counters.rx_datagrams += 1;
                    taps.record_datagram(src, *capture_addr, datagram);
                    if let Some((p, rng)) = loss.as_mut() {
                        if rng.gen::<f64>() < *p {
                            counters.injected_loss += 1;
                            continue;
                        }
                    }
                    let core = dp.core_mut();
                    match core.handle_packet(now, src, datagram, result) {
                        Verdict::Multicast { job } => match config.result_groups {
                            Some(base) => {
                                let group = SocketAddrV4::new(result_group(base, job), data_port);
                                outq.push(group, result);
                                counters.tx_group_results += 1;
                                taps.record_datagram(*capture_addr, group, result);
                            }
                            None => {
                                let members = core.members(job).unwrap_or(&[]);
                                outq.push_to_all(members.iter().copied(), result);
                                for &member in members {
                                    taps.record_datagram(*capture_addr, member, result);
                                }
                            }
                        },
                        Verdict::Unicast { to } => {
                            outq.push(to, result);
                            taps.record_datagram(*capture_addr, to, result);
                        }
                        Verdict::Absorbed | Verdict::Drop(_) => {}
                    }
                }
            }
            self.flush_data(fd);
            if n < self.config.batch {
                break;
            }
        }
    }

    /// Sends the queued results; GSO errors switch to plain sends for good.
    fn flush_data(&mut self, fd: RawFd) {
        if self.outq.is_empty() {
            return;
        }
        let gso = self.offloads.gso;
        let (data, runs) = self.outq.plan(gso);
        let mut pending: Vec<_> = runs.to_vec();
        let mut start = 0;
        let mut full_waits = 0;
        while start < pending.len() {
            match udp_batch::send_runs(fd, data, &pending[start..]) {
                Ok(k) => {
                    self.counters.tx_syscalls += 1;
                    for run in &pending[start..start + k] {
                        let segs = run.segment.map_or(1, |s| run.len.div_ceil(usize::from(s)));
                        self.counters.tx_datagrams += segs as u64;
                        self.counters.tx_gso_messages += u64::from(run.segment.is_some());
                    }
                    start += k;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Wait briefly for the send buffer; drop the rest after
                    // that (workers retransmit and get the result by unicast).
                    full_waits += 1;
                    let mut fds = [pollfd(fd, libc::POLLOUT)];
                    if full_waits > 3
                        || udp_batch::poll(&mut fds, Some(Duration::from_millis(10))).is_err()
                    {
                        let rest: usize = pending[start..]
                            .iter()
                            .map(|r| r.segment.map_or(1, |s| r.len.div_ceil(usize::from(s))))
                            .sum();
                        self.counters.tx_dropped_full += rest as u64;
                        break;
                    }
                }
                Err(e) => {
                    let run = pending[start];
                    if run.segment.is_some() && self.offloads.gso {
                        if self.config.log {
                            eprintln!("switch-emu: GSO send refused ({e}); falling back to one datagram per message");
                        }
                        self.offloads.gso = false;
                        self.counters.gso_fallbacks += 1;
                    }
                    if run.segment.is_some() {
                        pending.splice(start..=start, split(run));
                    } else {
                        self.counters.tx_errors += 1;
                        start += 1;
                    }
                }
            }
        }
        self.outq.clear();
    }
}

/// The driver's counters for status replies, with the capture's when one runs.
fn driver_map(counters: &DriverCounters, taps: &Taps) -> BTreeMap<String, u64> {
    let mut map = counters.map();
    if taps.pcap.is_some() || taps.pcap_error.is_some() {
        map.insert("pcap_records".into(), taps.pcap_records());
    }
    map
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    controls: Controls,
    addrs: ServerAddrs,
    thread: JoinHandle<Result<StatusReport, ServerError>>,
}

impl ServerHandle {
    /// Where the server listens.
    pub fn local_addrs(&self) -> ServerAddrs {
        self.addrs
    }

    /// Shutdown and dump triggers.
    pub fn controls(&self) -> Controls {
        self.controls.clone()
    }

    /// Asks the server to stop.
    pub fn shutdown(&self) {
        self.controls.shutdown();
    }

    /// Waits for the server to stop; returns its final status.
    pub fn join(self) -> Result<StatusReport, ServerError> {
        self.thread
            .join()
            .map_err(|_| ServerError::Invalid("the server thread panicked".into()))?
    }
}
