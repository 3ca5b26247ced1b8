//! Shards ("MDB shards", XET-PROTOCOL.md §7): the binary container of file
//! reconstructions (File Info section) and xorb chunk listings (CAS Info section).
//!
//! A shard travels in two forms:
//!
//! - the **upload form** a client POSTs to `/v1|v2/shards`: header (`footer_size` 0),
//!   File Info section, CAS Info section, nothing else ([`Shard::to_upload_bytes`]);
//! - the **full form** with lookup tables and a 200-byte footer: xet-core's local
//!   shards, what a server stores, and global-dedup responses
//!   ([`Shard::to_full_bytes`], options in [`FullOptions`]).
//!
//! [`Shard::decode`] reads both, linearly from the header (the footer is checked, never
//! needed). [`ShardBuilder`] is what a client uses to assemble an upload;
//! [`Shard::verify_terms`], [`Shard::global_dedup_eligible_chunks`] and
//! [`Shard::dedup_response`] are what a CAS server needs; [`ChunkLookup`] answers a
//! client's queries against a global-dedup response.
//!
//! ```
//! use xet_format::hash::{chunk_hash, file_hash, sha256};
//! use xet_format::shard::{FileTerm, Shard, ShardBuilder};
//!
//! let data = b"hello world";
//! let chunk = chunk_hash(data);
//! let mut b = ShardBuilder::new();
//! b.add_xorb(chunk, &[(chunk, 11)]).unwrap();
//! let file = file_hash(&[(chunk, 11)]);
//! b.add_file(file, vec![FileTerm::new(chunk, 11, 0, 1)], Some(sha256(data))).unwrap();
//! let shard = b.build();
//! let bytes = shard.to_upload_bytes().unwrap();
//! assert_eq!(bytes.len(), 432); // XET-PROTOCOL.md §7.7
//! assert_eq!(Shard::decode(&bytes).unwrap(), shard);
//! ```

mod builder;
mod file_info;
mod footer;
mod lookup;
mod verify;
mod xorb_info;

pub use builder::ShardBuilder;
pub use file_info::{FileInfo, FileTerm};
pub use footer::{FullOptions, ShardFooter};
pub use lookup::ChunkLookup;
pub use verify::StoredXorb;
pub use xorb_info::{XorbChunk, XorbInfo};

use crate::error::{Error, Result};
use crate::MerkleHash;

/// The 32-byte magic that starts every shard: ASCII `HFRepoMetaData`, a zero byte and
/// 17 fixed bytes (XET-PROTOCOL.md §7.2; the spec does not print it, xet-core's
/// `MDB_SHARD_HEADER_TAG` and huggingface.js's `SHARD_MAGIC_TAG` agree on it).
pub const HEADER_TAG: [u8; 32] = [
    b'H', b'F', b'R', b'e', b'p', b'o', b'M', b'e', b't', b'a', b'D', b'a', b't', b'a', 0, 85, 105, 103, 69,
    106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
];
/// The only shard header version (§7.2).
pub const HEADER_VERSION: u64 = 2;
/// The only shard footer version (§7.6).
pub const FOOTER_VERSION: u64 = 1;
/// Size of the shard header (§7.2).
pub const HEADER_BYTES: usize = 48;
/// Size of the shard footer (§7.6); also the header's `footer_size` of a full shard.
pub const FOOTER_BYTES: usize = 200;
/// Size of every File Info and CAS Info record, bookends included (§7).
pub const RECORD_BYTES: usize = 48;
/// Size of a file or xorb lookup-table row: `u64` key + `u32` index (§7.5).
pub const FILE_LOOKUP_ROW_BYTES: usize = 12;
/// Size of a xorb lookup-table row (§7.5).
pub const XORB_LOOKUP_ROW_BYTES: usize = 12;
/// Size of a chunk lookup-table row: `u64` key + two `u32` indices (§7.5).
pub const CHUNK_LOOKUP_ROW_BYTES: usize = 16;
/// Largest shard a client should upload: 64 MiB (§1; xet-core `MDB_SHARD_TARGET_SIZE`,
/// which it compares against the full form's size).
pub const MAX_SHARD_BYTES: u64 = 64 * 1024 * 1024;
/// File flag: one verification entry per term follows the terms (§7.3).
pub const FILE_FLAG_VERIFICATION: u32 = 0x8000_0000;
/// File flag: a `FileMetadataExt` record (SHA-256) follows (§7.3).
pub const FILE_FLAG_METADATA_EXT: u32 = 0x4000_0000;
/// CAS chunk-entry flag: "global-dedup candidate", set by xet-core and the reference
/// server on the chunks that start a file (§7.4, §8.2).
pub const CHUNK_FLAG_GLOBAL_DEDUP: u32 = 0x8000_0000;

/// One 48-byte File Info or CAS Info record.
type Record = [u8; RECORD_BYTES];

/// A decoded shard: its files, its xorbs and, for the full form, its footer.
///
/// Files and xorbs keep the order of the bytes they came from; encoding writes them in
/// the order they have here. [`ShardBuilder::build`] sorts them the way the official
/// client does, which is what makes its output byte-identical.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shard {
    /// The File Info section: one entry per file block, in section order.
    pub files: Vec<FileInfo>,
    /// The CAS Info section: one entry per xorb block, in section order.
    pub xorbs: Vec<XorbInfo>,
    /// The footer as read, for a shard decoded from the full form; `None` for the
    /// upload form and for shards built in memory.
    pub footer: Option<ShardFooter>,
}

impl Shard {
    /// A footer-less shard of these files and xorbs.
    pub fn new(files: Vec<FileInfo>, xorbs: Vec<XorbInfo>) -> Self {
        Shard {
            files,
            xorbs,
            footer: None,
        }
    }

