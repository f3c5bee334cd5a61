//! The float types the kernels run in: `f32` and `f64`, behind one small trait.
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// A machine float the batched kernels are generic over (`f32`, `f64`).
///
/// Only what the kernels and their error bounds need: arithmetic, a few functions, the unit
/// roundoff `u` (half the machine epsilon, the bound on one rounding's relative error under
/// round-to-nearest), and exact conversion to `f64`.
pub trait Float:
    nalgebra::Scalar
    + Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + Sum
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `½` (exact).
    const HALF: Self;
    /// `2` (exact).
    const TWO: Self;
    /// Unit roundoff `u = 2^-p` (`2^-24` for f32, `2^-53` for f64).
    const UNIT_ROUNDOFF: f64;
    /// Largest integer `n` such that every integer in `0..=n` is exact (`2^24`, `2^53`).
    const EXACT_INT_LIMIT: usize;
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Size in bytes.
    const BYTES: usize;
    /// A quiet NaN (used to poison padding in tests and generators).
    const NAN: Self;
    /// Nearest value to an `f64` (round to nearest).
    fn from_f64(x: f64) -> Self;
    /// Exact widening to `f64`.
    fn to_f64(self) -> f64;
    /// Nearest value to an integer.
    fn from_usize(n: usize) -> Self;
    /// Neither NaN nor ±∞.
    fn is_finite(self) -> bool;
    /// `|x|`.
    fn abs(self) -> Self;
    /// `e^x` (the platform `libm`, assumed faithful: within one ulp).
    fn exp(self) -> Self;
    /// Adds `c·x[k] + d·y[k]` into lane `k mod 8` of `acc` for every `k` (any equal lengths)
    /// with explicit 256-bit vectors on x86-64, the last `len mod 8` elements by one masked
    /// step, in the scalar loop's order and roundings (the explicit form of
    /// [`super::sum::lanes_sum`]'s lanes for a linear term).
    ///
    /// # Safety
    /// On x86-64 the CPU must have AVX.
    unsafe fn linear_lanes_avx(x: &[Self], y: &[Self], c: Self, d: Self, acc: &mut [Self; 8]);
    /// [`Float::linear_lanes_avx`] into `acc`, and `x[k]` alone into lane `k mod 8` of `acc2`
    /// (the two sums of [`super::sum::lanes_sum2`] when the second term is `log q`).
    ///
    /// # Safety
    /// On x86-64 the CPU must have AVX.
    unsafe fn linear_q_lanes_avx(
        x: &[Self],
        y: &[Self],
        c: Self,
        d: Self,
        acc: &mut [Self; 8],
        acc2: &mut [Self; 8],
    );
    /// Writes `g` on `col[s..e]` and `+0` elsewhere in `col` with explicit 256-bit vectors on
    /// x86-64: each element selected by its index (a compare, an `and`, a store per vector),
    /// the last partial vector by a masked store (lanes past the column are not touched).
    /// The same values, bit for bit, as filling the three runs.
    ///
    /// # Safety
    /// On x86-64 the CPU must have AVX2; `s ≤ e ≤ col.len() < 2^31`.
    unsafe fn column_avx(col: &mut [Self], s: usize, e: usize, g: Self);
}

/// Lane masks for a tail of `r < 8` elements: the eight entries from `8 − r` on are `r`
/// all-ones lanes, then zeros (an AVX masked load reads only the lanes whose sign bit is set,
/// and never faults on the others).
#[cfg(target_arch = "x86_64")]
static TAIL_MASK_32: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
/// [`TAIL_MASK_32`] for 64-bit lanes.
#[cfg(target_arch = "x86_64")]
static TAIL_MASK_64: [i64; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// The mask of lanes `0..r` (`r < 8`) for 32-bit lanes.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn tail_mask_32(r: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    debug_assert!(r < 8);
    // SAFETY: entries `8 − r .. 16 − r` lie inside the 16-entry table.
    unsafe { _mm256_loadu_si256(TAIL_MASK_32.as_ptr().add(8 - r) as *const __m256i) }
}

/// The masks of lanes `0..r` (`r < 8`) of eight 64-bit lanes held in two vectors (0–3, 4–7).
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn tail_masks_64(r: usize) -> [std::arch::x86_64::__m256i; 2] {
    use std::arch::x86_64::*;
    debug_assert!(r < 8);
    // SAFETY: entries `8 − r .. 16 − r` lie inside the 16-entry table.
    unsafe {
        let m = TAIL_MASK_64.as_ptr().add(8 - r);
        [
            _mm256_loadu_si256(m as *const __m256i),
            _mm256_loadu_si256(m.add(4) as *const __m256i),
        ]
    }
}

