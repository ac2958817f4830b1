//! Block fixed point for float32 allreduce (as SwitchML): each block of a
//! tensor is scaled by a factor derived from the largest exponent any worker
//! reported for it, rounded to integers the switch can add, and scaled back.
//!
//! The inner loops take plain slices and contain no per-element branches
//! other than the clamp (a select), so they vectorize.
//!
//! # Error bound
//!
//! Let `n` be the world size, `M = 2^31 - 1`, `e` the block's max exponent
//! (every worker's `|x| <= 2^e`), `f = fl(M / (n 2^e))` the scale ([`scale`])
//! and `c = floor(M / n)` the clamp. With `u = 2^-53` (f64 rounding):
//!
//! 1. Quantization of one value `x`: `y = fl(x f)` is within `u|x f|` of
//!    `x f`, and `|x f| <= M/n (1+u)`. Rounding to the nearest integer adds
//!    at most 1/2; clamping (only when `|x f| > c - 1/2`) leaves
//!    `|q - x f| <= M/n (1+u) - c <= (n-1)/n + 2^-22/n`. So
//!    `|q - x f| <= max(1/2, (n-1)/n) + 2^-22/n < 1`: at most `1/f` in value units.
//! 2. The integer sum `S = sum q_i` is exact (`|S| <= n c <= M`, no wrap),
//!    so `|S - f E| <= K = max(n/2, n-1) + 2^-22`, with `E` the exact
//!    (real-number) sum of the workers' values.
//! 3. Dequantization `d = fl(S / f)`: `|d - E| <= K/f (1+u) + u|E|`, and
//!    `K/f <= (K/n) B (1+2u)` with `B = n^2 2^e / M`, and `K/n <= 1 - 1/(4n)`,
//!    so `|d - E| <= (1 - 1/(4n)) (1+3u) B + u |E|`.
//! 4. Rounding to f32: in the normal range this adds `2^-24 |d| <=
//!    2^-24 (|E| + |d - E|)`; the total is then at most
//!    `(1 - 1/(4n)) (1+3u) (1+2^-24) B + (2^-24 + 2u) |E| <= B + 2^-23 |E|`
//!    (the first factor is below 1 for any `n < 2^22`, so for every u16 world).
//!    In the subnormal range it adds at most half the smallest subnormal, `2^-150`.
//!
//! Hence, for every element whose result is finite,
//! `|result - E| <= n^2 2^e_max / (2^31 - 1) + 2^-23 |E| + 2^-150`
//! ([`error_bound`]). The `2^-150` term only matters when the result is
//! subnormal after cancellation; the result overflows to infinity only if
//! `|E|` itself is within rounding of `f32::MAX`, as an f32 sum would.

use packet_format::NO_EXPONENT;

/// Largest exponent a finite f32 block can have (`2^128 > f32::MAX`).
pub const MAX_EXPONENT: i16 = 128;

/// Smallest exponent a nonzero f32 block can have (the smallest subnormal is `2^-149`).
pub const MIN_EXPONENT: i16 = -149;

/// `2^31 - 1`, the largest magnitude the switch's i32 sum may reach.
const FULL_SCALE: f64 = i32::MAX as f64;

/// `1.5 * 2^52`: adding and subtracting it rounds an f64 of magnitude
/// below `2^51` to the nearest integer (ties to even) with plain arithmetic,
/// which vectorizes on baseline x86-64 where `f64::round` does not.
const ROUNDING_BIAS: f64 = 6_755_399_441_055_744.0;

/// Index of the first non-finite value, if any.
pub fn first_non_finite(data: &[f32]) -> Option<usize> {
    data.iter().position(|x| !x.is_finite())
}

/// Exponent of a block: the smallest `e` with `2^e >= max |x|`, or
/// [`NO_EXPONENT`] for a block of zeros (so that it does not raise the
/// max over workers). The block must be finite (see [`first_non_finite`]).
pub fn block_exponent(block: &[f32]) -> i16 {
    exponent_of_bits(max_magnitude_bits(block))
}

cpu_dispatch::avx2_dispatch! {
    /// The largest sign-cleared bit pattern of `block`: for non-negative
    /// floats the bit patterns order like the values, so this is the max
    /// magnitude, and from +infinity's pattern up every pattern is an
    /// infinity or a NaN.
    fn max_magnitude_bits(block: &[f32]) -> u32 {
        block
            .iter()
            .fold(0u32, |acc, x| acc.max(x.to_bits() & 0x7fff_ffff))
    }
}