    /// Decodes a shard in upload form (`footer_size` 0: the input must end right after
    /// the CAS Info bookend) or full form (`footer_size` 200: lookup tables and footer
    /// after the CAS Info section).
    ///
    /// The sections are read linearly from the header, as the spec requires readers to
    /// be able to (§7.1). The footer is then checked against what was read: version 1,
    /// `file_info_offset` 48, `cas_info_offset` and `footer_offset` where the sections
    /// and the footer really are, lookup tables packed between the CAS Info bookend and
    /// the footer with counts that are either 0 or one row per file / xorb / chunk
    /// entry. Lookup-table rows themselves are not read: nothing here needs them.
    ///
    /// Decoding is structural: a term's range or a chunk's offsets are not checked
    /// against anything ([`validate_for_upload`](Self::validate_for_upload) and
    /// [`verify_terms`](Self::verify_terms) do that). Hostile input gives an error,
    /// never a panic, and no count read from the input allocates more than the bytes
    /// left can hold.
    pub fn decode(data: &[u8]) -> Result<Shard> {
        let header = data
            .first_chunk::<HEADER_BYTES>()
            .ok_or_else(|| Error::truncated("shard header", 0, HEADER_BYTES, data.len()))?;
        if header[..32] != HEADER_TAG {
            return Err(Error::BadMagic {
                what: "shard",
                offset: 0,
            });
        }
        let version = le_u64(header, 32);
        if version != HEADER_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "shard header",
                version,
                expected: "2",
            });
        }
        let footer_size = le_u64(header, 40);
        let body_end = match footer_size {
            0 => data.len(),
            200 => data
                .len()
                .checked_sub(FOOTER_BYTES)
                .filter(|&e| e >= HEADER_BYTES)
                .ok_or_else(|| {
                    Error::truncated(
                        "shard footer",
                        HEADER_BYTES,
                        FOOTER_BYTES,
                        data.len() - HEADER_BYTES,
                    )
                })?,
            other => {
                return Err(Error::invalid(
                    "shard header footer_size",
                    40,
                    format!("{other} is neither 0 (upload form) nor 200 (full form)"),
                ))
            }
        };

        let mut r = Reader {
            data: &data[..body_end],
            pos: HEADER_BYTES,
        };
        let mut files = Vec::new();
        loop {
            let at = r.pos;
            let rec = r.record("File Info record (or the bookend that ends the section)")?;
            if is_bookend(rec) {
                break;
            }
            files.push(FileInfo::read(rec, at, &mut r)?);
        }
        let cas_start = r.pos;
        let mut xorbs = Vec::new();
        loop {
            let at = r.pos;
            let rec = r.record("CAS Info record (or the bookend that ends the section)")?;
            if is_bookend(rec) {
                break;
            }
            xorbs.push(XorbInfo::read(rec, at, &mut r)?);
        }
        let cas_end = r.pos;

        let mut shard = Shard::new(files, xorbs);
        if footer_size == 0 {
            if cas_end != data.len() {
                return Err(Error::invalid(
                    "upload shard",
                    cas_end,
                    format!(
                        "{} bytes follow the CAS Info bookend, but a shard whose header says \
                         footer_size 0 ends there",
                        data.len() - cas_end
                    ),
                ));
            }
        } else {
            let footer = ShardFooter::read(data, body_end)?;
            footer.check_layout(&shard, cas_start, cas_end, body_end)?;
            shard.footer = Some(footer);
        }
        Ok(shard)
    }

    /// The upload form (what a client POSTs, §7.1): header with `footer_size` 0, then
    /// the File Info and CAS Info sections, each closed by a bookend.
    ///
    /// Fails only if the shard cannot be represented: a verification list whose length
    /// is not the number of terms, a bookend (all-`ff`) file or xorb hash, or a count
    /// beyond `u32`.
    pub fn to_upload_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.upload_len()).unwrap_or(0));
        self.write_sections(&mut out, 0)?;
        Ok(out)
    }

    /// The full form: the upload form's sections (header `footer_size` 200), then the
    /// lookup tables if `options.lookup_tables`, then the 200-byte footer.
    ///
    /// With [`FullOptions::default`] this is byte-identical to xet-core's
    /// `MDBInMemoryShard::to_bytes` for the same (sorted) content; with
    /// [`FullOptions::server_stored`] on the output of
    /// [`with_global_dedup_flags`](Self::with_global_dedup_flags) it is what the
    /// reference server stores.
    pub fn to_full_bytes(&self, options: &FullOptions) -> Result<Vec<u8>> {
        let footer = self.footer_for(options)?;
        let len = footer.footer_offset as usize + FOOTER_BYTES;
        let mut out = Vec::with_capacity(len);
        self.write_sections(&mut out, FOOTER_BYTES as u64)?;
        if options.lookup_tables {
            lookup::write_tables(self, &mut out)?;
        }
        debug_assert_eq!(out.len() as u64, footer.footer_offset);
        footer.write(&mut out);
        Ok(out)
    }

    /// Re-encodes the shard in the form it has: the upload form if it has no footer,
    /// else the full form with the options its footer records
    /// ([`FullOptions::from`]`(&footer)`).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match &self.footer {
            None => self.to_upload_bytes(),
            Some(f) => self.to_full_bytes(&FullOptions::from(f)),
        }
    }

    /// The footer [`to_full_bytes`](Self::to_full_bytes) writes with these options:
    /// section and lookup-table offsets, counts and byte statistics (§7.6).
    pub fn footer_for(&self, options: &FullOptions) -> Result<ShardFooter> {
        let file_records: u64 = self.files.iter().map(FileInfo::record_count).sum();
        let cas_records: u64 = self.xorbs.iter().map(XorbInfo::record_count).sum();
        let num_chunks: u64 = self.xorbs.iter().map(|x| x.chunks.len() as u64).sum();
        let rec = RECORD_BYTES as u64;
        let cas_info_offset = HEADER_BYTES as u64 + (file_records + 1) * rec;
        let file_lookup_offset = cas_info_offset + (cas_records + 1) * rec;
        let (nf, nx, nc) = if options.lookup_tables {
            (self.files.len() as u64, self.xorbs.len() as u64, num_chunks)
        } else {
            (0, 0, 0)
        };
        let xorb_lookup_offset = file_lookup_offset + nf * FILE_LOOKUP_ROW_BYTES as u64;
        let chunk_lookup_offset = xorb_lookup_offset + nx * XORB_LOOKUP_ROW_BYTES as u64;
        let footer_offset = chunk_lookup_offset + nc * CHUNK_LOOKUP_ROW_BYTES as u64;
        // Lookup rows index records with u32 (§7.5); beyond that the format cannot
        // describe the shard, whatever its size limit.
        if file_records > u64::from(u32::MAX) || cas_records > u64::from(u32::MAX) {
            return Err(Error::LimitExceeded {
                what: "shard records in one section",
                limit: u64::from(u32::MAX),
                actual: file_records.max(cas_records),
            });
        }
        Ok(ShardFooter {
            file_info_offset: HEADER_BYTES as u64,
            cas_info_offset,
            file_lookup_offset,
            file_lookup_count: nf,
            xorb_lookup_offset,
            xorb_lookup_count: nx,
            chunk_lookup_offset,
            chunk_lookup_count: nc,
            hmac_key: options.hmac_key,
            creation_timestamp: options.creation_timestamp,
            key_expiry: options.key_expiry,
            stored_bytes_on_disk: self.stored_bytes_on_disk(),
            materialized_bytes: self.materialized_bytes(),
            stored_bytes: self.stored_bytes(),
            footer_offset,
        })
    }

    /// Length of [`to_upload_bytes`](Self::to_upload_bytes)' output.
    pub fn upload_len(&self) -> u64 {
        let file_records: u64 = self.files.iter().map(FileInfo::record_count).sum();
        let cas_records: u64 = self.xorbs.iter().map(XorbInfo::record_count).sum();
        HEADER_BYTES as u64 + (file_records + cas_records + 2) * RECORD_BYTES as u64
    }

    /// Length of [`to_full_bytes`](Self::to_full_bytes)' output, with or without lookup
    /// tables. This is the size xet-core compares with [`MAX_SHARD_BYTES`].
    pub fn full_len(&self, lookup_tables: bool) -> u64 {
        let mut len = self.upload_len() + FOOTER_BYTES as u64;
        if lookup_tables {
            let chunks: u64 = self.xorbs.iter().map(|x| x.chunks.len() as u64).sum();
            len += self.files.len() as u64 * FILE_LOOKUP_ROW_BYTES as u64
                + self.xorbs.len() as u64 * XORB_LOOKUP_ROW_BYTES as u64
                + chunks * CHUNK_LOOKUP_ROW_BYTES as u64;
        }
        len
    }

    /// The footer's chunk-hash key: all zeros (chunk hashes are raw) unless this shard
    /// was decoded from, or made as, a keyed global-dedup response (§4.7, §8.3).
    pub fn hmac_key(&self) -> [u8; 32] {
        self.footer.as_ref().map_or([0; 32], |f| f.hmac_key)
    }

    /// Σ file sizes over the File Info section: the footer's `materialized_bytes` (§7.6).
    pub fn materialized_bytes(&self) -> u64 {
        self.files.iter().map(FileInfo::size).sum()
    }

    /// Σ `num_bytes_in_cas` over the CAS Info section: the footer's `stored_bytes`.
    pub fn stored_bytes(&self) -> u64 {
        self.xorbs.iter().map(|x| u64::from(x.num_bytes_in_cas)).sum()
    }

    /// Σ `num_bytes_on_disk` over the CAS Info section: the footer's
    /// `stored_bytes_on_disk` (0 for the official client's shards, §7.4).
    pub fn stored_bytes_on_disk(&self) -> u64 {
        self.xorbs.iter().map(|x| u64::from(x.num_bytes_on_disk)).sum()
    }

    /// Keeps only the first file block of each file hash, as the reference server does
    /// before storing a shard (xet-core `MDBMinimalShard` skips repeats); a file hash
    /// names its content, so a repeat carries nothing new.
    pub fn dedup_files(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.files.retain(|f| seen.insert(f.file_hash));
    }

    fn write_sections(&self, out: &mut Vec<u8>, footer_size: u64) -> Result<()> {
        out.extend_from_slice(&HEADER_TAG);
        put_u64(out, HEADER_VERSION);
        put_u64(out, footer_size);
        for f in &self.files {
            f.write(out)?;
        }
        put_bookend(out);
        for x in &self.xorbs {
            x.write(out)?;
        }
        put_bookend(out);
        Ok(())
    }
}

