//! The deterministic simulator: n worker [`Engine`]s and one [`SwitchCore`]
//! connected in memory. Time is simulated (a base `Instant` plus offsets);
//! datagrams and worker starts sit in one queue ordered by time, ties broken
//! by insertion order, so a run is a pure function of its configuration and
//! seed. The simulator only moves bytes and time: every protocol decision
//! is the engine's or the core's.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use host_agent::engine::{Engine, EngineConfig, EngineError, Event};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switch_emu::core::{Config, JobSpec, SwitchCore, Verdict};

use crate::link::{Fate, Link, LinkFaults};

/// Everything a simulation depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of workers (1..=32 with the default switch limits).
    pub world: u16,
    /// Window (slots leased to the job).
    pub window: u16,
    /// Elements per packet.
    pub elements_per_packet: u16,
    /// Job id.
    pub job_id: u16,
    /// Job key.
    pub key: u32,
    /// First slot of the lease.
    pub slot_base: u16,
    /// Every worker-to-switch direction.
    pub uplink: LinkFaults,
    /// Every switch-to-worker direction.
    pub downlink: LinkFaults,
    /// Workers start each operation at a random offset up to this.
    pub start_skew: Duration,
    /// Engines' initial retransmission timeout.
    pub retransmit_timeout: Duration,
    /// Engines' backoff cap.
    pub max_retransmit_timeout: Duration,
    /// Engines' stall report threshold.
    pub stall_timeout: Duration,
    /// Simulated time without any accepted result after which a run is a hang.
    pub hang_timeout: Duration,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            world: 2,
            window: 4,
            elements_per_packet: 4,
            job_id: 3,
            key: 0x5eed_cafe,
            slot_base: 16,
            uplink: LinkFaults::PERFECT,
            downlink: LinkFaults::PERFECT,
            start_skew: Duration::ZERO,
            retransmit_timeout: Duration::from_millis(2),
            max_retransmit_timeout: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(5),
            hang_timeout: Duration::from_secs(30),
            seed: 0,
        }
    }
}

/// Why a simulated allreduce did not produce results.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration or the inputs are unusable.
    #[error("invalid simulation: {0}")]
    Invalid(String),
    /// An engine refused a call.
    #[error("rank {rank}: {error}")]
    Engine {
        /// The rank whose engine refused.
        rank: usize,
        /// Its error.
        error: EngineError,
    },
    /// No result was accepted for `hang_timeout` of simulated time.
    #[error("hang: {0}")]
    Hang(String),
}

/// Counters of the simulated network (the switch counts its own verdicts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Datagrams handed to a link.
    pub sent: u64,
    /// Copies delivered.
    pub delivered: u64,
    /// Datagrams lost.
    pub dropped: u64,
    /// Datagrams duplicated.
    pub duplicated: u64,
    /// Copies held back by an extra delay.
    pub reordered: u64,
    /// `Event::Stalled` reports of all engines.
    pub stalls: u64,
}

/// Where a queued item goes.
#[derive(Debug)]
enum Item {
    /// A datagram from `from` arrives at the switch.
    ToSwitch { from: usize, bytes: Vec<u8> },
    /// A datagram arrives at worker `to`.
    ToWorker { to: usize, bytes: Vec<u8> },
    /// Worker `rank` starts its pending operation.
    Start { rank: usize },
}

