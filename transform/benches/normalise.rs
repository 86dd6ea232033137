//! The kernels of the pipeline, per record: parsing and normalising person documents, encoding
//! them as Arrow rows, writing those as Parquet (zstd, as the lake does), and checking identity
//! numbers. `cargo bench -p transform`; the whole pipeline is measured by `benches/national.sh`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transform::freg::{normalise, versions};
use transform::json::Doc;
use transform::{Person, encode};

const DOC: &str = include_str!("../tests/fixtures/freg/person-vegadresse-history.json");

fn bench(c: &mut Criterion) {
    let raw: Vec<u8> = DOC.as_bytes().to_vec();
    let mut group = c.benchmark_group("person");
    group.throughput(Throughput::Elements(1));
    // As the pipeline reads a document: borrowed from the answer's bytes.
    group.bench_function("parse+normalise+versions", |b| {
        b.iter(|| {
            let doc = Doc::parse(black_box(&raw)).unwrap();
            let p = normalise(&doc, None).unwrap();
            black_box(versions::from_document(&p, &doc, 1))
        })
    });
    // The same through an owned `serde_json::Value`, for comparison.
    group.bench_function("parse+normalise+versions (serde_json::Value)", |b| {
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
    let batch = encode::persons(&rows, now).unwrap();
    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("write persons x10000 (zstd)", |b| {
        b.iter(|| {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut out = Vec::with_capacity(1 << 20);
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
                .unwrap();
            w.write(black_box(&batch)).unwrap();
            w.close().unwrap();
            black_box(out.len())
        })
    });
    group.finish();
    // Identity numbers: valid ones of both kinds and ones with a wrong check digit.
    let ids: Vec<String> = (0..1000u32)
        .map(|i| {
            format!(
                "{:02}{:02}{:02}{:05}",
                1 + i % 28,
                1 + i % 12,
                i % 100,
                i * 7
            )
        })
        .collect();
    let mut group = c.benchmark_group("ident");
    group.throughput(Throughput::Elements(ids.len() as u64));
    group.bench_function("validate x1000", |b| {
        b.iter(|| {
            ids.iter()
                .filter(|id| transform::ident::validate(black_box(id)).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
