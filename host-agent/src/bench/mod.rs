//! The allreduce benchmark behind `host-agent bench` and `switch-emu demo`:
//! for each size, warm-up and timed iterations on deterministic inputs
//! ([`inputs`]), every result checked (each rank verifies its share of the
//! blocks and all ranks' digests must agree), reported like nccl-tests.
//!
//! Each timed iteration starts after a one-element allreduce that acts as a
//! barrier (so that no rank's clock includes waiting for a peer still
//! checking the previous result); only the allreduce itself is timed.

pub mod inputs;
mod report;

use std::fmt;
use std::time::{Duration, Instant};

use crate::agent::{Agent, AgentError, AgentStats};

pub use report::{header, line, parse_size, SizeResult};

/// Element type of a bench run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit integers, summed exactly (wrapping).
    I32,
    /// 32-bit floats, in block fixed point.
    F32,
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::I32 => "int32",
            Dtype::F32 => "float32",
        })
    }
}

impl std::str::FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "i32" | "int32" => Ok(Dtype::I32),
            "f32" | "float32" => Ok(Dtype::F32),
            other => Err(format!("unknown dtype '{other}' (f32 or i32)")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchConfig {
    /// Element type.
    pub dtype: Dtype,
    /// Tensor sizes in bytes (multiples of 4).
    pub sizes: Vec<usize>,
    /// Timed iterations per size (at least 1).
    pub iters: u32,
    /// Untimed iterations before them (checked too).
    pub warmup: u32,
    /// Sum into a second buffer ([`Agent::allreduce_f32_into`]) instead of
    /// in place.
    pub out_of_place: bool,
}

/// Runs the benchmark on a joined agent. A wrong result does not stop the
/// run (it is reported in [`SizeResult::failure`]); an agent error does.
pub fn run(
    agent: &mut Agent,
    config: &BenchConfig,
    mut on_result: impl FnMut(&SizeResult),
) -> Result<Vec<SizeResult>, AgentError> {
    let world = agent.world();
    let rank = agent.rank();
    let mut results = Vec::new();
    // Iteration numbers continue across sizes so that every call has its own inputs.
    let mut iteration = 0u32;
    for &bytes in &config.sizes {
        let elements = bytes / 4;
        let mut times = Vec::with_capacity(config.iters as usize);
        let mut packets = 0u64;
        let mut retransmissions = 0u64;
        let mut failure = None;
        let mut ints = vec![
            0i32;
            if config.dtype == Dtype::I32 {
                elements
            } else {
                0
            }
        ];
        let mut floats = vec![
            0f32;
            if config.dtype == Dtype::F32 {
                elements
            } else {
                0
            }
        ];
        // Out of place, the inputs go here and the sums to `ints`/`floats`.
        let (mut ints_in, mut floats_in) = if config.out_of_place {
            (ints.clone(), floats.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        for i in 0..config.warmup + config.iters.max(1) {
            let (ints_fill, floats_fill) = if config.out_of_place {
                (&mut ints_in, &mut floats_in)
            } else {
                (&mut ints, &mut floats)
            };
            match config.dtype {
                Dtype::I32 => inputs::fill_i32(rank, iteration, ints_fill),
                Dtype::F32 => inputs::fill_f32(rank, iteration, floats_fill),
            }
            agent.allreduce_i32(&mut [0])?;
            let before = agent.stats();
            let started = Instant::now();
            match (config.dtype, config.out_of_place) {
                (Dtype::I32, false) => agent.allreduce_i32(&mut ints)?,
                (Dtype::F32, false) => agent.allreduce_f32(&mut floats)?,
                (Dtype::I32, true) => agent.allreduce_i32_into(&ints_in, &mut ints)?,
                (Dtype::F32, true) => agent.allreduce_f32_into(&floats_in, &mut floats)?,
            }
            let took = started.elapsed();
            let after = agent.stats();
            let check = check_result(agent, config.dtype, iteration, &ints, &floats)?;
            if let (Err(e), None) = (check, &failure) {
                failure = Some(format!("iteration {i}: {e}"));
            }
            if i >= config.warmup {
                times.push(took);
                packets += delta(&before, &after, |s| s.engine.packets_sent);
                retransmissions += delta(&before, &after, |s| s.engine.retransmissions);
            }
            iteration = iteration.wrapping_add(1);
        }
        let result = SizeResult::new(
            bytes,
            config.dtype,
            world,
            &times,
            packets,
            retransmissions,
            failure,
        );
        on_result(&result);
        results.push(result);
    }
    Ok(results)
}

/// Verifies one result: every rank checks its [`inputs::Share`] of the
/// blocks against the exact sum, and the ranks' digests must all be equal
/// (exchanged by an int32 allreduce, each rank filling its own four
/// entries), so every element is verified on every rank without each rank
/// recomputing all inputs.
fn check_result(
    agent: &mut Agent,
    dtype: Dtype,
    iteration: u32,
    ints: &[i32],
    floats: &[f32],
) -> Result<Result<(), String>, AgentError> {
    let (world, rank) = (agent.world(), agent.rank());
    let own = match dtype {
        Dtype::I32 => inputs::digest(ints, |x| x as u32),
        Dtype::F32 => inputs::digest(floats, f32::to_bits),
    };
    let mut digests = vec![0i32; 4 * usize::from(world)];
    let at = 4 * usize::from(rank);
    digests[at..at + 4].copy_from_slice(&own);
    agent.allreduce_i32(&mut digests)?;
    if let Some(other) = (0..world).find(|&r| digests[4 * usize::from(r)..][..4] != own) {
        return Ok(Err(format!(
            "rank {rank}'s result differs from rank {other}'s (digests {own:08x?} and {:08x?})",
            &digests[4 * usize::from(other)..][..4]
        )));
    }
    let share = inputs::Share {
        index: rank,
        of: world,
    };
    let epp = usize::from(agent.params().elements_per_packet);
    Ok(match dtype {
        Dtype::I32 => inputs::check_i32(world, iteration, share, ints),
        Dtype::F32 => inputs::check_f32(world, iteration, epp, share, floats),
    })
}

fn delta(before: &AgentStats, after: &AgentStats, f: impl Fn(&AgentStats) -> u64) -> u64 {
    f(after).saturating_sub(f(before))
}

/// The median of `times` (the lower middle for an even count).
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}
