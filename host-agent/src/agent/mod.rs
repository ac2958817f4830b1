//! The allreduce API for training jobs: join a job on the switch, then sum
//! tensors across its workers.
//!
//! [`Agent`] wires the sans-IO slot engine to a [`UdpTransport`] and the
//! control connection and drives it with the real clock. One allreduce at a
//! time runs in the calling thread ([`Agent::allreduce_f32`]); for overlap
//! with computation, [`Agent::spawn`] moves the agent to a background thread
//! and returns an [`AgentHandle`] whose calls return a [`Pending`] result.

mod error;
mod handle;
mod options;
mod watchdog;

use std::net::{IpAddr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use packet_format::control::{JobParams, JoinRequest, Reply, Request};
use packet_format::{ELEMENT_LEN, HEADER_LEN};

use crate::control_client::{self, ControlClient};
use crate::engine::{Engine, EngineConfig, EngineError, EngineStats, Event, Input, Output};
use crate::transport::{TransportStats, UdpTransport};
use watchdog::Watchdog;

pub use error::AgentError;
pub use handle::{AgentHandle, Pending};
pub use options::{JoinOptions, DEFAULT_RETRANSMIT_TIMEOUT, DEFAULT_WINDOW};

/// Longest wait in the I/O loop before looking at the control connection again.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// How often a busy loop looks for a `job_failed` notice.
const CONTROL_CHECK: Duration = Duration::from_millis(5);

/// Time given to the switch to answer a leave or a status query.
const CONTROL_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Allreduce calls completed.
    pub allreduces: u64,
    /// Elements reduced by them.
    pub elements: u64,
    /// Time spent inside allreduce calls.
    pub busy: Duration,
    /// The engine's counters (packets, retransmissions, results).
    pub engine: EngineStats,
    /// The socket's counters (system calls, GSO messages, bytes).
    pub transport: TransportStats,
}

/// A worker that has joined a job (see the module docs).
///
/// ```
/// use host_agent::{Agent, JoinOptions};
/// use switch_emu::udp::{Server, ServerConfig};
///
/// // A switch on ephemeral loopback ports, in this process.
/// let server = Server::bind(ServerConfig { log: false, ..ServerConfig::loopback_ephemeral() })?;
/// let control = std::net::SocketAddr::V4(server.local_addrs().control);
/// let switch = server.spawn()?;
///
/// // Two workers; each would normally be its own process.
/// let workers: Vec<_> = (0..2u16)
///     .map(|rank| {
///         std::thread::spawn(move || -> Result<Vec<f32>, host_agent::AgentError> {
///             let mut agent = Agent::join(JoinOptions::new("example", rank, 2).control(control))?;
///             let mut grads = vec![0.5 + f32::from(rank); 1000];
///             agent.allreduce_f32(&mut grads)?;
///             agent.leave()?;
///             Ok(grads)
///         })
///     })
///     .collect();
/// for w in workers {
///     let sum = w.join().unwrap()?;
///     assert!(sum.iter().all(|&x| (x - 2.0).abs() < 1e-6));
/// }
/// switch.shutdown();
/// switch.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Agent {
    engine: Engine,
    transport: UdpTransport,
    control: ControlClient,
    control_addr: SocketAddr,
    params: JobParams,
    rank: u16,
    /// Set once the job can no longer be used (why).
    ended: Option<String>,
    allreduces: u64,
    elements: u64,
    busy: Duration,
}

