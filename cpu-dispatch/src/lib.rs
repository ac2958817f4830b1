//! Runtime CPU dispatch for the per-element loops of the data path
//! (quantize, dequantize, byte-swapped adds). The release build targets
//! baseline x86-64 (SSE2) so that the binaries run anywhere; there these
//! loops lack `pshufb` for byte swaps, packed 32-bit max and 4-wide f64
//! conversions. [`avx2_dispatch!`] compiles a loop a second time with AVX2
//! enabled and picks that copy when the running CPU has AVX2. Both copies
//! are the same source, so results are bit-identical (no FMA contraction:
//! Rust never fuses a multiply and an add on its own).
//!
//! The check is `is_x86_feature_detected!`, a cached atomic load after the
//! first call: cheap next to a loop over one packet's elements. On other
//! architectures only the baseline copy exists.

#![no_std]

extern crate std;

pub mod words;

use core::sync::atomic::{AtomicBool, Ordering};

/// Set: every dispatched function runs its baseline copy.
static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Makes every dispatched function run its baseline copy (`true`), or pick
/// by the CPU again (`false`). For tests that compare the two copies on a
/// machine that has AVX2; since both are one source, switching while other
/// threads run changes no result.
pub fn set_baseline_only(on: bool) {
    BASELINE_ONLY.store(on, Ordering::Relaxed);
}

/// Whether a dispatched function runs its AVX2 copy now (used by
/// [`avx2_dispatch!`]; a relaxed load and the standard library's cached
/// CPU check).
#[doc(hidden)]
#[cfg(target_arch = "x86_64")]
pub fn use_avx2() -> bool {
    !BASELINE_ONLY.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx2")
}

/// Defines a function whose body is compiled for the baseline target and,
/// on x86-64, again with AVX2 enabled; each call runs the AVX2 copy when
/// the CPU supports it. Arguments must be plain identifiers; generic
/// parameters take one bound each.
///
/// ```
/// cpu_dispatch::avx2_dispatch! {
///     /// Adds `b` into `a` element-wise (wrapping).
///     pub fn add_into(a: &mut [i32], b: &[i32]) {
///         for (x, y) in a.iter_mut().zip(b) {
///             *x = x.wrapping_add(*y);
///         }
///     }
/// }
/// let mut a = [1, 2, i32::MAX];
/// add_into(&mut a, &[10, 20, 1]);
/// assert_eq!(a, [11, 22, i32::MIN]);
/// ```
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident: $bound:path),+>)?
        ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(unsafe_code)]
                unsafe fn avx2 $(<$($g: $bound),+>)? ($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if $crate::use_avx2() {
                    // SAFETY: `avx2` only requires that the CPU supports
                    // AVX2, which was checked just above.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
