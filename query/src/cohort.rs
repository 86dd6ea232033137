//! Citizen lists (`innbyggerlister`): everyone of a kommune born in a date range, with a status,
//! now or on a date, sorted by birth date.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

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
        // From history, a version's address is printed only if the person is unprotected both
        // then and now: protection is judged by the person's current state (the lake's
        // `person`), and a person missing there is treated as protected.
        let open = quote(UNGRADED);
        let (source, withheld_unless) = match self.as_of {
            None => (
                "person t".to_owned(),
                format!("t.address_protection = {open}"),
            ),
            Some(_) => (
                "person_history t LEFT JOIN person now ON now.person_id = t.person_id".to_owned(),
                format!("t.address_protection = {open} AND now.address_protection = {open}"),
            ),
        };
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|c| match *c {
                "person_id" | "given_name" | "middle_name" | "family_name" | "birth_date"
                | "sex" => format!("t.{c} AS {c}"),
                _ => format!("CASE WHEN {withheld_unless} THEN t.{c} END AS {c}"),
            })
            .collect();
        let (from, to) = (self.born_from, self.born_to);
        let mut filters = vec![
            format!("t.municipality_number = {}", quote(&self.municipality)),
            format!(
                "t.birth_date BETWEEN DATE {} AND DATE {}",
                quote(&from.to_string()),
                quote(&to.to_string())
            ),
            // Prunes to the birth-year partitions.
            format!(
                "t.birth_year BETWEEN {} AND {}",
                chrono::Datelike::year(&from),
                chrono::Datelike::year(&to)
            ),
        ];
        if let Some(status) = &self.status {
            filters.push(format!("t.status = {}", quote(status)));
        }
        if let Some(day) = self.as_of {
            let end = quote(&format!("{}T00:00:00Z", day.succ_opt().unwrap_or(day)));
            filters.push(format!("t.valid_from < TIMESTAMP {end}"));
            filters.push(format!(
                "(t.valid_to IS NULL OR t.valid_to >= TIMESTAMP {end})"
            ));
        }
        Ok(format!(
            "SELECT {} FROM {source} WHERE {} ORDER BY birth_date, person_id",
            columns.join(", "),
            filters.join(" AND ")
        ))
    }

    /// Runs the list.
    pub async fn run(&self, ctx: &SessionContext) -> Result<Vec<RecordBatch>, QueryError> {
        let sql = self.sql()?;
        let started = std::time::Instant::now();
        let plan = ctx.sql(&sql).await?;
        let planned_ms = started.elapsed().as_millis() as u64;
        let batches = plan.collect().await?;
        tracing::debug!(
            %sql,
            planned_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "citizen list"
        );
        Ok(batches)
    }
}

/// Creates (or empties) a file for a citizen list that only its owner can read and write
/// (0600): the list holds personal data. A file that was already there is narrowed to 0600
/// before anything is written to it.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
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
            sql.contains("CASE WHEN t.address_protection = 'ugradert' THEN t.street_name END"),
            "{sql}"
        );
        assert!(
            sql.contains("birth_year BETWEEN 2019 AND 2019"),
            "partition pruning: {sql}"
        );
        assert!(sql.starts_with("SELECT t.person_id") && sql.contains("FROM person t WHERE"));
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
        assert!(
            sql.contains("now.address_protection = 'ugradert' THEN t.street_name"),
            "an old version's address is withheld by the person's current protection: {sql}"
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
        assert!(quoted.contains("t.status = 'bo''satt'"), "{quoted}");
    }

    #[cfg(unix)]
    #[test]
    fn list_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();

        let new = dir.path().join("new.csv");
        create_private(&new)
            .unwrap()
            .write_all(b"person_id\n")
            .unwrap();
        assert_eq!(mode(&new), 0o600);

        let old = dir.path().join("old.csv");
        std::fs::write(&old, "an older, longer list\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&old).unwrap().write_all(b"new\n").unwrap();
        assert_eq!(mode(&old), 0o600, "an existing file is narrowed too");
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "new\n");
    }
}
