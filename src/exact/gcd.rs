//! Greatest common divisors of big integers by Lehmer's algorithm.
//!
//! `num-bigint`'s `gcd` is Stein's binary algorithm: one subtraction and one shift (a new
//! allocation) per bit of the inputs, and one subtraction per bit of the size difference when
//! the inputs are unbalanced. On the hundreds-of-digit numbers of the expected-gradient DPs it
//! was 60–70 % of the profile (`docs/performance.md`). Lehmer's algorithm (Knuth, TAOCP vol. 2,
//! §4.5.2, Algorithm L, with Collins' quotient test) runs the Euclidean quotients on the
//! leading 63 bits in machine words and applies about 30 of them at once to the big numbers as
//! one unimodular 2×2 matrix, so a multi-word step happens once per ~30 quotients instead of
//! once per bit. Unbalanced inputs take one exact division step first.
//!
//! Every multi-word step is a unimodular transformation (determinant ±1), so it preserves the
//! gcd whatever the quotients; the result is only used when both new values are non-negative
//! and smaller than before, otherwise an exact division step is taken instead. Correctness
//! therefore does not rest on the quotient test, only termination speed does. Property-tested
//! against `num-bigint`'s gcd below.
use super::Rational;
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Signed, ToPrimitive, Zero};

fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// The leading bits of `n` after dropping `shift` low bits (`n >> shift` must fit a `u64`).
fn leading(n: &BigUint, shift: u64) -> i128 {
    let word = (shift / 64) as usize;
    let bit = (shift % 64) as u32;
    let mut digits = n.iter_u64_digits().skip(word);
    let low = digits.next().unwrap_or(0) as u128;
    let high = digits.next().unwrap_or(0) as u128;
    (((high << 64) | low) >> bit) as i128
}

/// `gcd(a, b)` of non-negative integers (`gcd(0, 0) = 0`).
pub fn gcd(a: &BigUint, b: &BigUint) -> BigUint {
    let (mut a, mut b) = if a >= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    };
    loop {
        // Invariant: a ≥ b ≥ 0.
        if b.is_zero() {
            return a;
        }
        if let Some(small) = b.to_u64() {
            let r = (&a % small).to_u64().expect("a remainder below a u64");
            return BigUint::from(gcd_u64(small, r));
        }
        let (bits_a, bits_b) = (a.bits(), b.bits());
        if bits_a - bits_b > 32 {
            let r = &a % &b;
            a = std::mem::replace(&mut b, r);
            continue;
        }
        // bits_a > 64 here (b does not fit a u64 and a ≥ b).
        let shift = bits_a - 63;
        let (mut x, mut y) = (leading(&a, shift), leading(&b, shift));
        // The cosequence: a' = p·a + q·b, b' = r·a + s·b.
        let (mut p, mut q, mut r, mut s) = (1i128, 0i128, 0i128, 1i128);
        loop {
            if y + r <= 0 || y + s <= 0 {
                break;
            }
            let quotient = (x + p) / (y + r);
            if quotient != (x + q) / (y + s) {
                break;
            }
            (p, r) = (r, p - quotient * r);
            (q, s) = (s, q - quotient * s);
            (x, y) = (y, x - quotient * y);
        }
        let combined = (q != 0)
            .then(|| {
                let (p, q, r, s) = (
                    i64::try_from(p).ok()?,
                    i64::try_from(q).ok()?,
                    i64::try_from(r).ok()?,
                    i64::try_from(s).ok()?,
                );
                let (ai, bi) = (
                    BigInt::from_biguint(Sign::Plus, a.clone()),
                    BigInt::from_biguint(Sign::Plus, b.clone()),
                );
                let na = (&ai * p + &bi * q).to_biguint()?;
                let nb = (&ai * r + &bi * s).to_biguint()?;
                // A gcd-preserving step that made progress (always, when the quotients
                // passed the test): both non-negative and the larger one smaller than `a`.
                let (na, nb) = if na >= nb { (na, nb) } else { (nb, na) };
                (na < a).then_some((na, nb))
            })
            .flatten();
        match combined {
            Some((na, nb)) => {
                a = na;
                b = nb;
            }
            None => {
                let rem = &a % &b;
                a = std::mem::replace(&mut b, rem);
            }
        }
    }
}

