//! Page-aligned buffers reused across reads.
//!
//! Reading a 64 MiB cache entry into fresh memory costs 16,384 page faults, each
//! zeroing a page: measured, those faults were three quarters of the read's CPU on a
//! warm download. A buffer taken from the pool was faulted in by an earlier read. A
//! [`PooledBuf`] owns its bytes (`Bytes::from_owner`) and goes back to the pool when
//! the last `Bytes` slice of it is dropped.

use std::sync::{Arc, Mutex};

use xet_format::AlignedBuf;

/// New buffers are rounded up to this, so one serves entries of similar sizes.
const ROUND: usize = 1 << 20;

/// A bounded set of idle buffers.
#[derive(Debug)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<AlignedBuf>>,
    /// Idle buffers kept at most; more are freed.
    max_idle: usize,
}

impl BufferPool {
    /// A pool keeping at most `max_idle` idle buffers.
    pub(crate) fn new(max_idle: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        })
    }

    /// A buffer of `len` bytes: the smallest idle one that is large enough, or a new
    /// one. Its contents are unspecified (zeros or an earlier read's bytes).
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> PooledBuf {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let best = idle
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            best.map(|i| idle.swap_remove(i))
        };
        let mut buf = reused.unwrap_or_else(|| AlignedBuf::new(len.div_ceil(ROUND).max(1) * ROUND));
        buf.set_len(len);
        PooledBuf {
            buf: Some(buf),
            pool: self.clone(),
        }
    }

    fn give_back(&self, buf: AlignedBuf) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(buf);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// A buffer on loan from a [`BufferPool`].
#[derive(Debug)]
pub(crate) struct PooledBuf {
    /// `Some` until dropped.
    buf: Option<AlignedBuf>,
    pool: Arc<BufferPool>,
}

impl PooledBuf {
    /// The bytes, to fill.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.buf.as_mut().map_or(&mut [], |b| b.as_mut_slice())
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], |b| b.as_slice())
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.give_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn buffers_come_back_when_the_last_slice_drops() {
        let pool = BufferPool::new(2);
        let mut a = pool.take(3 << 20);
        a.as_mut_slice().fill(7);
        let ptr = a.as_ref().as_ptr();
        let bytes = Bytes::from_owner(a);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        assert_eq!(pool.idle(), 1);
        // A smaller request reuses it, page-aligned and at the requested length.
        let b = pool.take(1 << 20);
        assert_eq!(b.as_ref().as_ptr(), ptr);
        assert_eq!(b.as_ref().len(), 1 << 20);
        assert_eq!(ptr as usize % 4096, 0);
        // A larger one does not.
        let c = pool.take(5 << 20);
        assert_ne!(c.as_ref().as_ptr(), ptr);
        drop((b, c));
        assert_eq!(pool.idle(), 2);
        // Beyond max_idle, buffers are freed.
        let (d, e, f) = (pool.take(1), pool.take(1), pool.take(1));
        drop((d, e, f));
        assert_eq!(pool.idle(), 2);
    }
}
