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

/// The machine words the binary gcd runs on (`u64`, `u128`).
trait Word:
    Copy
    + Ord
    + std::ops::Sub<Output = Self>
    + std::ops::Shr<u32, Output = Self>
    + std::ops::Shl<u32, Output = Self>
    + std::ops::BitOr<Output = Self>
{
    const ZERO: Self;
    fn trailing_zeros(self) -> u32;
}

impl Word for u64 {
    const ZERO: Self = 0;
    fn trailing_zeros(self) -> u32 {
        u64::trailing_zeros(self)
    }
}

impl Word for u128 {
    const ZERO: Self = 0;
    fn trailing_zeros(self) -> u32 {
        u128::trailing_zeros(self)
    }
}

/// The binary gcd loop (shifts by the trailing zero count, no division) of two non-zero
/// words. `narrower` is asked after each step, with `a ≤ b` both odd, whether a cheaper
/// routine can finish (the `u128` loop hands over to the `u64` one once both fit one word).
fn binary_gcd<W: Word>(mut a: W, mut b: W, narrower: impl Fn(W, W) -> Option<W>) -> W {
    let shift = (a | b).trailing_zeros();
    a = a >> a.trailing_zeros();
    loop {
        b = b >> b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        // a ≤ b, both odd.
        if let Some(g) = narrower(a, b) {
            return g << shift;
        }
        b = b - a;
        if b == W::ZERO {
            return a << shift;
        }
    }
}

/// `gcd(a, b)` of one-word integers by the binary algorithm.
fn gcd_u64(a: u64, b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    binary_gcd(a, b, |_, _| None)
}

/// `gcd(a, b)` of two-word integers. A divisor of one word takes one remainder (a `u128` by
/// `u64` division) and finishes in [`gcd_u64`]; otherwise the binary algorithm runs on `u128`
/// only until both fit one word (most of the DPs' gcds are of a ~100-bit number and a small
/// one, where the binary algorithm alone took one iteration per bit or two).
fn gcd_u128(a: u128, b: u128) -> u128 {
    let (a, mut b) = if a <= b { (a, b) } else { (b, a) };
    // a ≤ b.
    if a <= u128::from(u64::MAX) {
        if a <= 1 {
            return if a == 0 { b } else { 1 };
        }
        if b > u128::from(u64::MAX) {
            b %= a;
        }
        return u128::from(gcd_u64(a as u64, b as u64));
    }
    binary_gcd(a, b, |a, b| {
        (b <= u128::from(u64::MAX)).then(|| u128::from(gcd_u64(a as u64, b as u64)))
    })
}

/// Little-endian 64-bit limbs, without leading zero limbs (zero is empty).
type Limbs = Vec<u64>;

fn limbs(n: &BigUint) -> Limbs {
    n.iter_u64_digits().collect()
}

fn from_limbs(l: &[u64]) -> BigUint {
    let mut digits = Vec::with_capacity(2 * l.len());
    for &w in l {
        digits.push(w as u32);
        digits.push((w >> 32) as u32);
    }
    BigUint::new(digits)
}

fn trim(l: &mut Limbs) {
    while l.last() == Some(&0) {
        l.pop();
    }
}

fn bits(l: &[u64]) -> u64 {
    match l.last() {
        None => 0,
        Some(&top) => 64 * l.len() as u64 - u64::from(top.leading_zeros()),
    }
}

