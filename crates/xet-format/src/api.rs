//! JSON bodies of the CAS HTTP API (XET-PROTOCOL.md §9-§11, `CLIENT-WIRE.md`):
//! the shapes a server sends and a client parses, shared so both sides speak one
//! vocabulary. Serde types only; no HTTP here.
//!
//! Unknown fields are ignored on input (robust clients), and hashes use the protocol
//! string form through [`MerkleHash`]'s serde impls.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::MerkleHash;

/// Half-open index range `[start, end)` (chunk indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRange {
    /// First index.
    pub start: u32,
    /// One past the last index.
    pub end: u32,
}

/// Inclusive byte range `[start, end]` (HTTP `Range` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRangeInclusive {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

/// One term of a reconstruction: a chunk range of a xorb (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionTerm {
    /// The xorb.
    pub hash: MerkleHash,
    /// Decoded length of the term; clients must check it.
    pub unpacked_length: u32,
    /// Chunk indices in the xorb, end-exclusive.
    pub range: IndexRange,
}

/// One range of a [`XorbMultiRangeFetch`]: chunks and the stored bytes holding them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XorbRangeDescriptor {
    /// Chunk indices, end-exclusive.
    pub chunks: IndexRange,
    /// Byte offsets in the stored xorb (headers included), end-inclusive.
    pub bytes: ByteRangeInclusive,
}

/// A signed URL and the byte ranges of one xorb to fetch from it in one GET (§9.2, §9.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XorbMultiRangeFetch {
    /// Short-lived URL carrying its own authorisation.
    pub url: String,
    /// Ranges in ascending order; send them all in one `Range` header.
    pub ranges: Vec<XorbRangeDescriptor>,
}

/// `GET /v2/reconstructions/{file_id}` response (§9.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionV2 {
    /// Bytes of the first term's output to skip (non-zero only for ranges).
    pub offset_into_first_range: u64,
    /// Terms in file order.
    pub terms: Vec<ReconstructionTerm>,
    /// Where to fetch each xorb's data.
    pub xorbs: BTreeMap<MerkleHash, Vec<XorbMultiRangeFetch>>,
}

/// One fetch entry of the v1 response (§9.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchInfoV1 {
    /// Chunk range this URL yields, end-exclusive.
    pub range: IndexRange,
    /// URL to GET with `Range: bytes=url_range.start-url_range.end`.
    pub url: String,
    /// Byte range to request, end-inclusive.
    pub url_range: ByteRangeInclusive,
}

/// `GET /v1/reconstructions/{file_id}` response (§9.3, deprecated but served).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionV1 {
    /// Bytes of the first term's output to skip.
    pub offset_into_first_range: u64,
    /// Terms in file order.
    pub terms: Vec<ReconstructionTerm>,
    /// Fetch entries per xorb.
    pub fetch_info: BTreeMap<MerkleHash, Vec<FetchInfoV1>>,
}

impl From<ReconstructionV1> for ReconstructionV2 {
    /// Each v1 fetch entry becomes a one-range fetch (§9.3).
    fn from(v1: ReconstructionV1) -> Self {
        let xorbs = v1
            .fetch_info
            .into_iter()
            .map(|(hash, infos)| {
                let fetches = infos
                    .into_iter()
                    .map(|fi| XorbMultiRangeFetch {
                        url: fi.url,
                        ranges: vec![XorbRangeDescriptor {
                            chunks: fi.range,
                            bytes: fi.url_range,
                        }],
                    })
                    .collect();
                (hash, fetches)
            })
            .collect();
        ReconstructionV2 {
            offset_into_first_range: v1.offset_into_first_range,
            terms: v1.terms,
            xorbs,
        }
    }
}

/// Batch reconstruction response (`POST /v1/reconstructions`, §9.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReconstructionV1 {
    /// Terms of each requested file.
    pub files: BTreeMap<MerkleHash, Vec<ReconstructionTerm>>,
    /// Fetch entries shared by all files.
    pub fetch_info: BTreeMap<MerkleHash, Vec<FetchInfoV1>>,
}

/// One item of the batch reconstruction request body (§10.2 #6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// Always `default`.
    pub prefix: String,
    /// The file hash.
    pub hash: MerkleHash,
}

