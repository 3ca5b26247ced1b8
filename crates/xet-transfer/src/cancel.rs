//! Cancelling one transfer without touching the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A cancellation flag shared by a caller and the transfer it started. Cloning
/// gives another handle to the same flag; each transfer should get its own.
#[derive(Debug, Clone, Default)]
pub struct CancellationToken(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancellationToken {
    /// A fresh, not cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: the transfer stops at its next await and returns
    /// [`Error::Cancelled`](crate::Error::Cancelled).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Completes when the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `fut` unless the token is cancelled first.
    pub async fn run<T>(&self, fut: impl std::future::Future<Output = crate::Result<T>>) -> crate::Result<T> {
        if self.is_cancelled() {
            return Err(crate::Error::Cancelled);
        }
        tokio::select! {
            biased;
            _ = self.cancelled() => Err(crate::Error::Cancelled),
            r = fut => r,
        }
    }
}