/// [`block_exponent`] of a block, or `None` if it holds NaN or an
/// infinity: the max magnitude bits tell both at once, so a tensor needs
/// one pass, not a finiteness check and then an exponent pass.
pub fn finite_block_exponent(block: &[f32]) -> Option<i16> {
    let max_bits = max_magnitude_bits(block);
    (max_bits < f32::INFINITY.to_bits()).then(|| exponent_of_bits(max_bits))
}

/// Exponent (as [`block_exponent`]) of one non-negative float given as bits.
fn exponent_of_bits(bits: u32) -> i16 {
    if bits == 0 {
        return NO_EXPONENT;
    }
    let biased = (bits >> 23) as i16;
    let mantissa = bits & 0x7f_ffff;
    if biased == 0 {
        // Subnormal: value = mantissa * 2^-149, so e = ceil(log2(mantissa)) - 149.
        let ceil_log2 = 32 - (mantissa - 1).leading_zeros() as i16;
        ceil_log2 + MIN_EXPONENT
    } else if mantissa == 0 {
        // An exact power of two: 2^(biased - 127).
        biased - 127
    } else {
        biased - 126
    }
}

/// Whether `e` is an exponent a worker can report: [`NO_EXPONENT`] or a
/// value in `MIN_EXPONENT..=MAX_EXPONENT`.
pub fn is_valid_exponent(e: i16) -> bool {
    e == NO_EXPONENT || (MIN_EXPONENT..=MAX_EXPONENT).contains(&e)
}

/// `2^e` as an exact f64 (`e` in `MIN_EXPONENT..=MAX_EXPONENT`).
fn pow2(e: i16) -> f64 {
    debug_assert!((MIN_EXPONENT..=MAX_EXPONENT).contains(&e));
    f64::from_bits(((i64::from(e) + 1023) as u64) << 52)
}

/// The scale `f = (2^31 - 1) / (n 2^e_max)`: with every `|x| <= 2^e_max`,
/// the sum of `n` quantized values stays within i32. `e_max` must be a
/// finite exponent (not [`NO_EXPONENT`]), `world >= 1`.
pub fn scale(world: u16, e_max: i16) -> f64 {
    FULL_SCALE / (f64::from(world) * pow2(e_max))
}

/// Largest magnitude one worker's quantized value may take, `floor((2^31-1)/n)`.
pub fn clamp_limit(world: u16) -> i32 {
    i32::MAX / i32::from(world.max(1))
}

/// An element as the quantizer writes it and the dequantizer reads it: a
/// plain i32, or a big-endian payload word, so that packets are filled and
/// read in the same pass that scales (no separate byte-swap pass or scratch
/// buffer).
pub trait Word: Copy {
    /// The element holding `value`.
    fn from_i32(value: i32) -> Self;
    /// The value this element holds.
    fn to_i32(self) -> i32;
}

impl Word for i32 {
    fn from_i32(value: i32) -> Self {
        value
    }
    fn to_i32(self) -> i32 {
        self
    }
}

/// A payload word in network order, as `packet_format` lays them out.
impl Word for [u8; 4] {
    fn from_i32(value: i32) -> Self {
        value.to_be_bytes()
    }
    fn to_i32(self) -> i32 {
        i32::from_be_bytes(self)
    }
}

/// Quantizes one block: `out[i] = clamp(round(block[i] * f), -limit, limit)`,
/// rounding to nearest, ties to even. `out` must be as long as `block`.
pub fn quantize<W: Word>(block: &[f32], f: f64, limit: i32, out: &mut [W]) {
    debug_assert_eq!(block.len(), out.len());
    if limit < 0 {
        // Not a limit any caller uses; kept with its literal meaning.
        return quantize_plain(block, f, limit, out);
    }
    quantize_biased(block, f, limit, out);
}

cpu_dispatch::avx2_dispatch! {
    /// [`quantize`] for `limit >= 0`. Rounding, clamping and conversion all
    /// act on the biased value `t = y + 1.5 * 2^52`: while `|y| < 2^51` it is
    /// exactly the rounded integer plus the bias, with the integer in its low
    /// 32 bits (two's complement). Clamping `t` to `bias + [-limit, limit]`
    /// equals clamping the rounded value (a larger `|y|` lands outside either
    /// way), and reading the low bits replaces the saturating `as i32`, which
    /// does not vectorize. NaN (only from a NaN or infinite `f`) becomes the
    /// bias, i.e. 0, as in `quantize_plain`.
    fn quantize_biased<W: Word>(block: &[f32], f: f64, limit: i32, out: &mut [W]) {
        let limit = f64::from(limit);
        let hi = ROUNDING_BIAS + limit;
        let lo = ROUNDING_BIAS - limit;
        for (q, &x) in out.iter_mut().zip(block) {
            let t = f64::from(x) * f + ROUNDING_BIAS;
            let t = if t > hi { hi } else { t };
            let t = if t < lo { lo } else { t };
            let t = if t.is_nan() { ROUNDING_BIAS } else { t };
            *q = W::from_i32(t.to_bits() as i32);
        }
    }
}

