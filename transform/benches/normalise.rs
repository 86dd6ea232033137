//! Normalising person documents and encoding them as Arrow rows: the per-record cost of the pure
//! part of the pipeline. `cargo bench -p transform`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transform::freg::{normalise, versions};
use transform::{Person, encode};

const DOC: &str = include_str!("../tests/fixtures/freg/person-vegadresse-history.json");

fn bench(c: &mut Criterion) {
    let raw: Vec<u8> = DOC.as_bytes().to_vec();
    let mut group = c.benchmark_group("person");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse+normalise+versions", |b| {
        b.iter(|| {
            let doc: serde_json::Value = serde_json::from_slice(black_box(&raw)).unwrap();
            let p = normalise(&doc, None).unwrap();
            black_box(versions::from_document(&p, &doc, 1))
        })
    });
    group.finish();
    let doc: serde_json::Value = serde_json::from_str(DOC).unwrap();
    let person = normalise(&doc, None).unwrap();
    let rows: Vec<(Person, i64)> = (0..10_000).map(|i| (person.clone(), i)).collect();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("persons x10000", |b| {
        b.iter(|| black_box(encode::persons(black_box(&rows), now).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
