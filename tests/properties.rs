//! Property tests over random DAGs, priors, posteriors, rewards and β: C1–C5 hold, every
//! mutant fails, log-forms are canonical (also after base refinement), and ring laws hold.
//! 1150 cases in all; failing seeds persist under `proptest-regressions/`.
use num_bigint::BigUint;
use num_traits::{One, Zero};
use proptest::prelude::*;
use rtb_trustpcl::claims::{verify_environment, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::generate::{layered, Shape};
use rtb_trustpcl::dag::spec::validate;
use rtb_trustpcl::dag::Environment;
use rtb_trustpcl::exact::{CoprimeBase, LogForm, Poly, Rational, Var};
use rtb_trustpcl::mutant::Mutant;

const BETAS: [(i64, i64); 8] = [
    (1, 1),
    (2, 1),
    (3, 1),
    (1, 2),
    (3, 2),
    (2, 3),
    (4, 1),
    (5, 2),
];

fn environment(
    seed: u64,
    layers: usize,
    width: usize,
    fan_out: usize,
    terminals: usize,
    beta: usize,
    posteriors: bool,
) -> Environment {
    let (n, d) = BETAS[beta];
    let shape = Shape {
        layers,
        width,
        terminals,
        fan_out,
        skip_percent: 30,
        beta: Rational::new(n.into(), d.into()),
        posteriors,
        max_weight: 4,
        reward_numerator: 9,
        reward_denominator: 4,
        source_fan_out: None,
        cover: false,
    };
    validate(&layered(&shape, seed), "proptest").expect("generated environments are valid")
}

fn env_strategy(betas: std::ops::Range<usize>) -> impl Strategy<Value = Environment> {
    (
        any::<u64>(),
        1usize..=3,
        1usize..=3,
        1usize..=3,
        1usize..=3,
        betas,
        any::<bool>(),
    )
        .prop_map(|(seed, l, w, f, t, b, p)| environment(seed, l, w, f, t, b, p))
}

fn small_options(mutant: Option<Mutant>) -> VerifyOptions {
    VerifyOptions {
        max_trajectories: 200,
        max_windows: 1000,
        mutant,
        keep: 1,
        ..VerifyOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(250))]

    #[test]
    fn claims_hold_on_random_environments(env in env_strategy(0..BETAS.len())) {
        let ctx = ClaimContext::new(&env, small_options(None)).unwrap();
        for cert in verify_environment(&ctx) {
            prop_assert_ne!(cert.holds, Some(false), "{} fails on\n{}", cert.claim, env.to_toml());
            prop_assert!(cert.recheck().is_ok());
        }
    }

    #[test]
    fn mutants_fail_on_random_environments(env in env_strategy(1..BETAS.len()), m in 0usize..4) {
        let mutant = Mutant::ALL[m];
        let ctx = ClaimContext::new(&env, small_options(Some(mutant))).unwrap();
        let certs = verify_environment(&ctx);
        for claim in ["C2", "C3"] {
            let cert = certs.iter().find(|c| c.claim == claim).unwrap();
            prop_assert_eq!(cert.holds, Some(false), "{} under {} holds on\n{}", claim, mutant, env.to_toml());
        }
    }
}

fn rational() -> impl Strategy<Value = Rational> {
    (1i64..=60, 1i64..=60).prop_map(|(n, d)| Rational::new(n.into(), d.into()))
}

fn base_for(values: &[&Rational], extra: &[u64]) -> CoprimeBase {
    let mut base = CoprimeBase::new();
    for r in values {
        base.insert(r.numer().magnitude());
        base.insert(r.denom().magnitude());
    }
    for n in extra {
        base.insert(&BigUint::from(*n));
    }
    base
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(350))]

    #[test]
    fn logforms_are_canonical(a in rational(), b in rational(), extra in proptest::collection::vec(2u64..5000, 0..4)) {
        let product = &a * &b;
        let base = base_for(&[&a, &b, &product], &[]);
        let log = |r: &Rational| LogForm::log_of(r, &base).unwrap();
        // Equal values ⇔ equal forms.
        prop_assert_eq!(log(&a) == log(&b), a == b);
        prop_assert_eq!(log(&product), log(&a).add(&log(&b)));
        prop_assert_eq!(log(&a).is_zero(), a.is_one());
        // …and still after refining the base with unrelated numbers.
        let mut refined = base.clone();
        for n in &extra {
            refined.insert(&BigUint::from(*n));
        }
        let (ra, rb) = (log(&a).rebase(&refined).unwrap(), log(&b).rebase(&refined).unwrap());
        prop_assert_eq!(ra == rb, a == b);
        prop_assert_eq!(ra.clone(), LogForm::log_of(&a, &refined).unwrap());
        prop_assert_eq!(log(&product).rebase(&refined).unwrap(), ra.add(&rb));
        // The base stays pairwise coprime.
        let elems: Vec<BigUint> = refined.elements().cloned().collect();
        for (i, x) in elems.iter().enumerate() {
            for y in &elems[i + 1..] {
                prop_assert!(num_integer::Integer::gcd(x, y).is_one());
            }
        }
    }
}

fn poly() -> impl Strategy<Value = Poly> {
    let var = prop_oneof![
        Just(Var::LogZ),
        Just(Var::LogQ(0)),
        Just(Var::LogQ(1)),
        Just(Var::V(0)),
        Just(Var::Atom(BigUint::from(2u32))),
    ];
    proptest::collection::vec((var, -4i64..=4, 0u32..=2), 0..4).prop_map(|terms| {
        terms.into_iter().fold(Poly::zero(), |acc, (v, c, e)| {
            let mut t = Poly::constant(Rational::from_integer(c.into()));
            for _ in 0..e {
                t = t.mul(&Poly::var(v.clone()));
            }
            acc.add(&t)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn ring_laws(p in poly(), q in poly(), r in poly()) {
        prop_assert_eq!(p.add(&q), q.add(&p));
        prop_assert_eq!(p.mul(&q), q.mul(&p));
        prop_assert_eq!(p.add(&q).add(&r), p.add(&q.add(&r)));
        prop_assert_eq!(p.mul(&q).mul(&r), p.mul(&q.mul(&r)));
        prop_assert_eq!(p.mul(&q.add(&r)), p.mul(&q).add(&p.mul(&r)));
        prop_assert!(p.sub(&p).is_zero());
        prop_assert_eq!(p.mul(&Poly::constant(Rational::one())), p.clone());
        prop_assert!(p.mul(&Poly::constant(Rational::zero())).is_zero());
        // Product rule and substitution as a ring homomorphism.
        let v = Var::LogQ(0);
        prop_assert_eq!(p.mul(&q).derivative(&v), p.derivative(&v).mul(&q).add(&p.mul(&q.derivative(&v))));
        let value = r.clone();
        prop_assert_eq!(p.mul(&q).substitute(&Var::LogZ, &value), p.substitute(&Var::LogZ, &value).mul(&q.substitute(&Var::LogZ, &value)));
    }
}