/// [`quantize`] written out directly: the definition the fast loop must match.
fn quantize_plain<W: Word>(block: &[f32], f: f64, limit: i32, out: &mut [W]) {
    let hi = f64::from(limit);
    let lo = -hi;
    for (q, &x) in out.iter_mut().zip(block) {
        let y = f64::from(x) * f;
        let r = (y + ROUNDING_BIAS) - ROUNDING_BIAS;
        let r = if r > hi { hi } else { r };
        let r = if r < lo { lo } else { r };
        *q = W::from_i32(r as i32);
    }
}

cpu_dispatch::avx2_dispatch! {
    /// Dequantizes one block of sums: `out[i] = (sums[i] / f) as f32`.
    pub fn dequantize<W: Word>(sums: &[W], f: f64, out: &mut [f32]) {
        debug_assert_eq!(sums.len(), out.len());
        for (y, &s) in out.iter_mut().zip(sums) {
            *y = (f64::from(s.to_i32()) / f) as f32;
        }
    }
}

/// The documented per-element bound on `|result - exact sum|` for a block
/// whose max exponent is `e_max` (see the module docs); 0 for an all-zero block.
pub fn error_bound(world: u16, e_max: i16, exact: f64) -> f64 {
    if e_max == NO_EXPONENT {
        return 0.0;
    }
    let n = f64::from(world);
    n * n * pow2(e_max) / FULL_SCALE + exact.abs() * (2.0f64).powi(-23) + (2.0f64).powi(-150)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_of_powers_of_two() {
        for e in -126..=127 {
            let x = 2f32.powi(e);
            assert_eq!(block_exponent(&[x]), e as i16, "2^{e}");
            assert_eq!(block_exponent(&[-x]), e as i16, "-2^{e}");
            // Just above a power of two needs the next exponent.
            let above = f32::from_bits(x.to_bits() + 1);
            assert_eq!(block_exponent(&[above]), e as i16 + 1, "above 2^{e}");
        }
    }

    #[test]
    fn exponent_of_subnormals_zero_and_max() {
        let tiny = f32::from_bits(1);
        assert_eq!(block_exponent(&[tiny]), -149);
        assert_eq!(block_exponent(&[f32::from_bits(2)]), -148);
        assert_eq!(block_exponent(&[f32::from_bits(3)]), -147);
        assert_eq!(block_exponent(&[f32::from_bits(0x40_0000)]), -127);
        assert_eq!(block_exponent(&[f32::from_bits(0x7f_ffff)]), -126);
        assert_eq!(block_exponent(&[f32::MIN_POSITIVE]), -126);
        assert_eq!(block_exponent(&[0.0, -0.0]), NO_EXPONENT);
        assert_eq!(block_exponent(&[]), NO_EXPONENT);
        assert_eq!(block_exponent(&[f32::MAX]), 128);
        assert_eq!(block_exponent(&[1.0, -3.0, 0.5]), 2);
        // Every exponent satisfies its definition for a spread of values.
        for bits in (1u32..0x7f7f_ffff).step_by(0x10_0001) {
            let x = f32::from_bits(bits);
            let e = block_exponent(&[x]);
            assert!(2f64.powi(e.into()) >= f64::from(x));
            assert!(2f64.powi(i32::from(e) - 1) < f64::from(x));
        }
    }

    #[test]
    fn non_finite_is_found_with_its_index() {
        assert_eq!(first_non_finite(&[1.0, 2.0]), None);
        assert_eq!(first_non_finite(&[1.0, f32::NAN, f32::INFINITY]), Some(1));
        assert_eq!(first_non_finite(&[f32::NEG_INFINITY]), Some(0));
        for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(finite_block_exponent(&[1.0, bad, 2.0]), None, "{bad}");
        }
        for good in [
            [0.0f32, -0.0, 0.0],
            [f32::MAX, -1.0, 0.5],
            [1e-45, 0.0, -3.0],
        ] {
            assert_eq!(finite_block_exponent(&good), Some(block_exponent(&good)));
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        let mut out = [0; 6];
        quantize(&[0.5, 1.5, 2.5, -0.5, -1.5, -2.4], 1.0, 100, &mut out);
        assert_eq!(out, [0, 2, 2, 0, -2, -2]);
    }

    #[test]
    fn clamping_keeps_the_sum_in_range() {
        for world in [1u16, 2, 3, 7, 32] {
            let limit = clamp_limit(world);
            let block = [f32::MAX, -f32::MAX, 2f32.powi(127)];
            let f = scale(world, 128);
            let mut q = [0; 3];
            quantize(&block, f, limit, &mut q);
            assert!(q.iter().all(|v| v.abs() <= limit));
            assert!(i64::from(limit) * i64::from(world) <= i64::from(i32::MAX));
        }
    }

    #[test]
    fn round_trip_within_one_quantum() {
        let block: Vec<f32> = (0..64)
            .map(|i| ((i as f32) * 0.37 - 11.0) * if i % 3 == 0 { 1e-3 } else { 1.0 })
            .collect();
        for world in [1u16, 2, 5, 32] {
            let e = block_exponent(&block);
            let f = scale(world, e);
            let mut q = vec![0; block.len()];
            quantize(&block, f, clamp_limit(world), &mut q);
            let mut back = vec![0.0; block.len()];
            dequantize(&q, f, &mut back);
            for (x, y) in block.iter().zip(&back) {
                let err = (f64::from(*x) - f64::from(*y)).abs();
                assert!(
                    err <= 1.0 / f + f64::from(x.abs()) * 2f64.powi(-24),
                    "{x} -> {y}"
                );
            }
        }
    }

    #[test]
    fn round_trip_of_extremes_and_subnormals() {
        let block = [f32::MAX, -f32::MAX, 0.0, f32::from_bits(1)];
        let e = block_exponent(&block);
        let f = scale(1, e);
        let mut q = [0; 4];
        quantize(&block, f, clamp_limit(1), &mut q);
        let mut back = [0.0; 4];
        dequantize(&q, f, &mut back);
        assert_eq!(back[0], f32::MAX);
        assert_eq!(back[1], -f32::MAX);
        assert_eq!(back[2], 0.0);
        let sub = [f32::from_bits(1), f32::from_bits(5), -f32::from_bits(3)];
        let f = scale(1, block_exponent(&sub));
        let mut q = [0; 3];
        quantize(&sub, f, clamp_limit(1), &mut q);
        let mut back = [0.0; 3];
        dequantize(&q, f, &mut back);
        assert_eq!(back, sub);
    }

    #[test]
    fn bound_holds_for_single_worker_values() {
        let block: Vec<f32> = (1..200).map(|i| (i as f32).sqrt() * -1.5e-20).collect();
        let e = block_exponent(&block);
        let f = scale(3, e);
        let mut q = vec![0; block.len()];
        quantize(&block, f, clamp_limit(3), &mut q);
        let mut back = vec![0.0; block.len()];
        dequantize(&q, f, &mut back);
        for (x, y) in block.iter().zip(&back) {
            let exact = f64::from(*x);
            assert!((f64::from(*y) - exact).abs() <= error_bound(3, e, exact));
        }
    }

    #[test]
    fn fast_quantize_matches_the_plain_definition() {
        let mut values = vec![
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            f32::MAX,
            -f32::MAX,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        // Every quarter around the clamp limits and rounding ties.
        values.extend((-420..=420).map(|k| k as f32 * 0.25));
        let mut bits = 0x1234_5678u32;
        for _ in 0..2000 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(f32::from_bits(bits));
        }
        let scales = [
            1.0,
            0.25,
            3.0,
            1e-30,
            1e30,
            2f64.powi(51),
            2f64.powi(52),
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            scale(3, 0),
            scale(32, -149),
            scale(1, 128),
        ];
        let limits = [0, 1, 100, clamp_limit(3), i32::MAX, -1, -5, i32::MIN];
        for &f in &scales {
            for &limit in &limits {
                let mut fast = vec![0; values.len()];
                let mut plain = vec![0; values.len()];
                quantize(&values, f, limit, &mut fast);
                quantize_plain(&values, f, limit, &mut plain);
                assert_eq!(fast, plain, "f = {f}, limit = {limit}");
                // Straight into packet words: the same values in network order.
                let mut words = vec![[0u8; 4]; values.len()];
                quantize(&values, f, limit, &mut words);
                let expected: Vec<[u8; 4]> = fast.iter().map(|q| q.to_be_bytes()).collect();
                assert_eq!(words, expected, "f = {f}, limit = {limit}");
                let (mut from_ints, mut from_words) =
                    (vec![0f32; fast.len()], vec![0f32; fast.len()]);
                dequantize(&fast, f, &mut from_ints);
                dequantize(&words, f, &mut from_words);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&from_ints),
                    bits(&from_words),
                    "f = {f}, limit = {limit}"
                );
            }
        }
    }

    #[test]
    fn valid_exponents() {
        assert!(is_valid_exponent(NO_EXPONENT));
        assert!(is_valid_exponent(-149));
        assert!(is_valid_exponent(128));
        assert!(!is_valid_exponent(129));
        assert!(!is_valid_exponent(-150));
    }
}
