//! Citizen lists (`innbyggerlister`): everyone of a kommune born in a date range, with a status,
//! now or on a date, sorted by birth date.

use std::io::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use schemas::tables::protection::UNGRADED;

use crate::QueryError;

/// Output formats of a citizen list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// A spreadsheet with a header row and date cells.
    Xlsx,
    /// Parquet.
    Parquet,
}

/// A citizen-list question.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// Kommunenummer of residence.
    pub municipality: String,
    /// Born on or after.
    pub born_from: NaiveDate,
    /// Born on or before.
    pub born_to: NaiveDate,
    /// Status (`bosatt`), or any.
    pub status: Option<String>,
    /// Answer from history: who lived there on this date.
    pub as_of: Option<NaiveDate>,
}

/// The list's columns, in order.
pub const COLUMNS: &[&str] = &[
    "person_id",
    "given_name",
    "middle_name",
    "family_name",
    "birth_date",
    "sex",
    "street_name",
    "house_number",
    "house_letter",
    "postal_code",
    "postal_place",
    "municipality_number",
];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Cohort {
    /// The SQL: address columns are emptied for every protected person.
    pub fn sql(&self) -> Result<String, QueryError> {
        if self.municipality.len() != 4 || !self.municipality.chars().all(|c| c.is_ascii_digit()) {
            return Err(QueryError::Argument(format!(
                "--municipality {:?}: a kommunenummer has four digits",
                self.municipality
            )));
        }
        if self.born_from > self.born_to {
            return Err(QueryError::Argument(format!(
                "--born-from {} is after --born-to {}",
                self.born_from, self.born_to
            )));
        }
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|c| match *c {
                "person_id" | "given_name" | "middle_name" | "family_name" | "birth_date"
                | "sex" => c.to_string(),
                _ => format!(
                    "CASE WHEN address_protection = {} THEN {c} END AS {c}",
                    quote(UNGRADED)
                ),
            })
            .collect();
        let (from, to) = (self.born_from, self.born_to);
        let mut filters = vec![
            format!("municipality_number = {}", quote(&self.municipality)),
            format!(
                "birth_date BETWEEN DATE {} AND DATE {}",
                quote(&from.to_string()),
                quote(&to.to_string())
            ),
            // Prunes to the birth-year partitions.
            format!(
                "birth_year BETWEEN {} AND {}",
                chrono::Datelike::year(&from),
                chrono::Datelike::year(&to)
            ),
        ];
        if let Some(status) = &self.status {
            filters.push(format!("status = {}", quote(status)));
        }
        let table = match self.as_of {
            None => "person",
            Some(day) => {
                let end = day.succ_opt().unwrap_or(day);
                filters.push(format!(
                    "valid_from < TIMESTAMP {}",
                    quote(&format!("{end}T00:00:00Z"))
                ));
                filters.push(format!(
                    "(valid_to IS NULL OR valid_to >= TIMESTAMP {})",
                    quote(&format!("{end}T00:00:00Z"))
                ));
                "person_history"
            }
        };
        Ok(format!(
            "SELECT {} FROM {table} WHERE {} ORDER BY birth_date, person_id",
            columns.join(", "),
            filters.join(" AND ")
        ))
    }

    /// Runs the list.
    pub async fn run(&self, ctx: &SessionContext) -> Result<Vec<RecordBatch>, QueryError> {
        let sql = self.sql()?;
        tracing::debug!(%sql, "citizen list");
        Ok(ctx.sql(&sql).await?.collect().await?)
    }
}

