//! The national-scale benchmark script, run small: `benches/national.sh` against this build's
//! `regsync`, a simulator and the test broker, prints its whole table. No figure is asserted
//! (timings belong to the script's own runs); what is checked is that every phase ran and said
//! something a reader can use.

mod common;

use std::process::Command;

use common::broker::Broker;

#[test]
fn the_national_benchmark_runs_every_phase_and_prints_its_table() {
    let broker = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("benches/national.sh")
        .args(["3000", "400"])
        .env("REGSYNC_BIN", common::BIN)
        .env("REGSYNC_BENCH_KAFKA", &broker.addr)
        .env("WORK", work.path())
        .output()
        .expect("benches/national.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    for phase in [
        "| measure | result | beside |",
        "| seed 3000 persons",
        "| normalise 3000 documents -> Parquet | regsync ",
        "| catch up 400 feed events |",
        "| citizen list 5035, born 2019, in-process",
        "| citizen list 5035, born 2019, whole process",
        "whole country, in-process",
        "whole country, whole process",
        "| Kafka produce (",
    ] {
        assert!(
            table.iter().any(|l| l.contains(phase)),
            "no row {phase:?} in:\n{stdout}\n{stderr}"
        );
    }
    // Every figure is a figure: no row says nan, inf or an empty ratio.
    for line in &table {
        let words = line.split(|c: char| !c.is_alphanumeric());
        for word in words {
            assert!(
                !["nan", "inf"].contains(&word.to_ascii_lowercase().as_str()),
                "{line}"
            );
        }
        for bad in ["ratio x", ", /"] {
            assert!(!line.contains(bad), "{line}");
        }
    }
}
