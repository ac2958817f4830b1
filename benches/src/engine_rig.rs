//! The worker-engine workload of `benches/engine.rs` (see README.md): four
//! engines and a switch core exchanging in memory, and the replay of one
//! rank's side of that exchange.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use host_agent::engine::{Engine, EngineConfig};
use switch_emu::core::{Config, JobSpec, SwitchCore, Verdict};

use crate::{random_f32, random_i32};

/// Workers of the job.
pub const WORLD: u16 = 4;
/// Window (slots leased).
pub const WINDOW: u16 = 64;
/// 1 MiB of 4-byte elements.
pub const LEN: usize = 1 << 18;
const KEY: u32 = 0x5eed_cafe;

/// Element type of the allreduce.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    I32,
    F32,
}

/// Every rank's input tensor.
#[derive(Debug, Clone)]
pub enum Inputs {
    I32(Vec<Vec<i32>>),
    F32(Vec<Vec<f32>>),
}

impl Inputs {
    pub fn new(kind: Kind) -> Inputs {
        let seeds = 0..u64::from(WORLD);
        match kind {
            Kind::I32 => Inputs::I32(seeds.map(|s| random_i32(LEN, s)).collect()),
            Kind::F32 => Inputs::F32(seeds.map(|s| random_f32(LEN, s)).collect()),
        }
    }

    pub fn start(&self, engine: &mut Engine, now: Instant, rank: usize) {
        match self {
            Inputs::I32(data) => engine.start_i32(now, &data[rank]).expect("start"),
            Inputs::F32(data) => engine.start_f32(now, &data[rank]).expect("start"),
        }
    }
}

fn members() -> Vec<SocketAddrV4> {
    (0..WORLD)
        .map(|r| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + r as u8), 40_000))
        .collect()
}

/// Rank `rank`'s engine of the job, idle.
pub fn engine(rank: u16, elems: u16) -> Engine {
    Engine::new(EngineConfig {
        job_id: 1,
        key: KEY,
        rank,
        world: WORLD,
        slot_base: 0,
        window: WINDOW,
        elements_per_packet: elems,
        ..EngineConfig::default()
    })
    .expect("engine config")
}

fn core(elems: u16) -> SwitchCore {
    let mut core = SwitchCore::new(Config {
        max_workers: 32,
        slots: WINDOW,
        max_elements_per_packet: elems,
    })
    .expect("core config");
    core.install_job(JobSpec {
        id: 1,
        key: KEY,
        slot_base: 0,
        slot_count: WINDOW,
        world: WORLD,
        members: members(),
    })
    .expect("job");
    core
}

/// Four started engines and a switch, exchanging in lockstep.
#[derive(Debug)]
pub struct System {
    /// The engines, index = rank.
    pub engines: Vec<Engine>,
    core: SwitchCore,
    members: Vec<SocketAddrV4>,
    inboxes: Vec<Vec<Vec<u8>>>,
    buf: Vec<u8>,
    out: Vec<u8>,
    now: Instant,
}

impl System {
    pub fn new(inputs: &Inputs, elems: u16, now: Instant) -> System {
        let engines = (0..WORLD)
            .map(|rank| {
                let mut e = engine(rank, elems);
                inputs.start(&mut e, now, usize::from(rank));
                e
            })
            .collect();
        System {
            engines,
            core: core(elems),
            members: members(),
            inboxes: vec![Vec::new(); usize::from(WORLD)],
            buf: Vec::new(),
            out: Vec::new(),
            now,
        }
    }

    /// One lockstep round; returns the results delivered to each rank.
    /// `record` keeps rank 0's datagrams.
    fn round(&mut self, record: Option<&mut Log>) -> usize {
        for engine in &mut self.engines {
            while engine.poll_transmit(self.now, &mut self.buf) {
                let src = self.members[usize::from(engine.config().rank)];
                match self
                    .core
                    .handle_packet(self.now, src, &self.buf, &mut self.out)
                {
                    Verdict::Multicast { .. } => {
                        for inbox in &mut self.inboxes {
                            inbox.push(self.out.clone());
                        }
                    }
                    Verdict::Absorbed => {}
                    other => panic!("unexpected verdict {other:?}"),
                }
            }
        }
        let delivered = self.inboxes[0].len();
        for (engine, inbox) in self.engines.iter_mut().zip(&mut self.inboxes) {
            for datagram in inbox.iter() {
                engine.handle_packet(self.now, datagram);
            }
        }
        if let Some(log) = record {
            log.push_round(&self.inboxes[0]);
        }
        for inbox in &mut self.inboxes {
            inbox.clear();
        }
        delivered
    }

    /// Runs to completion; returns the number of lockstep rounds.
    pub fn run(&mut self, mut record: Option<&mut Log>) -> usize {
        let mut rounds = 0;
        while self.engines.iter().any(Engine::is_busy) {
            let delivered = self.round(record.as_deref_mut());
            assert!(delivered > 0, "the in-memory exchange made no progress");
            rounds += 1;
        }
        rounds
    }
}

/// The results one rank received, per lockstep round, back to back.
#[derive(Debug, Default)]
pub struct Log {
    bytes: Vec<u8>,
    /// End offset in `bytes` of each datagram.
    ends: Vec<usize>,
    /// Number of datagrams in each round.
    rounds: Vec<usize>,
}

impl Log {
    fn push_round(&mut self, datagrams: &[Vec<u8>]) {
        for d in datagrams {
            self.bytes.extend_from_slice(d);
            self.ends.push(self.bytes.len());
        }
        self.rounds.push(datagrams.len());
    }
}

/// Rank 0's side of a recorded exchange, replayed into `engine`.
pub fn replay(engine: &mut Engine, log: &Log, now: Instant, buf: &mut Vec<u8>) -> u64 {
    let mut sent = 0;
    let mut start = 0;
    let mut ends = log.ends.iter();
    for &count in &log.rounds {
        while engine.poll_transmit(now, buf) {
            sent += 1;
        }
        for &end in ends.by_ref().take(count) {
            engine.handle_packet(now, &log.bytes[start..end]);
            start = end;
        }
    }
    sent
}

/// The finished result as bits (f32 compared bit for bit).
pub fn take(engine: &mut Engine, kind: Kind) -> Vec<u32> {
    match kind {
        Kind::I32 => {
            let mut out = vec![0i32; LEN];
            engine.take_i32(&mut out).expect("take");
            out.into_iter().map(|v| v as u32).collect()
        }
        Kind::F32 => {
            let mut out = vec![0f32; LEN];
            engine.take_f32(&mut out).expect("take");
            out.into_iter().map(f32::to_bits).collect()
        }
    }
}
