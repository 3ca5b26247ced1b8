//! `GET /v2/file-chunk-hashes` (§10.4), checked by what a client does with it: from
//! the gap states and the re-chunked windows it recomposes the file hash, which
//! must equal the real one, for the file as stored and after an edit of the dirty
//! bytes. The recomposition here is written from the format's meaning (each gap
//! state is its run of the file, as nodes of several Merkle levels in file order),
//! independently of the server's code and of xet-core's merge.

use serde_json::Value;
use xet_format::chunker::chunk_boundaries;
use xet_format::hash::{
    chunk_hash, file_hash, file_hash_from_root, internal_node_hash, verification_hash, HashedLength,
};
use xet_format::shard::{FileTerm, ShardBuilder};
use xet_format::xorb::{CompressionPolicy, XorbBuilder};
use xet_format::MerkleHash;
use xet_server::Scope;

use crate::support::{http, put_hand_upload, HandUpload, Rng, TestServer};

const CHUNKS_PER_TERM: usize = 10;

fn cdc_chunks(data: &[u8]) -> Vec<(usize, usize)> {
    let mut start = 0;
    chunk_boundaries(data)
        .into_iter()
        .map(|end| {
            let c = (start, end);
            start = end;
            c
        })
        .collect()
}

fn leaves(data: &[u8]) -> Vec<HashedLength> {
    cdc_chunks(data)
        .into_iter()
        .map(|(a, b)| (chunk_hash(&data[a..b]), (b - a) as u64))
        .collect()
}

/// `data` chunked as the client chunks (CDC), in one xorb, described by terms of
/// ten chunks each (so some terms lie outside the windows).
fn cdc_upload(data: Vec<u8>) -> (HandUpload, Vec<FileTerm>, Vec<HashedLength>) {
    let chunks = leaves(&data);
    let mut b = XorbBuilder::new(CompressionPolicy::None);
    let mut pos = 0usize;
    for &(h, l) in &chunks {
        assert!(b.add_chunk(h, &data[pos..pos + l as usize]).unwrap());
        pos += l as usize;
    }
    let x = b.finish();
    let mut sb = ShardBuilder::new();
    let list: Vec<(MerkleHash, u32)> = chunks.iter().map(|&(h, l)| (h, l as u32)).collect();
    sb.add_xorb(x.hash, &list).unwrap();
    let terms: Vec<FileTerm> = (0..chunks.len())
        .step_by(CHUNKS_PER_TERM)
        .map(|s| {
            let e = (s + CHUNKS_PER_TERM).min(chunks.len());
            let bytes: u64 = chunks[s..e].iter().map(|c| c.1).sum();
            FileTerm::new(x.hash, bytes as u32, s as u32, e as u32)
        })
        .collect();
    let file = sb.add_file_from_chunks(&chunks, terms.clone(), None).unwrap();
    assert_eq!(file, file_hash(&chunks));
    let u = HandUpload {
        data,
        xorb_hash: x.hash,
        xorb: x.body,
        shard: sb.build().to_upload_bytes().unwrap(),
        file_hash: file,
    };
    (u, terms, chunks)
}

/// Merkle group length (§4.3).
fn group_len(rest: &[HashedLength]) -> usize {
    if rest.len() <= 2 {
        return rest.len();
    }
    let limit = rest.len().min(9);
    (2..limit)
        .find(|&i| rest[i].0.w3().is_multiple_of(4))
        .map_or(limit, |i| i + 1)
}

fn parent(group: &[HashedLength]) -> HashedLength {
    let text: String = group.iter().map(|(h, l)| format!("{h} : {l}\n")).collect();
    (
        internal_node_hash(text.as_bytes()),
        group.iter().map(|g| g.1).sum(),
    )
}

/// The Merkle root of a file given as (level, node) items in file order, where a
/// level-k item stands for complete groups of the level below. Level by level,
/// each maximal run of items of the current level is grouped from its start: its
/// ends are group boundaries (that is what a gap state promises), so this is the
/// grouping the whole file's level has.
fn root_of(mut items: Vec<(usize, HashedLength)>) -> MerkleHash {
    let mut level = 0;
    while items.len() > 1 {
        let mut out = Vec::new();
        let mut i = 0;
        while i < items.len() {
            if items[i].0 != level {
                assert!(items[i].0 > level, "an item below the level being merged");
                out.push(items[i]);
                i += 1;
                continue;
            }
            let j = (i..items.len())
                .find(|&j| items[j].0 != level)
                .unwrap_or(items.len());
            let run: Vec<HashedLength> = items[i..j].iter().map(|x| x.1).collect();
            let mut rest = &run[..];
            while !rest.is_empty() {
                let n = group_len(rest);
                out.push((level + 1, parent(&rest[..n])));
                rest = &rest[n..];
            }
            i = j;
        }
        items = out;
        level += 1;
    }
    items[0].1 .0
}

