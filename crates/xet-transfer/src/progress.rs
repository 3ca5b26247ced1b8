//! Progress reporting: the sessions call a [`ProgressSink`] with totals and per-file
//! updates; the CLI draws bars from them, a library user may log them or ignore them.

use std::sync::Arc;

/// One progress report. Counters are cumulative (not deltas) so a sink can simply
/// display the latest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressUpdate {
    /// A file's counters changed. A file is complete when `processed` reaches a
    /// known `total`; a download always ends with such a report.
    File {
        /// Index of the file in the session, in the order files were started.
        index: usize,
        /// The file's name as given by the caller: the path or label of an upload,
        /// the output path of a download (the file hash for `download_bytes`).
        name: String,
        /// Bytes read and chunked (upload) or written (download) so far.
        processed: u64,
        /// The file's total size (a download's: of the range asked for), when known.
        total: Option<u64>,
        /// Bytes of this file found already stored (upload only).
        deduped: u64,
        /// Bytes sent or received over the network for this file so far. A
        /// download counts the xorb bytes fetched for it (not those read from the
        /// chunk cache); an upload, its share of each stored xorb (the xorb's bytes
        /// split between the files whose new chunks it holds, by their raw sizes),
        /// so these sum to the session's `transferred`.
        transferred: u64,
    },
    /// The session's totals changed.
    Total {
        /// Bytes processed over all files.
        processed: u64,
        /// Total bytes to process, when known (a download session: Σ the sizes of
        /// the files started so far).
        total: Option<u64>,
        /// Bytes sent or received over the network so far.
        transferred: u64,
        /// Bytes found already stored and not sent (upload only).
        deduped: u64,
    },
}

/// Receives progress reports. Called from worker tasks: keep it cheap and
/// non-blocking.
pub trait ProgressSink: Send + Sync {
    /// One update.
    fn update(&self, update: ProgressUpdate);
}

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _: ProgressUpdate) {}
}

impl<F: Fn(ProgressUpdate) + Send + Sync> ProgressSink for F {
    fn update(&self, update: ProgressUpdate) {
        self(update)
    }
}

/// Shared handle to a sink.
pub type SharedProgress = Arc<dyn ProgressSink>;
