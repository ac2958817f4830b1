//! Successive allreduce calls of different sizes and element types on the
//! same engines and switch, under loss: the sequence and the set rotation
//! continue across calls, and stale packets of earlier calls (still in
//! flight when the next call starts) never corrupt a later one.

use std::time::Duration;

use host_agent::quantize::{block_exponent, error_bound};
use ina_tests::{LinkFaults, Sim, SimConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Packets one call uses: C for i32, C + min(W, C) for f32.
fn packets(len: usize, epp: usize, window: usize, float: bool) -> u32 {
    let blocks = len.div_ceil(epp);
    let lead = if float { blocks.min(window) } else { 0 };
    (blocks + lead) as u32
}

fn run_sequence(seed: u64, calls: usize) -> Result<(), String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let world: u16 = rng.gen_range(1..=6);
    let window: u16 = rng.gen_range(1..=6);
    let epp: u16 = rng.gen_range(1..=6);
    let rate = rng.gen_range(0.05..=0.2);
    let config = SimConfig {
        world,
        window,
        elements_per_packet: epp,
        uplink: LinkFaults::lossy(rate),
        downlink: LinkFaults::lossy(rate),
        start_skew: Duration::from_micros(rng.gen_range(0..=4_000)),
        seed,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).map_err(|e| e.to_string())?;
    let mut seq = 0u32;
    for call in 0..calls {
        let len = match rng.gen_range(0..4) {
            0 => 0,
            1 => 1,
            2 => rng.gen_range(2..=20),
            _ => rng.gen_range(20..=70),
        };
        let float = rng.gen_bool(0.5);
        let fail =
            |what: String| format!("seed {seed}, call {call} (len {len}, float {float}): {what}");
        if float {
            let inputs: Vec<Vec<f32>> = (0..world)
                .map(|_| (0..len).map(|_| rng.gen_range(-1000.0..1000.0)).collect())
                .collect();
            let out = sim
                .allreduce_f32(&inputs)
                .map_err(|e| fail(e.to_string()))?;
            for i in 0..len {
                let b = i / usize::from(epp) * usize::from(epp);
                let block = b..(b + usize::from(epp)).min(len);
                let e_max = inputs
                    .iter()
                    .map(|d| block_exponent(&d[block.clone()]))
                    .max()
                    .unwrap();
                let exact: f64 = inputs.iter().map(|d| f64::from(d[i])).sum();
                let bound = error_bound(world, e_max, exact);
                for (rank, r) in out.iter().enumerate() {
                    if r[i].to_bits() != out[0][i].to_bits() {
                        return Err(fail(format!("rank {rank} differs at {i}")));
                    }
                }
                if (f64::from(out[0][i]) - exact).abs() > bound {
                    return Err(fail(format!("element {i}: {} vs {exact}", out[0][i])));
                }
            }
        } else {
            let inputs: Vec<Vec<i32>> = (0..world)
                .map(|_| (0..len).map(|_| rng.gen()).collect())
                .collect();
            let out = sim
                .allreduce_i32(&inputs)
                .map_err(|e| fail(e.to_string()))?;
            let expected: Vec<i32> = (0..len)
                .map(|i| inputs.iter().fold(0i32, |a, d| a.wrapping_add(d[i])))
                .collect();
            for (rank, r) in out.iter().enumerate() {
                if *r != expected {
                    return Err(fail(format!("rank {rank}: {r:?} != {expected:?}")));
                }
            }
        }
        seq += packets(len, usize::from(epp), usize::from(window), float);
        for (rank, engine) in sim.engines().iter().enumerate() {
            if engine.next_seq() != seq {
                return Err(fail(format!(
                    "rank {rank} next_seq {} != {seq}",
                    engine.next_seq()
                )));
            }
        }
    }
    Ok(())
}

#[test]
fn alternating_types_and_sizes_under_loss() {
    for seed in 0..60u64 {
        run_sequence(0x3_0000 + seed, 12).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn long_sequence_wraps_the_set_rotation_many_times() {
    // W = 1: every call of more than one packet alternates the set of the
    // single slot; 200 calls make it turn over hundreds of times.
    let config = SimConfig {
        world: 4,
        window: 1,
        elements_per_packet: 3,
        uplink: LinkFaults::lossy(0.1),
        downlink: LinkFaults::lossy(0.1),
        seed: 4242,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).unwrap();
    for call in 0..200i32 {
        let len = (call % 7) as usize;
        if call % 3 == 0 {
            let inputs: Vec<Vec<f32>> = (0..4)
                .map(|r| {
                    (0..len)
                        .map(|i| (r * 10 + i as i32 + call) as f32 * 0.125)
                        .collect()
                })
                .collect();
            let out = sim.allreduce_f32(&inputs).unwrap();
            assert!(out.windows(2).all(|w| w[0] == w[1]));
            for i in 0..len {
                let b = i / 3 * 3;
                let block = b..(b + 3).min(len);
                let e_max = inputs
                    .iter()
                    .map(|d| block_exponent(&d[block.clone()]))
                    .max()
                    .unwrap();
                let exact: f64 = inputs.iter().map(|d| f64::from(d[i])).sum();
                assert!((f64::from(out[0][i]) - exact).abs() <= error_bound(4, e_max, exact));
            }
        } else {
            let inputs: Vec<Vec<i32>> = (0..4)
                .map(|r| (0..len).map(|i| call * 1000 + r * 10 + i as i32).collect())
                .collect();
            let out = sim.allreduce_i32(&inputs).unwrap();
            let expected: Vec<i32> = (0..len as i32)
                .map(|i| 4 * (call * 1000 + i) + 60)
                .collect();
            for r in out {
                assert_eq!(r, expected, "call {call}");
            }
        }
    }
    // Stale copies of earlier calls reached the switch and were refused.
    let stale = sim
        .core()
        .counters()
        .dropped(switch_emu::core::DropReason::StaleSequence);
    assert!(stale > 0);
}

#[test]
fn same_seed_replays_exactly() {
    let run = |seed| {
        let config = SimConfig {
            world: 5,
            window: 3,
            uplink: LinkFaults::lossy(0.2),
            downlink: LinkFaults::lossy(0.2),
            start_skew: Duration::from_millis(2),
            seed,
            ..SimConfig::default()
        };
        let mut sim = Sim::new(config).unwrap();
        let inputs: Vec<Vec<i32>> = (0..5).map(|r| vec![r; 50]).collect();
        sim.allreduce_i32(&inputs).unwrap();
        let stats: Vec<_> = sim.engines().iter().map(|e| e.stats().clone()).collect();
        (
            sim.elapsed(),
            sim.stats().clone(),
            sim.core().counters().clone(),
            stats,
        )
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}
