//! The 357 kommuner of 2024 with population weights.

use std::sync::LazyLock;

/// A kommune.
#[derive(Debug, Clone)]
pub struct Kommune {
    /// Four-digit number.
    pub number: &'static str,
    /// Name.
    pub name: &'static str,
    /// Relative population weight.
    pub weight: u32,
    /// The first postcode the simulator gives addresses in this kommune.
    pub postcode_base: u32,
}

const DATA: &str = include_str!("../data/kommuner-2024.tsv");

/// Every kommune, in number order.
pub static KOMMUNER: LazyLock<Vec<Kommune>> = LazyLock::new(|| {
    DATA.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .enumerate()
        .filter_map(|(i, line)| {
            let mut cols = line.split('\t');
            let (number, name, pop) = (cols.next()?, cols.next()?, cols.next()?);
            let known: u32 = pop.trim().parse().unwrap_or(0);
            // Unknown sizes: a spread of small kommuner (about half of them under 5 000).
            let n: u32 = number.parse().unwrap_or(0);
            let weight = if known > 0 {
                known
            } else {
                1_500 + (n * 7_919) % 22_000
            };
            // Synthetic postcodes: four digits, distinct per kommune, stable.
            let postcode_base = (1000 + (i as u32) * 25) % 10_000;
            Some(Kommune {
                number,
                name,
                weight,
                postcode_base,
            })
        })
        .collect()
});

/// Cumulative weights for drawing a kommune by population.
pub static CUMULATIVE: LazyLock<Vec<u64>> = LazyLock::new(|| {
    let mut sum = 0u64;
    KOMMUNER
        .iter()
        .map(|k| {
            sum += u64::from(k.weight);
            sum
        })
        .collect()
});

/// Draws a kommune index from a uniform `u64`.
pub fn draw(r: u64) -> usize {
    let total = *CUMULATIVE.last().expect("the kommune table is not empty");
    let x = r % total;
    CUMULATIVE.partition_point(|c| *c <= x)
}

/// The index of a kommune by number.
pub fn index_of(number: &str) -> Option<usize> {
    KOMMUNER.iter().position(|k| k.number == number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_357_kommuner() {
        assert_eq!(KOMMUNER.len(), 357);
        assert_eq!(KOMMUNER[index_of("5035").unwrap()].name, "Stjørdal");
        assert!(draw(u64::MAX) < 357);
    }
}
