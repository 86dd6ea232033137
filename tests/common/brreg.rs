//! The business register's side of the end-to-end tests: a pipeline file and the simulator's
//! truth.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Simulator;

/// The business register's API path.
pub const API: &str = "/enhetsregisteret/api";

/// A business-register pipeline file in `dir`, its lake at `dir/lake`; with `kafka`, a `[kafka]`
/// section whose brokers `--kafka` gives.
pub fn brreg_pipeline(dir: &Path, url: &str, kafka: bool) -> PathBuf {
    let kafka = if kafka {
        "[kafka]\nbrokers = \"unused:9092\"\nslice_sequences = 25\npoll_interval = \"200ms\"\n"
    } else {
        ""
    };
    let text = format!(
        r#"name = "brreg-test"
[source]
register = "brreg"
base_url = "{url}"
api_path = "{API}"
request_timeout = "10s"
max_tries = 30
[lake]
url = "{}"
[worker]
batch_events = 40
seed_batch_persons = 60
fetch_concurrency = 3
poll_interval = "200ms"
{kafka}"#,
        dir.join("lake").display()
    );
    let path = dir.join("brreg.toml");
    std::fs::write(&path, text).expect("write pipeline");
    path
}

/// The register's units of a list as served now, by organisation number: its bulk download,
/// asked again while a fault spoils it.
pub fn truth(sim: &Simulator, list: &str) -> HashMap<String, Value> {
    for _ in 0..200 {
        let Some(gz) = sim.get_bytes(&format!("{API}/{list}/lastned")) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let mut text = String::new();
        if flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        let Ok(Value::Array(units)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        return units
            .into_iter()
            .map(|u| (u["organisasjonsnummer"].as_str().unwrap().to_owned(), u))
            .collect();
    }
    panic!("the simulator's {list} download never came whole");
}
