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
}

macro_rules! impl_float {
    ($t:ty, $u:expr, $lim:expr, $name:expr) => {
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
        }
    };
}

impl_float!(f32, 5.960_464_477_539_063e-8, 1 << 24, "f32");
impl_float!(f64, 1.110_223_024_625_156_5e-16, 1 << 53, "f64");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_roundoff_is_half_epsilon() {
        assert_eq!(<f32 as Float>::UNIT_ROUNDOFF, f32::EPSILON as f64 / 2.0);
        assert_eq!(<f64 as Float>::UNIT_ROUNDOFF, f64::EPSILON / 2.0);
    }
}
