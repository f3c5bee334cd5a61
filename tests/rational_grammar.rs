//! The exact rational grammar (issue 13) as a property: over strings drawn from the characters
//! that matter (digits, signs, `/`, `.`, `e`, space), `parse_rational` accepts exactly the
//! strings of `[-]digits[/digits]` or `[-]digits.digits` with a non-zero denominator, and then
//! returns the value a reference reading gives; everything else is refused with the value
//! quoted in the message. Failing cases are kept by proptest under `proptest-regressions/`.
use num_bigint::BigInt;
use proptest::prelude::*;
use rtb_trustpcl::exact::{parse_rational, Rational};

/// The reference: a hand-written recogniser of the grammar and its value.
fn reference(text: &str) -> Option<Rational> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int = |s: &str| s.parse::<BigInt>().unwrap();
    let value = if let Some((n, d)) = body.split_once('/') {
        if !digits(n) || !digits(d) || int(d) == BigInt::from(0) {
            return None;
        }
        Rational::new(int(n), int(d))
    } else if let Some((i, f)) = body.split_once('.') {
        if !digits(i) || !digits(f) {
            return None;
        }
        Rational::new(
            int(&format!("{i}{f}")),
            BigInt::from(10).pow(f.len() as u32),
        )
    } else {
        if !digits(body) {
            return None;
        }
        Rational::from_integer(int(body))
    };
    Some(if neg { -value } else { value })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_parser_accepts_exactly_the_grammar(text in "[-+./0-9e ]{0,12}") {
        let parsed = parse_rational(&text);
        match reference(&text) {
            Some(value) => prop_assert_eq!(parsed.ok(), Some(value), "{:?}", text),
            None => {
                let message = parsed.expect_err("refused").to_string();
                prop_assert!(text.is_empty() || message.contains(&format!("{text:?}")),
                    "{:?}: {}", text, message);
            }
        }
    }

    #[test]
    fn fractions_and_decimals_round_trip(n in -10_000i64..10_000, d in 1i64..10_000, scale in 0u32..6) {
        let q = Rational::new(n.into(), d.into());
        prop_assert_eq!(parse_rational(&q.to_string()).ok(), Some(q));
        // n / 10^scale written as a plain decimal.
        let m = n.unsigned_abs();
        let p = 10u64.pow(scale);
        let text = if scale == 0 {
            format!("{n}")
        } else {
            format!("{}{}.{:0width$}", if n < 0 { "-" } else { "" }, m / p, m % p, width = scale as usize)
        };
        prop_assert_eq!(
            parse_rational(&text).ok(),
            Some(Rational::new(n.into(), (p as i64).into())),
            "{}", text
        );
    }
}
