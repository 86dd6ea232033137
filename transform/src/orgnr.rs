//! Organisation numbers (organisasjonsnummer) of the business register: nine digits, the last a
//! mod-11 check digit over the first eight with weights `3 2 7 6 5 4 3 2`; the check digit is
//! `11 - (sum mod 11)`, where 11 gives 0 and 10 means no valid number has those eight digits.

use crate::TransformError;

const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];

/// The check digit of the first eight digits (`None`: no valid number starts so).
pub fn check_digit(first_eight: &[u32; 8]) -> Option<u32> {
    let sum: u32 = first_eight.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        k => Some(k),
    }
}

/// Checks an organisation number's form and check digit.
pub fn validate(number: &str) -> Result<(), TransformError> {
    let invalid = |reason| TransformError::InvalidIdentifier {
        id: number.to_owned(),
        reason,
    };
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if number.len() != 9 || digits.len() != 9 {
        return Err(invalid("an organisation number is nine digits"));
    }
    let mut first = [0u32; 8];
    first.copy_from_slice(&digits[..8]);
    match check_digit(&first) {
        Some(k) if k == digits[8] => Ok(()),
        Some(_) => Err(invalid("the check digit does not match (mod 11)")),
        None => Err(invalid(
            "no valid organisation number has these first eight digits",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid number from eight digits.
    fn complete(first: [u32; 8]) -> Option<String> {
        check_digit(&first).map(|k| first.iter().chain([&k]).map(u32::to_string).collect())
    }

    #[test]
    fn numbers_with_their_own_check_digit_pass_and_every_other_digit_fails() {
        for first in [
            [9, 1, 0, 0, 0, 0, 0, 0],
            [8, 1, 2, 3, 4, 5, 6, 7],
            [9, 7, 4, 7, 6, 0, 6, 7],
        ] {
            let Some(number) = complete(first) else {
                continue;
            };
            validate(&number).unwrap();
            let last = number.chars().last().unwrap().to_digit(10).unwrap();
            for other in (0..10).filter(|d| *d != last) {
                let wrong = format!("{}{other}", &number[..8]);
                assert!(validate(&wrong).is_err(), "{wrong}");
            }
        }
    }

    #[test]
    fn the_registers_anonymised_sample_number_fails_its_check_digit() {
        // 1*3 + 2*2 + 3*7 + 4*6 + 5*5 + 6*4 + 7*3 + 8*2 = 138; 138 mod 11 = 6; 11 - 6 = 5.
        assert_eq!(check_digit(&[1, 2, 3, 4, 5, 6, 7, 8]), Some(5));
        assert!(validate("123456789").is_err());
        assert!(validate("123456785").is_ok());
    }

    #[test]
    fn remainder_one_has_no_valid_number_and_eleven_gives_zero() {
        // 3*3 + 2*2 = 13, 13 mod 11 = 2: 9. Eight zeros sum to 0: 11 - 0 = 11 -> 0.
        assert_eq!(
            check_digit(&[0, 0, 0, 0, 0, 0, 3, 2]),
            Some(11 - (9 + 4) % 11)
        );
        assert_eq!(check_digit(&[0; 8]), Some(0));
        // 3*4 = 12, 12 mod 11 = 1: 11 - 1 = 10.
        assert_eq!(check_digit(&[4, 0, 0, 0, 0, 0, 0, 0]), None);
        for bad in [
            "12345678",
            "1234567890",
            "12345678a",
            " 23456785",
            "１２３４５６７８５",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
