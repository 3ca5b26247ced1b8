//! Early writeback of downloaded data, so that the fsync before the rename waits
//! only for the tail of the file.
//!
//! A download that syncs its file before renaming it into place would otherwise
//! leave all of it dirty in the page cache until that fsync (with a few GiB of RAM
//! the kernel's background writeback does not start for a 1 GiB file), and then
//! wait for the whole file to reach the device: on a disk that writes 220 MB/s that
//! is ~5 s per GiB after the last byte arrived. Starting the writeback of each
//! written range as it is written overlaps the device's time with the download's.

use std::fs::File;

/// Offsets and lengths of the contiguous runs in `pieces` (output offset, length),
/// in offset order.
pub(crate) fn runs(pieces: impl IntoIterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = pieces.into_iter().filter(|&(_, n)| n > 0).collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len().min(16));
    for (at, n) in v {
        match out.last_mut() {
            Some((a, l)) if *a + *l >= at => *l = (*l).max(at + n - *a),
            _ => out.push((at, n)),
        }
    }
    out
}

/// Asks the kernel to start writing `len` bytes of `file` at `offset` to the
/// device, without waiting for it. Advisory: a failure here changes nothing (the
/// fsync that follows reports any write error), so it is not reported.
pub(crate) fn start(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor
        // is valid for the borrow of `file`.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_adjacent_and_overlapping_pieces_in_order() {
        let r = runs([
            (100, 10),
            (0, 50),
            (50, 25),
            (110, 5),
            (70, 10),
            (200, 0),
            (300, 1),
        ]);
        assert_eq!(r, vec![(0, 80), (100, 15), (300, 1)]);
        assert!(runs([]).is_empty());
    }

    #[test]
    fn start_accepts_any_range_of_a_real_file() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 8192]).unwrap();
        start(&f, 0, 8192);
        start(&f, 4096, u64::MAX); // too large for off_t: ignored
        start(&f, 1 << 40, 10); // past the end
        f.sync_all().unwrap();
    }
}
