//! Several jobs on one switch: three concurrent jobs (different world
//! sizes, dtypes, windows and packet sizes) keep exact results while a
//! hostile host replays job A's captured packets under job B's id, guesses
//! B's key from B's members' (spoofed) addresses, aims its own lease at A's
//! slots and sends to unknown jobs and ranks; every hostile datagram is
//! counted under its reason on the job it named. Also: a join that does not
//! fit in the pool fails at once, and the freed slots serve the next job.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use host_agent::control_client::ControlClient;
use host_agent::{Agent, AgentError};
use ina_tests::jobs::{self, JobShape};
use ina_tests::pcapfile::{self, Captured};
use packet_format::control::{ControlErrorKind, JobParams, JoinRequest, Reply, Request};
use packet_format::frame::{emit_udp, Endpoint};
use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};
use rand::{Rng, SeedableRng};
use switch_emu::control::status::StatusReport;
use switch_emu::taps::Taps;
use switch_emu::udp::{client, Server, ServerConfig};

const WAIT: Duration = Duration::from_secs(60);

/// Most allreduces a worker runs while waiting for the hostile host.
const MAX_ITERS: u32 = 100_000;

/// A one-shot gate every worker waits at until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
    fn wait(&self) {
        let (lock, cond) = &*self.0;
        let (open, timeout) = cond
            .wait_timeout_while(lock.lock().unwrap(), WAIT, |open| !*open)
            .unwrap();
        assert!(*open && !timeout.timed_out(), "gate never opened");
    }
}

#[derive(Clone, Copy)]
struct Tenant {
    shape: JobShape,
    float: bool,
    len: usize,
    iters: u32,
    seed: u32,
}

const TENANTS: [Tenant; 3] = [
    Tenant {
        shape: JobShape {
            name: "tenant-a",
            world: 2,
            window: 8,
            elements: 64,
        },
        float: false,
        len: 3000,
        iters: 12,
        seed: 11,
    },
    Tenant {
        shape: JobShape {
            name: "tenant-b",
            world: 3,
            window: 16,
            elements: 32,
        },
        float: true,
        len: 2500,
        iters: 8,
        seed: 22,
    },
    Tenant {
        shape: JobShape {
            name: "tenant-c",
            world: 4,
            window: 4,
            elements: 16,
        },
        float: false,
        len: 1200,
        iters: 8,
        seed: 33,
    },
];

enum Note {
    Joined {
        job: usize,
        rank: u16,
        params: JobParams,
        addr: SocketAddrV4,
    },
    FirstDone {
        job: usize,
    },
    Finished {
        job: usize,
        rank: u16,
        result_bits: Vec<Vec<u32>>,
    },
}

/// A rank and the bits of its float results, per iteration.
type RankResults = (u16, Vec<Vec<u32>>);

/// What the test has heard from the workers.
#[derive(Default)]
struct Books {
    params: HashMap<usize, JobParams>,
    members: HashMap<usize, Vec<SocketAddrV4>>,
    finished: HashMap<usize, Vec<RankResults>>,
    joined: usize,
    a_first_done: bool,
}

impl Books {
    fn note(&mut self, note: Note) {
        match note {
            Note::Joined {
                job,
                rank,
                params,
                addr,
            } => {
                self.params.insert(job, params);
                let m = self
                    .members
                    .entry(job)
                    .or_insert_with(|| vec![addr; usize::from(params.world)]);
                m[usize::from(rank)] = addr;
                self.joined += 1;
            }
            Note::FirstDone { job } => self.a_first_done |= job == 0,
            Note::Finished {
                job,
                rank,
                result_bits,
            } => {
                self.finished
                    .entry(job)
                    .or_default()
                    .push((rank, result_bits));
            }
        }
    }
}

