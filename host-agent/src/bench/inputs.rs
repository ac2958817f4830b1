//! Deterministic bench inputs: every element is a function of (rank, index,
//! iteration), so each rank can compute what the sum over all ranks must be
//! without seeing the others' data, and a result left over from another
//! iteration cannot pass.

use crate::quantize::{block_exponent, error_bound};

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash.
#[inline]
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

    #[inline]
    fn bits(self, index: usize) -> u64 {
        mix(self
            .0
            .wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
    }

    /// The i32 input at `index`: the whole range, so sums wrap.
    #[inline]
    pub fn i32_at(self, index: usize) -> i32 {
        self.bits(index) as i32
    }

    /// The f32 input at `index`: uniform in `[-s, s)` with `s = 2^k`, `k`
    /// cycling through -8..8 every 4096 elements, so blocks have different exponents.
    #[inline]
    pub fn f32_at(self, index: usize) -> f32 {
        let u = (self.bits(index) >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
        // 2^k built from its bits (k + 127 is the biased exponent).
        let scale = f32::from_bits((((index >> 12) % 16) as u32 + 127 - 8) << 23);
        (2.0 * u - 1.0) * scale
    }
}

/// Fills `out` with `rank`'s i32 input of `iteration`.
pub fn fill_i32(rank: u16, iteration: u32, out: &mut [i32]) {
    out.fill(0);
    add_i32_from(Stream::new(rank, iteration), 0, out);
}

cpu_dispatch::avx2_dispatch! {
    /// Adds `stream.i32_at(first + i)` to element `i` of `sums` (wrapping),
    /// several lanes wide as [`fill_f32_from`].
    fn add_i32_from(stream: Stream, first: usize, sums: &mut [i32]) {
        for (i, x) in sums.iter_mut().enumerate() {
            *x = x.wrapping_add(stream.i32_at(first + i));
        }
    }
}

/// Fills `out` with `rank`'s f32 input of `iteration`.
pub fn fill_f32(rank: u16, iteration: u32, out: &mut [f32]) {
    fill_f32_from(Stream::new(rank, iteration), 0, out);
}

cpu_dispatch::avx2_dispatch! {
    /// Element `i` of `out` gets `stream.f32_at(first + i)`; each element
    /// depends on its index only, so the loop runs several lanes wide.
    fn fill_f32_from(stream: Stream, first: usize, out: &mut [f32]) {
        for (i, x) in out.iter_mut().enumerate() {
            *x = stream.f32_at(first + i);
        }
    }
}

/// Which blocks of the result one rank verifies: block `b` when
/// `b % of == index`. Every rank holds the same bytes (the bench compares
/// [`digest`]s across ranks), so checking one share per rank verifies every
/// element on every rank at 1/`of` of the cost, and the verification no
/// longer grows with world x size on each rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This rank's share.
    pub index: u16,
    /// Number of shares (the world size; 1 checks everything).
    pub of: u16,
}

impl Share {
    /// Everything: one share of one.
    pub const ALL: Share = Share { index: 0, of: 1 };

    fn holds(self, block: usize) -> bool {
        block % usize::from(self.of.max(1)) == usize::from(self.index)
    }
}

/// Block of the i32 check: fixed, so that shares are balanced.
const I32_CHECK_BLOCK: usize = 4096;

/// Checks `share` of an i32 allreduce result: the exact wrapping sum over `world` ranks.
pub fn check_i32(world: u16, iteration: u32, share: Share, got: &[i32]) -> Result<(), String> {
    let streams: Vec<Stream> = (0..world).map(|r| Stream::new(r, iteration)).collect();
    let mut sums = vec![0i32; I32_CHECK_BLOCK];
    for (b, block) in got.chunks(I32_CHECK_BLOCK).enumerate() {
        if !share.holds(b) {
            continue;
        }
        let start = b * I32_CHECK_BLOCK;
        let expected = &mut sums[..block.len()];
        expected.fill(0);
        for s in &streams {
            add_i32_from(*s, start, expected);
        }
        if let Some(j) = block.iter().zip(&*expected).position(|(g, e)| g != e) {
            return Err(format!(
                "element {}: got {}, expected {}",
                start + j,
                block[j],
                expected[j]
            ));
        }
    }
    Ok(())
}