/// `gcd(|a|, |b|)` as a non-negative integer.
pub fn gcd_int(a: &BigInt, b: &BigInt) -> BigInt {
    BigInt::from_biguint(Sign::Plus, gcd(a.magnitude(), b.magnitude()))
}

/// The reduced rational `n/d` for `d > 0`, reduced with [`gcd`] (no other gcd taken).
pub fn reduced(n: BigInt, d: BigInt) -> Rational {
    debug_assert!(d.is_positive());
    let g = gcd(n.magnitude(), d.magnitude());
    if g.is_one() {
        return Rational::new_raw(n, d);
    }
    let g = BigInt::from_biguint(Sign::Plus, g);
    Rational::new_raw(n / &g, d / &g)
}

/// `a·b` of reduced rationals, by cross-cancellation with [`gcd`]: `gcd(n_a, d_b)` and
/// `gcd(d_a, n_b)` are divided out before multiplying, so the product is reduced.
pub fn mul(a: &Rational, b: &Rational) -> Rational {
    if a.is_zero() || b.is_zero() {
        return Rational::zero();
    }
    let g1 = gcd_int(a.numer(), b.denom());
    let g2 = gcd_int(a.denom(), b.numer());
    let n = (a.numer() / &g1) * (b.numer() / &g2);
    let d = (a.denom() / &g2) * (b.denom() / &g1);
    Rational::new_raw(n, d)
}

/// `a + b` of reduced rationals (Henrici's addition: one gcd of the denominators, one of the
/// sum with that gcd), reduced.
pub fn add(a: &Rational, b: &Rational) -> Rational {
    if a.is_zero() {
        return b.clone();
    }
    if b.is_zero() {
        return a.clone();
    }
    let g = gcd_int(a.denom(), b.denom());
    if g.is_one() {
        let n = a.numer() * b.denom() + b.numer() * a.denom();
        return Rational::new_raw(n, a.denom() * b.denom());
    }
    let (da, db) = (a.denom() / &g, b.denom() / &g);
    let t = a.numer() * &db + b.numer() * &da;
    if t.is_zero() {
        return Rational::zero();
    }
    let g2 = gcd_int(&t, &g);
    Rational::new_raw(t / &g2, da * (b.denom() / &g2))
}

/// A rational whose `+`, `−` and `·` are [`add`] and [`mul`] (Lehmer's gcd), where
/// `num-rational`'s operators take num-bigint's binary gcd: the weight type of the exact
/// dynamic programmes (`dag::flow` is generic over its weights), same values, reduced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lehmer(pub Rational);

impl Lehmer {
    /// The weights of a slice of rationals.
    pub fn wrap(values: &[Rational]) -> Vec<Self> {
        values.iter().cloned().map(Self).collect()
    }

    /// The rationals of a vector of weights.
    pub fn unwrap_all(values: Vec<Self>) -> Vec<Rational> {
        values.into_iter().map(|w| w.0).collect()
    }
}

