//! Key format: property tests (many thousands of cases each) for generation, round-trip and
//! rejection, written against an independent description of the format.

use dupify_keys::{
    key_from_headers, parse_key, Environment, Error, FormatError, SecretKey, ALPHABET,
};
use proptest::prelude::*;

const CASES: u32 = 5_000;

fn env_strategy() -> impl Strategy<Value = Environment> {
    prop_oneof![Just(Environment::Live), Just(Environment::Test)]
}

/// The format, written out independently of the parser.
fn classify(s: &str) -> Result<Environment, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Empty);
    }
    let Some(rest) = s.strip_prefix("fe_") else {
        return Err(FormatError::WrongPrefix);
    };
    let (env, tail) = if let Some(t) = rest.strip_prefix("live_") {
        (Environment::Live, t)
    } else if let Some(t) = rest.strip_prefix("test_") {
        (Environment::Test, t)
    } else {
        return Err(FormatError::UnknownEnvironment);
    };
    let chars: Vec<char> = tail.chars().collect();
    if chars.len() != 32 {
        return Err(FormatError::WrongLength {
            expected: 32,
            actual: chars.len(),
        });
    }
    for (i, c) in chars.iter().enumerate() {
        if !(c.is_ascii_uppercase() || c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(FormatError::BadCharacter { position: 8 + i });
        }
    }
    Ok(env)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn well_formed_keys_round_trip(env in env_strategy(), body in "[A-Za-z0-9]{32}") {
        let prefix = match env { Environment::Live => "fe_live_", Environment::Test => "fe_test_" };
        let s = format!("{prefix}{body}");
        let p = parse_key(&s).unwrap();
        prop_assert_eq!(p.environment(), env);
        prop_assert_eq!(p.expose(), s.as_str());
        let owned = SecretKey::parse(&s).unwrap();
        prop_assert_eq!(owned.expose(), s.as_str());
        let shown = format!("{owned:?}{owned}");
        prop_assert!(!shown.contains(&body));
    }

    #[test]
    fn arbitrary_strings_are_classified_exactly(s in any::<String>()) {
        prop_assert_eq!(parse_key(&s).map(|p| p.environment()), classify(&s));
    }

    #[test]
    fn near_miss_strings_are_classified_exactly(
        s in "(fe_|fe|f|FE_|fx_)?(live_|test_|prod_|live|tEst_)?[A-Za-z0-9_\\-+/=é ]{0,40}"
    ) {
        prop_assert_eq!(parse_key(&s).map(|p| p.environment()), classify(&s));
    }

    #[test]
    fn one_bad_character_is_located(
        body in "[A-Za-z0-9]{32}",
        pos in 0usize..32,
        bad in prop::sample::select(vec!['-', '_', '+', '/', '=', ' ', '.', 'é', '\u{0}', '~']),
    ) {
        let mut chars: Vec<char> = body.chars().collect();
        chars[pos] = bad;
        let s = format!("fe_test_{}", chars.into_iter().collect::<String>());
        prop_assert_eq!(parse_key(&s), Err(FormatError::BadCharacter { position: 8 + pos }));
    }

    #[test]
    fn wrong_lengths_are_reported(len in 0usize..80) {
        prop_assume!(len != 32);
        let s = format!("fe_live_{}", "a".repeat(len));
        prop_assert_eq!(parse_key(&s), Err(FormatError::WrongLength { expected: 32, actual: len }));
    }

    #[test]
    fn generation_mapping_matches_rejection_sampling(
        env in env_strategy(),
        bytes in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        // Reference: drop bytes >= 248, take 32, map b % 62 into the alphabet.
        let accepted: Vec<u8> = bytes.iter().copied().filter(|b| *b < 248).take(32).collect();
        let got = SecretKey::from_random_bytes(env, &bytes);
        if accepted.len() < 32 {
            prop_assert!(got.is_none());
        } else {
            let expect: String = accepted
                .iter()
                .map(|b| "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".as_bytes()[usize::from(*b % 62)] as char)
                .collect();
            let k = got.unwrap();
            prop_assert_eq!(&k.expose()[8..], expect.as_str());
            prop_assert_eq!(k.environment(), env);
            prop_assert!(parse_key(k.expose()).is_ok());
        }
    }

    #[test]
    fn header_names_and_scheme_are_case_insensitive(
        body in "[A-Za-z0-9]{32}",
        upper in prop::collection::vec(any::<bool>(), 13),
        lead in "[ \t]{0,3}",
        trail in "[ \t]{0,3}",
        use_bearer in any::<bool>(),
    ) {
        let key = format!("fe_live_{body}");
        let mix = |s: &str, off: usize| -> String {
            s.chars().enumerate().map(|(i, c)| if upper[(i + off) % upper.len()] { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect()
        };
        let (name, value) = if use_bearer {
            (mix("authorization", 0), format!("{lead}{}{lead} {key}{trail}", mix("bearer", 3)))
        } else {
            (mix("x-api-key", 5), format!("{lead}{key}{trail}"))
        };
        let p = key_from_headers([(name.as_str(), value.as_str())]).unwrap();
        prop_assert_eq!(p.expose(), key.as_str());
    }

    #[test]
    fn header_parsing_never_panics(name in any::<String>(), value in any::<String>()) {
        match key_from_headers([(name.as_str(), value.as_str())]) {
            Ok(p) => prop_assert!(classify(p.expose()).is_ok()),
            Err(e) => prop_assert!(matches!(e.code(), "missing_api_key" | "invalid_api_key")),
        }
    }
}

#[test]
fn every_character_is_equally_likely_over_full_byte_cycles() {
    // Four cycles of every byte value: 4 x 248 = 992 accepted bytes = 31 keys, and each of the
    // 62 characters exactly 16 times. Plain `b % 62` without rejection would give the first 8
    // characters 20 hits.
    let stream: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
    let mut counts = [0u32; 62];
    let mut p = 0;
    for _ in 0..31 {
        let k = SecretKey::from_random_bytes(Environment::Live, &stream[p..]).unwrap();
        for c in k.expose()[8..].bytes() {
            counts[ALPHABET.iter().position(|a| *a == c).unwrap()] += 1;
        }
        // Advance past the 32 accepted bytes this key used.
        let mut accepted = 0;
        while accepted < 32 {
            if stream[p] < 248 {
                accepted += 1;
            }
            p += 1;
        }
    }
    assert_eq!(counts, [16u32; 62]);
    // Rejected bytes alone yield nothing.
    assert!(SecretKey::from_random_bytes(Environment::Live, &stream[248..256]).is_none());
}

#[test]
fn generated_keys_are_uniform_chi_square() {
    // 20,000 keys = 640,000 characters over 62 symbols. A modulo-biased generator puts
    // 5/256 instead of 4/256 on 8 symbols: chi-square in the thousands. The bound 200 is far
    // above any plausible unbiased value (df = 61, p < 1e-15).
    let mut counts = [0f64; 62];
    for _ in 0..20_000 {
        let k = SecretKey::generate(Environment::Test).unwrap();
        for c in k.expose()[8..].bytes() {
            counts[ALPHABET.iter().position(|a| *a == c).unwrap()] += 1.0;
        }
    }
    let n: f64 = counts.iter().sum();
    assert_eq!(n, 640_000.0);
    let e = n / 62.0;
    let chi2: f64 = counts.iter().map(|o| (o - e) * (o - e) / e).sum();
    assert!(chi2 < 200.0, "chi-square {chi2}");
}

#[test]
fn malformed_header_key_is_invalid_api_key() {
    let e = key_from_headers([("X-API-Key", "fe_live_tooshort")]).unwrap_err();
    assert!(matches!(
        e,
        Error::MalformedApiKey(FormatError::WrongLength { .. })
    ));
    assert_eq!((e.code(), e.http_status()), ("invalid_api_key", 401));
}
