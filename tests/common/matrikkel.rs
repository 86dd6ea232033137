//! The property register's side of the end-to-end tests: a pipeline file and the simulator's
//! truth (its address file, its cadastral units and its change log, asked again while a fault
//! spoils an answer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Simulator;

/// The property register's API path.
pub const API: &str = "/matrikkel/v1";

/// A property-register pipeline file in `dir`, its lake at `dir/lake`; with `kafka`, a
/// `[kafka]` section whose brokers `--kafka` gives; `kommuner` filters; `seed_batch` lines or
/// units per seed commit.
pub fn matrikkel_pipeline(
    dir: &Path,
    url: &str,
    kafka: bool,
    kommuner: &[&str],
    seed_batch: usize,
) -> PathBuf {
    let kafka = if kafka {
        "[kafka]\nbrokers = \"unused:9092\"\nslice_sequences = 25\npoll_interval = \"200ms\"\n"
    } else {
        ""
    };
    let kommuner: Vec<String> = kommuner.iter().map(|k| format!("\"{k}\"")).collect();
    let text = format!(
        r#"name = "matrikkel-test"
[source]
register = "matrikkel"
base_url = "{url}"
address_file = "{url}{API}/matrikkelenAdresse.csv"
kommuner = [{}]
request_timeout = "10s"
max_tries = 30
[lake]
url = "{}"
[worker]
batch_events = 40
seed_batch_persons = {seed_batch}
fetch_concurrency = 1
poll_interval = "200ms"
{kafka}"#,
        kommuner.join(", "),
        dir.join("lake").display()
    );
    let path = dir.join("matrikkel.toml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// The address file's lines by address id, each as a map of column name to value.
pub fn address_file(sim: &Simulator) -> HashMap<String, HashMap<String, String>> {
    let body = sim
        .get_bytes(&format!("{API}/matrikkelenAdresse.csv"))
        .expect("the address file");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(body.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let line: HashMap<String, String> = header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect();
            (line["adresseId"].clone(), line)
        })
        .collect()
}

/// An answer of the simulator's property register, asked again while a fault spoils it.
fn ask(sim: &Simulator, path: &str, has: &str) -> Value {
    for _ in 0..300 {
        if let Some(v) = sim.get_json(path).filter(|v| v.get(has).is_some()) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{path} never answered whole");
}

/// Every change id of the log after `after`.
pub fn change_ids(sim: &Simulator, mut after: i64) -> Vec<i64> {
    let mut out = Vec::new();
    loop {
        let page = ask(
            sim,
            &format!(
                "{API}/endringer?id={after}&domainklasse=Vegadresse,Matrikkeladresse,Matrikkelenhet&maksAntall=10000"
            ),
            "sisteEndringIdProsessert",
        );
        let mut ids: Vec<i64> = page["endringList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        // A fault may repeat an entry.
        ids.dedup();
        out.extend(ids);
        after = page["sisteEndringIdProsessert"].as_i64().unwrap();
        if page["alleEndringerFunnet"] == Value::Bool(true) {
            return out;
        }
    }
}

/// Every cadastral unit that has not expired, by id: (kommune, gnr, bnr, area).
pub fn cadastral_units(sim: &Simulator) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let mut after = 0;
    loop {
        let page = ask(
            sim,
            &format!("{API}/nedlastning/matrikkelenheter?etterId={after}&maksAntall=10000"),
            "bobler",
        );
        for u in page["bobler"].as_array().unwrap() {
            out.insert(u["id"].to_string(), u.clone());
        }
        match page["sisteId"].as_u64() {
            Some(last) => after = last,
            None => return out,
        }
    }
}
