//! A pairwise-coprime integer base, refined by gcds (no factorization needed).
//!
//! Pairwise-coprime integers greater than one are multiplicatively independent, so their
//! logarithms are linearly independent over Q: a log-form over such a base is canonical.
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::One;
use std::collections::{BTreeMap, BTreeSet};

/// A set of pairwise-coprime integers `> 1`, refined whenever a new integer is inserted so that
/// every integer ever inserted is a product of powers of the elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoprimeBase {
    elements: BTreeSet<BigUint>,
}

impl CoprimeBase {
    /// An empty base.
    pub fn new() -> Self {
        Self::default()
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
    pub fn insert(&mut self, n: &BigUint) {
        let mut pending = vec![n.clone()];
        while let Some(m) = pending.pop() {
            if m.is_one() || m == BigUint::ZERO || self.elements.contains(&m) {
                continue;
            }
            let shared = self
                .elements
                .iter()
                .map(|b| (b.clone(), m.gcd(b)))
                .find(|(_, g)| !g.is_one());
            match shared {
                None => {
                    self.elements.insert(m);
                }
                Some((b, g)) => {
                    self.elements.remove(&b);
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