/// The tail's masked loads of `x` and `y` at `at` (lanes off in `m` read as 0 and are not
/// touched in memory) and its term `c·x + d·y`, for the caller to blend into the lanes of `m`.
///
/// # Safety
/// The CPU must have AVX; the lanes on in `m` must lie inside both slices from `at`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn masked_term_f32(
    x: &[f32],
    y: &[f32],
    at: usize,
    m: std::arch::x86_64::__m256i,
    (vc, vd): (std::arch::x86_64::__m256, std::arch::x86_64::__m256),
) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's precondition.
    unsafe {
        let vx = _mm256_maskload_ps(x.as_ptr().add(at), m);
        let vy = _mm256_maskload_ps(y.as_ptr().add(at), m);
        (
            vx,
            _mm256_add_ps(_mm256_mul_ps(vc, vx), _mm256_mul_ps(vd, vy)),
        )
    }
}

/// [`masked_term_f32`] for four `f64` lanes.
///
/// # Safety
/// As [`masked_term_f32`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn masked_term_f64(
    x: &[f64],
    y: &[f64],
    at: usize,
    m: std::arch::x86_64::__m256i,
    (vc, vd): (std::arch::x86_64::__m256d, std::arch::x86_64::__m256d),
) -> (std::arch::x86_64::__m256d, std::arch::x86_64::__m256d) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's precondition.
    unsafe {
        let vx = _mm256_maskload_pd(x.as_ptr().add(at), m);
        let vy = _mm256_maskload_pd(y.as_ptr().add(at), m);
        (
            vx,
            _mm256_add_pd(_mm256_mul_pd(vc, vx), _mm256_mul_pd(vd, vy)),
        )
    }
}

/// Adds `c·x[k] + d·y[k]` into lane `k mod 8` of `acc` for every `k`, with 256-bit vectors:
/// per lane the scalar loop's operations in its order (two products, their sum, the
/// accumulation; no FMA). The last `len mod 8` elements go through one masked load and a
/// blend that adds the term into lanes `0..len mod 8` only, which is the scalar remainder
/// loop's result bit for bit, without the scalar loop (around the windows' short random
/// ranges the remainder is a large part of a row).
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn linear_lanes_f32(x: &[f32], y: &[f32], c: f32, d: f32, acc: &mut [f32; 8]) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == y.len());
    let (vc, vd) = (_mm256_set1_ps(c), _mm256_set1_ps(d));
    let mut s = _mm256_loadu_ps(acc.as_ptr());
    let whole = x.len() / 8 * 8;
    for (xs, ys) in x[..whole].chunks_exact(8).zip(y[..whole].chunks_exact(8)) {
        // SAFETY: each chunk holds 8 floats.
        let (vx, vy) = (_mm256_loadu_ps(xs.as_ptr()), _mm256_loadu_ps(ys.as_ptr()));
        s = _mm256_add_ps(
            s,
            _mm256_add_ps(_mm256_mul_ps(vc, vx), _mm256_mul_ps(vd, vy)),
        );
    }
    let r = x.len() - whole;
    if r > 0 {
        // SAFETY: AVX (the caller); the mask's lanes are elements `whole..len` of each slice.
        unsafe {
            let m = tail_mask_32(r);
            let (_, term) = masked_term_f32(x, y, whole, m, (vc, vd));
            s = _mm256_blendv_ps(s, _mm256_add_ps(s, term), _mm256_castsi256_ps(m));
        }
    }
    _mm256_storeu_ps(acc.as_mut_ptr(), s);
}