/// Runs at least `iters` allreduces, then keeps going until the hostile
/// host is done (so that the attack meets running jobs); every rank of a
/// job stops after the same iteration: they agree by an allreduce of flags.
fn worker(
    control: SocketAddr,
    job: usize,
    rank: u16,
    notes: mpsc::Sender<Note>,
    gate: Gate,
    hostile_done: Arc<AtomicBool>,
) {
    let t = TENANTS[job];
    let mut agent = Agent::join(t.shape.options(control, rank)).expect("join");
    let params = *agent.params();
    notes
        .send(Note::Joined {
            job,
            rank,
            params,
            addr: agent.data_addr(),
        })
        .unwrap();
    let mut result_bits = Vec::new();
    for iter in 0..MAX_ITERS {
        if t.float {
            let mut data = jobs::input_f32(t.seed, rank, iter, t.len);
            agent.allreduce_f32(&mut data).expect("allreduce f32");
            jobs::check_f32(t.seed, t.shape.world, t.shape.elements, iter, &data).unwrap();
            result_bits.push(data.iter().map(|x| x.to_bits()).collect());
        } else {
            let mut data = jobs::input_i32(t.seed, rank, iter, t.len);
            agent.allreduce_i32(&mut data).expect("allreduce i32");
            jobs::check_i32(t.seed, t.shape.world, iter, &data).unwrap();
        }
        if iter == 0 && rank == 0 {
            notes.send(Note::FirstDone { job }).unwrap();
        }
        if iter + 1 >= t.iters {
            let mut stop = [i32::from(hostile_done.load(Ordering::SeqCst))];
            agent
                .allreduce_i32(&mut stop)
                .expect("allreduce of the stop flag");
            if stop[0] > 0 {
                break;
            }
        }
    }
    notes
        .send(Note::Finished {
            job,
            rank,
            result_bits,
        })
        .unwrap();
    // Stay joined until the test has read the job's counters.
    gate.wait();
    agent.leave().expect("leave");
}

/// A job that joins legitimately (one rank) and then misbehaves.
struct Intruder {
    sock: UdpSocket,
    params: JobParams,
    _control: ControlClient,
}

fn intrude(control: SocketAddr) -> Intruder {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(addr) = sock.local_addr().unwrap() else {
        unreachable!()
    };
    let mut ctl = ControlClient::connect(control, Duration::from_secs(5)).unwrap();
    ctl.send(&Request::Join(JoinRequest {
        job: "intruder".into(),
        rank: 0,
        world: 1,
        data_addr: addr,
        window: 2,
        elements_per_packet: 16,
    }))
    .unwrap();
    match ctl
        .recv(Some(Instant::now() + Duration::from_secs(5)))
        .unwrap()
    {
        Some(Reply::Joined(params)) => Intruder {
            sock,
            params,
            _control: ctl,
        },
        other => panic!("intruder join: {other:?}"),
    }
}

fn contribution(job: u16, rank: u16, key: u32, slot: u16, seq: u32) -> Vec<u8> {
    let repr = Repr {
        msg_type: MsgType::Contribution,
        set: false,
        flags: Flags::default(),
        job_id: job,
        rank,
        key,
        seq,
        slot,
        elem_count: 4,
        exponent: NO_EXPONENT,
    };
    let mut out = Vec::new();
    repr.emit_to_vec(&[1, 2, 3, 4], &mut out);
    out
}

/// Sends datagrams with a forged source address (IP_HDRINCL raw socket;
/// needs CAP_NET_RAW, which CI has: it runs as root).
struct Spoofer(socket2::Socket);

impl Spoofer {
    fn new() -> Option<Spoofer> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).ok()?;
        s.set_header_included_v4(true).ok()?;
        Some(Spoofer(s))
    }
    fn send(&self, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
        let ep = |a: SocketAddrV4| Endpoint {
            mac: [0; 6],
            ip: *a.ip(),
            port: a.port(),
        };
        let mut frame = Vec::new();
        emit_udp(ep(from), ep(to), payload, &mut frame);
        // Strip the Ethernet header: the raw socket takes the IPv4 packet.
        self.0
            .send_to(&frame[14..], &SocketAddr::V4(to).into())
            .unwrap();
    }
}