/// A gap state's nodes as (level, node) items in file order.
fn gap_items(g: &Value) -> Vec<(usize, HashedLength)> {
    let nodes: Vec<HashedLength> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["hash"].as_str().unwrap().parse().unwrap(),
                n["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let levels: Vec<(usize, usize)> = serde_json::from_value(g["levels"].clone()).unwrap();
    assert_eq!(nodes.len(), levels.iter().map(|&(l, r)| l + r).sum::<usize>());
    let mut out = Vec::new();
    let mut k = 0;
    for (lvl, &(l, _)) in levels.iter().enumerate() {
        out.extend(nodes[k..k + l].iter().map(|&n| (lvl, n)));
        k += l;
    }
    for (lvl, &(_, r)) in levels.iter().enumerate().rev() {
        out.extend(nodes[k..k + r].iter().map(|&n| (lvl, n)));
        k += r;
    }
    out
}

/// The new file hash a client composes: gap states, and the windows of `edited`
/// re-chunked (`edited` has the original's length, so windows keep their offsets).
fn recompose(resp: &Value, edited: &[u8]) -> MerkleHash {
    let windows = resp["windows"].as_array().unwrap();
    let gaps = resp["hashRanges"].as_array().unwrap();
    assert_eq!(gaps.len(), windows.len() + 1);
    let mut items = Vec::new();
    for (i, g) in gaps.iter().enumerate() {
        if !g.is_null() {
            assert_eq!(g["at_start"], i == 0);
            assert_eq!(g["at_end"], i == windows.len());
            items.extend(gap_items(g));
        }
        if let Some(w) = windows.get(i) {
            let [a, b]: [usize; 2] = serde_json::from_value(w["dirtyByteRange"].clone()).unwrap();
            items.extend(leaves(&edited[a..b]).into_iter().map(|n| (0, n)));
        }
    }
    if items.is_empty() {
        return MerkleHash::ZERO;
    }
    file_hash_from_root(&root_of(items))
}

async fn query(server: &TestServer, file: &MerkleHash, dirty: Option<&str>) -> reqwest::Response {
    let mut req = http()
        .get(format!("{}/v2/file-chunk-hashes/{file}", server.url))
        .header("authorization", server.bearer(Scope::Read));
    if let Some(d) = dirty {
        req = req.header("x-range-dirty", d);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_states_and_rechunked_windows_recompose_the_file_hash() {
    let server = TestServer::start().await;
    let data = Rng::new(11).bytes(12 << 20);
    let (u, terms, chunks) = cdc_upload(data);
    put_hand_upload(&http(), &server.url, &server.bearer(Scope::Write), &u).await;
    let size = u.data.len() as u64;
    let ends: Vec<u64> = chunks
        .iter()
        .scan(0u64, |p, c| {
            *p += c.1;
            Some(*p)
        })
        .collect();

    // Unsorted, overlapping, one at the very start, one in the middle, one near
    // the end, one wholly past the end (dropped).
    let cases = [
        format!(
            "bytes=6000000-6000999,0-10,5999000-6000100,{}-{},{}-{}",
            size - 70_000,
            size - 69_000,
            size + 5,
            size + 9
        ),
        "bytes=3000000-3000000".to_string(),
        format!("bytes=100-200,{}-{}", size - 1, size - 1),
    ];
    for dirty in &cases {
        let resp = query(&server, &u.file_hash, Some(dirty)).await;
        assert_eq!(resp.status(), 200, "{dirty}");
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!(v["totalChunks"], chunks.len() as u64);
        assert_eq!(v["fileSize"], size);
        let windows: Vec<[u64; 2]> = v["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| serde_json::from_value(w["dirtyByteRange"].clone()).unwrap())
            .collect();
        // Windows are chunk-aligned, ordered, disjoint, and cover every dirty byte.
        for w in &windows {
            assert!(
                w[0] < w[1] && (w[0] == 0 || ends.contains(&w[0])) && ends.contains(&w[1]),
                "{w:?}"
            );
        }
        assert!(windows.windows(2).all(|p| p[0][1] <= p[1][0]));
        for r in dirty.strip_prefix("bytes=").unwrap().split(',') {
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            for x in [a, b].into_iter().filter(|&x| x < size) {
                assert!(
                    windows.iter().any(|w| w[0] <= x && x < w[1]),
                    "{x} not in a window"
                );
            }
        }

        // As stored: the recomposed hash is the file hash.
        assert_eq!(recompose(&v, &u.data), u.file_hash, "{dirty}");

        // Edited inside the dirty ranges: the recomposed hash is the hash of the
        // edited file chunked from scratch.
        let mut edited = u.data.clone();
        for r in dirty.strip_prefix("bytes=").unwrap().split(',') {
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            for x in a..=b.min(size - 1) {
                edited[x as usize] ^= 0x5a;
            }
        }
        assert_ne!(file_hash(&leaves(&edited)), u.file_hash);
        assert_eq!(
            recompose(&v, &edited),
            file_hash(&leaves(&edited)),
            "{dirty} (edited)"
        );

        // Verification hashes: exactly the terms outside every window, in order.
        let mut want = Vec::new();
        let mut start = 0u64;
        for t in &terms {
            let end = start + u64::from(t.unpacked_bytes);
            if !windows.iter().any(|w| w[0] < end && start < w[1]) {
                let hashes: Vec<MerkleHash> = chunks[t.chunk_start as usize..t.chunk_end as usize]
                    .iter()
                    .map(|c| c.0)
                    .collect();
                want.push(verification_hash(&hashes).to_string());
            }
            start = end;
        }
        let got: Vec<String> = serde_json::from_value(v["gapVerification"].clone()).unwrap();
        assert!(!got.is_empty() && got.len() < terms.len());
        assert_eq!(got, want, "{dirty}");
    }

    // Bad input.
    for (dirty, status) in [
        (None, 400),
        (Some("bytes=9-1"), 400),
        (Some("lines=0-1"), 400),
        (Some(&*format!("bytes={}-{}", size, size + 10)), 400),
    ] {
        assert_eq!(
            query(&server, &u.file_hash, dirty).await.status(),
            status,
            "{dirty:?}"
        );
    }
    let many = format!("bytes={}", vec!["0-0"; 5000].join(","));
    assert_eq!(query(&server, &u.file_hash, Some(&many)).await.status(), 400);
    let unknown = MerkleHash::from_bytes([9; 32]);
    assert_eq!(query(&server, &unknown, Some("bytes=0-1")).await.status(), 404);
    let resp = http()
        .get(format!("{}/v2/file-chunk-hashes/{}", server.url, u.file_hash))
        .header("x-range-dirty", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
