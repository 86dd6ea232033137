//! Reading fields of register JSON documents the same way for every register: text that may
//! come as a number, fixed-width codes that lost their leading zeros, dates and timestamps.

use chrono::{DateTime, NaiveDate, Utc};

use crate::json::Node;

/// A string field; numbers are accepted as text (registers are not consistent).
pub fn text<N: Node>(v: &N, field: &str) -> Option<String> {
    let v = v.get(field)?;
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => None,
        None => v.as_number().map(ToString::to_string),
    }
}

/// A fixed-width numeric code (kommunenummer, postnummer: 4 digits). The register sends text;
/// a number, or text that lost its leading zeros on the way (`301`), is padded back (`0301`)
/// instead of becoming another code; at most two zeros are restored (`0` stays `0`, not a code
/// that does not exist). Anything else is kept as given.
pub fn code<N: Node>(v: &N, field: &str, width: usize) -> Option<String> {
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
pub fn date<N: Node>(v: &N, field: &str) -> Option<NaiveDate> {
    let s = text(v, field)?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// An RFC 3339 timestamp, in UTC.
pub fn timestamp<N: Node>(v: &N, field: &str) -> Option<DateTime<Utc>> {
    let s = text(v, field)?;
    DateTime::parse_from_rfc3339(&s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A whole number; text holding one is accepted (registers are not consistent).
pub fn integer<N: Node>(v: &N, field: &str) -> Option<i64> {
    let v = v.get(field)?;
    match v.as_number() {
        Some(n) => n.as_i64(),
        None => v.as_str()?.trim().parse().ok(),
    }
}
