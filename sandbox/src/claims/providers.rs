//! The providers a claim names: every NPI drawn from a pool of the beneficiary's own providers
//! (with valid check digits), and every UPIN.

use serde_json::{Map, Value};

use super::dice::Dice;
use crate::users::{User, mix};

const US_NPI: &str = "http://hl7.org/fhir/sid/us-npi";

/// A National Provider Identifier: nine digits starting with 1 or 2 and the Luhn check digit
/// computed over the `80840` prefix, as NPPES issues them.
fn npi(seed: u64) -> String {
    let base = 100_000_000 + seed % 200_000_000;
    let digits = format!("80840{base:09}");
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{base:09}{}", (10 - sum % 10) % 10)
}

/// Every NPI in the claim (care team, referral, the billing organization, the pharmacy)
/// from the beneficiary's own providers, and every UPIN.
pub(super) fn npis(eob: &mut Value, user: &User, dice: &mut Dice) {
    fn walk(value: &mut Value, pool: &[String], next: &mut usize) {
        match value {
            Value::Object(map) => {
                match provider_identifier(map) {
                    Some(Kind::Npi) => {
                        let npi = pool[*next % pool.len()].clone();
                        map.insert("value".to_owned(), Value::String(npi));
                        *next += 1;
                    }
                    Some(Kind::Upin) => {
                        // The retired six-character UPIN: a letter and five digits.
                        let seed = mix(&[*next as u64, pool.len() as u64, 0x0F1]);
                        let upin = format!(
                            "{}{:05}",
                            char::from(b'A' + (seed % 26) as u8),
                            (seed >> 8) % 100_000
                        );
                        map.insert("value".to_owned(), Value::String(upin));
                        *next += 1;
                    }
                    None => {}
                }
                map.values_mut().for_each(|v| walk(v, pool, next));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, pool, next)),
            _ => {}
        }
    }
    let pool: Vec<String> = (0..12)
        .map(|n| npi(mix(&[user.index as u64, n, 0x4E91])))
        .collect();
    let mut next = dice.below(pool.len());
    walk(eob, &pool, &mut next);
}

/// A provider identifier the claim carries.
enum Kind {
    Npi,
    Upin,
}

fn provider_identifier(map: &Map<String, Value>) -> Option<Kind> {
    if !map.get("value").is_some_and(Value::is_string) {
        return None;
    }
    let has_code = |code: &str| {
        map.get("type")
            .and_then(|t| t["coding"].as_array())
            .is_some_and(|codings| codings.iter().any(|c| c["code"] == code))
    };
    if map.get("system").and_then(Value::as_str) == Some(US_NPI) || has_code("npi") {
        Some(Kind::Npi)
    } else if has_code("UPIN") {
        Some(Kind::Upin)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npis_carry_a_valid_check_digit() {
        // CMS's example: 123456789 → check digit 3.
        assert_eq!(npi(23_456_789), "1234567893");
        for seed in 0..50 {
            let n = npi(mix(&[seed]));
            assert_eq!(n.len(), 10);
            assert!(n.starts_with('1') || n.starts_with('2'), "{n}");
        }
    }
}
