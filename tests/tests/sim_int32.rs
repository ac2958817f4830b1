//! Whole-system i32 allreduce in the simulator: the result on every worker
//! is bit-identical to the wrapping sum, under loss, duplication and
//! reordering in both directions.

use std::time::Duration;

use ina_tests::{LinkFaults, Sim, SimConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switch_emu::core::DropReason;

fn wrapping_sum(inputs: &[Vec<i32>]) -> Vec<i32> {
    let len = inputs.first().map_or(0, Vec::len);
    (0..len)
        .map(|i| inputs.iter().fold(0i32, |acc, d| acc.wrapping_add(d[i])))
        .collect()
}

fn random_inputs(rng: &mut SmallRng, world: u16, len: usize) -> Vec<Vec<i32>> {
    (0..world)
        .map(|_| {
            (0..len)
                .map(|_| match rng.gen_range(0..4) {
                    0 => rng.gen(),
                    1 => i32::MAX - rng.gen_range(0..3),
                    2 => i32::MIN + rng.gen_range(0..3),
                    _ => rng.gen_range(-100..100),
                })
                .collect()
        })
        .collect()
}

/// Runs one allreduce and checks every worker's result.
fn check(config: SimConfig, inputs: &[Vec<i32>]) -> Result<Sim, String> {
    let seed = config.seed;
    let mut sim = Sim::new(config.clone()).map_err(|e| format!("seed {seed}: {e}"))?;
    let results = sim
        .allreduce_i32(inputs)
        .map_err(|e| format!("seed {seed} {config:?}: {e}"))?;
    let expected = wrapping_sum(inputs);
    for (rank, r) in results.iter().enumerate() {
        if *r != expected {
            return Err(format!(
                "seed {seed} {config:?}: rank {rank} got {r:?}, expected {expected:?}"
            ));
        }
    }
    Ok(sim)
}

#[test]
fn matrix_of_worlds_windows_and_fault_rates() {
    let mut totals = [0u64; 6];
    for world in [1u16, 2, 3, 8, 32] {
        for window in [1u16, 4, 64] {
            for (i, rate) in [0.0, 0.1, 0.2].into_iter().enumerate() {
                let seed = u64::from(world) * 1000 + u64::from(window) * 10 + i as u64;
                let mut rng = SmallRng::seed_from_u64(seed);
                // 5 elements per packet, never a whole number of packets.
                let len = if window == 64 { 333 } else { 47 };
                let inputs = random_inputs(&mut rng, world, len);
                let config = SimConfig {
                    world,
                    window,
                    elements_per_packet: 5,
                    uplink: LinkFaults::lossy(rate),
                    downlink: LinkFaults::lossy(rate),
                    start_skew: Duration::from_millis(3),
                    seed,
                    ..SimConfig::default()
                };
                let sim = check(config, &inputs).unwrap_or_else(|e| panic!("{e}"));
                let counters = sim.core().counters();
                totals[0] += sim.stats().dropped;
                totals[1] += sim.stats().duplicated;
                totals[2] += sim.stats().reordered;
                totals[3] += counters.unicast_results;
                totals[4] += counters.dropped(DropReason::StaleSequence);
                totals[5] += counters.dropped(DropReason::DuplicateIncomplete);
            }
        }
    }
    // The faults really happened, and exercised the switch's retransmission paths.
    assert!(totals.iter().all(|t| *t > 0), "{totals:?}");
}

#[test]
fn perfect_network_sends_no_retransmission() {
    let mut rng = SmallRng::seed_from_u64(5);
    let inputs = random_inputs(&mut rng, 4, 103);
    let config = SimConfig {
        world: 4,
        window: 8,
        elements_per_packet: 8,
        ..SimConfig::default()
    };
    let sim = check(config, &inputs).unwrap_or_else(|e| panic!("{e}"));
    for engine in sim.engines() {
        assert_eq!(engine.stats().retransmissions, 0);
        assert_eq!(engine.stats().packets_sent, 13);
        assert_eq!(engine.stats().results_received, 13);
        assert_eq!(engine.stats().results_ignored, 0);
    }
}

#[test]
fn a_loss_costs_about_a_round_trip_not_a_timeout() {
    // 1 % loss each way, nothing reordered, a 100 ms timeout: a packet or
    // result lost is resent once later results overtake it, so only losses
    // in the last packets of the operation wait for their timer.
    let mut rng = SmallRng::seed_from_u64(11);
    let inputs = random_inputs(&mut rng, 4, 64 * 500);
    let lossy = LinkFaults {
        drop: 0.01,
        ..LinkFaults::PERFECT
    };
    let config = SimConfig {
        world: 4,
        window: 32,
        elements_per_packet: 64,
        uplink: lossy,
        downlink: lossy,
        retransmit_timeout: Duration::from_millis(100),
        seed: 11,
        ..SimConfig::default()
    };
    let sim = check(config, &inputs).unwrap_or_else(|e| panic!("{e}"));
    let early: u64 = sim
        .engines()
        .iter()
        .map(|e| e.stats().early_retransmissions)
        .sum();
    let dropped = sim.stats().dropped;
    assert!(
        dropped >= 20 && early > 0,
        "dropped {dropped}, early {early}"
    );
    assert!(
        sim.elapsed() < Duration::from_millis(300),
        "{dropped} losses took {:?}",
        sim.elapsed()
    );
}

#[test]
fn a_thousand_random_cases() {
    for case in 0..1000u64 {
        let seed = 0x1_0000 + case;
        let mut rng = SmallRng::seed_from_u64(seed);
        let world = if rng.gen_bool(0.1) {
            rng.gen_range(9..=32)
        } else {
            rng.gen_range(1..=8)
        };
        let window = rng.gen_range(1..=8);
        let epp = rng.gen_range(1..=8);
        let len = rng.gen_range(0..=40);
        let mut faults = || LinkFaults {
            drop: rng.gen_range(0.0..=0.2),
            duplicate: rng.gen_range(0.0..=0.2),
            reorder: rng.gen_range(0.0..=0.2),
            reorder_delay: Duration::from_micros(rng.gen_range(0..=20_000)),
            delay: Duration::from_micros(rng.gen_range(1..=500)),
        };
        let uplink = faults();
        let downlink = faults();
        let config = SimConfig {
            world,
            window,
            elements_per_packet: epp,
            uplink,
            downlink,
            start_skew: Duration::from_micros(rng.gen_range(0..=5_000)),
            seed,
            ..SimConfig::default()
        };
        let inputs = random_inputs(&mut rng, world, len);
        if let Err(e) = check(config, &inputs) {
            panic!("case {case} failed (rerun with seed {seed}): {e}");
        }
    }
}

#[test]
fn a_dead_link_is_reported_as_a_hang() {
    let config = SimConfig {
        world: 3,
        uplink: LinkFaults {
            drop: 1.0,
            ..LinkFaults::PERFECT
        },
        stall_timeout: Duration::from_millis(200),
        hang_timeout: Duration::from_secs(2),
        seed: 99,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).unwrap();
    let err = sim
        .allreduce_i32(&[vec![1; 9], vec![2; 9], vec![3; 9]])
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ina_tests::SimError::Hang(_)), "{message}");
    assert!(message.contains("seed 99"), "{message}");
    // It stopped at the last event before the deadline, at most one backoff cap early.
    let elapsed = sim.elapsed();
    assert!(
        elapsed > Duration::from_millis(1900) && elapsed <= Duration::from_secs(2),
        "{elapsed:?}"
    );
    // Every engine reported the stall once and kept retransmitting.
    assert_eq!(sim.stats().stalls, 3);
    assert!(sim.engines().iter().all(|e| e.stats().retransmissions > 10));
}