/// [`linear_lanes_f32`] for `f64`: lanes 0–3 and 4–7 in two vectors.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn linear_lanes_f64(x: &[f64], y: &[f64], c: f64, d: f64, acc: &mut [f64; 8]) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == y.len());
    let (vc, vd) = (_mm256_set1_pd(c), _mm256_set1_pd(d));
    let mut lo = _mm256_loadu_pd(acc.as_ptr());
    let mut hi = _mm256_loadu_pd(acc.as_ptr().add(4));
    let whole = x.len() / 8 * 8;
    for (xs, ys) in x[..whole].chunks_exact(8).zip(y[..whole].chunks_exact(8)) {
        // SAFETY: each chunk holds 8 doubles.
        let (x0, y0) = (_mm256_loadu_pd(xs.as_ptr()), _mm256_loadu_pd(ys.as_ptr()));
        let (x1, y1) = (
            _mm256_loadu_pd(xs.as_ptr().add(4)),
            _mm256_loadu_pd(ys.as_ptr().add(4)),
        );
        lo = _mm256_add_pd(
            lo,
            _mm256_add_pd(_mm256_mul_pd(vc, x0), _mm256_mul_pd(vd, y0)),
        );
        hi = _mm256_add_pd(
            hi,
            _mm256_add_pd(_mm256_mul_pd(vc, x1), _mm256_mul_pd(vd, y1)),
        );
    }
    let r = x.len() - whole;
    if r > 0 {
        // SAFETY: AVX (the caller); the masks' lanes are elements `whole..len` of each
        // slice, and the upper vector is touched only when it has live lanes (`r > 4`).
        unsafe {
            let [m0, m1] = tail_masks_64(r);
            let (_, t0) = masked_term_f64(x, y, whole, m0, (vc, vd));
            lo = _mm256_blendv_pd(lo, _mm256_add_pd(lo, t0), _mm256_castsi256_pd(m0));
            if r > 4 {
                let (_, t1) = masked_term_f64(x, y, whole + 4, m1, (vc, vd));
                hi = _mm256_blendv_pd(hi, _mm256_add_pd(hi, t1), _mm256_castsi256_pd(m1));
            }
        }
    }
    _mm256_storeu_pd(acc.as_mut_ptr(), lo);
    _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi);
}

/// [`linear_lanes_f32`] into `acc`, and `x[k]` alone into lane `k mod 8` of `acc2` (the tail
/// masked the same way).
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn linear_q_lanes_f32(
    x: &[f32],
    y: &[f32],
    c: f32,
    d: f32,
    acc: &mut [f32; 8],
    acc2: &mut [f32; 8],
) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == y.len());
    let (vc, vd) = (_mm256_set1_ps(c), _mm256_set1_ps(d));
    let mut s = _mm256_loadu_ps(acc.as_ptr());
    let mut s2 = _mm256_loadu_ps(acc2.as_ptr());
    let whole = x.len() / 8 * 8;
    for (xs, ys) in x[..whole].chunks_exact(8).zip(y[..whole].chunks_exact(8)) {
        let (vx, vy) = (_mm256_loadu_ps(xs.as_ptr()), _mm256_loadu_ps(ys.as_ptr()));
        s = _mm256_add_ps(
            s,
            _mm256_add_ps(_mm256_mul_ps(vc, vx), _mm256_mul_ps(vd, vy)),
        );
        s2 = _mm256_add_ps(s2, vx);
    }
    let r = x.len() - whole;
    if r > 0 {
        // SAFETY: as in `linear_lanes_f32`.
        unsafe {
            let m = tail_mask_32(r);
            let mf = _mm256_castsi256_ps(m);
            let (vx, term) = masked_term_f32(x, y, whole, m, (vc, vd));
            s = _mm256_blendv_ps(s, _mm256_add_ps(s, term), mf);
            s2 = _mm256_blendv_ps(s2, _mm256_add_ps(s2, vx), mf);
        }
    }
    _mm256_storeu_ps(acc.as_mut_ptr(), s);
    _mm256_storeu_ps(acc2.as_mut_ptr(), s2);
}

