//! The agent against a real UDP switch (switch-emu's server, in process, on
//! ephemeral loopback ports): results, the non-blocking form and each error.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use host_agent::quantize::{block_exponent, error_bound};
use host_agent::{Agent, AgentError, JoinOptions};
use packet_format::control::ControlErrorKind;
use switch_emu::udp::{Server, ServerConfig, ServerHandle};

fn switch(config: ServerConfig) -> (ServerHandle, SocketAddr) {
    let server = Server::bind(ServerConfig {
        log: false,
        ..config
    })
    .unwrap();
    let control = SocketAddr::V4(server.local_addrs().control);
    (server.spawn().unwrap(), control)
}

fn default_switch() -> (ServerHandle, SocketAddr) {
    switch(ServerConfig::loopback_ephemeral())
}

fn options(control: SocketAddr, job: &str, rank: u16, world: u16) -> JoinOptions {
    JoinOptions {
        window: 16,
        ..JoinOptions::new(job, rank, world).control(control)
    }
}

/// Runs `f` on `world` joined agents in parallel threads.
fn on_ranks<T: Send + 'static>(
    control: SocketAddr,
    job: &str,
    world: u16,
    f: impl Fn(Agent) -> T + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let threads: Vec<_> = (0..world)
        .map(|rank| {
            let f = f.clone();
            let job = job.to_string();
            thread::spawn(move || f(Agent::join(options(control, &job, rank, world)).unwrap()))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn int32_sums_are_exact_across_calls_with_loss() {
    let (sw, control) = switch(ServerConfig {
        drop: 0.05,
        seed: 7,
        ..ServerConfig::loopback_ephemeral()
    });
    let world = 3;
    let results = on_ranks(control, "i32", world, move |mut agent| {
        let rank = agent.rank() as i32;
        let mut out = Vec::new();
        for (call, len) in [1000usize, 1, 0, 4097].into_iter().enumerate() {
            let mut data: Vec<i32> = (0..len as i32)
                .map(|i| {
                    i.wrapping_mul(7919)
                        .wrapping_add(rank * 1_000_003 + call as i32)
                        | i32::MIN
                })
                .collect();
            agent.allreduce_i32(&mut data).unwrap();
            out.push(data);
        }
        let stats = agent.leave().unwrap();
        assert!(
            stats.engine.retransmissions > 0,
            "5% loss must cause retransmissions"
        );
        out
    });
    for (call, len) in [1000usize, 1, 0, 4097].into_iter().enumerate() {
        let expected: Vec<i32> = (0..len as i32)
            .map(|i| {
                (0..world as i32).fold(0i32, |acc, rank| {
                    acc.wrapping_add(
                        i.wrapping_mul(7919)
                            .wrapping_add(rank * 1_000_003 + call as i32)
                            | i32::MIN,
                    )
                })
            })
            .collect();
        for r in &results {
            assert_eq!(r[call], expected, "call {call}");
        }
    }
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn float32_within_bound_and_identical_through_the_handle() {
    let (sw, control) = default_switch();
    let world = 2u16;
    let len = 3000;
    let input = |rank: u16, i: usize| {
        ((i as f32) * 0.37 + f32::from(rank)).sin() * 2f32.powi((i / 64 % 7) as i32 - 3)
    };
    let results = on_ranks(control, "f32", world, move |agent| {
        let rank = agent.rank();
        let handle = agent.spawn();
        let data: Vec<f32> = (0..len).map(|i| input(rank, i)).collect();
        let mut first = handle.allreduce_f32(data.clone());
        let second = handle.allreduce_f32(data);
        let stats = handle.stats();
        let a = loop {
            if first.is_ready() {
                break first.wait().unwrap();
            }
            thread::sleep(Duration::from_millis(1));
        };
        let b = second.wait().unwrap();
        assert_eq!(stats.wait().unwrap().allreduces, 2);
        handle.leave().unwrap();
        (a, b)
    });
    let (a0, b0) = &results[0];
    for (a, b) in &results {
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            a0.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(a, b);
        assert_eq!(b, b0);
    }
    for (i, &got) in a0.iter().enumerate() {
        let block = (i / 64) * 64..((i / 64 + 1) * 64).min(len);
        let e_max = (0..world)
            .map(|r| block_exponent(&block.clone().map(|j| input(r, j)).collect::<Vec<_>>()))
            .max()
            .unwrap();
        let exact: f64 = (0..world).map(|r| f64::from(input(r, i))).sum();
        let err = (f64::from(got) - exact).abs();
        assert!(
            err <= error_bound(world, e_max, exact),
            "element {i}: {got} vs {exact}"
        );
    }
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn out_of_place_sums_equal_in_place_ones_with_loss() {
    let (sw, control) = switch(ServerConfig {
        drop: 0.05,
        seed: 11,
        ..ServerConfig::loopback_ephemeral()
    });
    let results = on_ranks(control, "apart", 3, |mut agent| {
        let rank = agent.rank();
        let floats: Vec<f32> = (0..5000)
            .map(|i| ((i as f32) * 0.11 + f32::from(rank)).cos() * 3.0)
            .collect();
        let ints: Vec<i32> = (0..4097).map(|i| i * 31 + i32::from(rank)).collect();
        let (mut float_sum, mut int_sum) = (vec![f32::NAN; floats.len()], vec![7; ints.len()]);
        agent.allreduce_f32_into(&floats, &mut float_sum).unwrap();
        agent.allreduce_i32_into(&ints, &mut int_sum).unwrap();
        // Buffers of different lengths are refused before anything is sent.
        let err = agent
            .allreduce_f32_into(&floats, &mut float_sum[1..])
            .unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::LengthMismatch {
                    input: 5000,
                    output: 4999
                }
            ),
            "{err}"
        );
        assert!(err.is_recoverable());
        let (mut float_in_place, mut int_in_place) = (floats.clone(), ints.clone());
        agent.allreduce_f32(&mut float_in_place).unwrap();
        agent.allreduce_i32(&mut int_in_place).unwrap();
        // The background form gives both buffers back, the input unchanged.
        let handle = agent.spawn();
        let (floats_back, float_sum_again) = handle
            .allreduce_f32_into(floats.clone(), vec![0f32; floats.len()])
            .wait()
            .unwrap();
        let (ints_back, int_sum_again) = handle
            .allreduce_i32_into(ints.clone(), vec![0i32; ints.len()])
            .wait()
            .unwrap();
        assert_eq!((floats_back, ints_back), (floats, ints));
        assert_eq!(float_sum_again, float_sum);
        assert_eq!(int_sum_again, int_sum);
        let stats = handle.leave().unwrap();
        assert!(
            stats.engine.retransmissions > 0,
            "5% loss must cause retransmissions"
        );
        assert_eq!(
            float_sum.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            float_in_place
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        );
        assert_eq!(int_sum, int_in_place);
        float_sum
    });
    assert!(results.iter().all(|r| *r == results[0]));
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn non_finite_input_is_refused_and_the_agent_stays_usable() {
    let (sw, control) = default_switch();
    let results = on_ranks(control, "nan", 2, |mut agent| {
        let mut bad = vec![1.0f32, 2.0, f32::NAN];
        let err = agent.allreduce_f32(&mut bad).unwrap_err();
        assert!(matches!(err, AgentError::NonFinite { index: 2 }), "{err}");
        let mut good = vec![1.0f32; 10];
        agent.allreduce_f32(&mut good).unwrap();
        good
    });
    assert!(results.iter().all(|r| r.iter().all(|&x| x == 2.0)));
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn unreachable_switch_and_rejected_joins() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = Agent::join(options(closed, "x", 0, 1)).unwrap_err();
    assert!(matches!(err, AgentError::SwitchUnreachable { .. }), "{err}");

    let (sw, control) = default_switch();
    let err = Agent::join(options(control, "x", 2, 2)).unwrap_err();
    assert!(
        matches!(&err, AgentError::JoinRejected(e) if e.kind == ControlErrorKind::RankOutOfRange),
        "{err}"
    );
    let err = Agent::join(JoinOptions {
        elements_per_packet: 10_000,
        ..options(control, "x", 0, 1)
    })
    .unwrap_err();
    assert!(
        matches!(&err, AgentError::JoinRejected(e) if e.kind == ControlErrorKind::LimitExceeded),
        "{err}"
    );
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn join_times_out_when_a_rank_never_comes() {
    let (sw, control) = default_switch();
    let started = Instant::now();
    let err = Agent::join(JoinOptions {
        join_timeout: Duration::from_millis(300),
        ..options(control, "lonely", 0, 2)
    })
    .unwrap_err();
    assert!(matches!(err, AgentError::JoinTimeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    sw.shutdown();
    sw.join().unwrap();
}

/// Rank 1 joins but never contributes. With a patient switch the engine's
/// stall ends the allreduce and the switch names the missing rank; with a
/// strict switch the job is expired and the survivor hears `job_failed`.
#[test]
fn a_silent_peer_is_a_peer_timeout_or_a_failed_job() {
    for (worker_timeout, stall, expect_failed) in [
        (Duration::from_secs(30), Duration::from_millis(400), false),
        (Duration::from_millis(300), Duration::from_secs(30), true),
    ] {
        let (sw, control) = switch(ServerConfig {
            worker_timeout,
            ..ServerConfig::loopback_ephemeral()
        });
        let silent = thread::spawn(move || {
            let agent = Agent::join(options(control, "silent", 1, 2)).unwrap();
            thread::sleep(Duration::from_secs(2));
            drop(agent);
        });
        let mut agent = Agent::join(JoinOptions {
            stall_timeout: stall,
            ..options(control, "silent", 0, 2)
        })
        .unwrap();
        let started = Instant::now();
        let err = agent.allreduce_i32(&mut [1, 2, 3]).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        if expect_failed {
            assert!(
                matches!(&err, AgentError::JobFailed { ranks, .. } if ranks == &[1]),
                "{err}"
            );
        } else {
            assert!(
                matches!(&err, AgentError::PeerTimeout { missing_ranks, slots, .. } if missing_ranks == &[1] && !slots.is_empty()),
                "{err}"
            );
        }
        // The agent is finished with its job.
        assert!(matches!(
            agent.allreduce_i32(&mut [1]),
            Err(AgentError::Ended(_))
        ));
        drop(agent);
        silent.join().unwrap();
        sw.shutdown();
        sw.join().unwrap();
    }
}

#[test]
fn a_failed_allreduce_leaves_the_buffer_as_it_was() {
    // Results are written into the caller's buffer as they arrive. Rank 1
    // reduces only the first half of rank 0's tensor and then goes silent:
    // rank 0 gets (and writes) the first half's results, then times out.
    // Its buffer must hold its input again.
    let (sw, control) = default_switch();
    let len = 1 << 17;
    for dtype in ["i32", "f32"] {
        let job = format!("restore-{dtype}");
        let peer_job = job.clone();
        let peer = thread::spawn(move || {
            let mut agent = Agent::join(options(control, &peer_job, 1, 2)).unwrap();
            if peer_job.ends_with("i32") {
                agent.allreduce_i32(&mut vec![5; len / 2]).unwrap();
            } else {
                agent.allreduce_f32(&mut vec![0.5; len / 2]).unwrap();
            }
            thread::sleep(Duration::from_secs(2));
        });
        let mut agent = Agent::join(JoinOptions {
            stall_timeout: Duration::from_millis(400),
            ..options(control, &job, 0, 2)
        })
        .unwrap();
        let before = agent.stats().engine.results_received;
        let (err, received) = if dtype == "i32" {
            let input: Vec<i32> = (0..len as i32).map(|i| i.wrapping_mul(7919)).collect();
            let mut data = input.clone();
            let err = agent.allreduce_i32(&mut data).unwrap_err();
            assert!(data == input, "i32 buffer not restored");
            (err, agent.stats().engine.results_received - before)
        } else {
            let input: Vec<f32> = (0..len).map(|i| i as f32 * 0.25 - 100.0).collect();
            let mut data = input.clone();
            let err = agent.allreduce_f32(&mut data).unwrap_err();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&data) == bits(&input), "f32 buffer not restored");
            (err, agent.stats().engine.results_received - before)
        };
        assert!(
            matches!(&err, AgentError::PeerTimeout { missing_ranks, .. } if missing_ranks == &[1]),
            "{dtype}: {err}"
        );
        // Half of the tensor's results did arrive (and were written) first.
        let packets = (len / usize::from(agent.params().elements_per_packet)) as u64;
        assert!(received >= packets / 2, "{dtype}: {received} of {packets}");
        drop(agent);
        peer.join().unwrap();
    }
    sw.shutdown();
    sw.join().unwrap();
}

#[test]
fn multicast_results_go_out_once_and_reach_every_rank() {
    let base = std::net::Ipv4Addr::new(239, 72, 0, 0);
    let server = Server::bind(ServerConfig {
        log: false,
        drop: 0.05,
        seed: 11,
        result_groups: Some(base),
        ..ServerConfig::loopback_ephemeral()
    })
    .unwrap();
    let data_port = server.local_addrs().data.port();
    let control = SocketAddr::V4(server.local_addrs().control);
    let sw = server.spawn().unwrap();
    let world = 3u16;
    let len = 20_000usize;
    let input = |rank: u16, i: usize| (i as i32).wrapping_mul(31) ^ (i32::from(rank) << 20);
    let results = on_ranks(control, "mc", world, move |mut agent| {
        let group = agent.params().result_group.expect("the switch multicasts");
        let job = agent.params().job_id;
        let mut data: Vec<i32> = (0..len).map(|i| input(agent.rank(), i)).collect();
        agent.allreduce_i32(&mut data).unwrap();
        let stats = agent.leave().unwrap();
        (group, job, data, stats)
    });
    let expected: Vec<i32> = (0..len)
        .map(|i| (0..world).fold(0i32, |acc, r| acc.wrapping_add(input(r, i))))
        .collect();
    let mut unicast_bound = 0;
    for (group, job, data, stats) in &results {
        assert_eq!(
            *group,
            std::net::SocketAddrV4::new(switch_emu::control::result_group(base, *job), data_port)
        );
        assert_eq!(data, &expected);
        // Most results come through the group (loss is injected only on
        // the switch's input, so only answers to retransmissions are unicast).
        let t = &stats.transport;
        assert!(t.group_datagrams_received > 0, "{t:?}");
        assert!(t.group_datagrams_received <= t.datagrams_received);
        unicast_bound += stats.engine.retransmissions;
    }
    sw.shutdown();
    let report = sw.join().unwrap();
    let (groups, sent) = (
        report.driver["tx_group_results"],
        report.driver["tx_datagrams"],
    );
    // One datagram per completed round, not one per member; the rest of
    // what the switch sent answers retransmissions.
    assert!(groups > 0);
    assert!(
        sent >= groups && sent - groups <= unicast_bound,
        "{sent} {groups} {unicast_bound}"
    );
    assert!(sent < u64::from(world) * groups, "{sent} {groups}");
}

#[test]
fn result_groups_need_a_multicast_base_and_one_interface() {
    for (base, bind) in [
        ([239, 72, 0, 1], [127, 0, 0, 1]),
        ([10, 72, 0, 0], [127, 0, 0, 1]),
        ([239, 72, 0, 0], [0, 0, 0, 0]),
    ] {
        let Err(err) = Server::bind(ServerConfig {
            log: false,
            bind: std::net::SocketAddrV4::new(bind.into(), 0),
            result_groups: Some(base.into()),
            ..ServerConfig::loopback_ephemeral()
        }) else {
            panic!("base {base:?} on {bind:?} was accepted");
        };
        let text = err.to_string();
        assert!(text.contains("result group"), "{text}");
    }
}

#[test]
fn two_jobs_on_one_host_get_only_their_own_groups_results() {
    let base = std::net::Ipv4Addr::new(239, 73, 0, 0);
    let (sw, control) = switch(ServerConfig {
        result_groups: Some(base),
        ..ServerConfig::loopback_ephemeral()
    });
    let len = 30_000usize;
    let input = |job: &str, rank: u16, i: usize| {
        (i as i32).wrapping_mul(if job == "x" { 7 } else { 13 }) + i32::from(rank)
    };
    let run = move |job: &'static str, world: u16| {
        thread::spawn(move || {
            on_ranks(control, job, world, move |mut agent| {
                let mut data: Vec<i32> = (0..len).map(|i| input(job, agent.rank(), i)).collect();
                agent.allreduce_i32(&mut data).unwrap();
                let group = agent.params().result_group;
                (data, group, agent.leave().unwrap())
            })
        })
    };
    // Both jobs run at once, each in its own group, all workers on one host.
    let (x, y) = (run("x", 2), run("y", 3));
    for (job, world, ranks) in [("x", 2u16, x.join().unwrap()), ("y", 3, y.join().unwrap())] {
        let expected: Vec<i32> = (0..len)
            .map(|i| (0..world).fold(0i32, |acc, r| acc.wrapping_add(input(job, r, i))))
            .collect();
        let groups: Vec<_> = ranks.iter().map(|(_, g, _)| *g).collect();
        assert!(
            groups.iter().all(|g| g.is_some() && *g == groups[0]),
            "{groups:?}"
        );
        for (data, _, stats) in &ranks {
            assert_eq!(data, &expected, "job {job}");
            // Nothing of the other job's group reached this worker: it got
            // exactly one result per round of its own through the group (a
            // spurious retransmission's answer comes by unicast).
            let rounds = stats.engine.packets_sent - stats.engine.retransmissions;
            assert_eq!(
                stats.transport.group_datagrams_received, rounds,
                "job {job}: {stats:?}"
            );
        }
    }
    sw.shutdown();
    sw.join().unwrap();
}
