//! The crate's one error type (STYLE.md §4). The retry loop asks only
//! [`Error::is_retryable`].

use std::path::PathBuf;
use std::time::Duration;

use xet_format::MerkleHash;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an upload, a download or a CAS call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CAS does not know the file, xorb or chunk.
    #[error("{what} not found on the CAS server")]
    NotFound {
        /// What was looked up, e.g. `file 4e39…`.
        what: String,
    },
    /// A byte range starts at or after the end of the file (HTTP 416).
    #[error("byte range starting at {start} is past the end of file {file}")]
    RangeNotSatisfiable {
        /// The file.
        file: MerkleHash,
        /// First byte asked for.
        start: u64,
    },
    /// The server refused the credentials even after a token refresh (401), or the
    /// token lacks the scope (403).
    #[error("{op}: not authorized (HTTP {status}): {message}; check the token and its scope (uploads need a write token)")]
    Unauthorized {
        /// The operation.
        op: String,
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server rejected the request for good (4xx other than 401/403/404/408/429).
    #[error("{op}: rejected by the server (HTTP {status}): {message}")]
    Rejected {
        /// The operation.
        op: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server failed or asked us to slow down (5xx, 408, 429); worth retrying.
    #[error("{op}: server error (HTTP {status}): {message}")]
    Server {
        /// The operation.
        op: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The connection failed (refused, reset, TLS, DNS, timeout).
    #[error("{op}: connection failed: {source}; is the server at the endpoint running and reachable?")]
    Connection {
        /// The operation.
        op: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No byte arrived for the stall timeout (the watchdog fired).
    #[error("{op}: no progress for {secs} s (stalled server or network); gave up")]
    Stalled {
        /// The operation.
        op: String,
        /// The stall timeout in seconds, rounded up.
        secs: u64,
    },
    /// Data from the server or a cache failed validation: truncated body, bad
    /// chunk, hash or length mismatch. Retrying refetches it.
    #[error("corrupt data: {what}")]
    Corrupt {
        /// What did not check out.
        what: String,
    },
    /// The file is not the size the caller gave with its hash (a whole-file download
    /// with an expected size); found from the reconstruction, before any data is
    /// fetched or written.
    #[error("file {file} has {actual} bytes, not the {expected} given; check the size passed with the hash")]
    SizeMismatch {
        /// The file.
        file: MerkleHash,
        /// The size the caller gave.
        expected: u64,
        /// The size of the file on the server.
        actual: u64,
    },
    /// The server answered something this client does not understand.
    #[error("{op}: unexpected answer from the server: {message}")]
    Protocol {
        /// The operation.
        op: String,
        /// What was wrong.
        message: String,
    },
    /// A byte-format error from `xet-format` (our own data or a decoder's verdict).
    #[error(transparent)]
    Format(#[from] xet_format::Error),
    /// A local file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing, e.g. `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Getting a CAS token from the refresher failed.
    #[error("getting a CAS token failed: {message}")]
    Token {
        /// Why.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// The caller cancelled the transfer.
    #[error("transfer cancelled")]
    Cancelled,
    /// The configuration or arguments are unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether trying the same operation again may succeed: connection errors,
    /// stalls, 5xx/408/429 answers and corrupt data (§10.5; §9.4 treats decode errors
    /// as retryable).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connection { .. }
            | Error::Stalled { .. }
            | Error::Server { .. }
            | Error::Corrupt { .. } => true,
            Error::Token { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Adds `context` to the operation a CAS error names (`op (context)`), or to what
    /// did not check out for corrupt data, e.g. which files a failed xorb upload held
    /// data of; other errors come back unchanged.
    pub(crate) fn in_context(mut self, context: &str) -> Self {
        match &mut self {
            Error::Unauthorized { op, .. }
            | Error::Rejected { op, .. }
            | Error::Server { op, .. }
            | Error::Connection { op, .. }
            | Error::Stalled { op, .. }
            | Error::Protocol { op, .. }
            | Error::Corrupt { what: op } => {
                op.push_str(" (");
                op.push_str(context);
                op.push(')');
            }
            _ => {}
        }
        self
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Error::Corrupt { what: what.into() }
    }

    pub(crate) fn protocol(op: &str, message: impl Into<String>) -> Self {
        Error::Protocol {
            op: op.to_string(),
            message: message.into(),
        }
    }
}