/// Writes a list in a format.
pub fn write(
    batches: &[RecordBatch],
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<(), QueryError> {
    match format {
        Format::Csv => crate::sql::write(batches, crate::sql::Format::Csv, out),
        Format::Parquet => {
            let err = |e: parquet::errors::ParquetError| QueryError::Output {
                format: "parquet",
                reason: e.to_string(),
            };
            let schema =
                batches
                    .first()
                    .map(RecordBatch::schema)
                    .ok_or_else(|| QueryError::Output {
                        format: "parquet",
                        reason: "no schema".into(),
                    })?;
            let mut w = parquet::arrow::ArrowWriter::try_new(out, schema, None).map_err(err)?;
            for b in batches {
                w.write(b).map_err(err)?;
            }
            w.close().map_err(err)?;
            Ok(())
        }
        Format::Xlsx => write_xlsx(batches, out),
    }
}

fn write_xlsx(batches: &[RecordBatch], out: &mut dyn Write) -> Result<(), QueryError> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| QueryError::Output {
        format: "xlsx",
        reason: e.to_string(),
    };
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Innbyggerliste").map_err(err)?;
    let bold = CellFormat::new().set_bold();
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    for (c, name) in COLUMNS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *name, &bold)
            .map_err(err)?;
    }
    let mut row = 1u32;
    for b in batches {
        for r in 0..b.num_rows() {
            for (c, column) in b.columns().iter().enumerate() {
                if column.is_null(r) {
                    continue;
                }
                match column.data_type() {
                    DataType::Date32 => {
                        let day = column.as_primitive::<Date32Type>().value(r);
                        let d =
                            NaiveDate::from_num_days_from_ce_opt(day + 719_163).unwrap_or_default();
                        let x = rust_xlsxwriter::ExcelDateTime::from_ymd(
                            chrono::Datelike::year(&d) as u16,
                            chrono::Datelike::month(&d) as u8,
                            chrono::Datelike::day(&d) as u8,
                        )
                        .map_err(err)?;
                        sheet
                            .write_datetime_with_format(row, c as u16, &x, &date)
                            .map_err(err)?;
                    }
                    _ => {
                        let text = arrow::util::display::array_value_to_string(column, r)
                            .unwrap_or_default();
                        sheet.write_string(row, c as u16, &text).map_err(err)?;
                    }
                }
            }
            row += 1;
        }
    }
    sheet.autofit();
    let bytes = book.save_to_buffer().map_err(err)?;
    out.write_all(&bytes).map_err(|e| QueryError::Output {
        format: "xlsx",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort() -> Cohort {
        Cohort {
            municipality: "5035".into(),
            born_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            born_to: NaiveDate::from_ymd_opt(2019, 12, 31).unwrap(),
            status: Some("bosatt".into()),
            as_of: None,
        }
    }

    #[test]
    fn addresses_are_withheld_for_protected_persons() {
        let sql = cohort().sql().unwrap();
        assert!(
            sql.contains("CASE WHEN address_protection = 'ugradert' THEN street_name END"),
            "{sql}"
        );
        assert!(
            sql.contains("birth_year BETWEEN 2019 AND 2019"),
            "partition pruning: {sql}"
        );
        assert!(sql.starts_with("SELECT person_id") && sql.contains("FROM person WHERE"));
    }

    #[test]
    fn as_of_reads_history() {
        let sql = Cohort {
            as_of: NaiveDate::from_ymd_opt(2024, 6, 1),
            ..cohort()
        }
        .sql()
        .unwrap();
        assert!(
            sql.contains("FROM person_history") && sql.contains("2024-06-02T00:00:00Z"),
            "{sql}"
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let bad = Cohort {
            municipality: "50; DROP".into(),
            ..cohort()
        }
        .sql()
        .unwrap_err();
        assert!(bad.to_string().contains("--municipality"), "{bad}");
        let reversed = Cohort {
            born_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            ..cohort()
        }
        .sql()
        .unwrap_err();
        assert!(reversed.to_string().contains("--born-from"), "{reversed}");
        let quoted = Cohort {
            status: Some("bo'satt".into()),
            ..cohort()
        }
        .sql()
        .unwrap();
        assert!(quoted.contains("status = 'bo''satt'"), "{quoted}");
    }
}