/// Checks `share` of an f32 allreduce result against the exact (f64) sum,
/// element by element within [`error_bound`] of the block's max exponent
/// over all ranks (blocks of `elements_per_packet`, as the engine cuts them).
pub fn check_f32(
    world: u16,
    iteration: u32,
    elements_per_packet: usize,
    share: Share,
    got: &[f32],
) -> Result<(), String> {
    let streams: Vec<Stream> = (0..world).map(|r| Stream::new(r, iteration)).collect();
    let epp = elements_per_packet.max(1);
    let mut values = vec![0f32; epp * streams.len()];
    let mut exact = vec![0f64; epp];
    let mut magnitude = vec![0f64; epp];
    for (b, block) in got.chunks(epp).enumerate() {
        if !share.holds(b) {
            continue;
        }
        let start = b * epp;
        let (exact, magnitude) = (&mut exact[..block.len()], &mut magnitude[..block.len()]);
        exact.fill(0.0);
        magnitude.fill(0.0);
        let values = &mut values[..block.len() * streams.len()];
        for (s, part) in streams.iter().zip(values.chunks_mut(block.len())) {
            fill_f32_from(*s, start, part);
            accumulate(exact, magnitude, part);
        }
        let e_max = block_exponent(values);
        if all_within(block, exact, magnitude, world, e_max) {
            continue;
        }
        // Find the first element out of bounds, for the message.
        for (j, &g) in block.iter().enumerate() {
            let bound = element_bound(world, e_max, exact[j], magnitude[j]);
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

cpu_dispatch::avx2_dispatch! {
    /// Adds each value to `exact` and its magnitude to `magnitude`, in f64.
    fn accumulate(exact: &mut [f64], magnitude: &mut [f64], values: &[f32]) {
        for ((e, m), &x) in exact.iter_mut().zip(magnitude.iter_mut()).zip(values) {
            *e += f64::from(x);
            *m += f64::from(x).abs();
        }
    }
}

cpu_dispatch::avx2_dispatch! {
    /// Whether every element of `got` is finite and within its
    /// [`element_bound`]; it does not stop at the first failure, so that
    /// the loop runs several lanes wide.
    fn all_within(got: &[f32], exact: &[f64], magnitude: &[f64], world: u16, e_max: i16) -> bool {
        got.iter()
            .zip(exact)
            .zip(magnitude)
            .fold(true, |ok, ((&g, &x), &m)| {
                let err = (f64::from(g) - x).abs();
                ok & g.is_finite() & (err <= element_bound(world, e_max, x, m))
            })
    }
}

/// How far a result element may be from `exact`, the f64 sum of the
/// inputs whose magnitudes sum to `magnitude`: [`error_bound`] plus the
/// reference sum's own rounding (negligible next to the quantization
/// term, but not zero).
#[inline]
fn element_bound(world: u16, e_max: i16, exact: f64, magnitude: f64) -> f64 {
    error_bound(world, e_max, exact) + f64::from(world) * f64::EPSILON * magnitude
}

/// A 128-bit digest of a result, as four i32 so that ranks can exchange it
/// with an int32 allreduce. Four independent multiply-rotate lanes keep it
/// near memory speed; it only has to make an accidental difference between
/// two ranks' results visible.
pub fn digest<T: Copy>(values: &[T], bits: impl Fn(T) -> u32) -> [i32; 4] {
    const K: [u64; 4] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x85eb_ca77_c2b2_ae63,
    ];
    let word = |lo: T, hi: T| u64::from(bits(lo)) | u64::from(bits(hi)) << 32;
    let mut lanes = K;
    let mut chunks = values.chunks_exact(8);
    for c in &mut chunks {
        for (k, lane) in lanes.iter_mut().enumerate() {
            *lane = (*lane ^ word(c[2 * k], c[2 * k + 1]))
                .wrapping_mul(K[k])
                .rotate_left(29);
        }
    }
    for (i, &v) in chunks.remainder().iter().enumerate() {
        let lane = &mut lanes[i % 4];
        *lane = (*lane ^ u64::from(bits(v)))
            .wrapping_mul(K[i % 4])
            .rotate_left(29);
    }
    for (k, lane) in lanes.iter_mut().enumerate() {
        *lane = mix(*lane ^ (values.len() as u64).wrapping_add(K[(k + 1) % 4]));
    }
    let a = lanes[0] ^ lanes[2].rotate_left(17);
    let b = lanes[1] ^ lanes[3].rotate_left(41);
    [a as i32, (a >> 32) as i32, b as i32, (b >> 32) as i32]
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

    /// The exact i32 (wrapping) and f64 sums of `world` ranks' inputs.
    fn sums(world: u16, it: u32, len: usize) -> (Vec<i32>, Vec<f64>) {
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
        (sum, fsum)
    }

    #[test]
    fn checks_accept_the_sum_and_reject_a_wrong_element() {
        let (world, it, len) = (3u16, 4u32, 1000usize);
        let (mut sum, fsum) = sums(world, it, len);
        check_i32(world, it, Share::ALL, &sum).unwrap();
        assert!(check_i32(world, it + 1, Share::ALL, &sum).is_err());
        sum[17] ^= 1;
        assert!(check_i32(world, it, Share::ALL, &sum)
            .unwrap_err()
            .starts_with("element 17"));
        let mut fout: Vec<f32> = fsum.iter().map(|&x| x as f32).collect();
        check_f32(world, it, 64, Share::ALL, &fout).unwrap();
        fout[900] += 0.01;
        assert!(check_f32(world, it, 64, Share::ALL, &fout)
            .unwrap_err()
            .starts_with("element 900"));
        // A NaN or an infinity fails however large the bound.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut out: Vec<f32> = fsum.iter().map(|&x| x as f32).collect();
            out[513] = bad;
            let e = check_f32(world, it, 256, Share::ALL, &out).unwrap_err();
            assert!(e.starts_with("element 513"), "{bad}: {e}");
        }
    }

    #[test]
    fn dispatched_loops_match_the_baseline() {
        // Ranks on CPUs with and without AVX2 must make the same inputs
        // and pass the same results.
        let (world, it, len) = (3u16, 5u32, 3000usize);
        let (mut sum, fsum) = sums(world, it, len);
        let mut out: Vec<f32> = fsum.iter().map(|&x| x as f32).collect();
        out[2999] += 0.01;
        sum[1234] ^= 4;
        let run = || {
            let mut input = vec![0f32; len];
            fill_f32(2, it, &mut input);
            let mut ints = vec![0i32; len];
            fill_i32(2, it, &mut ints);
            let mut checks = Vec::new();
            for share in [Share::ALL, Share { index: 2, of: 3 }] {
                checks.push(check_f32(world, it, 100, share, &out));
                checks.push(check_i32(world, it, share, &sum));
            }
            let bits: Vec<u32> = input.iter().map(|x| x.to_bits()).collect();
            (bits, ints, checks)
        };
        let dispatched = run();
        cpu_dispatch::set_baseline_only(true);
        let baseline = run();
        cpu_dispatch::set_baseline_only(false);
        assert_eq!(dispatched, baseline);
        let checks = &dispatched.2;
        assert!(checks[0].as_ref().unwrap_err().starts_with("element 2999"));
        assert!(checks[1].as_ref().unwrap_err().starts_with("element 1234"));
    }

    #[test]
    fn shares_cover_every_block_once() {
        // A wrong element is reported by exactly the share that holds its block.
        let (world, it) = (4u16, 2u32);
        let len = 5 * I32_CHECK_BLOCK + 100;
        let (mut sum, fsum) = sums(world, it, len);
        let mut fout: Vec<f32> = fsum.iter().map(|&x| x as f32).collect();
        let shares = |of: u16| (0..of).map(move |index| Share { index, of });
        for share in shares(world) {
            check_i32(world, it, share, &sum).unwrap();
            check_f32(world, it, 64, share, &fout).unwrap();
        }
        for bad in [0, I32_CHECK_BLOCK + 3, 4 * I32_CHECK_BLOCK + 99, len - 1] {
            sum[bad] = sum[bad].wrapping_add(1);
            let failing: Vec<u16> = shares(world)
                .filter(|&s| check_i32(world, it, s, &sum).is_err())
                .map(|s| s.index)
                .collect();
            assert_eq!(failing, [((bad / I32_CHECK_BLOCK) % 4) as u16], "{bad}");
            sum[bad] = sum[bad].wrapping_sub(1);
            let kept = fout[bad];
            fout[bad] += 0.01;
            let failing: Vec<u16> = shares(world)
                .filter(|&s| check_f32(world, it, 64, s, &fout).is_err())
                .map(|s| s.index)
                .collect();
            assert_eq!(failing, [((bad / 64) % 4) as u16], "{bad}");
            fout[bad] = kept;
        }
    }

    #[test]
    fn digest_sees_any_change() {
        let base: Vec<f32> = (0..1003u32).map(|i| i as f32 * 0.37 - 100.0).collect();
        let d = digest(&base, f32::to_bits);
        assert_eq!(d, digest(&base.clone(), f32::to_bits));
        for i in [0, 7, 8, 500, 999, 1000, 1002] {
            let mut b = base.clone();
            b[i] = f32::from_bits(b[i].to_bits() ^ 1);
            assert_ne!(digest(&b, f32::to_bits), d, "element {i}");
        }
        assert_ne!(digest(&base[..1002], f32::to_bits), d);
        assert_ne!(
            digest(&[], |x: i32| x as u32),
            digest(&[0], |x: i32| x as u32)
        );
    }
}