/// `POST /v1/xorbs/{prefix}/{hash}` response (§10.2 #3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadXorbResponse {
    /// `false` when the xorb already existed (not an error).
    pub was_inserted: bool,
}

/// `POST /v1/shards` response (§10.2 #4): 0 = already existed, 1 = registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadShardResponse {
    /// Informational; any 200 means the files are registered.
    pub result: u8,
}

/// Stage of a `committing` event of `/v2/shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitStage {
    /// Writing the shard object.
    Uploading,
    /// Registering file ids, the dedup index, the shard list.
    Syncing,
}

/// One NDJSON line of the `/v2/shards` response (§10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ShardUploadEvent {
    /// Validation progress (`total` grows while the body still arrives).
    Validating {
        /// Items verified so far.
        verified: u64,
        /// Items known so far.
        total: u64,
    },
    /// A durable write is in progress.
    Committing {
        /// Which one.
        stage: CommitStage,
    },
    /// Terminal success; `result` may be absent (the official local server omits it).
    Result {
        /// 0 = already existed, 1 = registered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<u8>,
    },
    /// Terminal failure.
    Error {
        /// What went wrong.
        message: String,
        /// Whether retrying the whole upload may succeed.
        #[serde(default)]
        retryable: bool,
    },
    /// A type this version does not know; clients ignore it (§10.3).
    #[serde(other)]
    Unknown,
}

/// Checksum of a xorb grant request (CLIENT-WIRE.md): CRC-64/NVME as a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantChecksum {
    /// `crc64nvme`.
    pub algo: String,
    /// The CRC as a decimal `u64`.
    pub value: String,
}

/// `POST /v1/xorb-grants/{prefix}/{hash}` request body (XET-PROTOCOL.md §10.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XorbGrantRequest {
    /// Body length in bytes.
    pub length: u64,
    /// Body checksum.
    pub checksum: GrantChecksum,
}

/// `POST /v1/xorb-grants/...` 201 response: where and how to send the xorb (§10.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XorbGrant {
    /// Grant id, used in the commit URL.
    pub id: String,
    /// HTTP method for the upload (`PUT`).
    pub method: String,
    /// Upload URL (carries its own authorisation).
    pub url: String,
    /// Headers to send with the upload.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The Hub's xet token endpoint response (§11.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XetTokenResponse {
    /// CAS bearer token.
    pub access_token: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// CAS base URL.
    pub cas_url: String,
}

/// CRC-64/NVME (reflected poly `0x9A6C9329AC4BC9B5`, init and xorout all ones), the
/// checksum of xorb grant requests (§10.7).
pub fn crc64_nvme(data: &[u8]) -> u64 {
    let mut d = Crc64Nvme::new();
    d.update(data);
    d.finish()
}

/// [`crc64_nvme`] of data given in pieces.
///
/// Carry-less multiplication folding (VPCLMULQDQ / PCLMULQDQ / PMULL, chosen at
/// run time; a table fallback elsewhere). Client and server each checksum every
/// uploaded xorb and the chunk cache every entry, so it shows on profiles:
/// crc-fast ran 1 GiB in 35 ms on a Zen 4 (AVX-512) against 76-98 ms for the
/// PCLMULQDQ-only crc64fast-nvme used before, and 1.5-1.8x faster on an Intel
/// Xeon without VPCLMULQDQ.
#[derive(Clone)]
pub struct Crc64Nvme(crc_fast::Digest);

