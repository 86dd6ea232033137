//! The crate's one error type.

/// How a caller should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Trying again later may succeed.
    Retryable,
    /// The record is bad: route it to the dead-letter table and go on.
    BadData,
    /// Nothing will make this work without a change of code or configuration.
    Fatal,
}

/// What went wrong while normalising or encoding.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// A document is not JSON, or not the shape expected.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read (e.g. "person document").
        what: &'static str,
        /// Why it could not be read.
        reason: String,
    },
    /// An identity number fails its format or check digits.
    #[error("invalid identity number {id:?}: {reason}")]
    InvalidIdentifier {
        /// The number as given.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A field the canonical model needs is missing.
    #[error("person {person_id}: missing {field}")]
    MissingField {
        /// The person's identity number.
        person_id: String,
        /// The register field that is missing.
        field: &'static str,
    },
    /// A plan was asked for a table its register does not write (a bug).
    #[error("the {register} register does not write table {table}")]
    NotWritten {
        /// The register.
        register: &'static str,
        /// The table asked for.
        table: &'static str,
    },
    /// Building an Arrow batch failed (a bug: the rows and schema disagree).
    #[error("encoding {table}: {source}")]
    Encode {
        /// The table being encoded.
        table: &'static str,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
}

impl TransformError {
    /// The register element the error is about, for a dead letter.
    pub fn element(&self) -> Option<&'static str> {
        match self {
            Self::Malformed { what, .. } => Some(what),
            Self::InvalidIdentifier { .. } => Some("identifikasjonsnummer"),
            Self::MissingField { field, .. } => Some(field),
            Self::Encode { .. } | Self::NotWritten { .. } => None,
        }
    }

    /// How a caller should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed { .. } | Self::InvalidIdentifier { .. } | Self::MissingField { .. } => {
                ErrorKind::BadData
            }
            Self::Encode { .. } | Self::NotWritten { .. } => ErrorKind::Fatal,
        }
    }
}
