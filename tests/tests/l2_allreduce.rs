//! Allreduce across 4 worker namespaces through `switch-emu serve --port ...`
//! (the binary, flags as `topo run` passes them): 16 MiB of float32 and of
//! int32 per worker, verified on every worker (int32 exact, float32
//! bit-identical across workers and within the quantizer's bound of the
//! f64 sum), with offloads on (GSO runs cross the switch as super-frames),
//! through the ring and through the `recvmmsg` receive path, with each
//! result sent once to the job's group through the replication port (as
//! `topo run` does), sent by the switch out of each member's port, or sent
//! to each member by unicast;
//! then the same with 5% random loss on every link in both
//! directions (nftables), where retransmissions must happen and results
//! stay exact; and the same job with the switch namespace's kernel bridge
//! forwarding and switch-emu's UDP driver aggregating (GSO/GRO through the
//! veths, results multicast to the job's group and copied by the bridge). Workers are `host_agent::Agent`s on threads that entered
//! their namespaces. Needs root (see `ina_tests::netns`).

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use host_agent::quantize::{block_exponent, error_bound};
use host_agent::{Agent, AgentStats, JoinOptions};
use ina_tests::netns::{binary, enter_netns, root_or_skip, unique_name, TopoGuard};
use switch_emu::control::status::StatusReport;
use switch_emu::topo::run::{multicast_args, SwitchProcess, RESULT_GROUPS};
use switch_emu::topo::{Fabric, TopoSpec, Topology};

const WORLD: usize = 4;
/// 16 MiB of 4-byte elements.
const N: usize = 4 << 20;
/// Elements per packet: 1090-byte frames, within the default MTU.
const ELEMS: u16 = 256;

/// The tests of this file share the 2 CPUs badly; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn input_i32(rank: usize) -> Vec<i32> {
    (0..N)
        .map(|i| mix((rank as u64) << 40 | i as u64) as i32)
        .collect()
}

/// Values in +-2^k with k varying per 1000 elements, so that blocks get
/// different exponents; some all-zero stretches.
fn input_f32(rank: usize) -> Vec<f32> {
    (0..N)
        .map(|i| {
            let k = (i / 1000) % 12;
            if k == 11 {
                return 0.0;
            }
            let u = (mix((rank as u64 + 100) << 40 | i as u64) >> 40) as f32 / (1u64 << 24) as f32;
            (u - 0.5) * (1u32 << k) as f32 / 7.0
        })
        .collect()
}

/// What one worker ends with.
struct Output {
    f: Vec<f32>,
    i: Vec<i32>,
    stats: AgentStats,
}

/// One worker: join, allreduce float32 then int32, leave.
fn worker(t: &Topology, rank: usize, job: &str, window: u16) -> Output {
    enter_netns(&t.workers[rank].netns);
    let control = SocketAddr::V4(SocketAddrV4::new(t.switch_ip, packet_format::CONTROL_PORT));
    let mut options = JoinOptions::new(job, rank as u16, WORLD as u16).control(control);
    options.elements_per_packet = ELEMS;
    options.window = window;
    let mut agent = Agent::join(options).unwrap_or_else(|e| panic!("rank {rank}: join: {e}"));
    let mut f = input_f32(rank);
    agent
        .allreduce_f32(&mut f)
        .unwrap_or_else(|e| panic!("rank {rank}: f32: {e}"));
    let mut i = input_i32(rank);
    agent
        .allreduce_i32(&mut i)
        .unwrap_or_else(|e| panic!("rank {rank}: i32: {e}"));
    let stats = agent.stats();
    agent
        .leave()
        .unwrap_or_else(|e| panic!("rank {rank}: leave: {e}"));
    Output { f, i, stats }
}

fn check_i32(results: &[Vec<i32>]) {
    let inputs: Vec<Vec<i32>> = (0..WORLD).map(input_i32).collect();
    for (rank, got) in results.iter().enumerate() {
        for (k, &g) in got.iter().enumerate() {
            let want = inputs.iter().fold(0i32, |s, v| s.wrapping_add(v[k]));
            assert_eq!(g, want, "rank {rank}: int32 element {k}");
        }
    }
}

