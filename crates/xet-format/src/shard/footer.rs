//! The 200-byte shard footer (`MDBShardFileFooter` version 1, XET-PROTOCOL.md §7.6)
//! and the choices a writer makes for it ([`FullOptions`]).

use super::{
    le_u64, put_u64, Shard, CHUNK_LOOKUP_ROW_BYTES, FILE_LOOKUP_ROW_BYTES, FOOTER_BYTES, FOOTER_VERSION,
    HEADER_BYTES, XORB_LOOKUP_ROW_BYTES,
};
use crate::error::{Error, Result};

/// A full shard's footer, field for field as read (§7.6; the spec's `_buffer` and
/// `_buffer2` hold the lookup-table and statistics fields below, xet-core names them).
/// The six reserved `u64` are not kept: they are written as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardFooter {
    /// Start of the File Info section (always 48).
    pub file_info_offset: u64,
    /// Start of the CAS Info section.
    pub cas_info_offset: u64,
    /// Start of the file lookup table (end of the CAS Info section). huggingface.js
    /// writes 0 in all six lookup fields; see [`Shard::decode`].
    pub file_lookup_offset: u64,
    /// Rows in the file lookup table: 0 or one per file block.
    pub file_lookup_count: u64,
    /// Start of the xorb lookup table.
    pub xorb_lookup_offset: u64,
    /// Rows in the xorb lookup table: 0 or one per xorb block.
    pub xorb_lookup_count: u64,
    /// Start of the chunk lookup table.
    pub chunk_lookup_offset: u64,
    /// Rows in the chunk lookup table: 0 or one per CAS chunk entry.
    pub chunk_lookup_count: u64,
    /// The key the CAS chunk hashes are keyed with (§4.7); all zeros = not keyed.
    pub hmac_key: [u8; 32],
    /// Creation time, unix seconds.
    pub creation_timestamp: u64,
    /// Unix seconds after which a dedup shard should no longer be used (§8.3 step 5);
    /// xet-core writes `u64::MAX` for its own shards, the reference server 0.
    pub key_expiry: u64,
    /// Σ `num_bytes_on_disk` as the writer computed it (not checked on read).
    pub stored_bytes_on_disk: u64,
    /// Σ file sizes as the writer computed it (not checked on read: huggingface.js
    /// writes 0).
    pub materialized_bytes: u64,
    /// Σ `num_bytes_in_cas` as the writer computed it (not checked on read).
    pub stored_bytes: u64,
    /// Offset of the footer itself.
    pub footer_offset: u64,
}

/// What a writer chooses for a full shard's footer; everything else in it follows
/// from the content ([`Shard::footer_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FullOptions {
    /// Key the CAS chunk hashes are keyed with; zero for raw hashes. It describes the
    /// hashes, it does not key them: [`Shard::dedup_response`] does both.
    pub hmac_key: [u8; 32],
    /// Creation time, unix seconds.
    pub creation_timestamp: u64,
    /// Key expiry, unix seconds.
    pub key_expiry: u64,
    /// Write the three lookup tables (xet-core's local shards and dedup responses) or
    /// leave them empty (what the reference server stores).
    pub lookup_tables: bool,
}

impl Default for FullOptions {
    /// xet-core's `MDBInMemoryShard::to_bytes` with a zero timestamp: raw hashes, no
    /// expiry (`u64::MAX`), lookup tables written. The vectors' `NAME.shard.full.bin`.
    fn default() -> Self {
        FullOptions {
            hmac_key: [0; 32],
            creation_timestamp: 0,
            key_expiry: u64::MAX,
            lookup_tables: true,
        }
    }
}

impl FullOptions {
    /// The reference server's stored form (`MDBMinimalShard::serialize`): raw hashes,
    /// expiry 0, empty lookup tables. Apply it to
    /// [`Shard::with_global_dedup_flags`] to reproduce `NAME.shard.stored.bin`.
    pub fn server_stored(creation_timestamp: u64) -> Self {
        FullOptions {
            hmac_key: [0; 32],
            creation_timestamp,
            key_expiry: 0,
            lookup_tables: false,
        }
    }
}

impl From<&ShardFooter> for FullOptions {
    /// The options that re-create a decoded footer: its key and times, and lookup
    /// tables if it listed any.
    fn from(f: &ShardFooter) -> Self {
        FullOptions {
            hmac_key: f.hmac_key,
            creation_timestamp: f.creation_timestamp,
            key_expiry: f.key_expiry,
            lookup_tables: f.file_lookup_count != 0 || f.xorb_lookup_count != 0 || f.chunk_lookup_count != 0,
        }
    }
}

