//! Choices where the real register's answers vary between deployments or over time: what a
//! request for deleted feed entries gets, and which arrays extract batches carry.

/// What a feed request gets when it asks for entries older than the register keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpiredFeed {
    /// HTTP 406 with the register's error body, as the register documents.
    #[default]
    NotAcceptable,
    /// HTTP 200 with the page from the oldest entry still kept, as a register whose old entries
    /// are simply deleted answers: the sequence numbers start later than asked.
    Gone,
}

/// Which of the two arrays an extract batch carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExtractIds {
    /// Both `foedselsEllerDNummer` and `dokumentidentifikator`.
    #[default]
    Both,
    /// Only `foedselsEllerDNummer`: the client must look the persons up by id.
    Ids,
    /// Only `dokumentidentifikator`: the client must look the documents up in the archive.
    Documents,
}

impl ExtractIds {
    /// Whether batches carry `foedselsEllerDNummer`.
    pub fn ids(self) -> bool {
        matches!(self, Self::Both | Self::Ids)
    }

    /// Whether batches carry `dokumentidentifikator`.
    pub fn documents(self) -> bool {
        matches!(self, Self::Both | Self::Documents)
    }
}