/// A bounds-checked reader over a shard's section bytes (header to footer).
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The next 48-byte record, or a `Truncated` error naming `what`.
    fn record(&mut self, what: &'static str) -> Result<&'a Record> {
        let rest = &self.data[self.pos..];
        let rec = rest
            .first_chunk::<RECORD_BYTES>()
            .ok_or_else(|| Error::truncated(what, self.pos, RECORD_BYTES, rest.len()))?;
        self.pos += RECORD_BYTES;
        Ok(rec)
    }

    /// Checks that `count` more records fit before anything is allocated for them:
    /// this is what keeps a lying `num_entries` from driving an allocation.
    /// `block_start` is where the block (its header) began, for the error.
    fn need_records(&self, what: &'static str, block_start: usize, count: u64) -> Result<()> {
        let needed = count.saturating_mul(RECORD_BYTES as u64);
        if needed > self.remaining() as u64 {
            let header = (self.pos - block_start) as u64;
            return Err(Error::Truncated {
                what,
                offset: block_start as u64,
                needed: needed.saturating_add(header),
                remaining: (self.remaining() as u64) + header,
            });
        }
        Ok(())
    }
}

/// A bookend record: all-`ff` hash (the rest of it is not looked at, like xet-core).
fn is_bookend(rec: &Record) -> bool {
    rec[..32] == [0xff; 32]
}

