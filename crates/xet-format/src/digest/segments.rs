//! Parallel digest of a seekable source: segments chunked independently, then
//! stitched (see [`digest_read_at`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::chunker::Chunker;
use crate::hash::{file_hash, HashedLength, Sha256Hasher};

use super::{block_ends, ChunkHashes, FileDigest};

/// Positional reads from a source whose length is known, shareable between threads.
pub trait ReadAt: Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(self, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(self, buf, offset)
        }
    }
}

/// Bytes each segment chunks past its end, hoping to meet the next segment's chunks.
/// About 7 chunks: true and guessed chunk sequences almost always meet within two
/// (and where they do not, the stitching chunks the gap itself).
const OVERLAP: u64 = 512 << 10;
/// Read size of the segment workers (small enough to stay in cache for hashing).
const BLOCK: usize = 256 << 10;
/// Below this size one thread is faster than starting and stitching several.
const MIN_PARALLEL_LEN: u64 = 8 << 20;

/// Chunks `src` from `start`, which must be a chunk start (true or guessed), until a
/// chunk ends at or after `stop`. Returns the chunks; the source's end (`len`) ends
/// the last chunk.
fn chunk_from<S: ReadAt + ?Sized>(src: &S, len: u64, start: u64, stop: u64) -> io::Result<Vec<HashedLength>> {
    let mut aligned = super::AlignedBuf::new(BLOCK);
    let buf = aligned.as_mut_slice();
    let mut chunker = Chunker::new();
    let mut hashes = ChunkHashes::default();
    let mut ends = Vec::new();
    let mut pos = start;
    let mut last_end = start;
    while pos < len && last_end < stop {
        let want = (len - pos).min(BLOCK as u64) as usize;
        let n = read_exact_at(src, &mut buf[..want], pos)?;
        ends.clear();
        block_ends(&mut chunker, &buf[..n], &mut ends);
        hashes.update(&buf[..n], &ends);
        if let Some(&e) = ends.last() {
            last_end = pos + e as u64;
        }
        pos += n as u64;
    }
    let at_end = pos == len;
    let (mut chunks, _) = hashes.finish(at_end && chunker.finish().is_some());
    // Drop the chunks after the first one that reaches `stop`: the caller asked for
    // no more, and the last block may have produced a few.
    let mut end = start;
    if let Some(k) = chunks.iter().position(|c| {
        end += c.1;
        end >= stop
    }) {
        chunks.truncate(k + 1);
    }
    Ok(chunks)
}

fn read_exact_at<S: ReadAt + ?Sized>(src: &S, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "input ended at byte {} before its announced length: it changed while being read",
                        offset + n as u64
                    ),
                ))
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// End offsets of `chunks` laid out from `start`.
fn ends_from(start: u64, chunks: &[HashedLength]) -> Vec<u64> {
    chunks
        .iter()
        .scan(start, |pos, c| {
            *pos += c.1;
            Some(*pos)
        })
        .collect()
}

/// Segment length of [`digest_read_at`]: each is one unit of work for the pool, so
/// a core that finishes early takes the next one instead of idling (a 1 GiB file
/// is 16 units); each costs about [`OVERLAP`] of extra chunking.
const SEGMENT: u64 = 64 << 20;
/// Read size of the SHA-256 thread.
const SHA_BLOCK: usize = 1 << 20;

/// Digest of the first `len` bytes of `src` with up to `threads` threads, with the
/// SHA-256 if `with_sha256`.
///
/// The input is cut into segments that a pool of threads takes one at a time; each
/// is chunked as if a chunk started there, and a little past its end. Stitching walks
/// the true chunk sequence: it is exact from the start of the input, and a guessed
/// sequence becomes exact from the first boundary the two share, since a boundary
/// depends only on the previous one and the bytes. Where they never meet (e.g. long
/// runs of zeros, cut only at the maximum size), the true sequence is computed
/// directly, so the result is always that of the sequential chunker.
///
/// The SHA-256 is sequential: one thread reads the input once more for it, on a
/// core of its own (the pool has one thread fewer meanwhile), then joins the pool.
pub fn digest_read_at<S: ReadAt + ?Sized>(
    src: &S,
    len: u64,
    threads: usize,
    with_sha256: bool,
) -> io::Result<FileDigest> {
    digest_segmented(src, len, threads, with_sha256, SEGMENT)
}