/// [`linear_q_lanes_f32`] for `f64` (lanes 0–3 and 4–7 in two vectors each).
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn linear_q_lanes_f64(
    x: &[f64],
    y: &[f64],
    c: f64,
    d: f64,
    acc: &mut [f64; 8],
    acc2: &mut [f64; 8],
) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == y.len());
    let (vc, vd) = (_mm256_set1_pd(c), _mm256_set1_pd(d));
    let (mut lo, mut hi) = (
        _mm256_loadu_pd(acc.as_ptr()),
        _mm256_loadu_pd(acc.as_ptr().add(4)),
    );
    let (mut lo2, mut hi2) = (
        _mm256_loadu_pd(acc2.as_ptr()),
        _mm256_loadu_pd(acc2.as_ptr().add(4)),
    );
    let whole = x.len() / 8 * 8;
    for (xs, ys) in x[..whole].chunks_exact(8).zip(y[..whole].chunks_exact(8)) {
        let (x0, y0) = (_mm256_loadu_pd(xs.as_ptr()), _mm256_loadu_pd(ys.as_ptr()));
        let (x1, y1) = (
            _mm256_loadu_pd(xs.as_ptr().add(4)),
            _mm256_loadu_pd(ys.as_ptr().add(4)),
        );
        lo = _mm256_add_pd(
            lo,
            _mm256_add_pd(_mm256_mul_pd(vc, x0), _mm256_mul_pd(vd, y0)),
        );
        hi = _mm256_add_pd(
            hi,
            _mm256_add_pd(_mm256_mul_pd(vc, x1), _mm256_mul_pd(vd, y1)),
        );
        lo2 = _mm256_add_pd(lo2, x0);
        hi2 = _mm256_add_pd(hi2, x1);
    }
    let r = x.len() - whole;
    if r > 0 {
        // SAFETY: as in `linear_lanes_f64`.
        unsafe {
            let [m0, m1] = tail_masks_64(r);
            let mf0 = _mm256_castsi256_pd(m0);
            let (x0, t0) = masked_term_f64(x, y, whole, m0, (vc, vd));
            lo = _mm256_blendv_pd(lo, _mm256_add_pd(lo, t0), mf0);
            lo2 = _mm256_blendv_pd(lo2, _mm256_add_pd(lo2, x0), mf0);
            if r > 4 {
                let mf1 = _mm256_castsi256_pd(m1);
                let (x1, t1) = masked_term_f64(x, y, whole + 4, m1, (vc, vd));
                hi = _mm256_blendv_pd(hi, _mm256_add_pd(hi, t1), mf1);
                hi2 = _mm256_blendv_pd(hi2, _mm256_add_pd(hi2, x1), mf1);
            }
        }
    }
    _mm256_storeu_pd(acc.as_mut_ptr(), lo);
    _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi);
    _mm256_storeu_pd(acc2.as_mut_ptr(), lo2);
    _mm256_storeu_pd(acc2.as_mut_ptr().add(4), hi2);
}

/// [`Float::column_avx`] for `f32`: eight lanes per vector.
///
/// Out of line (one call per short column): inlined into the row loops it made no difference
/// to their times (`docs/performance.md`, session 16), and the figures there are of this form.
///
/// # Safety
/// The CPU must have AVX2; `s ≤ e ≤ col.len() < 2^31`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2")]
#[inline(never)]
unsafe fn column_f32(col: &mut [f32], s: usize, e: usize, g: f32) {
    use std::arch::x86_64::*;
    let n = col.len();
    debug_assert!(s <= e && e <= n && n < i32::MAX as usize);
    let (vs, ve) = (_mm256_set1_epi32(s as i32), _mm256_set1_epi32(e as i32));
    let (vg, step) = (_mm256_set1_ps(g), _mm256_set1_epi32(8));
    let mut idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // `s ≤ idx < e`: not `s > idx`, and `e > idx`.
    let on = |idx| _mm256_andnot_si256(_mm256_cmpgt_epi32(vs, idx), _mm256_cmpgt_epi32(ve, idx));
    let mut at = 0;
    while at + 8 <= n {
        let v = _mm256_and_ps(_mm256_castsi256_ps(on(idx)), vg);
        // SAFETY: `at + 8 ≤ n`.
        unsafe { _mm256_storeu_ps(col.as_mut_ptr().add(at), v) };
        idx = _mm256_add_epi32(idx, step);
        at += 8;
    }
    if at < n {
        let v = _mm256_and_ps(_mm256_castsi256_ps(on(idx)), vg);
        // SAFETY: the mask's lanes `0..n − at` lie inside `col`; the others are not written.
        unsafe { _mm256_maskstore_ps(col.as_mut_ptr().add(at), tail_mask_32(n - at), v) };
    }
}

/// [`Float::column_avx`] for `f64`: four lanes per vector.
///
/// # Safety
/// As [`column_f32`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2")]
#[inline(never)]
unsafe fn column_f64(col: &mut [f64], s: usize, e: usize, g: f64) {
    use std::arch::x86_64::*;
    let n = col.len();
    debug_assert!(s <= e && e <= n && n < i32::MAX as usize);
    let (vs, ve) = (_mm256_set1_epi64x(s as i64), _mm256_set1_epi64x(e as i64));
    let (vg, step) = (_mm256_set1_pd(g), _mm256_set1_epi64x(4));
    let mut idx = _mm256_setr_epi64x(0, 1, 2, 3);
    let on = |idx| _mm256_andnot_si256(_mm256_cmpgt_epi64(vs, idx), _mm256_cmpgt_epi64(ve, idx));
    let mut at = 0;
    while at + 4 <= n {
        let v = _mm256_and_pd(_mm256_castsi256_pd(on(idx)), vg);
        // SAFETY: `at + 4 ≤ n`.
        unsafe { _mm256_storeu_pd(col.as_mut_ptr().add(at), v) };
        idx = _mm256_add_epi64(idx, step);
        at += 4;
    }
    if at < n {
        let v = _mm256_and_pd(_mm256_castsi256_pd(on(idx)), vg);
        // SAFETY: lanes `0..n − at` (< 4) of the first mask lie inside `col`; the others are
        // not written.
        unsafe { _mm256_maskstore_pd(col.as_mut_ptr().add(at), tail_masks_64(n - at)[0], v) };
    }
}