fn rec_hash(rec: &Record) -> MerkleHash {
    let mut b = [0u8; 32];
    b.copy_from_slice(&rec[..32]);
    MerkleHash::from_bytes(b)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_hash(out: &mut Vec<u8>, h: &MerkleHash) {
    out.extend_from_slice(h.as_bytes());
}

/// The bookend that closes each section: 32 × `ff`, 16 × `00` (§7.3).
fn put_bookend(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xff; 32]);
    out.extend_from_slice(&[0; 16]);
}

/// `u32` count of a list, or a `LimitExceeded` error.
fn count_u32(what: &'static str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::LimitExceeded {
        what,
        limit: u64::from(u32::MAX),
        actual: n as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{chunk_hash, file_hash, sha256};
    use crate::test_support::{read_vector, unhex, vector_json, vector_names};
    use proptest::prelude::*;
    use serde_json::Value;

    fn hash(v: &Value) -> MerkleHash {
        v.as_str().expect("hash string").parse().expect("hash")
    }

    fn num(v: &Value) -> u64 {
        v.as_u64().expect("number")
    }

    /// The file block a vector's JSON describes.
    fn expected_file(json: &Value) -> FileInfo {
        let fi = &json["file_info"];
        let flags = num(&fi["file_flags"]) as u32;
        let terms: Vec<FileTerm> = fi["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| FileTerm {
                xorb_hash: hash(&s["xorb_hash"]),
                cas_flags: num(&s["xorb_flags"]) as u32,
                unpacked_bytes: num(&s["unpacked_segment_bytes"]) as u32,
                chunk_start: num(&s["chunk_index_start"]) as u32,
                chunk_end: num(&s["chunk_index_end"]) as u32,
            })
            .collect();
        assert_eq!(terms.len() as u64, num(&fi["num_entries"]));
        let verification = (flags & FILE_FLAG_VERIFICATION != 0).then(|| {
            fi["verification_range_hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(hash)
                .collect()
        });
        let sha256 = (flags & FILE_FLAG_METADATA_EXT != 0).then(|| {
            MerkleHash::from_slice(&unhex(fi["metadata_ext_sha256_bytes_hex"].as_str().unwrap())).unwrap()
        });
        FileInfo {
            file_hash: hash(&fi["file_hash"]),
            terms,
            verification,
            sha256,
        }
    }

    /// The vector's file chunks `(hash, length)`, in file order.
    fn file_chunks(json: &Value) -> Vec<(MerkleHash, u64)> {
        json["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (hash(&c["hash"]), num(&c["length"])))
            .collect()
    }

    /// The vector's xorb as `(hash, [(chunk hash, length)])`, if it has one.
    fn expected_xorb(json: &Value) -> Option<(MerkleHash, Vec<(MerkleHash, u32)>)> {
        let x = &json["xorb"];
        if x.is_null() {
            return None;
        }
        let hashes: Vec<MerkleHash> = x["chunk_hashes"].as_array().unwrap().iter().map(hash).collect();
        let mut lens = vec![0u32; hashes.len()];
        for (c, m) in file_chunks(json)
            .iter()
            .zip(x["file_chunk_to_xorb_chunk"].as_array().unwrap())
        {
            lens[num(m) as usize] = c.1 as u32;
        }
        Some((hash(&x["hash"]), hashes.into_iter().zip(lens).collect()))
    }

    fn check_footer(f: &ShardFooter, j: &Value) {
        let fields = [
            (f.file_info_offset, "file_info_offset"),
            (f.cas_info_offset, "xorb_info_offset"),
            (f.file_lookup_offset, "file_lookup_offset"),
            (f.file_lookup_count, "file_lookup_num_entry"),
            (f.xorb_lookup_offset, "xorb_lookup_offset"),
            (f.xorb_lookup_count, "xorb_lookup_num_entry"),
            (f.chunk_lookup_offset, "chunk_lookup_offset"),
            (f.chunk_lookup_count, "chunk_lookup_num_entry"),
            (f.materialized_bytes, "materialized_bytes"),
            (f.stored_bytes, "stored_bytes"),
            (f.stored_bytes_on_disk, "stored_bytes_on_disk"),
            (f.footer_offset, "footer_offset"),
        ];
        for (got, key) in fields {
            assert_eq!(got, num(&j[key]), "footer {key}");
        }
    }

    #[test]
    fn vectors_decode() {
        for name in vector_names() {
            let json = vector_json(&format!("{name}.json"));
            let file = expected_file(&json);
            let xorb = expected_xorb(&json);
            let check_content = |s: &Shard, form: &str| {
                assert_eq!(s.files, std::slice::from_ref(&file), "{name} {form} file");
                assert_eq!(
                    s.files[0].size(),
                    num(&json["input"]["size"]),
                    "{name} {form} size"
                );
                assert_eq!(s.xorbs.len(), usize::from(xorb.is_some()), "{name} {form}");
                if let Some((xh, chunks)) = &xorb {
                    let x = &s.xorbs[0];
                    assert_eq!(x.xorb_hash, *xh, "{name} {form}");
                    assert_eq!(
                        x.num_bytes_in_cas as u64,
                        num(&json["xorb"]["raw_bytes"]),
                        "{name} {form}"
                    );
                    assert_eq!(x.num_bytes_on_disk, 0, "{name} {form}");
                    let hl: Vec<(MerkleHash, u32)> = x.chunks.iter().map(|c| (c.hash, c.len)).collect();
                    assert_eq!(&hl, chunks, "{name} {form}");
                }
            };

            let upload = Shard::decode(&read_vector(&format!("{name}.shard.upload.bin"))).unwrap();
            assert_eq!(upload.footer, None);
            check_content(&upload, "upload");
            assert!(upload.xorbs.iter().flat_map(|x| &x.chunks).all(|c| c.flags == 0));
            upload.validate_for_upload().unwrap();

            let full = Shard::decode(&read_vector(&format!("{name}.shard.full.bin"))).unwrap();
            check_content(&full, "full");
            let f = full.footer.unwrap();
            check_footer(&f, &json["shard"]["full"]["footer"]);
            assert_eq!(
                (f.hmac_key, f.creation_timestamp, f.key_expiry),
                ([0; 32], 0, u64::MAX)
            );
            assert_eq!(f.materialized_bytes, full.materialized_bytes());
            assert_eq!(f.stored_bytes, full.stored_bytes());

            let stored = Shard::decode(&read_vector(&format!("{name}.shard.stored.bin"))).unwrap();
            let sf = stored.footer.unwrap();
            assert_eq!(
                (sf.file_lookup_count, sf.xorb_lookup_count, sf.chunk_lookup_count),
                (0, 0, 0)
            );
            assert_eq!(
                sf.file_lookup_offset, f.file_lookup_offset,
                "{name}: tables empty, at the CAS end"
            );
            assert_eq!(sf.key_expiry, 0);
            assert_eq!(
                (sf.materialized_bytes, sf.stored_bytes),
                (f.materialized_bytes, f.stored_bytes)
            );
            // Stored = upload with bit 31 on the chunk that starts the file.
            let flags: Vec<u32> = stored
                .xorbs
                .iter()
                .flat_map(|x| &x.chunks)
                .map(|c| c.flags)
                .collect();
            for (i, fl) in flags.iter().enumerate() {
                let start = file.terms.first().map(|t| t.chunk_start as usize);
                assert_eq!(
                    *fl,
                    if Some(i) == start {
                        CHUNK_FLAG_GLOBAL_DEDUP
                    } else {
                        0
                    },
                    "{name} chunk {i}"
                );
            }
            assert_eq!(stored.files, upload.files);
        }
    }

    #[test]
    fn vectors_build_byte_for_byte() {
        for name in vector_names() {
            let json = vector_json(&format!("{name}.json"));
            let file = expected_file(&json);
            let digest = file.sha256_digest().unwrap();
            if !file.terms.is_empty() {
                assert_eq!(digest.to_vec(), unhex(json["sha256"].as_str().unwrap()), "{name}");
            }

            // From the file's own chunks (what a client pipeline has) ...
            let mut a = ShardBuilder::new();
            // ... and from the xorb's chunk list.
            let mut b = ShardBuilder::new();
            if let Some((xh, chunks)) = expected_xorb(&json) {
                assert!(a.add_xorb(xh, &chunks).unwrap());
                assert!(b.add_xorb(xh, &chunks).unwrap());
            }
            let fh = a
                .add_file_from_chunks(&file_chunks(&json), file.terms.clone(), Some(digest))
                .unwrap();
            assert_eq!(fh, file.file_hash, "{name}");
            assert!(b
                .add_file(file.file_hash, file.terms.clone(), Some(digest))
                .unwrap());
            // A repeated file is dropped.
            assert!(!b
                .add_file(file.file_hash, file.terms.clone(), Some(digest))
                .unwrap());

            let upload_bin = read_vector(&format!("{name}.shard.upload.bin"));
            let full_bin = read_vector(&format!("{name}.shard.full.bin"));
            for (which, builder) in [("from chunks", a), ("from xorbs", b)] {
                assert_eq!(builder.upload_len(), upload_bin.len() as u64, "{name} {which}");
                assert_eq!(builder.full_len(), full_bin.len() as u64, "{name} {which}");
                let shard = builder.build();
                assert_eq!(shard.files, std::slice::from_ref(&file), "{name} {which}");
                assert!(
                    shard.to_upload_bytes().unwrap() == upload_bin,
                    "{name} {which}: upload bytes differ"
                );
                assert!(
                    shard.to_full_bytes(&FullOptions::default()).unwrap() == full_bin,
                    "{name} {which}: full bytes differ"
                );
            }

            // The upload body is the full shard cut at file_lookup_offset, footer_size 0.
            let cut = num(&json["shard"]["full"]["footer"]["file_lookup_offset"]) as usize;
            let mut expected = full_bin[..cut].to_vec();
            expected[40..48].fill(0);
            assert_eq!(expected, upload_bin, "{name}");
        }
    }

    #[test]
    fn vectors_reencode_unchanged() {
        for name in vector_names() {
            for form in ["upload", "full", "stored"] {
                let bytes = read_vector(&format!("{name}.shard.{form}.bin"));
                let shard = Shard::decode(&bytes).unwrap();
                assert!(shard.to_bytes().unwrap() == bytes, "{name} {form}");
            }
        }
    }

    #[test]
    fn vectors_stored_form_from_upload() {
        // What the reference server stores: files deduplicated, bit 31 on file-start
        // chunks, empty lookup tables, expiry 0 (its creation timestamp is 0 too).
        for name in vector_names() {
            let mut shard = Shard::decode(&read_vector(&format!("{name}.shard.upload.bin"))).unwrap();
            shard.dedup_files();
            let stored = shard
                .with_global_dedup_flags()
                .to_full_bytes(&FullOptions::server_stored(0))
                .unwrap();
            assert!(
                stored == read_vector(&format!("{name}.shard.stored.bin")),
                "{name}"
            );
        }
    }

    #[test]
    fn vectors_global_dedup_chunks() {
        for name in vector_names() {
            let json = vector_json(&format!("{name}.json"));
            let shard = Shard::decode(&read_vector(&format!("{name}.shard.upload.bin"))).unwrap();
            let mut expected: Vec<MerkleHash> = Vec::new();
            if let Some((_, chunks)) = expected_xorb(&json) {
                for (i, (h, _)) in chunks.iter().enumerate() {
                    if i == 0 || h.is_global_dedup_eligible() {
                        expected.push(*h);
                    }
                }
            }
            assert_eq!(shard.global_dedup_eligible_chunks(), expected, "{name}");
            let stored = Shard::decode(&read_vector(&format!("{name}.shard.stored.bin"))).unwrap();
            assert_eq!(stored.global_dedup_eligible_chunks(), expected, "{name}");
        }
    }

    #[test]
    fn vectors_verify_against_their_xorb() {
        for name in vector_names() {
            let shard = Shard::decode(&read_vector(&format!("{name}.shard.upload.bin"))).unwrap();
            let stored: Vec<StoredXorb> = shard.xorbs.iter().map(StoredXorb::from).collect();
            let lookup = |h: &MerkleHash| {
                shard
                    .xorbs
                    .iter()
                    .position(|x| x.xorb_hash == *h)
                    .map(|i| stored[i].clone())
            };
            shard.verify_terms(lookup).unwrap();
            shard.verify_xorbs(lookup).unwrap();
        }
    }

    fn hex_lines(lines: &[&str]) -> Vec<u8> {
        lines.iter().flat_map(|l| unhex(l)).collect()
    }

    /// XET-PROTOCOL.md §7.7, transcribed.
    const HELLO_WORLD_UPLOAD: [&str; 9] = [
        "48465265706f4d6574614461746100556967456a7b815783a5bdd95ccdd14aa902000000000000000000000000000000",
        "fd5ce8b743dd5ef19fb913fe8f75e225f6d9e817a8df09dd7fdb26a1a7228754000000c0010000000000000000000000",
        "119f359d8b37394e0213441f7a559081d97ba0cf5f4ea519b151e66f460bf56c000000000b0000000000000001000000",
        "30ea5cffdc2fef220c8aed157ead426e5846c32e7d9e785eda47689458270dc100000000000000000000000000000000",
        "083e4d93b9274db9faab7ddad7522ea5ee80537ae3ef84c4e9cdefe2acf7889000000000000000000000000000000000",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000000000000000000000000000000",
        "119f359d8b37394e0213441f7a559081d97ba0cf5f4ea519b151e66f460bf56c00000000010000000b00000000000000",
        "119f359d8b37394e0213441f7a559081d97ba0cf5f4ea519b151e66f460bf56c000000000b0000000000000000000000",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff00000000000000000000000000000000",
    ];

    /// XET-PROTOCOL.md §7.8: lookup tables and footer of the full `one_byte` shard.
    const ONE_BYTE_FULL_TAIL: [&str; 5] = [
        "0941f3f5faffa7490000000051feb2fc80edd4a40000000051feb2fc80edd4a400000000000000000100000000000000",
        "30000000000000002001000000000000b0010000000000000100000000000000bc010000000000000100000000000000",
        "c80100000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000ffffffffffffffff0000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000001000000000000000100000000000000d801000000000000",
    ];

    fn one_chunk_shard(data: &[u8]) -> Shard {
        let c = chunk_hash(data);
        let len = data.len() as u32;
        let mut b = ShardBuilder::new();
        b.add_xorb(c, &[(c, len)]).unwrap();
        let fh = file_hash(&[(c, u64::from(len))]);
        b.add_file(fh, vec![FileTerm::new(c, len, 0, 1)], Some(sha256(data)))
            .unwrap();
        b.build()
    }

    #[test]
    fn spec_hello_world_upload_shard() {
        let shard = one_chunk_shard(b"hello world");
        let bytes = shard.to_upload_bytes().unwrap();
        assert_eq!(bytes, hex_lines(&HELLO_WORLD_UPLOAD));
        assert_eq!(bytes.len(), 432);
        assert_eq!(Shard::decode(&bytes).unwrap(), shard);
    }

    #[test]
    fn spec_full_form_tail() {
        let full = one_chunk_shard(b"a")
            .to_full_bytes(&FullOptions::default())
            .unwrap();
        assert_eq!(full.len(), 672);
        assert_eq!(full[432..], hex_lines(&ONE_BYTE_FULL_TAIL)[..]);
        assert_eq!(full[40..48], 200u64.to_le_bytes());
    }

    // ---- typed errors ----

    fn one_byte_upload() -> Vec<u8> {
        read_vector("one_byte.shard.upload.bin")
    }

    fn one_byte_full() -> Vec<u8> {
        read_vector("one_byte.shard.full.bin")
    }

    #[test]
    fn error_wrong_magic() {
        let mut b = one_byte_upload();
        b[3] ^= 1;
        assert_eq!(
            Shard::decode(&b),
            Err(Error::BadMagic {
                what: "shard",
                offset: 0
            })
        );
    }

    #[test]
    fn error_wrong_header_version() {
        let mut b = one_byte_upload();
        b[32] = 3;
        assert_eq!(
            Shard::decode(&b),
            Err(Error::UnsupportedVersion {
                what: "shard header",
                version: 3,
                expected: "2"
            })
        );
    }

    #[test]
    fn error_wrong_footer_size() {
        let mut b = one_byte_upload();
        b[40] = 100;
        assert!(matches!(
            Shard::decode(&b),
            Err(Error::InvalidField { offset: 40, .. })
        ));
    }

    #[test]
    fn error_wrong_footer_version() {
        let mut b = one_byte_full();
        b[472] = 2;
        assert_eq!(
            Shard::decode(&b),
            Err(Error::UnsupportedVersion {
                what: "shard footer",
                version: 2,
                expected: "1"
            })
        );
    }

    #[test]
    fn error_footer_offsets_out_of_bounds() {
        // (footer field offset, value): each must be refused with the field's offset.
        let cases: [(usize, u64, &str); 9] = [
            (8, 47, "footer file_info_offset"),
            (16, 1 << 40, "footer cas_info_offset"),
            (24, 1 << 40, "footer file_lookup_offset"),
            (32, u64::MAX, "footer file_lookup_count"),
            (40, 1 << 40, "footer xorb_lookup_offset"),
            (48, 2, "footer xorb_lookup_count"),
            (56, 445, "footer chunk_lookup_offset"),
            (64, 7, "footer chunk_lookup_count"),
            (192, u64::MAX, "footer footer_offset"),
        ];
        for (field, value, what) in cases {
            let mut b = one_byte_full();
            b[472 + field..480 + field].copy_from_slice(&value.to_le_bytes());
            match Shard::decode(&b) {
                Err(Error::InvalidField { what: w, offset, .. }) => {
                    assert_eq!((w, offset), (what, 472 + field as u64), "{what}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // Tables that do not end at the footer.
        let mut b = one_byte_full();
        b.insert(472, 0);
        assert!(Shard::decode(&b).is_err());
    }

    #[test]
    fn error_missing_bookend() {
        // Upload shard without its CAS bookend: the section runs out.
        let b = one_byte_upload();
        match Shard::decode(&b[..b.len() - 48]) {
            Err(Error::Truncated {
                offset,
                needed: 48,
                remaining: 0,
                ..
            }) => assert_eq!(offset, 384),
            other => panic!("{other:?}"),
        }
        // Without the File Info bookend the CAS header is read as a file block and the
        // shard ends too early.
        let mut b = one_byte_upload();
        b.drain(240..288);
        assert!(matches!(Shard::decode(&b), Err(Error::Truncated { .. })));
    }

    #[test]
    fn error_verification_entries_missing() {
        // The flag says verification entries follow, but they were left out.
        let mut b = one_byte_upload();
        b.drain(144..192);
        assert!(matches!(Shard::decode(&b), Err(Error::Truncated { .. })));
        // Same with a count that promises more terms than there are.
        let mut b = one_byte_upload();
        b[84] = 2;
        assert!(matches!(Shard::decode(&b), Err(Error::Truncated { .. })));
    }

    #[test]
    fn error_trailing_garbage_in_upload_form() {
        let mut b = one_byte_upload();
        b.push(0);
        assert!(matches!(
            Shard::decode(&b),
            Err(Error::InvalidField {
                what: "upload shard",
                offset: 432,
                ..
            })
        ));
    }

    #[test]
    fn error_truncated_everywhere() {
        for bytes in [
            one_byte_upload(),
            one_byte_full(),
            read_vector("empty.shard.stored.bin"),
        ] {
            for cut in 0..bytes.len() {
                assert!(Shard::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(
            Shard::decode(&[]),
            Err(Error::truncated("shard header", 0, 48, 0))
        );
    }

    #[test]
    fn lying_counts_do_not_allocate() {
        // A count of u32::MAX entries would ask for hundreds of GB if it drove an
        // allocation; the decoder must refuse it from the bytes left instead.
        for at in [84usize, 324] {
            let mut b = one_byte_upload();
            b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(
                matches!(Shard::decode(&b), Err(Error::Truncated { .. })),
                "count at {at}"
            );
        }
        let mut b = one_byte_full();
        b[472 + 64..472 + 72].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Shard::decode(&b).is_err());
    }

    #[test]
    fn huggingface_js_footer_is_accepted() {
        // huggingface.js uploads a footer whose six lookup fields are 0 and whose
        // statistics differ from xet-core's (§7.1 [OBS]).
        let shard = one_chunk_shard(b"a");
        let mut b = shard
            .to_full_bytes(&FullOptions::server_stored(1_700_000_000))
            .unwrap();
        let f = b.len() - FOOTER_BYTES;
        b[f + 24..f + 72].fill(0);
        b[f + 176..f + 184].fill(0); // materialized_bytes 0
        let back = Shard::decode(&b).unwrap();
        assert_eq!(
            (back.files.clone(), back.xorbs.clone()),
            (shard.files.clone(), shard.xorbs.clone())
        );
        assert_eq!(back.footer.unwrap().file_lookup_offset, 0);
        assert_eq!(back.footer.unwrap().creation_timestamp, 1_700_000_000);
        // With zero lookup fields, nothing may sit between the sections and the footer.
        let mut longer = b.clone();
        longer.splice(f..f, [0u8; 12]);
        let n = longer.len() as u64 - 200;
        longer[f + 12 + 192..].copy_from_slice(&n.to_le_bytes());
        assert!(matches!(
            Shard::decode(&longer),
            Err(Error::InvalidField {
                what: "shard lookup tables",
                ..
            })
        ));
    }

    // ---- properties ----

    fn arb_hash() -> impl Strategy<Value = MerkleHash> {
        any::<[u8; 32]>()
            .prop_map(MerkleHash::from_bytes)
            .prop_filter("bookend", |h| *h != MerkleHash::BOOKEND)
    }

    fn arb_file() -> impl Strategy<Value = FileInfo> {
        let term = (arb_hash(), any::<[u32; 4]>(), arb_hash()).prop_map(|(x, v, r)| {
            (
                FileTerm {
                    xorb_hash: x,
                    cas_flags: v[0] % 3,
                    unpacked_bytes: v[1],
                    chunk_start: v[2],
                    chunk_end: v[3],
                },
                r,
            )
        });
        (
            arb_hash(),
            prop::collection::vec(term, 0..5),
            any::<bool>(),
            prop::option::of(arb_hash()),
        )
            .prop_map(|(file_hash, terms, with_v, sha256)| FileInfo {
                file_hash,
                verification: with_v.then(|| terms.iter().map(|t| t.1).collect()),
                terms: terms.into_iter().map(|t| t.0).collect(),
                sha256,
            })
    }

    fn arb_xorb() -> impl Strategy<Value = XorbInfo> {
        let chunk = (arb_hash(), any::<[u32; 3]>()).prop_map(|(hash, v)| XorbChunk {
            hash,
            uncompressed_start: v[0],
            len: v[1],
            flags: v[2] & CHUNK_FLAG_GLOBAL_DEDUP,
        });
        (arb_hash(), any::<[u32; 3]>(), prop::collection::vec(chunk, 0..6)).prop_map(
            |(xorb_hash, v, chunks)| XorbInfo {
                xorb_hash,
                flags: v[0] % 2,
                chunks,
                num_bytes_in_cas: v[1],
                num_bytes_on_disk: v[2],
            },
        )
    }

    fn arb_shard() -> impl Strategy<Value = Shard> {
        (
            prop::collection::vec(arb_file(), 0..5),
            prop::collection::vec(arb_xorb(), 0..4),
        )
            .prop_map(|(files, xorbs)| Shard::new(files, xorbs))
    }

    fn arb_options() -> impl Strategy<Value = FullOptions> {
        (
            prop::option::of(any::<[u8; 32]>()),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(key, creation_timestamp, key_expiry, lookup_tables)| FullOptions {
                    hmac_key: key.unwrap_or([0; 32]),
                    creation_timestamp,
                    key_expiry,
                    lookup_tables,
                },
            )
    }

    /// The fuzz target's property: whatever decodes re-encodes in the same form, the
    /// re-encoding decodes to the same content and footer choices, and re-encoding is
    /// idempotent.
    fn reencode_is_stable(bytes: &[u8]) {
        if let Ok(s) = Shard::decode(bytes) {
            let again = s.to_bytes().expect("a decoded shard re-encodes");
            let t = Shard::decode(&again).expect("a re-encoded shard decodes");
            assert_eq!((&t.files, &t.xorbs), (&s.files, &s.xorbs));
            assert_eq!(
                t.footer.map(|f| FullOptions::from(&f)),
                s.footer.map(|f| FullOptions::from(&f))
            );
            assert_eq!(t.to_bytes().unwrap(), again);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn upload_round_trip(shard in arb_shard()) {
            let bytes = shard.to_upload_bytes().unwrap();
            prop_assert_eq!(bytes.len() as u64, shard.upload_len());
            prop_assert_eq!(Shard::decode(&bytes).unwrap(), shard);
        }

        #[test]
        fn full_round_trip(shard in arb_shard(), options in arb_options()) {
            let bytes = shard.to_full_bytes(&options).unwrap();
            prop_assert_eq!(bytes.len() as u64, shard.full_len(options.lookup_tables));
            let back = Shard::decode(&bytes).unwrap();
            prop_assert_eq!(&back.files, &shard.files);
            prop_assert_eq!(&back.xorbs, &shard.xorbs);
            prop_assert_eq!(back.footer, Some(shard.footer_for(&options).unwrap()));
            prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        }

        #[test]
        fn built_shards_upload_is_full_cut_short(shard in arb_shard()) {
            let full = shard.to_full_bytes(&FullOptions::default()).unwrap();
            let mut cut = full[..shard.upload_len() as usize].to_vec();
            cut[40..48].fill(0);
            prop_assert_eq!(cut, shard.to_upload_bytes().unwrap());
        }

        #[test]
        fn truncation_anywhere_is_an_error(shard in arb_shard(), options in arb_options()) {
            for bytes in [shard.to_upload_bytes().unwrap(), shard.to_full_bytes(&options).unwrap()] {
                let step = 1 + bytes.len() / 400;
                for cut in (0..bytes.len()).step_by(step).chain(bytes.len().saturating_sub(60)..bytes.len()) {
                    prop_assert!(Shard::decode(&bytes[..cut]).is_err(), "cut at {}", cut);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            reencode_is_stable(&bytes);
            // Past the magic too: valid header, then anything.
            for footer_size in [0u64, 200] {
                let mut b = HEADER_TAG.to_vec();
                b.extend_from_slice(&HEADER_VERSION.to_le_bytes());
                b.extend_from_slice(&footer_size.to_le_bytes());
                b.extend_from_slice(&bytes);
                reencode_is_stable(&b);
            }
        }

        #[test]
        fn mutated_shards_never_panic(
            shard in arb_shard(),
            options in arb_options(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            for mut bytes in [shard.to_upload_bytes().unwrap(), shard.to_full_bytes(&options).unwrap()] {
                for (at, v) in &edits {
                    let i = at.index(bytes.len());
                    bytes[i] = *v;
                }
                reencode_is_stable(&bytes);
            }
        }
    }
}
