//! Whole-system f32 allreduce in the simulator: results are bit-identical
//! across workers and, per element, within the bound documented in
//! `host_agent::quantize` of the exact sum.

use std::time::Duration;

use host_agent::quantize::{block_exponent, error_bound};
use ina_tests::{LinkFaults, Sim, SimConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One value of a kind chosen at random: zeros, negatives, tiny, huge,
/// subnormal, everyday. `huge` stays below `f32::MAX / (2 n)` so that the
/// sum itself is finite.
fn value(rng: &mut SmallRng, world: u16, scale_exp: i32) -> f32 {
    let sign = if rng.gen_bool(0.5) { -1.0 } else { 1.0 };
    match rng.gen_range(0..8) {
        0 => 0.0,
        1 => sign * f32::from_bits(rng.gen_range(1..0x80_0000)), // subnormal
        2 => sign * f32::MAX / (2.0 * f32::from(world)) * rng.gen_range(0.0..1.0),
        3 => sign * 2f32.powi(rng.gen_range(-60..60)) * rng.gen_range(1.0..2.0),
        _ => sign * 2f32.powi(scale_exp) * rng.gen_range(0.0..1.0),
    }
}

/// Tensors whose blocks mix magnitudes, with some blocks zero on some ranks
/// and some blocks zero everywhere.
fn random_inputs(rng: &mut SmallRng, world: u16, len: usize, epp: usize) -> Vec<Vec<f32>> {
    let blocks = len.div_ceil(epp);
    let block_kind: Vec<u8> = (0..blocks).map(|_| rng.gen_range(0..5)).collect();
    let scale_exp: Vec<i32> = (0..blocks).map(|_| rng.gen_range(-20..20)).collect();
    (0..world)
        .map(|_| {
            let rank_zero_block = rng.gen_range(0..blocks.max(1));
            (0..len)
                .map(|i| {
                    let b = i / epp;
                    match block_kind[b] {
                        0 => 0.0,
                        1 if b == rank_zero_block => 0.0,
                        2 => -2f32.powi(scale_exp[b]) * rng.gen_range(0.0..1.0),
                        _ => value(rng, world, scale_exp[b]),
                    }
                })
                .collect()
        })
        .collect()
}

/// Runs one allreduce and checks identity across ranks and the bound.
fn check(config: SimConfig, inputs: &[Vec<f32>]) -> Result<Sim, String> {
    let seed = config.seed;
    let epp = usize::from(config.elements_per_packet);
    let world = config.world;
    let mut sim = Sim::new(config.clone()).map_err(|e| format!("seed {seed}: {e}"))?;
    let results = sim
        .allreduce_f32(inputs)
        .map_err(|e| format!("seed {seed} {config:?}: {e}"))?;
    for (rank, r) in results.iter().enumerate().skip(1) {
        let same = r
            .iter()
            .zip(&results[0])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(format!("seed {seed}: rank {rank} differs from rank 0"));
        }
    }
    let len = inputs[0].len();
    for i in 0..len {
        let block = (i / epp) * epp..((i / epp + 1) * epp).min(len);
        let e_max = inputs
            .iter()
            .map(|d| block_exponent(&d[block.clone()]))
            .max()
            .unwrap_or(i16::MIN);
        let exact: f64 = inputs.iter().map(|d| f64::from(d[i])).sum();
        // The f64 sum itself may round when magnitudes differ widely; allow
        // its own error (negligible next to the quantization term).
        let magnitude: f64 = inputs.iter().map(|d| f64::from(d[i]).abs()).sum();
        let slack = f64::from(world) * f64::EPSILON * magnitude;
        let got = results[0][i];
        let bound = error_bound(world, e_max, exact) + slack;
        let err = (f64::from(got) - exact).abs();
        if !got.is_finite() || err > bound {
            let values: Vec<f32> = inputs.iter().map(|d| d[i]).collect();
            return Err(format!(
                "seed {seed} {config:?}: element {i} = {got:e}, exact {exact:e}, error {err:e} > bound {bound:e} (e_max {e_max}, inputs {values:?})"
            ));
        }
    }
    Ok(sim)
}

