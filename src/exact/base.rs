//! A pairwise-coprime integer base, refined by gcds (no factorization needed).
//!
//! Pairwise-coprime integers greater than one are multiplicatively independent, so their
//! logarithms are linearly independent over Q: a log-form over such a base is canonical.
use super::gcd::gcd;
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use std::collections::{BTreeMap, BTreeSet};

/// The primes below 1000, divided out before gcd refinement.
static SMALL_PRIMES: std::sync::LazyLock<Vec<u32>> = std::sync::LazyLock::new(|| {
    (2u32..1000)
        .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .collect()
});

/// The small primes in groups whose product fits a `u64`, with that product: one remainder
/// of the number by the product (one pass over its words) tells which primes of the group
/// may divide it.
static PRIME_GROUPS: std::sync::LazyLock<Vec<(u64, Vec<u32>)>> = std::sync::LazyLock::new(|| {
    let mut groups: Vec<(u64, Vec<u32>)> = Vec::new();
    for &p in SMALL_PRIMES.iter() {
        match groups.last_mut() {
            Some((product, primes)) if product.checked_mul(u64::from(p)).is_some() => {
                *product *= u64::from(p);
                primes.push(p);
            }
            _ => groups.push((u64::from(p), vec![p])),
        }
    }
    groups
});

/// `n mod m` for a machine-word `m > 0`.
fn rem_u64(n: &BigUint, m: u64) -> u64 {
    let m = u128::from(m);
    n.iter_u64_digits()
        .rev()
        .fold(0u128, |r, w| ((r << 64) | u128::from(w)) % m) as u64
}

/// A set of pairwise-coprime integers `> 1`, refined whenever a new integer is inserted so that
/// every integer ever inserted is a product of powers of the elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoprimeBase {
    elements: BTreeSet<BigUint>,
    /// The product of the elements without a small prime factor (the "large" ones): one
    /// `gcd(m, product mod m)` tells whether `m` is coprime to all of them at once.
    large_product: BigUint,
}

impl CoprimeBase {
    /// An empty base.
    pub fn new() -> Self {
        Self {
            elements: BTreeSet::new(),
            large_product: BigUint::one(),
        }
    }

    /// The elements, in increasing order.
    pub fn elements(&self) -> impl Iterator<Item = &BigUint> {
        self.elements.iter()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True when the base has no element.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Refines the base so that `n` is a product of powers of its elements, keeping the
    /// elements pairwise coprime. Terminates because every split strictly lowers the product of
    /// all pending numbers and elements.
    ///
    /// Small primes are divided out first: they are pairwise coprime with everything else, and
    /// it keeps the gcd refinement (quadratic in the number of large elements) to the large
    /// cofactors. Correctness does not depend on it.
    pub fn insert(&mut self, n: &BigUint) {
        let mut rest = n.clone();
        for (product, primes) in PRIME_GROUPS.iter() {
            if rest.is_one() || rest == BigUint::ZERO {
                return;
            }
            let r = rem_u64(&rest, *product);
            for &p in primes {
                if !r.is_multiple_of(u64::from(p)) {
                    continue;
                }
                while rem_u64(&rest, u64::from(p)) == 0 {
                    rest /= p;
                }
                self.elements.insert(BigUint::from(p));
            }
        }
        if rest.is_one() || rest == BigUint::ZERO {
            return;
        }
        let mut pending = vec![rest];
        while let Some(m) = pending.pop() {
            if m.is_one() || m == BigUint::ZERO || self.elements.contains(&m) {
                continue;
            }
            if self.large_product.is_zero() {
                self.large_product = BigUint::one();
            }
            if gcd(&(&self.large_product % &m), &m).is_one() {
                self.large_product *= &m;
                self.elements.insert(m);
                continue;
            }
            let shared = self
                .elements
                .iter()
                .map(|b| (b.clone(), gcd(&m, b)))
                .find(|(_, g)| !g.is_one());
            match shared {
                None => {
                    self.large_product *= &m;
                    self.elements.insert(m);
                }
                Some((b, g)) => {
                    self.elements.remove(&b);
                    self.large_product /= &b;
                    pending.push(&b / &g);
                    pending.push(&m / &g);
                    pending.push(g);
                }
            }
        }
    }

    /// The exponents of `n` over the base, or `None` when `n` is not a product of powers of the
    /// elements (it was never inserted).
    pub fn factor(&self, n: &BigUint) -> Option<BTreeMap<BigUint, u64>> {
        let mut rest = n.clone();
        let mut exponents = BTreeMap::new();
        for b in &self.elements {
            if rest.is_one() {
                break;
            }
            // Common case: what is left is itself an element (an inserted large cofactor
            // that never split), so the scan over the other large elements can stop here.
            if &rest != b && self.elements.contains(&rest) {
                exponents.insert(rest.clone(), 1);
                return Some(exponents);
            }
            let mut e = 0u64;
            loop {
                let (q, r) = rest.div_rem(b);
                if r != BigUint::ZERO {
                    break;
                }
                rest = q;
                e += 1;
            }
            if e > 0 {
                exponents.insert(b.clone(), e);
            }
        }
        rest.is_one().then_some(exponents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: u64) -> BigUint {
        BigUint::from(n)
    }

    #[test]
    fn small_prime_groups_cover_every_small_prime() {
        let covered: Vec<u32> = PRIME_GROUPS.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_eq!(covered, *SMALL_PRIMES);
        for (product, primes) in PRIME_GROUPS.iter() {
            assert_eq!(
                *product,
                primes.iter().map(|&p| u64::from(p)).product::<u64>()
            );
        }
        // A number with large powers of small primes and a large cofactor.
        let n = BigUint::from(997u32).pow(9)
            * BigUint::from(2u32).pow(70)
            * (big(u64::MAX) * 3u32 + 2u32);
        assert_eq!(rem_u64(&n, 997), 0);
        let mut base = CoprimeBase::new();
        base.insert(&n);
        let f = base.factor(&n).expect("n was inserted");
        assert_eq!(f.get(&big(997)), Some(&9));
        assert_eq!(f.get(&big(2)), Some(&70));
    }

    #[test]
    fn refines_by_gcd_and_stays_pairwise_coprime() {
        let mut base = CoprimeBase::new();
        for n in [12u64, 18, 35, 4, 1, 49, 6] {
            base.insert(&big(n));
        }
        let elems: Vec<_> = base.elements().cloned().collect();
        for (i, a) in elems.iter().enumerate() {
            for b in &elems[i + 1..] {
                assert!(a.gcd(b).is_one(), "{a} and {b} share a factor");
            }
        }
        for n in [12u64, 18, 35, 4, 49, 6, 1] {
            let f = base.factor(&big(n)).expect("inserted numbers factor");
            let product = f.iter().fold(big(1), |acc, (b, e)| {
                acc * num_traits::pow(b.clone(), *e as usize)
            });
            assert_eq!(product, big(n));
        }
        assert!(base.factor(&big(11)).is_none());
    }

    #[test]
    fn inserting_a_power_of_an_element_keeps_the_element() {
        let mut base = CoprimeBase::new();
        base.insert(&big(4));
        base.insert(&big(2));
        assert_eq!(base.elements().cloned().collect::<Vec<_>>(), vec![big(2)]);
        assert_eq!(base.factor(&big(8)).unwrap()[&big(2)], 3);
    }
}
