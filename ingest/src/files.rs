//! How the lake's data files are written: one set of Parquet writer properties per table, used
//! by every writer (appends, the copy-on-write rewrite, maintenance), so a file reads the same
//! whichever wrote it.
//!
//! A dictionary is kept for the columns whose values repeat (municipality, status, names,
//! dates, positions) and left out for identifiers (the key and every `*_id` column): their
//! values are (nearly) all different, so a dictionary saves nothing on disk while interning
//! every value into it was the largest single cost of a rewrite (a fifth of its time, measured
//! with `perf`). Page statistics stay on for every column, so a reader skips pages as well as
//! files.

use arrow::datatypes::DataType;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use schemas::tables::Table;

/// The Parquet writer properties of `table`'s data files.
pub fn writer_properties(table: &Table) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("regsync {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
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
        let props = writer_properties(person);
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
    }
}