/// A queued item with its time and tiebreak.
#[derive(Debug)]
struct Scheduled {
    at: Duration,
    order: u64,
    item: Item,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// A tensor waiting for its worker's start time.
#[derive(Debug)]
enum Input {
    I32(Vec<i32>),
    F32(Vec<f32>),
}

/// n engines, one switch core and the links between them (see module docs).
#[derive(Debug)]
pub struct Sim {
    config: SimConfig,
    base: Instant,
    now: Duration,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_order: u64,
    engines: Vec<Engine>,
    core: SwitchCore,
    members: Vec<SocketAddrV4>,
    uplinks: Vec<Link>,
    downlinks: Vec<Link>,
    rng: SmallRng,
    pending: Vec<Option<Input>>,
    stats: SimStats,
    buf: Vec<u8>,
    out: Vec<u8>,
}

/// Seed of link `index` (uplinks 0..n, downlinks n..2n) or of the
/// simulator's own choices (`u64::MAX`), derived from the run's seed.
fn sub_seed(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Sim {
    /// Builds the engines, the core (with the job installed) and the links.
    pub fn new(config: SimConfig) -> Result<Sim, SimError> {
        config.uplink.validate().map_err(SimError::Invalid)?;
        config.downlink.validate().map_err(SimError::Invalid)?;
        let world = usize::from(config.world);
        let members: Vec<SocketAddrV4> = (0..world)
            .map(|r| {
                SocketAddrV4::new(
                    Ipv4Addr::new(10, 0, (r / 250) as u8, (r % 250) as u8 + 1),
                    40_000 + r as u16,
                )
            })
            .collect();
        let defaults = Config::default();
        let core_config = Config {
            max_elements_per_packet: defaults
                .max_elements_per_packet
                .max(config.elements_per_packet),
            slots: defaults
                .slots
                .max(config.slot_base.saturating_add(config.window)),
            ..defaults
        };
        let mut core =
            SwitchCore::new(core_config).map_err(|e| SimError::Invalid(e.to_string()))?;
        core.install_job(JobSpec {
            id: config.job_id,
            key: config.key,
            slot_base: config.slot_base,
            slot_count: config.window,
            world: config.world,
            members: members.clone(),
        })
        .map_err(|e| SimError::Invalid(e.to_string()))?;
        let engines = (0..config.world)
            .map(|rank| {
                Engine::new(EngineConfig {
                    job_id: config.job_id,
                    key: config.key,
                    rank,
                    world: config.world,
                    slot_base: config.slot_base,
                    window: config.window,
                    elements_per_packet: config.elements_per_packet,
                    retransmit_timeout: config.retransmit_timeout,
                    max_retransmit_timeout: config.max_retransmit_timeout,
                    stall_timeout: config.stall_timeout,
                })
                .map_err(|error| SimError::Engine {
                    rank: usize::from(rank),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = world as u64;
        let uplinks = (0..n)
            .map(|i| Link::new(config.uplink, sub_seed(config.seed, i)))
            .collect();
        let downlinks = (0..n)
            .map(|i| Link::new(config.downlink, sub_seed(config.seed, n + i)))
            .collect();
        Ok(Sim {
            rng: SmallRng::seed_from_u64(sub_seed(config.seed, u64::MAX)),
            base: Instant::now(),
            now: Duration::ZERO,
            queue: BinaryHeap::new(),
            next_order: 0,
            engines,
            core,
            members,
            uplinks,
            downlinks,
            pending: (0..world).map(|_| None).collect(),
            stats: SimStats::default(),
            buf: Vec::new(),
            out: Vec::new(),
            config,
        })
    }

    /// The engines, by rank.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// The switch core.
    pub fn core(&self) -> &SwitchCore {
        &self.core
    }

    /// Network counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Simulated time since the simulation began.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// Allreduce of one i32 tensor per rank; returns each rank's result.
    pub fn allreduce_i32(&mut self, inputs: &[Vec<i32>]) -> Result<Vec<Vec<i32>>, SimError> {
        let len = self.check_inputs(inputs.iter().map(Vec::len))?;
        self.run(inputs.iter().map(|d| Input::I32(d.clone())).collect())?;
        self.take(|engine, out: &mut Vec<i32>| {
            out.resize(len, 0);
            engine.take_i32(out)
        })
    }

    /// Allreduce of one f32 tensor per rank; returns each rank's result.
    pub fn allreduce_f32(&mut self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, SimError> {
        let len = self.check_inputs(inputs.iter().map(Vec::len))?;
        self.run(inputs.iter().map(|d| Input::F32(d.clone())).collect())?;
        self.take(|engine, out: &mut Vec<f32>| {
            out.resize(len, 0.0);
            engine.take_f32(out)
        })
    }

    fn check_inputs(
        &self,
        mut lens: impl ExactSizeIterator<Item = usize>,
    ) -> Result<usize, SimError> {
        if lens.len() != self.engines.len() {
            return Err(SimError::Invalid(format!(
                "{} inputs for {} workers",
                lens.len(),
                self.engines.len()
            )));
        }
        let first = lens.next().unwrap_or(0);
        if lens.any(|l| l != first) {
            return Err(SimError::Invalid("inputs differ in length".into()));
        }
        Ok(first)
    }

    fn take<T: Default>(
        &mut self,
        mut take: impl FnMut(&mut Engine, &mut Vec<T>) -> Result<(), EngineError>,
    ) -> Result<Vec<Vec<T>>, SimError> {
        let mut results = Vec::with_capacity(self.engines.len());
        for (rank, engine) in self.engines.iter_mut().enumerate() {
            let mut out = Vec::new();
            take(engine, &mut out).map_err(|error| SimError::Engine { rank, error })?;
            results.push(out);
        }
        Ok(results)
    }

    fn schedule(&mut self, at: Duration, item: Item) {
        let order = self.next_order;
        self.next_order += 1;
        self.queue.push(Reverse(Scheduled { at, order, item }));
    }

    fn count_fate(&mut self, fate: &Fate) {
        self.stats.sent += 1;
        self.stats.dropped += u64::from(fate.dropped);
        self.stats.duplicated += u64::from(fate.duplicated);
        self.stats.reordered += u64::from(fate.reordered);
    }

    fn send_up(&mut self, from: usize, bytes: &[u8]) {
        let fate = self.uplinks[from].transmit();
        self.count_fate(&fate);
        for delay in fate.arrivals.into_iter().flatten() {
            let item = Item::ToSwitch {
                from,
                bytes: bytes.to_vec(),
            };
            self.schedule(self.now + delay, item);
        }
    }

    fn send_down(&mut self, to: usize, bytes: &[u8]) {
        let fate = self.downlinks[to].transmit();
        self.count_fate(&fate);
        for delay in fate.arrivals.into_iter().flatten() {
            let item = Item::ToWorker {
                to,
                bytes: bytes.to_vec(),
            };
            self.schedule(self.now + delay, item);
        }
    }

    /// Runs one operation on every engine until all are done.
    fn run(&mut self, inputs: Vec<Input>) -> Result<(), SimError> {
        let skew = self.config.start_skew;
        for (rank, input) in inputs.into_iter().enumerate() {
            self.pending[rank] = Some(input);
            let offset = self.rng.gen_range(Duration::ZERO..=skew);
            self.schedule(self.now + offset, Item::Start { rank });
        }
        let mut done = vec![false; self.engines.len()];
        let mut progress = self.results_received();
        let mut last_progress = self.now;
        loop {
            self.flush(&mut done);
            if done.iter().all(|d| *d) {
                return Ok(());
            }
            let received = self.results_received();
            if received != progress {
                progress = received;
                last_progress = self.now;
            }
            let next = self.next_wakeup();
            let limit = last_progress + self.config.hang_timeout;
            match next {
                Some(at) if at <= limit => self.now = self.now.max(at),
                _ => return Err(SimError::Hang(self.describe_hang(next, &done))),
            }
            while let Some(Reverse(top)) = self.queue.peek() {
                if top.at > self.now {
                    break;
                }
                let Some(Reverse(Scheduled { item, .. })) = self.queue.pop() else {
                    break;
                };
                self.deliver(item)?;
            }
            let now = self.instant();
            for engine in &mut self.engines {
                if engine.poll_timeout().is_some_and(|t| t <= now) {
                    engine.handle_timeout(now);
                }
            }
        }
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn results_received(&self) -> u64 {
        self.engines
            .iter()
            .map(|e| e.stats().results_received)
            .sum()
    }

    /// The earliest queued item or engine timer.
    fn next_wakeup(&self) -> Option<Duration> {
        let queued = self.queue.peek().map(|Reverse(s)| s.at);
        let timers = self
            .engines
            .iter()
            .filter_map(|e| e.poll_timeout())
            .map(|t| t.saturating_duration_since(self.base))
            .min();
        match (queued, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends whatever the engines have to send and collects their events.
    fn flush(&mut self, done: &mut [bool]) {
        let now = self.instant();
        for (rank, finished) in done.iter_mut().enumerate() {
            let mut buf = std::mem::take(&mut self.buf);
            while self.engines[rank].poll_transmit(now, &mut buf) {
                self.send_up(rank, &buf);
            }
            self.buf = buf;
            while let Some(event) = self.engines[rank].poll_event() {
                match event {
                    Event::Done => *finished = true,
                    Event::Stalled { .. } => self.stats.stalls += 1,
                }
            }
        }
    }

    fn deliver(&mut self, item: Item) -> Result<(), SimError> {
        let now = self.instant();
        match item {
            Item::Start { rank } => {
                let engine = &mut self.engines[rank];
                let started = match self.pending[rank].take() {
                    Some(Input::I32(data)) => engine.start_i32(now, &data),
                    Some(Input::F32(data)) => engine.start_f32(now, &data),
                    None => Ok(()),
                };
                started.map_err(|error| SimError::Engine { rank, error })?;
            }
            Item::ToWorker { to, bytes } => {
                self.stats.delivered += 1;
                self.engines[to].handle_packet(now, &bytes);
            }
            Item::ToSwitch { from, bytes } => {
                self.stats.delivered += 1;
                let mut out = std::mem::take(&mut self.out);
                out.clear();
                let verdict = self
                    .core
                    .handle_packet(now, self.members[from], &bytes, &mut out);
                match verdict {
                    Verdict::Multicast { job } => {
                        let count = self.core.members(job).map_or(0, <[_]>::len);
                        for to in 0..count {
                            self.send_down(to, &out);
                        }
                    }
                    Verdict::Unicast { to } => {
                        if let Some(rank) = self.members.iter().position(|m| *m == to) {
                            self.send_down(rank, &out);
                        }
                    }
                    Verdict::Absorbed | Verdict::Drop(_) => {}
                }
                self.out = out;
            }
        }
        Ok(())
    }

    /// What a hang looked like, for the failure message.
    fn describe_hang(&self, next: Option<Duration>, done: &[bool]) -> String {
        let mut s = format!(
            "no result accepted for {:?} of simulated time (now {:?}, next wakeup {:?}, seed {})",
            self.config.hang_timeout, self.now, next, self.config.seed
        );
        for (rank, engine) in self.engines.iter().enumerate() {
            let _ = write!(
                s,
                "\n  rank {rank}: done {} busy {} next_seq {} {:?}",
                done[rank],
                engine.is_busy(),
                engine.next_seq(),
                engine.stats()
            );
        }
        let incomplete = self.core.incomplete_slots(self.config.job_id);
        let _ = write!(s, "\n  switch: {} incomplete rounds", incomplete.len());
        for view in incomplete.iter().take(8) {
            let _ = write!(
                s,
                "\n    slot {} set {} seq {} missing {:?}",
                view.slot,
                u8::from(view.set),
                view.seq,
                view.missing
            );
        }
        let _ = write!(s, "\n  switch counters: {:?}", self.core.counters());
        s
    }
}
