//! How the lake's data files are written: one set of Parquet writer properties per table, used
//! by every writer (appends, the copy-on-write rewrite, maintenance), so a file reads the same
//! whichever wrote it. Only the compression differs: the files the worker writes, which the
//! next commit may rewrite, are Snappy (fast to write); maintenance's, which stay, are zstd
//! (about a fifth smaller, written off the worker's path).
//!
//! A dictionary is kept for the columns whose values repeat (municipality, status, names,
//! dates, positions) and left out for identifiers (the key and every `*_id` column): their
//! values are (nearly) all different, so a dictionary saves nothing on disk while interning
//! every value into it was the largest single cost of a rewrite (a fifth of its time, measured
//! with `perf`). Page statistics stay on for every column, so a reader skips pages as well as
//! files.

use arrow::datatypes::DataType;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use schemas::tables::Table;

/// How long a file is expected to stay as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// By the worker: appended or rewritten, and likely rewritten again by a later commit.
    Often,
    /// By maintenance: compacted files, read many times before they are rewritten.
    ToStay,
}

/// The Parquet writer properties of `table`'s data files.
pub fn writer_properties(table: &Table, written: Written) -> WriterProperties {
    let compression = match written {
        Written::Often => Compression::SNAPPY,
        Written::ToStay => Compression::ZSTD(ZstdLevel::try_new(4).expect("a valid zstd level")),
    };
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("regsync version {}", env!("CARGO_PKG_VERSION")))
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Page);
    for name in identifier_columns(table) {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    builder.build()
}

/// The text columns holding identifiers: the key's and those named `*_id`.
fn identifier_columns(table: &Table) -> impl Iterator<Item = &str> {
    table
        .schema
        .fields()
        .iter()
        .filter(|f| f.data_type() == &DataType::Utf8)
        .map(|f| f.name().as_str())
        .filter(|name| table.key.contains(name) || name.ends_with("_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_written_without_a_dictionary_and_repeated_values_with_one() {
        let person = &schemas::tables::PERSON;
        let props = writer_properties(person, Written::Often);
        for plain in [
            "person_id",
            "mother_id",
            "spouse_id",
            "matrikkel_address_id",
        ] {
            assert!(
                !props.dictionary_enabled(&ColumnPath::from(plain)),
                "{plain}"
            );
        }
        for repeated in ["municipality_number", "status", "given_name", "birth_date"] {
            assert!(
                props.dictionary_enabled(&ColumnPath::from(repeated)),
                "{repeated}"
            );
        }
        assert_eq!(
            props.statistics_enabled(&ColumnPath::from("municipality_number")),
            EnabledStatistics::Page
        );
        let column = ColumnPath::from("status");
        assert_eq!(props.compression(&column), Compression::SNAPPY);
        let kept = writer_properties(person, Written::ToStay);
        assert!(matches!(kept.compression(&column), Compression::ZSTD(_)));
        assert!(!kept.dictionary_enabled(&ColumnPath::from("person_id")));
    }
}
