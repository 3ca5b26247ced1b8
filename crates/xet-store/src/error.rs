//! The crate's one error type.

use std::path::PathBuf;

use xet_format::MerkleHash;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a [`Store`](crate::Store) call can fail with.
///
/// Variants are named for what the caller can do about them; [`Error::kind`] sorts
/// them into the few classes an HTTP layer needs (one status code each).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object asked for is not stored.
    #[error("{what} {hash} not found: upload it first, or check the hash")]
    NotFound {
        /// `xorb`, `file`, `chunk`, `shard`.
        what: &'static str,
        /// Its hash.
        hash: MerkleHash,
    },
    /// An uploaded xorb was rejected: bad bytes, wrong hash, or over the limits.
    #[error("xorb {hash} rejected: {source}")]
    InvalidXorb {
        /// The hash the client claimed.
        hash: MerkleHash,
        /// What the decoder found.
        source: xet_format::Error,
    },
    /// An uploaded shard was rejected: bad bytes or content that breaks the rules.
    #[error("shard rejected: {source}")]
    InvalidShard {
        /// What the decoder or the verification found.
        source: xet_format::Error,
    },
    /// A shard references a xorb that is not stored (§10.6: upload xorbs first).
    #[error("shard rejected: it references xorb {xorb} ({what}), which is not stored; upload the xorb before the shard")]
    MissingXorb {
        /// The missing xorb.
        xorb: MerkleHash,
        /// Where the shard references it.
        what: String,
    },
    /// A body is larger than the protocol allows.
    #[error("{what} is {actual} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// A direct (presigned) xorb upload is not what its grant was for: another
    /// length or CRC-64/NVME. The staged bytes were deleted.
    #[error("staged upload of xorb {hash} has {what} {actual}, the grant was for {granted}: PUT exactly the granted bytes, or ask for a new grant")]
    UploadMismatch {
        /// The xorb the grant was for.
        hash: MerkleHash,
        /// `length` or `CRC-64/NVME`.
        what: &'static str,
        /// What the grant said.
        granted: u64,
        /// What was staged.
        actual: u64,
    },
    /// A byte range starts at or past the end of the object.
    #[error("range starting at byte {start} is past the end of {what} ({len} bytes)")]
    RangeNotSatisfiable {
        /// `file` or `xorb`.
        what: &'static str,
        /// Requested start.
        start: u64,
        /// The object's length.
        len: u64,
    },
    /// A request is malformed in a way the caller can fix (reversed range, ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A stored object does not decode: the store is damaged (never caused by a client).
    #[error("stored object {key} is corrupt: {reason}; restore it from a backup or delete it")]
    Corrupt {
        /// The object's key in the backend.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The object store backend (S3) failed or refused a request.
    #[error("object store: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
    },
    /// The store configuration is unusable.
    #[error("store configuration: {0}")]
    Config(String),
}

/// The classes of [`Error`] an HTTP layer maps to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404.
    NotFound,
    /// 400: the request or its body is wrong.
    BadInput,
    /// 413.
    TooLarge,
    /// 416.
    RangeNotSatisfiable,
    /// 503: the backend is unavailable; retrying may succeed.
    Unavailable,
    /// 500: a server-side fault.
    Internal,
}

impl Error {
    /// Which class the error falls into.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidXorb { source, .. } if is_limit(source) => ErrorKind::TooLarge,
            Error::InvalidXorb { .. }
            | Error::InvalidShard { .. }
            | Error::MissingXorb { .. }
            | Error::UploadMismatch { .. } => ErrorKind::BadInput,
            Error::BadRequest(_) => ErrorKind::BadInput,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::RangeNotSatisfiable { .. } => ErrorKind::RangeNotSatisfiable,
            Error::Backend { retryable: true, .. } => ErrorKind::Unavailable,
            Error::Corrupt { .. } | Error::Io { .. } | Error::Backend { .. } | Error::Config(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// Whether the object asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Whether the caller sent something wrong (any 4xx class).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::NotFound | ErrorKind::BadInput | ErrorKind::TooLarge | ErrorKind::RangeNotSatisfiable
        )
    }

    /// Whether the store knows the same call may succeed later (its backend is
    /// unavailable). Narrower than what a client may retry: the server's routes go by
    /// the status class, and every non-client error (5xx) is worth another try there.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

fn is_limit(e: &xet_format::Error) -> bool {
    matches!(e, xet_format::Error::LimitExceeded { .. })
}
