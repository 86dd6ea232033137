//! The property register's addresses end to end: `regsync run` of the population and property
//! pipelines into one lake, the address file fetched over HTTP from the simulator, the worker
//! killed (SIGKILL) at random moments during its seed: every address of the file is in
//! `address` once with one open version, and every unprotected resident is placed at the
//! register's address.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::Rng;

fn matrikkel_pipeline(dir: &Path, url: &str) -> PathBuf {
    let text = format!(
        r#"name = "matrikkel-test"
[source]
register = "matrikkel"
base_url = "{url}"
address_file = "{url}/matrikkel/v1/matrikkelenAdresse.csv"
request_timeout = "10s"
[lake]
url = "{}"
[worker]
batch_events = 100
seed_batch_persons = 40
fetch_concurrency = 1
poll_interval = "200ms"
"#,
        dir.join("lake").display()
    );
    let path = dir.join("matrikkel.toml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// The address ids of the simulator's file.
fn file_ids(sim: &Simulator) -> Vec<String> {
    let body = sim
        .get_bytes("/matrikkel/v1/matrikkelenAdresse.csv")
        .expect("the address file");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(body.as_slice());
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "adresseId")
        .expect("adresseId");
    reader
        .records()
        .map(|r| r.unwrap()[at].to_owned())
        .collect()
}

#[test]
fn the_address_file_seeds_once_across_sigkills_and_places_every_resident() {
    let sim = Simulator::start(&["--persons", "2500", "--seed", "17", "--events-per-sec", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let matrikkel = matrikkel_pipeline(dir.path(), &sim.url);
    let mut rng = kill_rng("the_address_file_seeds_once_across_sigkills");
    for _ in 0..4 {
        let mut child = Command::new(BIN)
            .args(["run", matrikkel.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let freg = pipeline(dir.path(), &sim.url, 500);
    let out = regsync(&[
        "run",
        freg.to_str().unwrap(),
        matrikkel.to_str().unwrap(),
        "--until-caught-up",
    ]);
    assert!(
        out.status.success(),
        "regsync run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lake = dir.path().join("lake");
    let want: HashSet<String> = file_ids(&sim).into_iter().collect();
    let rows = sql(&lake, "SELECT address_id FROM address");
    let got: HashSet<String> = rows
        .iter()
        .map(|r| r["address_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows.len(), got.len(), "each address once in `address`");
    assert_eq!(got, want, "the lake's addresses are the file's");
    let open = sql(
        &lake,
        "SELECT count(*) AS n, count(DISTINCT address_id) AS d FROM address_history WHERE valid_to IS NULL",
    );
    assert_eq!(
        open[0]["n"].as_i64(),
        Some(want.len() as i64),
        "open versions"
    );
    assert_eq!(
        open[0]["d"].as_i64(),
        Some(want.len() as i64),
        "one per address"
    );
    // Every unprotected resident at a street address is at one of the register's addresses.
    let placed = sql(
        &lake,
        "SELECT count(*) AS n, count(address_id) AS placed FROM resident_addresses",
    );
    let (n, placed) = (
        placed[0]["n"].as_i64().unwrap(),
        placed[0]["placed"].as_i64().unwrap(),
    );
    assert!(n > 1000, "{n} residents");
    assert_eq!(placed, n, "residents without the register's address");
}
