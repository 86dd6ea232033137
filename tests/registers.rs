//! Two registers in one process and one lake: `regsync run freg.toml brreg.toml` follows both,
//! and the views across registers answer what the simulator holds for its addresses, without
//! a protected resident anywhere in them.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::brreg::{brreg_pipeline, truth};
use common::*;
use serde_json::Value;

/// An address key as the views make it: capitals, letters and digits only.
fn key(text: &str) -> String {
    text.to_uppercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "ÆØÅ".contains(*c))
        .collect()
}

/// What the simulator holds.
struct Truth {
    /// Per (kommune, address key): unprotected residents and units not deleted.
    addresses: BTreeMap<(String, String), (i64, i64)>,
    /// Protected persons.
    protected: HashSet<String>,
    /// Unprotected residents with a kommune.
    residents: i64,
}

fn truth_by_address(sim: &Simulator) -> Truth {
    let mut out: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    let mut protected = HashSet::new();
    let mut residents = 0;
    let lines = sim.get_bytes("/simulator/v1/personer").expect("persons");
    for line in String::from_utf8(lines).unwrap().lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        if p["gradering"] != "ugradert" {
            protected.insert(p["id"].as_str().unwrap().to_owned());
            continue;
        }
        if p["status"] == "bosatt" && p["kommune"].is_string() {
            residents += 1;
        }
        let a = &p["adresse"];
        if p["status"] != "bosatt" || a.is_null() {
            continue;
        }
        let text = format!(
            "{}{}{}",
            a["gate"].as_str().unwrap(),
            a["husnummer"],
            a["bokstav"].as_str().unwrap_or("")
        );
        let kommune = p["kommune"].as_str().unwrap().to_owned();
        out.entry((kommune, key(&text))).or_default().0 += 1;
    }
    for list in ["enheter", "underenheter"] {
        for unit in truth(sim, list).values() {
            if unit.get("slettedato").is_some() {
                continue;
            }
            let address = ["forretningsadresse", "beliggenhetsadresse"]
                .iter()
                .find_map(|k| unit.get(*k))
                .expect("an address");
            let kommune = address["kommunenummer"].as_str().unwrap().to_owned();
            let line = address["adresse"][0].as_str().unwrap();
            out.entry((kommune, key(line))).or_default().1 += 1;
        }
    }
    Truth {
        addresses: out,
        protected,
        residents,
    }
}

#[test]
fn one_run_follows_two_registers_into_one_lake_and_the_views_answer_the_registers_truth() {
    let sim = Simulator::start(&["--persons", "3000", "--seed", "41", "--events-per-sec", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let freg = pipeline(dir.path(), &sim.url, 500);
    let brreg = brreg_pipeline(dir.path(), &sim.url, false);
    let out = regsync(&[
        "run",
        freg.to_str().unwrap(),
        brreg.to_str().unwrap(),
        "--until-caught-up",
    ]);
    assert!(
        out.status.success(),
        "regsync run with two pipelines: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lake = dir.path().join("lake");
    let Truth {
        addresses: truth,
        protected,
        residents,
    } = truth_by_address(&sim);
    let lake_rows: BTreeMap<(String, String), (i64, i64)> = sql(
        &lake,
        "SELECT municipality_number, address_key, residents, units FROM address_summary",
    )
    .into_iter()
    .map(|r| {
        (
            (
                r["municipality_number"].as_str().unwrap().to_owned(),
                r["address_key"].as_str().unwrap().to_owned(),
            ),
            (
                r["residents"].as_i64().unwrap(),
                r["units"].as_i64().unwrap(),
            ),
        )
    })
    .collect();
    // Addresses with businesses (every one) and a sample of the others.
    let with_units: Vec<_> = truth.iter().filter(|(_, (_, u))| *u > 0).collect();
    assert!(
        with_units.len() > 50,
        "few business addresses: {}",
        with_units.len()
    );
    let both = with_units.iter().filter(|(_, (r, _))| *r > 0).count();
    assert!(
        both > 10,
        "few addresses with residents and businesses: {both}"
    );
    let sample = with_units
        .into_iter()
        .chain(truth.iter().filter(|(_, (_, u))| *u == 0).step_by(7));
    let wrong: Vec<_> = sample
        .filter(|(k, t)| lake_rows.get(*k) != Some(t))
        .map(|(k, t)| (k.clone(), *t, lake_rows.get(k).copied()))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "addresses whose residents and units differ (address, register, lake): {wrong:?}"
    );
    assert_eq!(lake_rows.len(), truth.len(), "addresses in address_summary");
    // No protected person in any view.
    let listed: HashSet<String> = sql(&lake, "SELECT person_id FROM address_residents")
        .into_iter()
        .map(|r| r["person_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !protected.is_empty(),
        "the population has protected persons"
    );
    let leaked: Vec<&String> = protected.intersection(&listed).take(5).collect();
    assert!(
        leaked.is_empty(),
        "protected persons in address_residents: {leaked:?}"
    );
    let population: i64 = sql(
        &lake,
        "SELECT sum(residents) AS n FROM municipality_population",
    )[0]["n"]
        .as_i64()
        .unwrap();
    assert_eq!(
        population, residents,
        "municipality_population counts every unprotected resident with a kommune"
    );
}
