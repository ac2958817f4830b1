//! Jobs of in-process workers ([`host_agent::Agent`]) for the whole-system
//! tests: deterministic inputs and exact checks of their sums.

use std::net::SocketAddr;

use host_agent::quantize::{block_exponent, error_bound};
use host_agent::{Agent, AgentError, JoinOptions};

/// Shape of a job.
#[derive(Debug, Clone, Copy)]
pub struct JobShape {
    /// Job name.
    pub name: &'static str,
    /// World size.
    pub world: u16,
    /// Slots leased.
    pub window: u16,
    /// Elements per packet.
    pub elements: u16,
}

impl JobShape {
    /// Join options for `rank` against the switch at `control`.
    pub fn options(&self, control: SocketAddr, rank: u16) -> JoinOptions {
        let mut opts = JoinOptions::new(self.name, rank, self.world).control(control);
        opts.window = self.window;
        opts.elements_per_packet = self.elements;
        opts
    }
}

/// Joins every rank of `shape` concurrently (a join returns only when all
/// have joined); the agents in rank order.
pub fn join_all(control: SocketAddr, shape: JobShape) -> Result<Vec<Agent>, AgentError> {
    let threads: Vec<_> = (0..shape.world)
        .map(|rank| std::thread::spawn(move || Agent::join(shape.options(control, rank))))
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("join thread panicked"))
        .collect()
}

fn mix(seed: u32, rank: u16, iter: u32, i: usize) -> u32 {
    let mut x = seed
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(u32::from(rank).wrapping_mul(0x85eb_ca6b))
        .wrapping_add(iter.wrapping_mul(0xc2b2_ae35))
        .wrapping_add((i as u32).wrapping_mul(0x27d4_eb2f));
    x ^= x >> 15;
    x = x.wrapping_mul(0x2c1b_3c6d);
    x ^ (x >> 12)
}

/// Input of `rank` for int32 iteration `iter`: full-range values (the sum wraps).
pub fn input_i32(seed: u32, rank: u16, iter: u32, len: usize) -> Vec<i32> {
    (0..len).map(|i| mix(seed, rank, iter, i) as i32).collect()
}

/// Input of `rank` for float32 iteration `iter`: magnitudes varying by block.
pub fn input_f32(seed: u32, rank: u16, iter: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let m = mix(seed, rank, iter, i);
            let unit = (m >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            unit * 2f32.powi((i / 64 % 7) as i32 - 3)
        })
        .collect()
}

/// Checks an int32 result: the wrapping sum of every rank's input, bit for bit.
pub fn check_i32(seed: u32, world: u16, iter: u32, got: &[i32]) -> Result<(), String> {
    let inputs: Vec<Vec<i32>> = (0..world)
        .map(|r| input_i32(seed, r, iter, got.len()))
        .collect();
    for (i, &g) in got.iter().enumerate() {
        let want = inputs.iter().fold(0i32, |acc, v| acc.wrapping_add(v[i]));
        if g != want {
            return Err(format!(
                "iteration {iter} element {i}: got {g}, want {want}"
            ));
        }
    }
    Ok(())
}

/// Checks a float32 result against the f64 sum within the documented
/// block fixed point bound (blocks of `elements`).
pub fn check_f32(
    seed: u32,
    world: u16,
    elements: u16,
    iter: u32,
    got: &[f32],
) -> Result<(), String> {
    let inputs: Vec<Vec<f32>> = (0..world)
        .map(|r| input_f32(seed, r, iter, got.len()))
        .collect();
    let e = usize::from(elements);
    for start in (0..got.len()).step_by(e) {
        let end = (start + e).min(got.len());
        let e_max = inputs
            .iter()
            .map(|v| block_exponent(&v[start..end]))
            .max()
            .unwrap_or(packet_format::NO_EXPONENT);
        for i in start..end {
            let exact: f64 = inputs.iter().map(|v| f64::from(v[i])).sum();
            let bound = error_bound(world, e_max, exact);
            let err = (f64::from(got[i]) - exact).abs();
            if err > bound {
                return Err(format!(
                    "iteration {iter} element {i}: got {}, exact {exact}, error {err} > bound {bound}",
                    got[i]
                ));
            }
        }
    }
    Ok(())
}
