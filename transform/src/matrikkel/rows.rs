//! Addresses to Arrow batches in the property tables' schemas ([`schemas::property`]), and the
//! plan of a chunk of the address file: its addresses as current state and as versions, its
//! unreadable lines to `dead_letter`. Pure.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use schemas::property::{ADDRESS, ADDRESS_HISTORY};
use schemas::tables::Table;

use super::addresses::Address;
use crate::TransformError;
use crate::change::{Change, Plan, dead_letters_or_refused};
use crate::encode::{batch, micros};
use crate::model::DeadLetter;

fn address_columns<'a>(rows: &[&'a Address]) -> Vec<ArrayRef> {
    let s = |f: fn(&'a Address) -> Option<&'a str>| -> ArrayRef {
        Arc::new(rows.iter().map(|a| f(a)).collect::<StringArray>())
    };
    let i = |f: fn(&Address) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(|a| f(a)).collect::<Int64Array>())
    };
    let x = |f: fn(&Address) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(|a| f(a)).collect::<Float64Array>())
    };
    vec![
        s(|a| Some(a.address_id.as_str())),
        s(|a| a.local_id.as_deref()),
        s(|a| Some(a.municipality_number.as_str())),
        s(|a| a.municipality_name.as_deref()),
        s(|a| a.address_type.as_deref()),
        i(|a| a.street_code),
        s(|a| a.street_name.as_deref()),
        s(|a| a.house_number.as_deref()),
        s(|a| a.house_letter.as_deref()),
        i(|a| a.gnr),
        i(|a| a.bnr),
        i(|a| a.fnr),
        i(|a| a.snr),
        s(|a| a.address_text.as_deref()),
        s(|a| a.postal_code.as_deref()),
        s(|a| a.postal_place.as_deref()),
        i(|a| a.epsg),
        x(|a| a.north),
        x(|a| a.east),
        Arc::new(
            rows.iter()
                .map(|a| a.updated_local.map(|t| t.and_utc().timestamp_micros()))
                .collect::<TimestampMicrosecondArray>(),
        ),
    ]
}

/// Rows of `address`: each address with the change that produced it (0: the bulk file).
pub fn addresses(
    rows: &[(&Address, i64)],
    updated_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&Address> = rows.iter().map(|(a, _)| *a).collect();
    let mut columns = address_columns(&list);
    columns.push(Arc::new(
        rows.iter().map(|(_, id)| Some(*id)).collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|_| Some(updated_at))));
    batch(&ADDRESS, columns)
}

/// A version of an address.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressVersion<'a> {
    /// The address's state.
    pub address: &'a Address,
    /// The change that produced it (0: the bulk file).
    pub change_id: i64,
    /// From when.
    pub valid_from: DateTime<Utc>,
    /// Until when (`None`: current).
    pub valid_to: Option<DateTime<Utc>>,
}

/// Rows of `address_history`.
pub fn versions(
    rows: &[AddressVersion<'_>],
    recorded_at: DateTime<Utc>,
) -> Result<RecordBatch, TransformError> {
    let list: Vec<&Address> = rows.iter().map(|v| v.address).collect();
    let mut columns = address_columns(&list);
    columns.push(Arc::new(
        rows.iter()
            .map(|v| Some(v.change_id))
            .collect::<Int64Array>(),
    ));
    columns.push(micros(rows.iter().map(|v| Some(v.valid_from))));
    columns.push(micros(rows.iter().map(|v| v.valid_to)));
    columns.push(micros(rows.iter().map(|_| Some(recorded_at))));
    batch(&ADDRESS_HISTORY, columns)
}

/// A chunk of the address file, planned: every readable address becomes its current state and
/// an open version from the file's time, unless the table holds it already (a seed going on
/// after a stop); an unreadable line goes to `dead_letter`.
#[derive(Debug, Default)]
pub struct FilePlan {
    /// Addresses for `address`.
    pub current: Vec<Address>,
    /// Addresses for `address_history`.
    pub versions: Vec<Address>,
    /// The time the file's versions are valid from.
    pub taken_at: DateTime<Utc>,
    /// Lines that could not be read.
    pub dead_letters: Vec<DeadLetter>,
}

impl FilePlan {
    /// Adds a line's outcome: its address, or why it could not be read (`line` is its line
    /// number in the file); `held` says whether `address` and `address_history` hold the
    /// address already.
    pub fn take(
        &mut self,
        line: u64,
        read: Result<Address, TransformError>,
        held: impl Fn(&str) -> (bool, bool),
    ) {
        match read {
            Ok(address) => {
                let (in_current, in_history) = held(&address.address_id);
                if !in_history {
                    self.versions.push(address.clone());
                }
                if !in_current {
                    self.current.push(address);
                }
            }
            Err(e) => self.dead_letters.push(DeadLetter {
                source: "matrikkel.adresser".into(),
                cursor: format!("line {line}"),
                record_id: None,
                reason: e.to_string(),
                replay: crate::freg::batch::replay(&[("line", Some(&line.to_string()))]),
            }),
        }
    }

    /// Lines it writes or rejects.
    pub fn lines(&self) -> usize {
        self.current.len().max(self.versions.len()) + self.dead_letters.len()
    }
}

impl Plan for FilePlan {
    fn changes(
        &self,
        table: &'static Table,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, TransformError> {
        if std::ptr::eq(table, &*ADDRESS) {
            let rows: Vec<(&Address, i64)> = self.current.iter().map(|a| (a, 0)).collect();
            Ok(vec![Change::Append(addresses(&rows, now)?)])
        } else if std::ptr::eq(table, &*ADDRESS_HISTORY) {
            let rows: Vec<AddressVersion> = self
                .versions
                .iter()
                .map(|address| AddressVersion {
                    address,
                    change_id: 0,
                    valid_from: self.taken_at,
                    valid_to: None,
                })
                .collect();
            Ok(vec![Change::Append(versions(&rows, now)?)])
        } else {
            dead_letters_or_refused("matrikkel", table, &self.dead_letters, now)
        }
    }

    fn entities(&self) -> usize {
        self.current.len()
    }

    fn dead_letters(&self) -> usize {
        self.dead_letters.len()
    }
}