#[test]
fn matrix_of_worlds_windows_and_fault_rates() {
    for world in [1u16, 2, 3, 8, 32] {
        for window in [1u16, 4, 64] {
            for (i, rate) in [0.0, 0.2].into_iter().enumerate() {
                let seed = u64::from(world) * 1000 + u64::from(window) * 10 + i as u64;
                let mut rng = SmallRng::seed_from_u64(seed);
                let len = if window == 64 { 331 } else { 43 };
                let inputs = random_inputs(&mut rng, world, len, 6);
                let config = SimConfig {
                    world,
                    window,
                    elements_per_packet: 6,
                    uplink: LinkFaults::lossy(rate),
                    downlink: LinkFaults::lossy(rate),
                    start_skew: Duration::from_millis(3),
                    seed,
                    ..SimConfig::default()
                };
                check(config, &inputs).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

#[test]
fn handpicked_blocks() {
    // Blocks of 4: mixed magnitudes, zeros everywhere, zeros on one rank,
    // negatives, subnormals, near-overflow values, and a short last block.
    let tiny = f32::from_bits(1);
    let big = f32::MAX / 8.0;
    let inputs = vec![
        vec![
            1e-30,
            1e30,
            -3.5,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            -1.0,
            -2.0,
            -3.0,
            -4.0,
            tiny,
            3.0 * tiny,
            0.0,
            -tiny,
            big,
            -big,
            1.0,
            0.5,
            7.0,
        ],
        vec![
            2e-30,
            -1e30,
            3.5,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.1,
            0.2,
            0.3,
            0.4,
            -0.5,
            -0.25,
            -0.125,
            -1e-9,
            2.0 * tiny,
            tiny,
            tiny,
            0.0,
            big,
            big,
            -1.0,
            0.25,
            -7.0,
        ],
        vec![
            -1e-30,
            0.0,
            1e-7,
            -1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            -8.0,
            -1e-3,
            0.0,
            -4.0,
            0.0,
            0.0,
            5.0 * tiny,
            tiny,
            0.0,
            big,
            0.0,
            -0.75,
            1e-20,
        ],
    ];
    for rate in [0.0, 0.15] {
        let config = SimConfig {
            world: 3,
            window: 3,
            elements_per_packet: 4,
            uplink: LinkFaults::lossy(rate),
            downlink: LinkFaults::lossy(rate),
            seed: 17,
            ..SimConfig::default()
        };
        check(config, &inputs).unwrap_or_else(|e| panic!("{e}"));
    }
    // All-zero blocks come back as exact zeros, and exactly representable
    // small sums of a single worker come back exactly.
    let config = SimConfig {
        world: 1,
        elements_per_packet: 4,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(config).unwrap();
    let data = vec![0.0, 0.0, 0.0, 0.0, 1.0, -2.0, 0.5, 0.25, tiny, 0.0];
    let out = sim.allreduce_f32(std::slice::from_ref(&data)).unwrap();
    assert_eq!(out[0], data);
}

#[test]
fn random_cases() {
    for case in 0..300u64 {
        let seed = 0x2_0000 + case;
        let mut rng = SmallRng::seed_from_u64(seed);
        let world = if rng.gen_bool(0.1) {
            rng.gen_range(9..=32)
        } else {
            rng.gen_range(1..=8)
        };
        let window = rng.gen_range(1..=8);
        let epp = rng.gen_range(1..=8);
        let len = rng.gen_range(0..=40);
        let rate = rng.gen_range(0.0..=0.2);
        let config = SimConfig {
            world,
            window,
            elements_per_packet: epp,
            uplink: LinkFaults::lossy(rate),
            downlink: LinkFaults::lossy(rng.gen_range(0.0..=0.2)),
            start_skew: Duration::from_micros(rng.gen_range(0..=5_000)),
            seed,
            ..SimConfig::default()
        };
        let inputs = random_inputs(&mut rng, world, len, usize::from(epp));
        if let Err(e) = check(config, &inputs) {
            panic!("case {case} failed (rerun with seed {seed}): {e}");
        }
    }
}