fn compare(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

/// The leading bits of `n` after dropping `shift` low bits (`n >> shift` must fit a `u64`).
fn leading(n: &[u64], shift: u64) -> i128 {
    let word = (shift / 64) as usize;
    let bit = (shift % 64) as u32;
    let low = n.get(word).copied().unwrap_or(0) as u128;
    let high = n.get(word + 1).copied().unwrap_or(0) as u128;
    (((high << 64) | low) >> bit) as i128
}

/// `out = x·a + y·b` for cofactors with `|x|, |y| < 2^61`, in one pass over the limbs (no
/// allocation beyond `out`'s); false when the result would be negative.
fn combine(out: &mut Limbs, a: &[u64], x: i128, b: &[u64], y: i128) -> bool {
    out.clear();
    let mut carry: i128 = 0;
    for i in 0..a.len().max(b.len()) {
        let ai = a.get(i).copied().unwrap_or(0) as i128;
        let bi = b.get(i).copied().unwrap_or(0) as i128;
        // |x·ai + y·bi| < 2^126 and |carry| < 2^63: no overflow.
        let acc = x * ai + y * bi + carry;
        out.push(acc as u64);
        carry = acc >> 64;
    }
    if carry < 0 {
        return false;
    }
    if carry > 0 {
        out.push(carry as u64);
    }
    trim(out);
    true
}

/// `a mod b` by `num-bigint`'s division (the unbalanced and fallback steps).
fn remainder(a: &[u64], b: &[u64]) -> Limbs {
    limbs(&(from_limbs(a) % from_limbs(b)))
}

/// `gcd(a, b)` of non-negative integers (`gcd(0, 0) = 0`).
///
/// Works on little-endian `u64` limbs in two buffers that the multi-word steps overwrite in
/// place (`combine`); the numbers that fit two limbs finish by the binary algorithm on `u128`.
pub fn gcd(a: &BigUint, b: &BigUint) -> BigUint {
    match gcd_of_words(a, b) {
        Some(g) => BigUint::from(g),
        None => gcd_multi_word(a, b),
    }
}

/// `gcd(a, b)` without allocating when it fits two words: both operands of at most two words,
/// or one of them a single non-zero word (the other is then reduced modulo it in one pass over
/// its words, as the multi-word path would after copying it). `None` otherwise.
fn gcd_of_words(a: &BigUint, b: &BigUint) -> Option<u128> {
    if let (Some(x), Some(y)) = (a.to_u128(), b.to_u128()) {
        return Some(gcd_u128(x, y));
    }
    let (large, small) = match (a.to_u64(), b.to_u64()) {
        (_, Some(s)) if s != 0 => (a, s),
        (Some(s), _) if s != 0 => (b, s),
        _ => return None,
    };
    let small = u128::from(small);
    let r = large
        .iter_u64_digits()
        .rev()
        .fold(0u128, |r, w| ((r << 64) | u128::from(w)) % small);
    Some(gcd_u128(small, r))
}

/// `gcd(a, b)`, or `None` when it is 1 (no allocation then: most cross gcds of the DPs' products
/// and sums are 1, and building the `BigUint` 1 allocates).
fn gcd_unless_one(a: &BigUint, b: &BigUint) -> Option<BigUint> {
    match gcd_of_words(a, b) {
        Some(1) => None,
        Some(g) => Some(BigUint::from(g)),
        None => Some(gcd_multi_word(a, b)).filter(|g| !g.is_one()),
    }
}

/// `gcd(|a|, |b|)` as a non-negative integer, or `None` when it is 1.
pub fn gcd_int_unless_one(a: &BigInt, b: &BigInt) -> Option<BigInt> {
    gcd_unless_one(a.magnitude(), b.magnitude()).map(|g| BigInt::from_biguint(Sign::Plus, g))
}

/// [`gcd`] of inputs of which one at least exceeds two words.
fn gcd_multi_word(a: &BigUint, b: &BigUint) -> BigUint {
    let (mut a, mut b) = if a >= b {
        (limbs(a), limbs(b))
    } else {
        (limbs(b), limbs(a))
    };
    let (mut na, mut nb) = (Limbs::with_capacity(a.len()), Limbs::with_capacity(a.len()));
    const LIMIT: i128 = 1 << 61;
    loop {
        // Invariant: a ≥ b ≥ 0.
        if b.is_empty() {
            return from_limbs(&a);
        }
        if b.len() == 1 {
            let small = b[0] as u128;
            let r = a
                .iter()
                .rev()
                .fold(0u128, |r, &w| ((r << 64) | w as u128) % small);
            return BigUint::from(gcd_u128(small, r));
        }
        if a.len() <= 2 {
            let to = |l: &[u64]| l[0] as u128 | (l.get(1).copied().unwrap_or(0) as u128) << 64;
            return BigUint::from(gcd_u128(to(&a), to(&b)));
        }
        let (bits_a, bits_b) = (bits(&a), bits(&b));
        if bits_a - bits_b > 32 {
            let r = remainder(&a, &b);
            a = std::mem::replace(&mut b, r);
            continue;
        }
        // bits_a > 128 here (a has three limbs or more).
        let shift = bits_a - 63;
        let (mut x, mut y) = (leading(&a, shift), leading(&b, shift));
        // The cosequence: a' = p·a + q·b, b' = r·a + s·b.
        let (mut p, mut q, mut r, mut s) = (1i128, 0i128, 0i128, 1i128);
        loop {
            // The quotient test in machine words: every operand positive and below 2^64
            // (else stop), so the divisions are hardware `u64` divisions.
            let word = |v: i128| u64::try_from(v).ok().filter(|&w| w > 0);
            let (Some(n1), Some(d1), Some(n2), Some(d2)) =
                (word(x + p), word(y + r), word(x + q), word(y + s))
            else {
                break;
            };
            let quotient = n1 / d1;
            if quotient != n2 / d2 {
                break;
            }
            let quotient = i128::from(quotient);
            (p, r) = (r, p - quotient * r);
            (q, s) = (s, q - quotient * s);
            (x, y) = (y, x - quotient * y);
        }
        // A gcd-preserving step (unimodular) that made progress: both results non-negative
        // and the larger one smaller than `a`; otherwise one exact division step.
        let accepted = q != 0
            && [p, q, r, s].iter().all(|c| c.abs() < LIMIT)
            && combine(&mut na, &a, p, &b, q)
            && combine(&mut nb, &a, r, &b, s)
            && {
                if compare(&na, &nb).is_lt() {
                    std::mem::swap(&mut na, &mut nb);
                }
                compare(&na, &a).is_lt()
            };
        if accepted {
            std::mem::swap(&mut a, &mut na);
            std::mem::swap(&mut b, &mut nb);
        } else {
            let rem = remainder(&a, &b);
            a = std::mem::replace(&mut b, rem);
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
    match gcd_int_unless_one(&n, &d) {
        None => Rational::new_raw(n, d),
        Some(g) => Rational::new_raw(n / &g, d / &g),
    }
}

/// `a·b` of reduced rationals, by cross-cancellation with [`gcd`]: `gcd(n_a, d_b)` and
/// `gcd(d_a, n_b)` are divided out before multiplying, so the product is reduced.
pub fn mul(a: &Rational, b: &Rational) -> Rational {
    if a.is_zero() || b.is_zero() {
        return Rational::zero();
    }
    // A factor ±1 (negations, unit weights): no gcd, no product.
    for (x, y) in [(a, b), (b, a)] {
        if x.denom().is_one() && x.numer().magnitude().is_one() {
            return if x.is_positive() {
                y.clone()
            } else {
                -y.clone()
            };
        }
    }
    let g1 = gcd_int_unless_one(a.numer(), b.denom());
    let g2 = gcd_int_unless_one(a.denom(), b.numer());
    // Most cross gcds are 1 (coprime operands): no division then (num-bigint's division
    // allocates its quotient even for the divisor 1; it was 10 % of the 440-edge profile).
    fn cancel<'a>(x: &'a BigInt, g: &Option<BigInt>) -> std::borrow::Cow<'a, BigInt> {
        match g {
            None => std::borrow::Cow::Borrowed(x),
            Some(g) => std::borrow::Cow::Owned(x / g),
        }
    }
    let n = &*cancel(a.numer(), &g1) * &*cancel(b.numer(), &g2);
    let d = &*cancel(a.denom(), &g2) * &*cancel(b.denom(), &g1);
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
    if a.denom().is_one() && b.denom().is_one() {
        return Rational::from_integer(a.numer() + b.numer());
    }
    let Some(g) = gcd_int_unless_one(a.denom(), b.denom()) else {
        let n = a.numer() * b.denom() + b.numer() * a.denom();
        return Rational::new_raw(n, a.denom() * b.denom());
    };
    let (da, db) = (a.denom() / &g, b.denom() / &g);
    let t = a.numer() * &db + b.numer() * &da;
    if t.is_zero() {
        return Rational::zero();
    }
    match gcd_int_unless_one(&t, &g) {
        None => Rational::new_raw(t, da * b.denom()),
        Some(g2) => Rational::new_raw(t / &g2, da * (b.denom() / &g2)),
    }
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
        fn products_and_sums_agree_with_num_rational(
            na in -10_000i64..10_000, da in 1i64..10_000,
            nb in -10_000i64..10_000, db in 1i64..10_000,
            k in 1i64..1_000,
        ) {
            // Operands whose cross gcds are 1 and operands that share a factor k.
            let q = |n: i64, d: i64| Rational::new(n.into(), d.into());
            for (a, b) in [(q(na, da), q(nb, db)), (q(na * k, da), q(nb, db * k)), (q(na, da * k), q(nb * k, db))] {
                let product = mul(&a, &b);
                prop_assert_eq!(&product, &(&a * &b));
                // Reduced as stored (new_raw): equal to its own reduction, positive denominator.
                prop_assert_eq!(product.clone(), Rational::new(product.numer().clone(), product.denom().clone()));
                prop_assert!(product.denom().is_positive());
                prop_assert_eq!(add(&a, &b), &a + &b);
            }
        }

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

    /// Values at and around the word limits, signed, for the one- and two-word paths.
    fn edge_values() -> Vec<u128> {
        let mut v = vec![0, 1, 2, 3, 6, 27, 1 << 63, (1 << 63) + 1];
        for top in [u128::from(u64::MAX), u128::MAX] {
            v.extend([top, top - 1, top - 2, top / 2, top / 3, top / 2 + 1]);
        }
        v.extend([u128::from(u64::MAX) + 1, u128::from(u64::MAX) + 2, 1 << 127]);
        v
    }

    proptest! {
        #[test]
        fn word_gcds_agree_with_num_bigint(
            a in any::<u128>(), b in any::<u128>(), c in any::<u64>(),
            small in any::<u64>(), shift in 0u32..64,
        ) {
            // One-word and two-word operands, balanced and not, with and without a shared
            // factor; the shortcut for 1 only where the gcd is 1.
            let c = u128::from(c.max(1));
            let cases = [
                (a, b),
                (a >> shift, b),
                (u128::from(small), b),
                (a, u128::from(small)),
                ((a >> 64).wrapping_mul(c), (b >> 64).wrapping_mul(c)),
                ((a >> 70) * c, u128::from(small >> 1) * c),
                (a >> 64, b >> 64),
                (u128::from(small), u128::from(small) + 1),
            ];
            for (x, y) in cases {
                let expected = BigUint::from(x).gcd(&BigUint::from(y));
                prop_assert_eq!(BigUint::from(gcd_u128(x, y)), expected.clone());
                prop_assert_eq!(gcd(&BigUint::from(x), &BigUint::from(y)), expected.clone());
                let unless = gcd_unless_one(&BigUint::from(x), &BigUint::from(y));
                prop_assert_eq!(unless.is_none(), expected.is_one());
                if let Some(g) = unless {
                    prop_assert_eq!(g, expected);
                }
            }
            // A multi-word operand against one word (the remainder pass), zero and one.
            let wide = (BigUint::from(a) << 128u32) + BigUint::from(b) * c;
            for s in [small, small >> shift, 0, 1, u64::MAX, c as u64] {
                let s = BigUint::from(s);
                for w in [&wide, &(&wide * &s)] {
                    let expected = w.gcd(&s);
                    prop_assert_eq!(gcd(w, &s), expected.clone());
                    prop_assert_eq!(gcd(&s, w), expected.clone());
                    let unless = gcd_unless_one(w, &s);
                    prop_assert_eq!(unless.clone().is_none(), expected.is_one());
                    prop_assert_eq!(unless.unwrap_or_else(BigUint::one), expected);
                }
            }
        }
    }

    #[test]
    fn unit_factors_and_integer_sums_agree_with_num_rational() {
        // The shortcuts of `mul` (a factor ±1) and `add` (two integers), at the word limits,
        // signed, against num-rational's operators; and the cases just beside them.
        let mut values: Vec<Rational> = Vec::new();
        for v in edge_values() {
            for sign in [1i64, -1] {
                let n = BigInt::from(v) * sign;
                values.push(Rational::from_integer(n.clone()));
                values.push(Rational::new(n.clone(), 3.into()));
                values.push(Rational::new(n, BigInt::from(u128::MAX)));
            }
        }
        let units = [1i64, -1, 2, -2].map(|k| Rational::from_integer(k.into()));
        let halves = [
            Rational::new(1.into(), 2.into()),
            Rational::new((-1).into(), 2.into()),
        ];
        for x in &values {
            if !x.is_zero() {
                // The reciprocal by swapping (the routes' `1/h`) is the canonical `1 / x`.
                let r = x.recip();
                assert_eq!(r, Rational::one() / x);
                assert_eq!(
                    r.clone(),
                    Rational::new(r.numer().clone(), r.denom().clone())
                );
                assert!(r.denom().is_positive());
            }
            for u in units.iter().chain(&halves) {
                assert_eq!(mul(x, u), x * u, "{x} · {u}");
                assert_eq!(mul(u, x), x * u, "{u} · {x}");
            }
            for y in &values {
                let (s, m) = (add(x, y), mul(x, y));
                assert_eq!(s, x + y, "{x} + {y}");
                assert_eq!(m, x * y, "{x} · {y}");
                // Canonical as stored (new_raw / from_integer).
                assert_eq!(
                    s.clone(),
                    Rational::new(s.numer().clone(), s.denom().clone())
                );
                assert!(s.denom().is_positive() && m.denom().is_positive());
            }
        }
    }

    #[test]
    fn word_gcds_at_the_limits() {
        let values = edge_values();
        for &x in &values {
            for &y in &values {
                let expected = BigUint::from(x).gcd(&BigUint::from(y));
                assert_eq!(BigUint::from(gcd_u128(x, y)), expected, "gcd({x}, {y})");
                // Signed: the gcd of the magnitudes, `None` exactly when it is 1.
                for (sx, sy) in [(1, 1), (-1, 1), (1, -1), (-1, -1)] {
                    let bx = BigInt::from(x) * sx;
                    let by = BigInt::from(y) * sy;
                    match gcd_int_unless_one(&bx, &by) {
                        None => assert!(expected.is_one(), "gcd({bx}, {by})"),
                        Some(g) => {
                            assert!(!expected.is_one());
                            assert_eq!(g, BigInt::from(expected.clone()));
                        }
                    }
                }
                if x > 0 {
                    let y = BigInt::from(y) - BigInt::from(u128::MAX / 5);
                    let r = reduced(y.clone(), BigInt::from(x));
                    assert_eq!(r, Rational::new(y, BigInt::from(x)));
                }
            }
        }
        // Negative control: a gcd that is not 1 is reported as such.
        assert!(gcd_int_unless_one(&BigInt::from(6), &BigInt::from(-4)).is_some());
        assert_eq!(gcd_u64(u64::MAX, u64::MAX - 1), 1);
        assert_eq!(gcd_u64(0, 12), 12);
    }

    #[test]
    fn multi_word_steps_on_hard_inputs() {
        // Consecutive Fibonacci numbers (every quotient 1: the longest cosequences), powers of
        // two plus small offsets (top words equal: the quotient test decides), and products
        // with a shared factor of every size from one limb to many.
        let (mut f, mut g) = (BigUint::one(), BigUint::one());
        for i in 0..1500 {
            (f, g) = (g.clone(), f + &g);
            if i % 50 == 0 {
                prop_assert_eq_plain(&f, &g);
                prop_assert_eq_plain(&(&f * &g * 12u32), &(&g * &g * 18u32));
            }
        }
        for k in [130u32, 192, 200, 640, 1000] {
            let p = BigUint::one() << k;
            for (x, y) in [
                (&p + 3u32, &p + 1u32),
                (&p * 3u32 + 7u32, &p + 5u32),
                (&p - 1u32, p.clone()),
            ] {
                prop_assert_eq_plain(&x, &y);
            }
        }
        let mut c = BigUint::from(u64::MAX);
        for _ in 0..8 {
            let x = &c * 1_000_003u32 + 17u32;
            prop_assert_eq_plain(&(&x * &c), &(&c * (&c + 1u32)));
            c = &c * &c + 1u32;
        }
    }

    fn prop_assert_eq_plain(x: &BigUint, y: &BigUint) {
        assert_eq!(gcd(x, y), x.gcd(y), "gcd({x}, {y})");
        assert_eq!(gcd(y, x), x.gcd(y), "gcd({y}, {x})");
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