impl Agent {
    /// Connects to the switch, joins the job and waits until every rank has
    /// joined (or the join timeout passes).
    pub fn join(options: JoinOptions) -> Result<Agent, AgentError> {
        if !options.control.is_ipv4() {
            return Err(AgentError::InvalidOptions(format!(
                "control address {} is not IPv4",
                options.control
            )));
        }
        let mut control = ControlClient::connect(options.control, options.connect_timeout)?;
        let local_ip = local_data_ip(&options, &control)?;
        let bind = SocketAddrV4::new(local_ip, options.bind.map_or(0, |b| b.port()));
        let mut transport = UdpTransport::bind(bind, options.transport.clone())?;
        control.send(&Request::Join(JoinRequest {
            job: options.job.clone(),
            rank: options.rank,
            world: options.world,
            data_addr: transport.local_addr(),
            window: options.window,
            elements_per_packet: options.elements_per_packet,
        }))?;
        let started = Instant::now();
        let params = match control.recv(Some(started + options.join_timeout))? {
            Some(Reply::Joined(params)) => params,
            Some(Reply::Error(e)) => return Err(AgentError::JoinRejected(e)),
            Some(Reply::JobFailed { reason, ranks }) => {
                return Err(AgentError::JobFailed { reason, ranks })
            }
            Some(other) => {
                return Err(AgentError::Protocol(format!(
                    "unexpected reply to join: {other:?}"
                )))
            }
            None => {
                return Err(AgentError::JoinTimeout {
                    waited: started.elapsed(),
                })
            }
        };
        let mut switch = options.switch_data.unwrap_or(params.switch_data_addr);
        if switch.ip().is_unspecified() {
            // A switch bound to every address: reach its data port where its control plane is.
            if let SocketAddr::V4(c) = options.control {
                switch.set_ip(*c.ip());
            }
        }
        let max_datagram = HEADER_LEN + ELEMENT_LEN * usize::from(params.elements_per_packet);
        transport.connect(switch, max_datagram)?;
        if let Some(group) = params.result_group {
            // Without the group this worker would see results only as answers
            // to its retransmissions: refuse to run that way.
            transport.join_group(group, max_datagram).map_err(|e| {
                AgentError::Io(std::io::Error::new(
                    e.kind(),
                    format!("joining the result group {group}: {e}"),
                ))
            })?;
        }
        let engine = Engine::new(EngineConfig {
            retransmit_timeout: options.retransmit_timeout,
            max_retransmit_timeout: options.max_retransmit_timeout,
            stall_timeout: options.stall_timeout,
            ..EngineConfig::from_params(&params, options.rank)
        })?;
        Ok(Agent {
            engine,
            transport,
            control,
            control_addr: options.control,
            params,
            rank: options.rank,
            ended: None,
            allreduces: 0,
            elements: 0,
            busy: Duration::ZERO,
        })
    }

    /// The job's parameters as the switch assigned them.
    pub fn params(&self) -> &JobParams {
        &self.params
    }

    /// This worker's rank.
    pub fn rank(&self) -> u16 {
        self.rank
    }

    /// Number of workers in the job.
    pub fn world(&self) -> u16 {
        self.params.world
    }

    /// The local data address the switch registered.
    pub fn data_addr(&self) -> SocketAddrV4 {
        self.transport.local_addr()
    }

    /// The switch's data address the agent sends to.
    pub fn switch_data_addr(&self) -> Option<SocketAddrV4> {
        self.transport.peer()
    }

    /// Whether the data socket merges sends into UDP GSO messages and the
    /// kernel coalesces receives (GRO).
    pub fn offloads(&self) -> (bool, bool) {
        (self.transport.gso(), self.transport.gro())
    }

    /// Counters so far.
    pub fn stats(&self) -> AgentStats {
        AgentStats {
            allreduces: self.allreduces,
            elements: self.elements,
            busy: self.busy,
            engine: self.engine.stats().clone(),
            transport: self.transport.stats().clone(),
        }
    }

    /// Replaces `data` by the element-wise wrapping sum over all workers;
    /// bit-identical on every worker. Results are written into `data` as
    /// they arrive; if the allreduce fails, `data` holds its input again.
    pub fn allreduce_i32(&mut self, data: &mut [i32]) -> Result<(), AgentError> {
        self.allreduce_in_place(data)
    }

    /// Replaces `data` by the element-wise sum over all workers, in block
    /// fixed point: identical on every worker, within
    /// [`crate::quantize::error_bound`] of the exact sum. NaN or infinity
    /// in the input is refused ([`AgentError::NonFinite`]) before anything is
    /// sent. As for [`Agent::allreduce_i32`], a failed allreduce leaves
    /// `data` as it was.
    pub fn allreduce_f32(&mut self, data: &mut [f32]) -> Result<(), AgentError> {
        self.allreduce_in_place(data)
    }

    /// Writes the element-wise wrapping sum over all workers of `input`
    /// into `output` (of the same length); bit-identical on every worker.
    /// `input` is only read, so nothing is copied to keep it: the fastest
    /// of the calls when the caller has a second buffer. If the allreduce
    /// fails, `output` holds some results and the rest unchanged.
    pub fn allreduce_i32_into(
        &mut self,
        input: &[i32],
        output: &mut [i32],
    ) -> Result<(), AgentError> {
        self.allreduce_out_of_place(input, output)
    }

    /// [`Agent::allreduce_f32`] with input and output apart, as
    /// [`Agent::allreduce_i32_into`]: `output` gets the sum of `input`
    /// over all workers.
    pub fn allreduce_f32_into(
        &mut self,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), AgentError> {
        self.allreduce_out_of_place(input, output)
    }

    /// One allreduce on `data`, in place; on failure `data` gets back the
    /// input of the blocks that were sent (the rest was never written).
    fn allreduce_in_place<T: Element>(&mut self, data: &mut [T]) -> Result<(), AgentError> {
        self.check_usable()?;
        let started = Instant::now();
        T::start_in_place(&mut self.engine, started, data)?;
        if let Err(e) = self.run(started, None, T::output(data)) {
            if let Some(input) = T::copied_input(&self.engine) {
                data[..input.len()].copy_from_slice(input);
            }
            return Err(e);
        }
        self.engine.finish_in_place()?;
        self.finished(started, data.len());
        Ok(())
    }

