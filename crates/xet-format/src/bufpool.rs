//! Buffers reused across reads, for the client and the server alike.
//!
//! Fresh memory is expensive: every page is faulted in and zeroed on first touch
//! (and on virtual machines that hand freed memory back to the host, touched again
//! through the host). Measured on this project's 2-core VM: reading a 64 MiB cache
//! entry into fresh memory spent three quarters of its CPU in page faults, and a
//! 1 GiB upload a quarter of its client CPU. A buffer taken from a pool was faulted
//! in by an earlier use. A [`Pooled`] buffer owns its bytes (`Bytes::from_owner`) and
//! goes back to its pool when the last `Bytes` slice of it is dropped.

use std::sync::{Arc, Mutex};

use crate::AlignedBuf;

/// A buffer kind a [`Pool`] can hold.
pub trait PoolBuf: Send + 'static {
    /// A new buffer for `len` bytes.
    fn alloc(len: usize) -> Self;
    /// Bytes it holds without growing.
    fn capacity(&self) -> usize;
    /// Makes it ready for `len` bytes (at most its capacity).
    fn prepare(&mut self, len: usize);
    /// Its current bytes.
    fn bytes(&self) -> &[u8];
}

/// New aligned buffers are rounded up to this, so one serves similar sizes.
const ROUND: usize = 1 << 20;

/// Page-aligned, at a set length (contents unspecified when reused): for reads.
impl PoolBuf for AlignedBuf {
    fn alloc(len: usize) -> Self {
        AlignedBuf::new(len.div_ceil(ROUND).max(1) * ROUND)
    }
    fn capacity(&self) -> usize {
        AlignedBuf::capacity(self)
    }
    fn prepare(&mut self, len: usize) {
        self.set_len(len);
    }
    fn bytes(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Empty with room for `len` bytes: for bodies built by appending.
impl PoolBuf for Vec<u8> {
    fn alloc(len: usize) -> Self {
        Vec::with_capacity(len)
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn prepare(&mut self, _len: usize) {
        self.clear();
    }
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A bounded set of idle buffers.
#[derive(Debug)]
pub struct Pool<B> {
    idle: Mutex<Vec<B>>,
    /// Idle buffers kept at most; more are freed.
    max_idle: usize,
}

impl<B: PoolBuf> Pool<B> {
    /// A pool keeping at most `max_idle` idle buffers.
    pub fn new(max_idle: usize) -> Arc<Self> {
        Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        })
    }

    /// A buffer for `len` bytes: the smallest idle one that is large enough, or a
    /// new one.
    pub fn take(self: &Arc<Self>, len: usize) -> Pooled<B> {
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
        let mut buf = reused.unwrap_or_else(|| B::alloc(len));
        buf.prepare(len);
        Pooled {
            buf: Some(buf),
            pool: self.clone(),
        }
    }

    fn give_back(&self, buf: B) {
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

/// A buffer on loan from a [`Pool`].
#[derive(Debug)]
pub struct Pooled<B: PoolBuf> {
    /// `Some` until dropped.
    buf: Option<B>,
    pool: Arc<Pool<B>>,
}

impl<B: PoolBuf> Pooled<B> {
    /// The buffer itself.
    pub fn get_mut(&mut self) -> &mut B {
        self.buf
            .as_mut()
            .expect("a pooled buffer is present until dropped")
    }
}

impl<B: PoolBuf> AsRef<[u8]> for Pooled<B> {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], |b| b.bytes())
    }
}

impl<B: PoolBuf> Drop for Pooled<B> {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.give_back(b);
        }
    }
}

/// Gathers a body of a declared length (`Content-Length`) from the pieces it arrives
/// in, into a pooled page-aligned buffer of exactly that length: for the client's
/// responses and the server's requests alike. A body that runs past its length or
/// ends short is refused, never handed on.
#[derive(Debug)]
pub struct Filler {
    buf: Pooled<AlignedBuf>,
    filled: usize,
}

/// Why a [`Filler`] refused its body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// More bytes came than declared.
    #[error("body is longer than its Content-Length {declared}")]
    TooLong {
        /// The declared length.
        declared: usize,
    },
    /// The body ended before the declared length.
    #[error("body has {filled} bytes, its Content-Length said {declared}")]
    Short {
        /// Bytes received.
        filled: usize,
        /// The declared length.
        declared: usize,
    },
}

impl Filler {
    /// An empty body of `declared` bytes, in a buffer from `pool`, allocated now:
    /// check `declared` against a limit first (a `Content-Length` is the peer's word).
    pub fn new(pool: &Arc<Pool<AlignedBuf>>, declared: usize) -> Self {
        Filler {
            buf: pool.take(declared),
            filled: 0,
        }
    }

    /// Appends the next piece.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), FillError> {
        let declared = self.buf.as_ref().len();
        let end = self.filled + piece.len();
        if end > declared {
            return Err(FillError::TooLong { declared });
        }
        self.buf.get_mut().as_mut_slice()[self.filled..end].copy_from_slice(piece);
        self.filled = end;
        Ok(())
    }

    /// The body, if every declared byte came (`Bytes::from_owner` takes it as is).
    pub fn finish(self) -> Result<Pooled<AlignedBuf>, FillError> {
        let declared = self.buf.as_ref().len();
        if self.filled != declared {
            return Err(FillError::Short {
                filled: self.filled,
                declared,
            });
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_filler_takes_exactly_its_declared_length() {
        let pool = Pool::<AlignedBuf>::new(1);
        let mut f = Filler::new(&pool, 10);
        f.push(b"hello").unwrap();
        f.push(b"").unwrap();
        f.push(b"world").unwrap();
        assert_eq!(f.finish().unwrap().as_ref(), b"helloworld");
        let mut f = Filler::new(&pool, 10);
        f.push(b"hello").unwrap();
        assert_eq!(f.push(b"world!"), Err(FillError::TooLong { declared: 10 }));
        let mut f = Filler::new(&pool, 10);
        f.push(b"hello").unwrap();
        let e = f.finish().unwrap_err();
        assert_eq!(
            e,
            FillError::Short {
                filled: 5,
                declared: 10
            }
        );
        assert_eq!(e.to_string(), "body has 5 bytes, its Content-Length said 10");
        assert!(Filler::new(&pool, 0).finish().unwrap().as_ref().is_empty());
    }

    #[test]
    fn buffers_come_back_when_the_last_slice_drops() {
        let pool = Pool::<AlignedBuf>::new(2);
        let mut a = pool.take(3 << 20);
        a.get_mut().as_mut_slice().fill(7);
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

    #[test]
    fn vectors_come_back_empty_with_their_capacity() {
        let pool = Pool::<Vec<u8>>::new(1);
        let mut a = pool.take(1000);
        a.get_mut().extend_from_slice(b"hello");
        assert_eq!(a.as_ref(), b"hello");
        let cap = a.get_mut().capacity();
        drop(a);
        let mut b = pool.take(10);
        assert!(b.as_ref().is_empty());
        assert_eq!(b.get_mut().capacity(), cap);
    }
}
