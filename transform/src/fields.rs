//! Reading fields of register JSON documents the same way for every register: text that may
//! come as a number, fixed-width codes that lost their leading zeros, dates and timestamps.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// A string field; numbers are accepted as text (registers are not consistent).
pub fn text(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A fixed-width numeric code (kommunenummer, postnummer: 4 digits). The register sends text;
/// a number, or text that lost its leading zeros on the way (`301`), is padded back (`0301`)
/// instead of becoming another code; at most two zeros are restored (`0` stays `0`, not a code
/// that does not exist). Anything else is kept as given.
pub fn code(v: &Value, field: &str, width: usize) -> Option<String> {
    let raw = text(v, field)?;
    if (width.saturating_sub(2)..width).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_digit())
    {
        Some(format!("{raw:0>width$}"))
    } else {
        Some(raw)
    }
}

/// A date (`yyyy-MM-dd`, anything after the tenth character ignored).
pub fn date(v: &Value, field: &str) -> Option<NaiveDate> {
    let s = text(v, field)?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// An RFC 3339 timestamp, in UTC.
pub fn timestamp(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    let s = text(v, field)?;
    DateTime::parse_from_rfc3339(&s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A whole number; text holding one is accepted (registers are not consistent).
pub fn integer(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
