//! Deterministic bench inputs: every element is a function of (rank, index,
//! iteration), so each rank can compute what the sum over all ranks must be
//! without seeing the others' data, and a result left over from another
//! iteration cannot pass.

use crate::quantize::{block_exponent, error_bound};

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream of one (rank, iteration).
#[derive(Debug, Clone, Copy)]
pub struct Stream(u64);

impl Stream {
    /// The stream of `rank` in `iteration`.
    pub fn new(rank: u16, iteration: u32) -> Self {
        Stream(mix((u64::from(rank) << 32)
            ^ u64::from(iteration)
            ^ 0x1a2b_3c4d_0000_0000))
    }

    fn bits(self, index: usize) -> u64 {
        mix(self
            .0
            .wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
    }

    /// The i32 input at `index`: the whole range, so sums wrap.
    pub fn i32_at(self, index: usize) -> i32 {
        self.bits(index) as i32
    }

    /// The f32 input at `index`: uniform in `[-s, s)` with `s = 2^k`, `k`
    /// cycling through -8..8 every 4096 elements, so blocks have different exponents.
    pub fn f32_at(self, index: usize) -> f32 {
        let u = (self.bits(index) >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
        // 2^k built from its bits (k + 127 is the biased exponent).
        let scale = f32::from_bits((((index >> 12) % 16) as u32 + 127 - 8) << 23);
        (2.0 * u - 1.0) * scale
    }
}

/// Fills `out` with `rank`'s i32 input of `iteration`.
pub fn fill_i32(rank: u16, iteration: u32, out: &mut [i32]) {
    let s = Stream::new(rank, iteration);
    for (i, x) in out.iter_mut().enumerate() {
        *x = s.i32_at(i);
    }
}

/// Fills `out` with `rank`'s f32 input of `iteration`.
pub fn fill_f32(rank: u16, iteration: u32, out: &mut [f32]) {
    let s = Stream::new(rank, iteration);
    for (i, x) in out.iter_mut().enumerate() {
        *x = s.f32_at(i);
    }
}

/// Checks an i32 allreduce result: the exact wrapping sum over `world` ranks.
pub fn check_i32(world: u16, iteration: u32, got: &[i32]) -> Result<(), String> {
    let streams: Vec<Stream> = (0..world).map(|r| Stream::new(r, iteration)).collect();
    for (i, &g) in got.iter().enumerate() {
        let expected = streams
            .iter()
            .fold(0i32, |acc, s| acc.wrapping_add(s.i32_at(i)));
        if g != expected {
            return Err(format!("element {i}: got {g}, expected {expected}"));
        }
    }
    Ok(())
}

/// Checks an f32 allreduce result against the exact (f64) sum, element by
/// element within [`error_bound`] of the block's max exponent over all ranks
/// (blocks of `elements_per_packet`, as the engine cuts them).
pub fn check_f32(
    world: u16,
    iteration: u32,
    elements_per_packet: usize,
    got: &[f32],
) -> Result<(), String> {
    let streams: Vec<Stream> = (0..world).map(|r| Stream::new(r, iteration)).collect();
    let epp = elements_per_packet.max(1);
    let mut values = vec![0f32; epp * streams.len()];
    let mut exact = vec![0f64; epp];
    let mut magnitude = vec![0f64; epp];
    for (b, block) in got.chunks(epp).enumerate() {
        let start = b * epp;
        exact[..block.len()].fill(0.0);
        magnitude[..block.len()].fill(0.0);
        let mut n = 0;
        for s in &streams {
            for j in 0..block.len() {
                let x = s.f32_at(start + j);
                values[n] = x;
                n += 1;
                exact[j] += f64::from(x);
                magnitude[j] += f64::from(x).abs();
            }
        }
        let e_max = block_exponent(&values[..n]);
        for (j, &g) in block.iter().enumerate() {
            // The f64 reference sum has its own rounding (negligible next
            // to the quantization term, but not zero).
            let slack = f64::from(world) * f64::EPSILON * magnitude[j];
            let bound = error_bound(world, e_max, exact[j]) + slack;
            let err = (f64::from(g) - exact[j]).abs();
            if !g.is_finite() || err > bound {
                return Err(format!(
                    "element {}: got {g:e}, exact {:e}, error {err:e} > bound {bound:e}",
                    start + j,
                    exact[j]
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_depend_on_rank_index_and_iteration() {
        let a = Stream::new(0, 0);
        assert_ne!(a.i32_at(0), a.i32_at(1));
        assert_ne!(a.i32_at(5), Stream::new(1, 0).i32_at(5));
        assert_ne!(a.i32_at(5), Stream::new(0, 1).i32_at(5));
        for i in 0..100_000 {
            let x = a.f32_at(i);
            let s = 2f32.powi(((i >> 12) % 16) as i32 - 8);
            assert!(x.is_finite() && x >= -s && x < s, "{i}: {x}");
        }
    }

    #[test]
    fn checks_accept_the_sum_and_reject_a_wrong_element() {
        let (world, it, len) = (3u16, 4u32, 1000usize);
        let mut sum = vec![0i32; len];
        let mut fsum = vec![0f64; len];
        for r in 0..world {
            let mut x = vec![0i32; len];
            fill_i32(r, it, &mut x);
            let mut f = vec![0f32; len];
            fill_f32(r, it, &mut f);
            for i in 0..len {
                sum[i] = sum[i].wrapping_add(x[i]);
                fsum[i] += f64::from(f[i]);
            }
        }
        check_i32(world, it, &sum).unwrap();
        assert!(check_i32(world, it + 1, &sum).is_err());
        sum[17] ^= 1;
        assert!(check_i32(world, it, &sum)
            .unwrap_err()
            .starts_with("element 17"));
        let mut fout: Vec<f32> = fsum.iter().map(|&x| x as f32).collect();
        check_f32(world, it, 64, &fout).unwrap();
        fout[900] += 0.01;
        assert!(check_f32(world, it, 64, &fout)
            .unwrap_err()
            .starts_with("element 900"));
    }
}
