//! Norwegian identity numbers: fødselsnummer and D-nummer.
//!
//! `DDMMYY III K1 K2`. K1 weights `3 7 6 1 8 9 4 5 2`, K2 weights `5 4 3 2 7 6 5 4 3 2`. Under the
//! 1964 rule the weighted sum including the check digit is divisible by 11; from 2032 K1 may leave
//! a remainder of 0, 1, 2 or 3 (so a 2032 validator accepts every older number). A D-nummer adds
//! 40 to the day; synthetic test numbers add 80 (Skatteetaten) or 40 (NAV) to the month. Sex and
//! birth date are never taken from the number.

use crate::TransformError;

const K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

/// What kind of number an identity number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A fødselsnummer.
    Foedselsnummer,
    /// A D-nummer (day + 40).
    DNummer,
}

impl IdKind {
    /// The register's own word (`identifikatortype`).
    pub fn as_register_str(self) -> &'static str {
        match self {
            Self::Foedselsnummer => "foedselsnummer",
            Self::DNummer => "dNummer",
        }
    }
}

fn digits(id: &str) -> Result<[u32; 11], TransformError> {
    let invalid = |reason| TransformError::InvalidIdentifier {
        id: id.to_owned(),
        reason,
    };
    if id.len() != 11 {
        return Err(invalid("not 11 characters"));
    }
    let mut out = [0u32; 11];
    for (slot, c) in out.iter_mut().zip(id.chars()) {
        *slot = c.to_digit(10).ok_or_else(|| invalid("not all digits"))?;
    }
    Ok(out)
}

/// Validates an identity number under the 2032 rule (which accepts every 1964 number) and
/// returns its kind.
pub fn validate(id: &str) -> Result<IdKind, TransformError> {
    let d = digits(id)?;
    let invalid = |reason| TransformError::InvalidIdentifier {
        id: id.to_owned(),
        reason,
    };
    let k1_sum: u32 = K1_WEIGHTS
        .iter()
        .zip(&d[..9])
        .map(|(w, x)| w * x)
        .sum::<u32>()
        + d[9];
    if k1_sum % 11 > 3 {
        return Err(invalid("first check digit"));
    }
    let k2_sum: u32 = K2_WEIGHTS
        .iter()
        .zip(&d[..10])
        .map(|(w, x)| w * x)
        .sum::<u32>()
        + d[10];
    if !k2_sum.is_multiple_of(11) {
        return Err(invalid("second check digit"));
    }
    let mut day = d[0] * 10 + d[1];
    let kind = if day > 40 {
        day -= 40;
        IdKind::DNummer
    } else {
        IdKind::Foedselsnummer
    };
    let mut month = d[2] * 10 + d[3];
    // Synthetic test populations add 80 (Skatteetaten) or 40 (NAV, and H-numbers) to the month.
    if month > 80 {
        month -= 80;
    } else if month > 40 {
        month -= 40;
    }
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return Err(invalid("no such date"));
    }
    let year = d[4] * 10 + d[5];
    let days_in_month = match month {
        2 if year.is_multiple_of(4) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > days_in_month {
        return Err(invalid("no such date"));
    }
    Ok(kind)
}

/// The 1964-rule check digits for the first nine digits, or `None` when no valid pair exists.
pub fn check_digits(first_nine: &[u32; 9]) -> Option<(u32, u32)> {
    let sum: u32 = K1_WEIGHTS.iter().zip(first_nine).map(|(w, x)| w * x).sum();
    let k1 = (11 - sum % 11) % 11;
    if k1 == 10 {
        return None;
    }
    let sum2: u32 = K2_WEIGHTS
        .iter()
        .zip(first_nine.iter().chain([&k1]))
        .map(|(w, x)| w * x)
        .sum();
    let k2 = (11 - sum2 % 11) % 11;
    (k2 != 10).then_some((k1, k2))
}

/// Builds an identity number from its first nine digits (as text), or `None` when those digits
/// admit no valid check digits.
pub fn complete(first_nine: &str) -> Option<String> {
    let mut d = [0u32; 9];
    for (slot, c) in d.iter_mut().zip(first_nine.chars()) {
        *slot = c.to_digit(10)?;
    }
    let (k1, k2) = check_digits(&d)?;
    Some(format!("{first_nine}{k1}{k2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skatteetaten's own table of valid and invalid numbers (synthetic), kept as a fixture.
    const CASES: &str = include_str!("../tests/fixtures/foedselsnummer-testcases.csv");

    #[test]
    fn register_test_cases() {
        for line in CASES.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            let (id, valid, what) = (cols[0], cols[2] == "true", cols[3]);
            assert_eq!(validate(id).is_ok(), valid, "{id} ({what})");
        }
    }

    #[test]
    fn d_numbers_are_recognised() {
        assert_eq!(validate("41819077906").unwrap(), IdKind::DNummer);
        assert_eq!(validate("03851598730").unwrap(), IdKind::Foedselsnummer);
    }

    #[test]
    fn completed_numbers_validate() {
        let mut made = 0;
        for n in 0..1000 {
            if let Some(id) = complete(
                &format!("0188{:02}{:03}", 90, n)
                    .chars()
                    .take(9)
                    .collect::<String>(),
            ) {
                assert!(validate(&id).is_ok(), "{id}");
                made += 1;
            }
        }
        assert!(made > 500);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = validate(&s);
        }
    }
}