impl Crc64Nvme {
    /// The checksum of nothing yet.
    pub fn new() -> Self {
        Crc64Nvme(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum of everything fed.
    pub fn finish(&self) -> u64 {
        self.0.finalize()
    }
}

impl Default for Crc64Nvme {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc64Nvme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Crc64Nvme({:#018x})", self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_nvme_check_value() {
        assert_eq!(crc64_nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
        let mut d = Crc64Nvme::new();
        for piece in [&b"1234"[..], b"", b"56789"] {
            d.update(piece);
        }
        assert_eq!(d.finish(), 0xAE8B_1486_0A79_9888);
        // Agrees with the plain bitwise definition.
        fn bitwise(data: &[u8]) -> u64 {
            let mut crc = !0u64;
            for &b in data {
                crc ^= b as u64;
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0x9A6C_9329_AC4B_C9B5
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        // Short inputs, the SIMD path's block sizes and their neighbours, and
        // every start alignment.
        for n in (0..300).chain([511, 512, 513, 1000, 4095, 4096, 4097, 65_536, 69_999]) {
            assert_eq!(crc64_nvme(&data[..n]), bitwise(&data[..n]), "length {n}");
        }
        for start in 1..64 {
            let s = &data[start..start + 5000];
            assert_eq!(crc64_nvme(s), bitwise(s), "start {start}");
        }
        // Fed in large uneven pieces, as xorb bodies and cache entries are: the state
        // carried between `update`s of the SIMD path.
        let mut d = Crc64Nvme::new();
        let mut rest = &data[..];
        for n in [1, 17, 4097, 65_000, 3, 511].into_iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            d.update(piece);
            rest = tail;
        }
        assert_eq!(d.finish(), bitwise(&data));
    }

    #[test]
    fn parses_the_recorded_exchange() {
        let dir = crate::test_support::vectors_dir().join("http_trace_xorshift_100000");
        let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
        let grant_req: XorbGrantRequest = serde_json::from_slice(&read("000003.req.bin")).unwrap();
        let body = read("000004.req.bin");
        assert_eq!(grant_req.length, body.len() as u64);
        assert_eq!(grant_req.checksum.value, crc64_nvme(&body).to_string());
        let grant: XorbGrant = serde_json::from_slice(&read("000003.resp.bin")).unwrap();
        assert_eq!(grant.method, "PUT");
        assert_eq!(grant.headers["if-none-match"], "*");
        let events: Vec<ShardUploadEvent> = String::from_utf8(read("000006.resp.bin"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.last(), Some(&ShardUploadEvent::Result { result: None }));
        assert_eq!(
            events[0],
            ShardUploadEvent::Validating {
                verified: 0,
                total: 1
            }
        );
        let rec: ReconstructionV2 = serde_json::from_slice(&read("000008.resp.bin")).unwrap();
        assert_eq!(rec.terms[0].unpacked_length, 100000);
        let fetch = &rec.xorbs[&rec.terms[0].hash][0];
        assert_eq!(
            fetch.ranges[0].bytes,
            ByteRangeInclusive {
                start: 0,
                end: 100015
            }
        );
        assert_eq!(
            serde_json::to_value(&rec).unwrap(),
            serde_json::from_slice::<serde_json::Value>(&read("000008.resp.bin")).unwrap()
        );
    }

    #[test]
    fn unknown_events_and_retryable_errors() {
        let e: ShardUploadEvent = serde_json::from_str(r#"{"type":"heartbeat","x":1}"#).unwrap();
        assert_eq!(e, ShardUploadEvent::Unknown);
        let e: ShardUploadEvent =
            serde_json::from_str(r#"{"type":"error","message":"m","retryable":true}"#).unwrap();
        assert_eq!(
            e,
            ShardUploadEvent::Error {
                message: "m".into(),
                retryable: true
            }
        );
        let e: ShardUploadEvent = serde_json::from_str(r#"{"type":"committing","stage":"syncing"}"#).unwrap();
        assert_eq!(
            e,
            ShardUploadEvent::Committing {
                stage: CommitStage::Syncing
            }
        );
    }

    #[test]
    fn v1_maps_to_v2() {
        let h = MerkleHash::from_bytes([1; 32]);
        let v1 = ReconstructionV1 {
            offset_into_first_range: 5,
            terms: vec![ReconstructionTerm {
                hash: h,
                unpacked_length: 10,
                range: IndexRange { start: 0, end: 2 },
            }],
            fetch_info: [(
                h,
                vec![FetchInfoV1 {
                    range: IndexRange { start: 0, end: 2 },
                    url: "u".into(),
                    url_range: ByteRangeInclusive { start: 0, end: 99 },
                }],
            )]
            .into(),
        };
        let v2 = ReconstructionV2::from(v1);
        assert_eq!(v2.xorbs[&h][0].ranges[0].bytes.end, 99);
        assert_eq!(v2.offset_into_first_range, 5);
    }
}