    fn allreduce_out_of_place<T: Element>(
        &mut self,
        input: &[T],
        output: &mut [T],
    ) -> Result<(), AgentError> {
        self.check_usable()?;
        if input.len() != output.len() {
            return Err(AgentError::LengthMismatch {
                input: input.len(),
                output: output.len(),
            });
        }
        let started = Instant::now();
        T::start_out_of_place(&mut self.engine, started, input)?;
        self.run(started, Some(T::input(input)), T::output(output))?;
        self.engine.finish_in_place()?;
        self.finished(started, input.len());
        Ok(())
    }

    fn check_usable(&self) -> Result<(), AgentError> {
        match &self.ended {
            Some(why) => Err(AgentError::Ended(why.clone())),
            None => Ok(()),
        }
    }

    fn finished(&mut self, started: Instant, elements: usize) {
        self.allreduces += 1;
        self.elements += elements as u64;
        self.busy += started.elapsed();
    }

    /// Drives the started operation to its end, its packets built from
    /// `input` (out of place) and its results written into `out` as they
    /// arrive; a failure ends the agent (and the caller of an in-place
    /// operation restores `out` from the engine's copy of the input).
    fn run(
        &mut self,
        started: Instant,
        input: Option<Input<'_>>,
        out: Output<'_>,
    ) -> Result<(), AgentError> {
        let result = self.io_loop(input, out);
        if let Err(e) = &result {
            self.engine.abort();
            self.busy += started.elapsed();
            if !e.is_recoverable() {
                self.ended = Some(e.to_string());
            }
        }
        result
    }

    /// The blocking I/O loop: receive a batch, fire timers, take events,
    /// send what the engine allows, look at the control connection, and
    /// sleep in `poll` when there is nothing to do.
    fn io_loop(&mut self, input: Option<Input<'_>>, mut out: Output<'_>) -> Result<(), AgentError> {
        let mut last_control_check = Instant::now();
        let mut watchdog = Watchdog::new(self.engine.config().stall_timeout);
        loop {
            let now = Instant::now();
            let engine = &mut self.engine;
            let received = self
                .transport
                .recv(|d| engine.handle_packet_into(now, d, out.reborrow()))?;
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
            if let Some(event) = self.engine.poll_event() {
                match event {
                    Event::Done => return Ok(()),
                    Event::Stalled { slots, waited } => {
                        return Err(self.peer_timeout(slots, waited));
                    }
                }
            }
            let mut sent = 0;
            let engine = &mut self.engine;
            while self.transport.queue_with(|buf| match input {
                Some(input) => engine.poll_transmit_from(now, buf, input),
                None => engine.poll_transmit_into(now, buf, out.reborrow()),
            }) {
                sent += 1;
            }
            let flushed = self.transport.flush()?;
            let deadline = self.engine.poll_timeout();
            let can_move =
                received > 0 || sent > 0 || self.transport.queued() > 0 || deadline.is_some();
            if let Some(stuck) = watchdog.observe(now, can_move) {
                return Err(AgentError::Internal(format!(
                    "the allreduce cannot go on: nothing in flight and nothing to send for {stuck:?}"
                )));
            }
            if now.duration_since(last_control_check) >= CONTROL_CHECK {
                self.check_control()?;
                last_control_check = now;
            }
            if received == 0 && sent == 0 {
                let wait = deadline
                    .map_or(MAX_WAIT, |t| t.saturating_duration_since(Instant::now()))
                    .min(MAX_WAIT);
                self.transport
                    .wait(Some(self.control.as_raw_fd()), !flushed, Some(wait))?;
                self.check_control()?;
                last_control_check = Instant::now();
            }
        }
    }

    /// Returns an error if the switch has ended the job.
    fn check_control(&mut self) -> Result<(), AgentError> {
        match self.control.recv(None)? {
            None => Ok(()),
            Some(Reply::JobFailed { reason, ranks }) => {
                Err(AgentError::JobFailed { reason, ranks })
            }
            Some(other) => Err(AgentError::Protocol(format!(
                "unexpected message during the job: {other:?}"
            ))),
        }
    }

