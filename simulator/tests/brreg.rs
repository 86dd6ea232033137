//! The business register over HTTP: both updates lists page through every id once and in
//! order, every unit they name is served in the register's shapes (valid organisation numbers,
//! documents that normalise); once deleted it is left out of batch lookups and answered alone
//! with its `slettedato`, once removed answered 410 and left out of batch lookups.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use simulator::Config;
use simulator::brreg::FIRST_UPDATE_ID;
use simulator::brreg_http::BRREG_BASE;
use tokio_util::sync::CancellationToken;
use transform::brreg::{ChangeType, UnitKind, normalise, read_updates};

#[tokio::test]
async fn both_lists_give_every_update_once_and_every_unit_in_the_registers_shapes() {
    let stop = CancellationToken::new();
    let config = Config {
        persons: 2000,
        seed: 11,
        events_per_sec: 400.0,
        max_events: Some(400),
        ..Config::default()
    };
    let running = simulator::start(config, "127.0.0.1:0", stop.clone())
        .await
        .unwrap();
    for _ in 0..600 {
        if running.shared.world.read().unwrap().head() >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base = format!("{}{BRREG_BASE}", running.url());
    let http = reqwest::Client::new();
    for (list, kind) in [
        ("enheter", UnitKind::Enhet),
        ("underenheter", UnitKind::Underenhet),
    ] {
        // Page through the list from its first id, 97 at a time, as a follower would.
        let mut next = FIRST_UPDATE_ID;
        let mut last: HashMap<String, ChangeType> = HashMap::new();
        let mut seen = 0;
        loop {
            let body = http
                .get(format!(
                    "{base}/oppdateringer/{list}?oppdateringsid={next}&size=97"
                ))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let page = read_updates(&body, kind).unwrap();
            assert!(page.unplaced.is_empty());
            if page.updates.is_empty() {
                break;
            }
            for u in &page.updates {
                assert_eq!(u.id, next, "{list}: ids in order, none skipped");
                assert!(u.rejected.is_none(), "{list}: {u:?}");
                next += 1;
                seen += 1;
                last.insert(u.organization_number.clone(), u.change.clone());
            }
        }
        assert!(seen > 50, "{list}: {seen} updates");
        assert!(last.values().any(|c| *c == ChangeType::Removed) || list == "underenheter");
        // Every unit named is served, or left to be read alone once deleted or removed.
        let numbers: Vec<&String> = last.keys().collect();
        let mut served = 0;
        for chunk in numbers.chunks(100) {
            let joined: Vec<&str> = chunk.iter().map(|n| n.as_str()).collect();
            let page: serde_json::Value = http
                .get(format!(
                    "{base}/{list}?organisasjonsnummer={}&size=100",
                    joined.join(",")
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for doc in page["_embedded"][list].as_array().into_iter().flatten() {
                let unit = normalise(doc, kind).unwrap();
                assert!(
                    !matches!(
                        last[&unit.organization_number],
                        ChangeType::Removed | ChangeType::Deleted
                    ),
                    "a removed or deleted unit is not served"
                );
                assert!(unit.municipality_number.is_some(), "{doc}");
                if kind == UnitKind::Underenhet {
                    assert!(unit.parent_organization_number.is_some());
                }
                served += 1;
            }
        }
        let removed: Vec<&&String> = numbers
            .iter()
            .filter(|n| last[**n] == ChangeType::Removed)
            .collect();
        let deleted: Vec<&&String> = numbers
            .iter()
            .filter(|n| last[**n] == ChangeType::Deleted)
            .collect();
        assert_eq!(
            served + removed.len() + deleted.len(),
            numbers.len(),
            "{list}"
        );
        if let Some(number) = deleted.first() {
            let response = http
                .get(format!("{base}/{list}/{number}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let doc: serde_json::Value = response.json().await.unwrap();
            let unit = normalise(&doc, kind).unwrap();
            assert!(unit.deleted_date.is_some(), "{doc}");
        }
        if let Some(gone) = removed.first() {
            let status = http
                .get(format!("{base}/{list}/{gone}"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::GONE);
        }
    }
    // Past the head: a page without `_embedded`; a page too large is refused.
    let empty = http
        .get(format!(
            "{base}/oppdateringer/enheter?oppdateringsid=999999999"
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&empty).contains("_embedded"));
    assert!(
        read_updates(&empty, UnitKind::Enhet)
            .unwrap()
            .updates
            .is_empty()
    );
    let refused = http
        .get(format!("{base}/oppdateringer/enheter?size=10001"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    stop.cancel();
}