fn check_f32(results: &[Vec<f32>]) {
    let inputs: Vec<Vec<f32>> = (0..WORLD).map(input_f32).collect();
    let e = usize::from(ELEMS);
    for (rank, got) in results.iter().enumerate() {
        let same = got
            .iter()
            .zip(&results[0])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "rank {rank}: float32 result differs from rank 0's");
    }
    let got = &results[0];
    for block in 0..N.div_ceil(e) {
        let range = block * e..((block + 1) * e).min(N);
        let e_max = inputs
            .iter()
            .map(|v| block_exponent(&v[range.clone()]))
            .max()
            .expect("ranks");
        for k in range {
            let exact: f64 = inputs.iter().map(|v| f64::from(v[k])).sum();
            let bound = error_bound(WORLD as u16, e_max, exact);
            let err = (f64::from(got[k]) - exact).abs();
            assert!(
                err <= bound,
                "float32 element {k}: got {} exact {exact} error {err} > bound {bound}",
                got[k]
            );
        }
    }
}

/// How the switch sends a result to the job's members.
#[derive(Clone, Copy)]
enum Results {
    /// As `topo run` does: once, to the job's group (copied by the bridge,
    /// or on the L2 fabric by the replication port).
    Replicated,
    /// To the job's group, out of each member's port by the L2 switch itself.
    GroupPerPort,
    /// A copy to each member.
    Unicast,
}

/// Runs the job with `window` slots on a fresh topology joined by
/// `fabric`, the switch started with `extra` arguments besides those
/// `results` asks for; returns each worker's stats and the switch's final status.
fn run_on(
    prefix: &str,
    loss: Option<u32>,
    window: u16,
    fabric: Fabric,
    results: Results,
    extra: &[&str],
) -> (Vec<AgentStats>, StatusReport) {
    let (_guard, t) = TopoGuard::up(TopoSpec {
        name: unique_name(prefix),
        workers: WORLD,
        rate: None,
        mtu: Some(1500),
        loss,
        fabric,
    });
    let exe = binary("switch-emu", "switch-emu");
    let mut serve_args = vec!["--elements".to_string(), ELEMS.to_string()];
    match results {
        Results::Replicated => serve_args.extend(multicast_args(&t, false)),
        Results::GroupPerPort => {
            serve_args.extend(["--result-groups".into(), RESULT_GROUPS.to_string()])
        }
        Results::Unicast => {}
    }
    serve_args.extend(extra.iter().map(|a| a.to_string()));
    let mut switch = SwitchProcess::start(&t, &exe.to_string_lossy(), &serve_args).expect("switch");
    let started = Instant::now();
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORLD)
            .map(|rank| {
                let t = &t;
                s.spawn(move || worker(t, rank, prefix, window))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(&t.workers[0].netns);
            let control =
                SocketAddr::V4(SocketAddrV4::new(t.switch_ip, packet_format::CONTROL_PORT));
            switch_emu::udp::client::status(control, Duration::from_secs(5)).expect("status")
        })
        .join()
        .unwrap()
    });
    switch.stop();
    let (mut f, mut i, mut stats) = (Vec::new(), Vec::new(), Vec::new());
    for o in outputs {
        f.push(o.f);
        i.push(o.i);
        stats.push(o.stats);
    }
    check_i32(&i);
    check_f32(&f);
    let retransmissions: Vec<u64> = stats.iter().map(|s| s.engine.retransmissions).collect();
    eprintln!(
        "{prefix}: 2 x 16 MiB allreduce, {WORLD} workers, window {window}, loss {loss:?}%: {:.2}s, retransmissions per rank {retransmissions:?}",
        elapsed.as_secs_f64()
    );
    eprintln!("{}", status.render());
    (stats, status)
}

/// [`run_on`] through switch-emu as the L2 switch.
fn run(prefix: &str, loss: Option<u32>, window: u16) -> (Vec<AgentStats>, StatusReport) {
    run_on(
        prefix,
        loss,
        window,
        Fabric::SwitchEmu,
        Results::Replicated,
        &[],
    )
}

#[test]
fn allreduce_16mib_f32_and_i32_across_4_namespaces() {
    if !root_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A window of 64 keeps the switch's queues (and spurious retransmissions) short.
    let (stats, status) = run("l2ar", None, 64);
    assert!(stats.iter().all(|s| s.allreduces == 2));
    assert_eq!(status.control["jobs_completed"], 1, "{status:?}");
    assert!(status.driver["agg_in"] >= 2 * (N / usize::from(ELEMS)) as u64 * WORLD as u64);
    // Offloads stay on: the workers' GSO runs reach the switch as
    // super-frames, and results leave in runs to each worker.
    let d = &status.driver;
    assert!(
        d["super_frames_in"] > 0 && d["tx_super_frames"] > 0 && d["rx_frames"] < d["agg_in"],
        "{d:?}"
    );
    // Each result left the switch once, to the replication port, whose
    // `dup` rules copied it to every worker's port (the job's members sit
    // on all of them).
    assert_sent_to_the_group(&stats, &status);
    assert_eq!(d["agg_out_replicated"], d["agg_out_grouped"], "{d:?}");
}

