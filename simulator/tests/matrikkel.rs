//! The property register's address file over HTTP: in the real file's column set, read by
//! regsync's own reader line by line, one line per address, holding every address the
//! population lives at and every business address, with ids stable between downloads.

use std::collections::HashSet;

use simulator::Config;
use simulator::matrikkel_http::ADDRESS_FILE;
use tokio_util::sync::CancellationToken;
use transform::matrikkel::{Address, Columns, read_address};

async fn download(url: &str) -> Vec<Address> {
    let text = reqwest::get(format!("{url}{ADDRESS_FILE}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let columns = Columns::from_header(reader.headers().unwrap()).unwrap();
    reader
        .records()
        .map(|r| read_address(&columns, &r.unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn the_address_file_holds_every_address_people_and_businesses_are_at() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 3000,
        seed: 5,
        events_per_sec: 0.0,
        ..Config::default()
    };
    let running = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    let url = running.url();
    let addresses = download(&url).await;
    let ids: HashSet<&str> = addresses.iter().map(|a| a.address_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        addresses.len(),
        "one line per address, unique ids"
    );
    assert!(addresses.len() > 1000, "{} addresses", addresses.len());
    let street: HashSet<(String, String)> = addresses
        .iter()
        .filter(|a| a.address_type.as_deref() == Some("vegadresse"))
        .map(|a| {
            let text = format!(
                "{} {}{}",
                a.street_name.as_deref().unwrap(),
                a.house_number.as_deref().unwrap(),
                a.house_letter.as_deref().unwrap_or("")
            );
            (a.municipality_number.clone(), text)
        })
        .collect();
    assert!(
        addresses
            .iter()
            .any(|a| a.address_type.as_deref() == Some("matrikkeladresse") && a.gnr.is_some()),
        "matrikkeladresser too"
    );
    // Every business is at an address of the file.
    let missing: Vec<String> = {
        let units = running.shared.brreg.read().unwrap();
        let mut missing = Vec::new();
        for unit in units.units.iter().filter(|u| u.address.street.is_some()) {
            let a = &unit.address;
            let text = format!(
                "{} {}{}",
                a.street.as_deref().unwrap(),
                a.number,
                a.letter.map(String::from).unwrap_or_default()
            );
            if !street.contains(&(a.kommune.clone(), text.clone())) {
                missing.push(text);
            }
        }
        missing
    };
    assert!(
        missing.is_empty(),
        "business addresses not in the file: {:?}",
        &missing[..missing.len().min(5)]
    );
    // Ids are derived from the address: the same in the next download.
    let again = download(&url).await;
    let again: HashSet<&str> = again.iter().map(|a| a.address_id.as_str()).collect();
    assert_eq!(again.len(), ids.len());
    assert!(ids.iter().all(|id| again.contains(id)), "stable ids");
    stop.cancel();
}