    /// The error for a stall, naming the missing ranks if the switch says.
    fn peer_timeout(&mut self, slots: Vec<u16>, waited: Duration) -> AgentError {
        // The switch may have ended the job meanwhile; that is the better answer.
        if let Err(e) = self.check_control() {
            return e;
        }
        let missing_ranks =
            control_client::request(self.control_addr, &Request::Status, CONTROL_REPLY_TIMEOUT)
                .ok()
                .and_then(|reply| match reply {
                    Reply::Status(doc) => {
                        control_client::missing_ranks(&doc, self.params.job_id, &slots)
                    }
                    _ => None,
                })
                .unwrap_or_default();
        AgentError::PeerTimeout {
            slots,
            missing_ranks,
            waited,
        }
    }

    /// Leaves the job cleanly (the switch keeps it until every rank has
    /// left, so slower peers still get their results) and returns the counters.
    pub fn leave(mut self) -> Result<AgentStats, AgentError> {
        let stats = self.stats();
        self.leave_inner()?;
        Ok(stats)
    }

    fn leave_inner(&mut self) -> Result<(), AgentError> {
        if self.ended.is_some() {
            return Ok(());
        }
        self.ended = Some("the agent left the job".into());
        self.control.send(&Request::Leave)?;
        let deadline = Instant::now() + CONTROL_REPLY_TIMEOUT;
        match self.control.recv(Some(deadline))? {
            Some(Reply::Left) => Ok(()),
            // The job ended before our leave arrived: nothing left to leave.
            Some(Reply::JobFailed { .. }) => Ok(()),
            Some(other) => Err(AgentError::Protocol(format!(
                "unexpected reply to leave: {other:?}"
            ))),
            None => Err(AgentError::Protocol("no reply to leave".into())),
        }
    }

    /// Moves the agent to a background thread; its calls then return
    /// [`Pending`] results so that computation can overlap communication.
    pub fn spawn(self) -> AgentHandle {
        AgentHandle::spawn(self)
    }
}

impl Drop for Agent {
    /// Leaves the job if [`Agent::leave`] was not called, so that peers are
    /// not failed by a disconnect.
    fn drop(&mut self) {
        let _ = self.leave_inner();
    }
}

/// The local IP for the data socket (see [`JoinOptions::bind`]).
fn local_data_ip(
    options: &JoinOptions,
    control: &ControlClient,
) -> Result<std::net::Ipv4Addr, AgentError> {
    if let Some(ip) = options
        .bind
        .map(|b| *b.ip())
        .filter(|ip| !ip.is_unspecified())
    {
        return Ok(ip);
    }
    let ip = match options.switch_data {
        // The route's source address towards the data plane (no packet is sent).
        Some(switch) => {
            let probe = UdpSocket::bind("0.0.0.0:0")?;
            probe.connect(switch)?;
            probe.local_addr()?.ip()
        }
        None => control.local_ip()?,
    };
    match ip {
        IpAddr::V4(ip) => Ok(ip),
        IpAddr::V6(ip) => Err(AgentError::InvalidOptions(format!(
            "local address {ip} is not IPv4"
        ))),
    }
}

/// The element types the agent reduces, with their in-place engine calls.
trait Element: Copy {
    fn start_in_place(engine: &mut Engine, now: Instant, data: &[Self]) -> Result<(), EngineError>;
    fn start_out_of_place(
        engine: &mut Engine,
        now: Instant,
        input: &[Self],
    ) -> Result<(), EngineError>;
    fn input(data: &[Self]) -> Input<'_>;
    fn output(data: &mut [Self]) -> Output<'_>;
    fn copied_input(engine: &Engine) -> Option<&[Self]>;
}

impl Element for i32 {
    fn start_in_place(engine: &mut Engine, now: Instant, data: &[i32]) -> Result<(), EngineError> {
        engine.start_i32_in_place(now, data)
    }
    fn start_out_of_place(
        engine: &mut Engine,
        now: Instant,
        input: &[i32],
    ) -> Result<(), EngineError> {
        engine.start_i32_out_of_place(now, input)
    }
    fn input(data: &[i32]) -> Input<'_> {
        Input::I32(data)
    }
    fn output(data: &mut [i32]) -> Output<'_> {
        Output::I32(data)
    }
    fn copied_input(engine: &Engine) -> Option<&[i32]> {
        engine.input_i32()
    }
}

impl Element for f32 {
    fn start_in_place(engine: &mut Engine, now: Instant, data: &[f32]) -> Result<(), EngineError> {
        engine.start_f32_in_place(now, data)
    }
    fn start_out_of_place(
        engine: &mut Engine,
        now: Instant,
        input: &[f32],
    ) -> Result<(), EngineError> {
        engine.start_f32_out_of_place(now, input)
    }
    fn input(data: &[f32]) -> Input<'_> {
        Input::F32(data)
    }
    fn output(data: &mut [f32]) -> Output<'_> {
        Output::F32(data)
    }
    fn copied_input(engine: &Engine) -> Option<&[f32]> {
        engine.input_f32()
    }
}