/// Results went to the job's group, once per round and never flooded, and
/// every worker received through it; only the answers to retransmissions
/// went to one worker.
fn assert_sent_to_the_group(stats: &[AgentStats], status: &StatusReport) {
    let d = &status.driver;
    let totals = &status.counters.as_ref().expect("dataplane counters").totals;
    let (rounds, answers) = (totals["multicast_results"], totals["unicast_results"]);
    assert!(
        rounds > 0
            && d["agg_out_grouped"] == rounds
            && d["agg_out"] == rounds + answers
            && d["agg_out_flooded"] == 0,
        "not one group result per round: {rounds} rounds, {answers} answers, {d:?}"
    );
    assert!(
        stats
            .iter()
            .all(|s| s.transport.group_datagrams_received > 0),
        "a worker received nothing through the group: {stats:?}"
    );
}

#[test]
fn allreduce_with_group_results_sent_out_of_each_port_by_the_switch() {
    if !root_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // `--result-groups` without a replication port: the switch sends each
    // group result out of every member's port itself.
    let (stats, status) = run_on(
        "l2gp",
        None,
        64,
        Fabric::SwitchEmu,
        Results::GroupPerPort,
        &[],
    );
    assert!(stats.iter().all(|s| s.allreduces == 2));
    assert_sent_to_the_group(&stats, &status);
    assert_eq!(
        status.driver["agg_out_replicated"], 0,
        "{:?}",
        status.driver
    );
}

#[test]
fn allreduce_through_the_ring_receive_path() {
    if !root_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // `--rx ring`: frames (with their offload headers) read in place from
    // the TPACKET_V3 ring instead of copied out by recvmmsg (the default);
    // and results to each member by unicast, as before groups.
    let (stats, status) = run_on(
        "l2rg",
        None,
        64,
        Fabric::SwitchEmu,
        Results::Unicast,
        &["--rx", "ring"],
    );
    assert!(stats.iter().all(|s| s.allreduces == 2));
    assert_eq!(status.control["jobs_completed"], 1, "{status:?}");
    let d = &status.driver;
    assert!(
        d["super_frames_in"] > 0 && d["tx_super_frames"] > 0,
        "{d:?}"
    );
    let rounds = status.counters.as_ref().expect("dataplane counters").totals["multicast_results"];
    assert!(
        d["agg_out_grouped"] == 0 && d["agg_out"] >= WORLD as u64 * rounds,
        "{d:?}"
    );
    assert!(stats
        .iter()
        .all(|s| s.transport.group_datagrams_received == 0));
}

#[test]
fn allreduce_exact_under_5pct_loss_on_every_link() {
    if !root_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A wide window keeps the other slots busy while lost ones wait for their timers.
    let (stats, status) = run("l2ls", Some(5), 256);
    let retransmissions: u64 = stats.iter().map(|s| s.engine.retransmissions).sum();
    assert!(retransmissions > 0, "no retransmission under 5% loss");
    let counters = status.counters.as_ref().expect("dataplane counters");
    assert!(
        counters.totals["unicast_results"] > 0,
        "the switch never answered a retransmission: {counters:?}"
    );
    assert_eq!(status.control["jobs_completed"], 1, "{status:?}");
}

#[test]
fn allreduce_through_kernel_bridge_and_udp_driver() {
    if !root_or_skip() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (stats, status) = run_on(
        "l2kb",
        None,
        64,
        Fabric::KernelBridge,
        Results::Replicated,
        &[],
    );
    assert!(stats.iter().all(|s| s.allreduces == 2));
    assert_eq!(status.control["jobs_completed"], 1, "{status:?}");
    // With offloads on, the agents' GSO super-packets cross the veths and the
    // bridge whole and reach the switch's UDP socket coalesced (GRO).
    assert!(
        stats.iter().all(|s| s.transport.gso_messages > 0),
        "an agent sent no GSO message: {stats:?}"
    );
    assert!(
        status.driver["rx_buffers_coalesced"] > 0,
        "the switch received no coalesced buffer: {:?}",
        status.driver
    );
    // Each result left the switch once, to the job's group, and the bridge
    // copied it to every worker's port.
    let (groups, sent) = (
        status.driver["tx_group_results"],
        status.driver["tx_datagrams"],
    );
    assert!(
        groups > 0 && sent < WORLD as u64 * groups,
        "results were not multicast: {:?}",
        status.driver
    );
    assert!(
        stats
            .iter()
            .all(|s| s.transport.group_datagrams_received > 0),
        "a worker received nothing through the group: {stats:?}"
    );
}