macro_rules! impl_float {
    ($t:ty, $u:expr, $lim:expr, $name:expr, $lanes:ident, $lanes_q:ident, $column:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const TWO: Self = 2.0;
            const UNIT_ROUNDOFF: f64 = $u;
            const EXACT_INT_LIMIT: usize = $lim;
            const NAME: &'static str = $name;
            const BYTES: usize = std::mem::size_of::<$t>();
            const NAN: Self = <$t>::NAN;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            unsafe fn linear_lanes_avx(
                x: &[Self],
                y: &[Self],
                c: Self,
                d: Self,
                acc: &mut [Self; 8],
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller guarantees AVX.
                unsafe {
                    $lanes(x, y, c, d, acc)
                }
                #[cfg(not(target_arch = "x86_64"))]
                for (k, (&xk, &yk)) in x.iter().zip(y).enumerate() {
                    acc[k % 8] += c * xk + d * yk;
                }
            }
            #[inline(always)]
            unsafe fn linear_q_lanes_avx(
                x: &[Self],
                y: &[Self],
                c: Self,
                d: Self,
                acc: &mut [Self; 8],
                acc2: &mut [Self; 8],
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller guarantees AVX.
                unsafe {
                    $lanes_q(x, y, c, d, acc, acc2)
                }
                #[cfg(not(target_arch = "x86_64"))]
                for (k, (&xk, &yk)) in x.iter().zip(y).enumerate() {
                    acc[k % 8] += c * xk + d * yk;
                    acc2[k % 8] += xk;
                }
            }
            #[inline(always)]
            unsafe fn column_avx(col: &mut [Self], s: usize, e: usize, g: Self) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller guarantees AVX2 and the bounds.
                unsafe {
                    $column(col, s, e, g)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    col[..s].fill(0.0);
                    col[s..e].fill(g);
                    col[e..].fill(0.0);
                }
            }
        }
    };
}

impl_float!(
    f32,
    5.960_464_477_539_063e-8,
    1 << 24,
    "f32",
    linear_lanes_f32,
    linear_q_lanes_f32,
    column_f32
);
impl_float!(
    f64,
    1.110_223_024_625_156_5e-16,
    1 << 53,
    "f64",
    linear_lanes_f64,
    linear_q_lanes_f64,
    column_f64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_roundoff_is_half_epsilon() {
        assert_eq!(<f32 as Float>::UNIT_ROUNDOFF, f32::EPSILON as f64 / 2.0);
        assert_eq!(<f64 as Float>::UNIT_ROUNDOFF, f64::EPSILON / 2.0);
    }

    /// Every column length 0–70 and every range in it: the vector writer's values are the
    /// three fills' bit for bit (`g = −0` keeps its sign), and the guard elements on both sides
    /// of the column are untouched (the masked tail store writes no lane past the column).
    fn column_writer_matches_the_fills<F: Float>() {
        if !crate::kernels::simd::has_avx() {
            eprintln!("not run: this CPU has no AVX2");
            return;
        }
        let guard = F::from_f64(7.5);
        for g in [F::from_f64(-1.25), -F::ZERO] {
            for n in 0..=70 {
                for s in 0..=n {
                    for e in s..=n {
                        let mut want = vec![guard; n + 9];
                        want[1..1 + s].fill(F::ZERO);
                        want[1 + s..1 + e].fill(g);
                        want[1 + e..1 + n].fill(F::ZERO);
                        let mut got = vec![guard; n + 9];
                        // SAFETY: AVX2 checked above; s ≤ e ≤ n.
                        unsafe { F::column_avx(&mut got[1..1 + n], s, e, g) };
                        let bits =
                            |v: &[F]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{} n {n} s {s} e {e}", F::NAME);
                    }
                }
            }
        }
    }

    #[test]
    fn column_writer_matches_the_fills_in_both_types() {
        column_writer_matches_the_fills::<f32>();
        column_writer_matches_the_fills::<f64>();
    }
}