impl Zero for Lehmer {
    fn zero() -> Self {
        Self(Rational::zero())
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl One for Lehmer {
    fn one() -> Self {
        Self(Rational::one())
    }
}

impl std::ops::Add for Lehmer {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self(add(&self.0, &other.0))
    }
}

impl std::ops::Mul for Lehmer {
    type Output = Self;
    fn mul(self, other: Self) -> Self {
        Self(mul(&self.0, &other.0))
    }
}

impl<'a> std::ops::AddAssign<&'a Lehmer> for Lehmer {
    fn add_assign(&mut self, other: &'a Lehmer) {
        self.0 = add(&self.0, &other.0);
    }
}

impl<'a> std::ops::Mul<&'a Lehmer> for Lehmer {
    type Output = Self;
    fn mul(self, other: &'a Lehmer) -> Self {
        Self(mul(&self.0, &other.0))
    }
}

impl<'a> std::ops::Sub<&'a Lehmer> for Lehmer {
    type Output = Self;
    fn sub(self, other: &'a Lehmer) -> Self {
        Self(add(&self.0, &-other.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_integer::Integer;
    use proptest::prelude::*;

    #[test]
    fn lehmer_weights_compute_the_same_rationals() {
        let q = |n: i64, d: i64| Rational::new(n.into(), d.into());
        let (a, b) = (q(-35, 12), q(8, 21));
        let (la, lb) = (Lehmer(a.clone()), Lehmer(b.clone()));
        assert_eq!((la.clone() + lb.clone()).0, &a + &b);
        assert_eq!((la.clone() * &lb).0, &a * &b);
        assert_eq!((la.clone() - &lb).0, &a - &b);
        let mut s = la.clone();
        s += &lb;
        assert_eq!(s.0, &a + &b);
        // Negative control: the operations are not all the same one.
        assert_ne!((la.clone() - &lb).0, (la + lb).0);
        assert!(Lehmer::zero().is_zero() && Lehmer::one().0 == q(1, 1));
    }

    fn big(words: &[u64]) -> BigUint {
        words
            .iter()
            .rev()
            .fold(BigUint::zero(), |acc, &w| (acc << 64u32) + BigUint::from(w))
    }

    proptest! {
        #[test]
        fn agrees_with_binary_gcd(
            a in prop::collection::vec(any::<u64>(), 0..12),
            b in prop::collection::vec(any::<u64>(), 0..12),
            c in prop::collection::vec(any::<u64>(), 0..6),
        ) {
            // A shared factor c makes the gcd non-trivial.
            let (a, b, c) = (big(&a), big(&b), big(&c) + 1u32);
            for (x, y) in [(&a * &c, &b * &c), (a.clone(), b.clone()), (&a * &c, c.clone())] {
                prop_assert_eq!(gcd(&x, &y), x.gcd(&y));
                prop_assert_eq!(gcd(&y, &x), x.gcd(&y));
            }
        }
    }

    #[test]
    fn edge_cases_and_reduction() {
        let zero = BigUint::zero();
        let n = BigUint::from(10u32).pow(80) * 7u32;
        assert_eq!(gcd(&zero, &zero), zero);
        assert_eq!(gcd(&n, &zero), n);
        assert_eq!(gcd(&zero, &n), n);
        assert_eq!(gcd(&n, &n), n);
        let m = BigUint::from(10u32).pow(60) * 3u32;
        assert_eq!(gcd(&n, &m), BigUint::from(10u32).pow(60));
        // A negative numerator keeps its sign; the result is the canonical rational.
        let r = reduced(BigInt::from(-12), BigInt::from(18));
        assert_eq!(r, Rational::new(BigInt::from(-2), BigInt::from(3)));
        assert_eq!(r.numer(), &BigInt::from(-2));
        let big_n = BigInt::from_biguint(Sign::Minus, &n * 5u32);
        let big_d = BigInt::from_biguint(Sign::Plus, &m * 11u32);
        let r = reduced(big_n.clone(), big_d.clone());
        assert_eq!(r, Rational::new(big_n, big_d));
    }

    proptest! {
        #[test]
        fn rational_operations_agree(
            n in prop::collection::vec(-1000i64..1000, 4),
            d in prop::collection::vec(1i64..1000, 4),
            scale in 0u32..40,
        ) {
            // Big, with shared factors: numbers times 6^scale over numbers times 10^scale.
            let k = BigInt::from(6).pow(scale);
            let l = BigInt::from(10).pow(scale);
            let q = |i: usize| Rational::new(BigInt::from(n[i]) * &k, BigInt::from(d[i]) * &l);
            for (x, y) in [(q(0), q(1)), (q(2), q(3)), (q(0), -q(0)), (q(1), q(1))] {
                let (m, s) = (mul(&x, &y), add(&x, &y));
                let (product, sum) = (&x * &y, &x + &y);
                prop_assert_eq!(&m, &product);
                prop_assert_eq!(&s, &sum);
                // Canonical: reduced, positive denominator, as Ratio::new would give.
                prop_assert_eq!(m.denom(), product.denom());
                prop_assert_eq!(m.numer(), product.numer());
                prop_assert_eq!(s.denom(), sum.denom());
                prop_assert_eq!(s.numer(), sum.numer());
            }
        }
    }
}