fn digest_segmented<S: ReadAt + ?Sized>(
    src: &S,
    len: u64,
    threads: usize,
    with_sha256: bool,
    segment: u64,
) -> io::Result<FileDigest> {
    let threads = if len < MIN_PARALLEL_LEN {
        1
    } else {
        threads.clamp(1, 64)
    };
    let segment = segment.max(1);
    let count = len.div_ceil(segment).max(1) as usize;
    let starts: Vec<u64> = (0..count as u64).map(|i| i * segment).collect();
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<io::Result<Vec<HashedLength>>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    // Takes segments until none is left.
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&start) = starts.get(i) else { break };
        let stop = starts.get(i + 1).map_or(len, |n| (n + OVERLAP).min(len));
        let r = chunk_from(src, len, start, stop);
        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    };
    let sha = std::thread::scope(|s| {
        let sha = with_sha256.then(|| {
            s.spawn(|| {
                let r = sha256_at(src, len);
                work();
                r
            })
        });
        // The calling thread is one of the pool.
        let pool = if with_sha256 { threads - 1 } else { threads }.max(1);
        for _ in 1..pool {
            s.spawn(work);
        }
        work();
        sha.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    let sha256 = sha.transpose()?;
    let mut segments = results.into_iter().map(|m| {
        m.into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(|| Ok(Vec::new()))
    });
    let mut chunks = match segments.next() {
        Some(first) => first?,
        None => Vec::new(),
    };
    let mut ends = ends_from(0, &chunks);
    for (guess, &seg_start) in segments.zip(&starts[1..]) {
        let guess = guess?;
        let guess_ends = ends_from(seg_start, &guess);
        let Some(&guess_last) = guess_ends.last() else {
            continue;
        };
        let mut search_from = ends.partition_point(|&e| e < seg_start);
        loop {
            let meet = ends[search_from..]
                .iter()
                .position(|&e| e == seg_start || guess_ends.binary_search(&e).is_ok())
                .map(|k| search_from + k);
            if let Some(k) = meet {
                chunks.truncate(k + 1);
                ends.truncate(k + 1);
                let from = guess_ends.partition_point(|&b| b <= ends[k]);
                chunks.extend_from_slice(&guess[from..]);
                ends.extend_from_slice(&guess_ends[from..]);
                break;
            }
            let pos = ends.last().copied().unwrap_or(0);
            if pos >= guess_last {
                break; // The true sequence already covers this segment.
            }
            search_from = ends.len();
            let more = chunk_from(src, len, pos, guess_last)?;
            ends.extend(ends_from(pos, &more));
            chunks.extend(more);
        }
    }
    // Whatever the stitching did, the chunks must tile the input exactly.
    let pos = ends.last().copied().unwrap_or(0);
    if pos < len {
        let more = chunk_from(src, len, pos, len)?;
        chunks.extend(more);
    }
    Ok(FileDigest {
        file_hash: file_hash(&chunks),
        size: len,
        sha256,
        chunks,
    })
}

/// SHA-256 of the first `len` bytes of `src`, read in order.
fn sha256_at<S: ReadAt + ?Sized>(src: &S, len: u64) -> io::Result<[u8; 32]> {
    let mut aligned = super::AlignedBuf::new(SHA_BLOCK);
    let buf = aligned.as_mut_slice();
    let mut sha = Sha256Hasher::new();
    let mut pos = 0;
    while pos < len {
        let want = (len - pos).min(SHA_BLOCK as u64) as usize;
        let n = read_exact_at(src, &mut buf[..want], pos)?;
        sha.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(sha.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::tests::pseudo;

    fn reference(data: &[u8]) -> FileDigest {
        let mut h = crate::FileHasher::new(false);
        h.update(data);
        h.finish()
    }

    #[test]
    fn same_as_sequential_on_hard_inputs() {
        let mut mixed = pseudo(9 << 20, 5);
        mixed.extend(vec![0u8; 7 << 20]);
        mixed.extend(pseudo(3 << 20, 6));
        let inputs: Vec<Vec<u8>> = vec![
            pseudo(20 << 20, 1),
            vec![0u8; 20 << 20], // never resynchronises: max-size cuts only
            mixed,
            b"abc".repeat(5 << 20),   // periodic
            pseudo((8 << 20) + 3, 2), // just above the parallel threshold
            pseudo(1000, 3),
            Vec::new(),
        ];
        for data in &inputs {
            let mut want = reference(data);
            for t in [1, 2, 3, 5] {
                let got = digest_read_at(&data[..], data.len() as u64, t, false).unwrap();
                assert_eq!(got, want, "len {} threads {t}", data.len());
                // Many segments per thread: every segment edge is stitched.
                for seg in [1 << 20, (3 << 20) + 17] {
                    let got = digest_segmented(&data[..], data.len() as u64, t, false, seg).unwrap();
                    assert_eq!(got, want, "len {} threads {t} segment {seg}", data.len());
                }
            }
            want.sha256 = Some(crate::hash::sha256(data));
            for t in [1, 2, 3] {
                let got = digest_segmented(&data[..], data.len() as u64, t, true, 2 << 20).unwrap();
                assert_eq!(got, want, "len {} threads {t} with SHA-256", data.len());
            }
        }
    }

    #[test]
    fn source_shorter_than_announced_is_an_error() {
        let data = pseudo(10 << 20, 4);
        for sha in [false, true] {
            let err = digest_read_at(&data[..], (12 << 20) as u64, 2, sha).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }
}