fn pace(i: usize) {
    if i % 8 == 7 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn header(d: &Captured) -> Option<Repr> {
    Repr::parse(&Packet::new_checked(&d.payload[..]).ok()?).ok()
}

fn job_view(report: &StatusReport, id: u16) -> &switch_emu::control::status::JobView {
    report
        .jobs
        .iter()
        .find(|j| j.id == id)
        .expect("job in status")
}

fn drops(report: &StatusReport, id: u16, reason: &str) -> u64 {
    job_view(report, id).counters.as_ref().unwrap().drops[reason]
}

#[test]
fn three_jobs_and_a_hostile_host() {
    let dir = std::env::temp_dir().join(format!("ina-multi-tenant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("switch.pcap");
    let server = Server::bind(ServerConfig {
        log: false,
        worker_timeout: Duration::from_secs(20),
        ..ServerConfig::loopback_ephemeral()
    })
    .unwrap()
    .with_taps(Taps::default().with_pcap(&pcap).unwrap());
    let addrs = server.local_addrs();
    let control = SocketAddr::V4(addrs.control);
    let switch = server.spawn().unwrap();

    let (tx, notes) = mpsc::channel();
    let gate = Gate::default();
    let hostile_done = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (job, t) in TENANTS.iter().enumerate() {
        for rank in 0..t.shape.world {
            let (tx, gate, done) = (tx.clone(), gate.clone(), Arc::clone(&hostile_done));
            workers.push(std::thread::spawn(move || {
                worker(control, job, rank, tx, gate, done)
            }));
        }
    }
    drop(tx);
    let total: usize = TENANTS.iter().map(|t| usize::from(t.shape.world)).sum();
    let mut books = Books::default();
    let next = || notes.recv_timeout(WAIT).expect("a worker failed or hung");
    while books.joined < total || !books.a_first_done {
        books.note(next());
    }
    let params = books.params.clone();
    let members = books.members.clone();
    let (a, b) = (params[&0], params[&1]);
    assert_ne!(a.key, b.key);
    let ids: Vec<u16> = params.values().map(|p| p.job_id).collect();

    // The hostile host: job A's contributions as captured by the switch
    // (flushed by the dump trigger), replayed under job B's id.
    let deadline = Instant::now() + Duration::from_secs(10);
    let captured_a: Vec<Vec<u8>> = loop {
        switch.controls().dump_counters();
        std::thread::sleep(Duration::from_millis(50));
        let bytes = std::fs::read(&pcap).unwrap();
        let found: Vec<Vec<u8>> = pcapfile::datagrams(&bytes)
            .unwrap()
            .into_iter()
            .filter(|d| d.dst == addrs.data)
            .filter(|d| header(d).is_some_and(|r| r.job_id == a.job_id))
            .map(|d| d.payload)
            .take(60)
            .collect();
        if found.len() >= 20 {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "job A's packets never reached the capture"
        );
    };
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let intruder = intrude(control);
    let h = intruder.params;
    let spoofer = Spoofer::new();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for (i, packet) in captured_a.iter().enumerate() {
        let mut forged = packet.clone();
        forged[4..6].copy_from_slice(&b.job_id.to_be_bytes());
        // From an unregistered address: wrong source for B.
        stranger.send_to(&forged, addrs.data).unwrap();
        // From the B member of the same rank (forged source): bad key for B.
        if let Some(s) = &spoofer {
            let rank = u16::from_be_bytes([forged[6], forged[7]]);
            s.send(members[&1][usize::from(rank)], addrs.data, &forged);
        }
        pace(i);
    }
    for i in 0..100usize {
        let rank = (i % 3) as u16;
        let slot = b.slot_base + (i as u16 % b.window);
        let mut key: u32 = rng.gen();
        if key == b.key {
            key ^= 1;
        }
        // Key guesses from B's members' addresses.
        if let Some(s) = &spoofer {
            s.send(
                members[&1][usize::from(rank)],
                addrs.data,
                &contribution(b.job_id, rank, key, slot, i as u32),
            );
        }
        // The intruder's own id and key, aimed at A's slots.
        let slot_a = a.slot_base + (i as u16 % a.window);
        intruder
            .sock
            .send_to(
                &contribution(h.job_id, 0, h.key, slot_a, i as u32),
                addrs.data,
            )
            .unwrap();
        // Job A's id from an unregistered address.
        stranger
            .send_to(
                &contribution(a.job_id, 0, key, slot_a, i as u32),
                addrs.data,
            )
            .unwrap();
        // A job id nobody holds, and a rank B does not have.
        let unknown = (1..u16::MAX)
            .find(|id| !ids.contains(id) && *id != h.job_id)
            .unwrap();
        stranger
            .send_to(&contribution(unknown, 0, key, 0, i as u32), addrs.data)
            .unwrap();
        stranger
            .send_to(&contribution(b.job_id, 5, key, slot, i as u32), addrs.data)
            .unwrap();
        pace(i);
    }
    hostile_done.store(true, Ordering::SeqCst);
    if spoofer.is_none() {
        eprintln!("no raw socket (needs CAP_NET_RAW): the forged-source part is skipped");
    }

    // Every job finishes with exact results (checked in the workers).
    while books.finished.values().map(Vec::len).sum::<usize>() < total {
        books.note(next());
    }
    // Float results are bit-identical across the ranks of job B.
    let b_results = &books.finished[&1];
    for (rank, bits) in b_results {
        assert_eq!(
            bits, &b_results[0].1,
            "rank {rank} of job B differs from rank {}",
            b_results[0].0
        );
    }
    // Let the last hostile datagrams reach the core, then read the counters.
    std::thread::sleep(Duration::from_millis(200));
    let report = client::status(control, Duration::from_secs(5)).unwrap();
    gate.open();
    for w in workers {
        w.join().expect("worker panicked");
    }
    switch.shutdown();
    switch.join().unwrap();

    // What reached the switch, from the capture (it records every datagram
    // as it arrives), against what the core counted.
    let got = pcapfile::datagrams(&std::fs::read(&pcap).unwrap()).unwrap();
    let stranger_addr = match stranger.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let intruder_addr = match intruder.sock.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let arrived = |f: &dyn Fn(&Captured, &Repr) -> bool| -> u64 {
        got.iter()
            .filter(|d| d.dst == addrs.data)
            .filter_map(|d| header(d).map(|r| (d, r)))
            .filter(|(d, r)| f(d, r))
            .count() as u64
    };
    let b_members = &members[&1];
    let wrong_source_b =
        arrived(&|d, r| d.src == stranger_addr && r.job_id == b.job_id && r.rank < 3);
    let unknown_rank_b = arrived(&|_, r| r.job_id == b.job_id && r.rank >= 3);
    let bad_key_b =
        arrived(&|d, r| r.job_id == b.job_id && b_members.contains(&d.src) && r.key != b.key);
    let wrong_source_a = arrived(&|d, r| d.src == stranger_addr && r.job_id == a.job_id);
    let outside_h = arrived(&|d, r| d.src == intruder_addr && r.job_id == h.job_id);
    let unknown_job =
        arrived(&|d, r| d.src == stranger_addr && !ids.contains(&r.job_id) && r.job_id != h.job_id);
    for (what, n, sent) in [
        ("wrong source (B)", wrong_source_b, captured_a.len()),
        ("unknown rank (B)", unknown_rank_b, 100),
        ("wrong source (A)", wrong_source_a, 100),
        ("slot outside lease (intruder)", outside_h, 100),
        ("unknown job", unknown_job, 100),
    ] {
        assert!(
            n * 10 >= sent as u64 * 9,
            "{what}: only {n} of {sent} arrived"
        );
    }
    if spoofer.is_some() {
        assert!(
            bad_key_b * 10 >= (captured_a.len() as u64 + 100) * 9,
            "bad key: only {bad_key_b} arrived"
        );
    }
    assert_eq!(drops(&report, b.job_id, "wrong_source"), wrong_source_b);
    assert_eq!(drops(&report, b.job_id, "unknown_rank"), unknown_rank_b);
    assert_eq!(drops(&report, b.job_id, "bad_key"), bad_key_b);
    assert_eq!(drops(&report, a.job_id, "wrong_source"), wrong_source_a);
    assert_eq!(drops(&report, a.job_id, "bad_key"), 0);
    assert_eq!(drops(&report, h.job_id, "slot_outside_lease"), outside_h);
    let global = report.counters.as_ref().unwrap();
    assert_eq!(global.drops["unknown_job"], unknown_job);
    // Job C saw none of it.
    let c = params[&2];
    for reason in [
        "wrong_source",
        "bad_key",
        "unknown_rank",
        "slot_outside_lease",
    ] {
        assert_eq!(drops(&report, c.job_id, reason), 0, "job C: {reason}");
    }
    // Leases never overlap.
    let mut leases: Vec<(u16, u16)> = report
        .jobs
        .iter()
        .map(|j| (j.lease.base, j.lease.count))
        .collect();
    leases.sort_unstable();
    for w in leases.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping leases {leases:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn join_error(result: Result<Agent, AgentError>) -> ControlErrorKind {
    match result {
        Err(AgentError::JoinRejected(e)) => e.kind,
        Err(other) => panic!("expected a refused join, got {other}"),
        Ok(_) => panic!("the join was accepted"),
    }
}

#[test]
fn full_pool_refuses_at_once_and_freed_slots_serve_the_next_job() {
    let server = Server::bind(ServerConfig {
        log: false,
        core: switch_emu::core::Config {
            slots: 16,
            ..Default::default()
        },
        job_quota: 16,
        join_timeout: Duration::from_secs(30),
        ..ServerConfig::loopback_ephemeral()
    })
    .unwrap();
    let control = SocketAddr::V4(server.local_addrs().control);
    let switch = server.spawn().unwrap();

    let big = JobShape {
        name: "big",
        world: 2,
        window: 12,
        elements: 32,
    };
    let small = JobShape {
        name: "small",
        world: 1,
        window: 4,
        elements: 32,
    };
    let late = JobShape {
        name: "late",
        world: 2,
        window: 8,
        elements: 32,
    };
    let big_agents = jobs::join_all(control, big).unwrap();
    let big_params = *big_agents[0].params();
    let mut small_agent = jobs::join_all(control, small).unwrap().pop().unwrap();
    let status = client::status(control, Duration::from_secs(5)).unwrap();
    assert_eq!(status.lease.free, 0, "the pool should be full");

    // No queue: the refusal comes at once, long before the join timeout.
    let started = Instant::now();
    assert_eq!(
        join_error(Agent::join(late.options(control, 0))),
        ControlErrorKind::PoolExhausted
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusal took {:?}",
        started.elapsed()
    );
    // A full pool does not disturb the running jobs.
    let mut data = jobs::input_i32(5, 0, 0, 500);
    small_agent.allreduce_i32(&mut data).unwrap();
    jobs::check_i32(5, 1, 0, &data).unwrap();

    for agent in big_agents {
        agent.leave().unwrap();
    }
    let mut late_agents = jobs::join_all(control, late).unwrap();
    let p = *late_agents[0].params();
    let (freed_start, freed_end) = (
        big_params.slot_base,
        big_params.slot_base + big_params.window,
    );
    assert!(
        p.slot_base >= freed_start && p.slot_base + p.window <= freed_end,
        "late job got slots {}+{}, outside the freed {freed_start}..{freed_end}",
        p.slot_base,
        p.window
    );
    let threads: Vec<_> = late_agents
        .drain(..)
        .enumerate()
        .map(|(rank, mut agent)| {
            std::thread::spawn(move || {
                for iter in 0..3 {
                    let mut data = jobs::input_i32(9, rank as u16, iter, 2000);
                    agent.allreduce_i32(&mut data).unwrap();
                    jobs::check_i32(9, 2, iter, &data).unwrap();
                }
                agent.leave().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    small_agent.leave().unwrap();
    switch.shutdown();
    let report = switch.join().unwrap();
    assert_eq!(report.lease.free, 16);
    assert!(report.control["join_errors"] >= 1);
}