impl ShardFooter {
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        put_u64(out, FOOTER_VERSION);
        put_u64(out, self.file_info_offset);
        put_u64(out, self.cas_info_offset);
        put_u64(out, self.file_lookup_offset);
        put_u64(out, self.file_lookup_count);
        put_u64(out, self.xorb_lookup_offset);
        put_u64(out, self.xorb_lookup_count);
        put_u64(out, self.chunk_lookup_offset);
        put_u64(out, self.chunk_lookup_count);
        out.extend_from_slice(&self.hmac_key);
        put_u64(out, self.creation_timestamp);
        put_u64(out, self.key_expiry);
        out.extend_from_slice(&[0; 48]);
        put_u64(out, self.stored_bytes_on_disk);
        put_u64(out, self.materialized_bytes);
        put_u64(out, self.stored_bytes);
        put_u64(out, self.footer_offset);
    }

    /// Reads the footer at `at` (the caller has checked that 200 bytes are there).
    pub(super) fn read(data: &[u8], at: usize) -> Result<ShardFooter> {
        let f = data[at..]
            .first_chunk::<FOOTER_BYTES>()
            .ok_or_else(|| Error::truncated("shard footer", at, FOOTER_BYTES, data.len() - at))?;
        let version = le_u64(f, 0);
        if version != FOOTER_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "shard footer",
                version,
                expected: "1",
            });
        }
        let mut hmac_key = [0u8; 32];
        hmac_key.copy_from_slice(&f[72..104]);
        Ok(ShardFooter {
            file_info_offset: le_u64(f, 8),
            cas_info_offset: le_u64(f, 16),
            file_lookup_offset: le_u64(f, 24),
            file_lookup_count: le_u64(f, 32),
            xorb_lookup_offset: le_u64(f, 40),
            xorb_lookup_count: le_u64(f, 48),
            chunk_lookup_offset: le_u64(f, 56),
            chunk_lookup_count: le_u64(f, 64),
            hmac_key,
            creation_timestamp: le_u64(f, 104),
            key_expiry: le_u64(f, 112),
            // 120..168: six reserved u64.
            stored_bytes_on_disk: le_u64(f, 168),
            materialized_bytes: le_u64(f, 176),
            stored_bytes: le_u64(f, 184),
            footer_offset: le_u64(f, 192),
        })
    }

    /// Checks the footer against the sections as read: `cas_start`/`cas_end` are where
    /// the CAS Info section began and ended, `at` where the footer sits.
    pub(super) fn check_layout(
        &self,
        shard: &Shard,
        cas_start: usize,
        cas_end: usize,
        at: usize,
    ) -> Result<()> {
        let field = |what: &'static str, offset: usize, found: u64, expected: String| {
            Error::invalid(what, at + offset, format!("footer says {found}, but {expected}"))
        };
        if self.file_info_offset != HEADER_BYTES as u64 {
            return Err(field(
                "footer file_info_offset",
                8,
                self.file_info_offset,
                "the File Info section starts at byte 48".into(),
            ));
        }
        if self.cas_info_offset != cas_start as u64 {
            return Err(field(
                "footer cas_info_offset",
                16,
                self.cas_info_offset,
                format!("the CAS Info section starts at byte {cas_start}"),
            ));
        }
        if self.footer_offset != at as u64 {
            return Err(field(
                "footer footer_offset",
                192,
                self.footer_offset,
                format!("the footer is the last 200 bytes, at byte {at}"),
            ));
        }
        let lookup = [
            self.file_lookup_offset,
            self.file_lookup_count,
            self.xorb_lookup_offset,
            self.xorb_lookup_count,
            self.chunk_lookup_offset,
            self.chunk_lookup_count,
        ];
        if lookup == [0; 6] {
            // huggingface.js leaves these six fields zero (its footer has no tables);
            // then nothing may sit between the sections and the footer.
            if cas_end != at {
                return Err(Error::invalid(
                    "shard lookup tables",
                    cas_end,
                    format!(
                        "{} bytes lie between the CAS Info bookend and the footer, but the footer \
                         lists no lookup tables",
                        at - cas_end
                    ),
                ));
            }
            return Ok(());
        }
        if self.file_lookup_offset != cas_end as u64 {
            return Err(field(
                "footer file_lookup_offset",
                24,
                self.file_lookup_offset,
                format!("the CAS Info section ends at byte {cas_end}"),
            ));
        }
        let num_chunks: u64 = shard.xorbs.iter().map(|x| x.chunks.len() as u64).sum();
        let tables = [
            (
                "footer file_lookup_count",
                32,
                self.file_lookup_count,
                shard.files.len() as u64,
                "file blocks",
            ),
            (
                "footer xorb_lookup_count",
                48,
                self.xorb_lookup_count,
                shard.xorbs.len() as u64,
                "xorb blocks",
            ),
            (
                "footer chunk_lookup_count",
                64,
                self.chunk_lookup_count,
                num_chunks,
                "CAS chunk entries",
            ),
        ];
        for (what, offset, count, full, things) in tables {
            if count != 0 && count != full {
                return Err(field(
                    what,
                    offset,
                    count,
                    format!("a lookup table has either 0 rows or one per entry, and the shard has {full} {things}"),
                ));
            }
        }
        // Each table must start where the previous one ends; checked arithmetic because
        // the counts come from the input.
        let next = |start: u64, count: u64, row: usize| {
            count
                .checked_mul(row as u64)
                .and_then(|n| n.checked_add(start))
                .unwrap_or(u64::MAX)
        };
        let xorb_lookup = next(
            self.file_lookup_offset,
            self.file_lookup_count,
            FILE_LOOKUP_ROW_BYTES,
        );
        if self.xorb_lookup_offset != xorb_lookup {
            return Err(field(
                "footer xorb_lookup_offset",
                40,
                self.xorb_lookup_offset,
                format!("the file lookup table ends at byte {xorb_lookup}"),
            ));
        }
        let chunk_lookup = next(
            self.xorb_lookup_offset,
            self.xorb_lookup_count,
            XORB_LOOKUP_ROW_BYTES,
        );
        if self.chunk_lookup_offset != chunk_lookup {
            return Err(field(
                "footer chunk_lookup_offset",
                56,
                self.chunk_lookup_offset,
                format!("the xorb lookup table ends at byte {chunk_lookup}"),
            ));
        }
        let end = next(
            self.chunk_lookup_offset,
            self.chunk_lookup_count,
            CHUNK_LOOKUP_ROW_BYTES,
        );
        if end != at as u64 {
            return Err(Error::invalid(
                "shard lookup tables",
                cas_end,
                format!("the chunk lookup table ends at byte {end}, but the footer starts at byte {at}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShardFooter {
        ShardFooter {
            file_info_offset: 48,
            cas_info_offset: 288,
            file_lookup_offset: 432,
            file_lookup_count: 1,
            xorb_lookup_offset: 444,
            xorb_lookup_count: 1,
            chunk_lookup_offset: 456,
            chunk_lookup_count: 1,
            hmac_key: [3; 32],
            creation_timestamp: 1_700_000_000,
            key_expiry: 1_800_000_000,
            stored_bytes_on_disk: 5,
            materialized_bytes: 6,
            stored_bytes: 7,
            footer_offset: 472,
        }
    }

    #[test]
    fn write_read_round_trip() {
        let f = sample();
        let mut out = vec![0u8; 10];
        f.write(&mut out);
        assert_eq!(out.len(), 10 + FOOTER_BYTES);
        assert_eq!(ShardFooter::read(&out, 10).unwrap(), f);
        // The reserved block sits at 120..168 of the footer.
        assert!(out[10 + 120..10 + 168].iter().all(|&b| b == 0));
    }

    #[test]
    fn wrong_version() {
        let mut out = Vec::new();
        sample().write(&mut out);
        out[0] = 2;
        assert_eq!(
            ShardFooter::read(&out, 0),
            Err(Error::UnsupportedVersion {
                what: "shard footer",
                version: 2,
                expected: "1"
            })
        );
    }

    #[test]
    fn options_from_footer() {
        let o = FullOptions::from(&sample());
        assert_eq!(o.hmac_key, [3; 32]);
        assert_eq!(
            (o.creation_timestamp, o.key_expiry, o.lookup_tables),
            (1_700_000_000, 1_800_000_000, true)
        );
        let mut f = sample();
        f.file_lookup_count = 0;
        f.xorb_lookup_count = 0;
        f.chunk_lookup_count = 0;
        assert!(!FullOptions::from(&f).lookup_tables);
    }
}
