#![no_main]
//! The shard decoder never panics on any bytes; whatever it accepts re-encodes in the
//! same form, decodes back to the same files, xorbs and footer choices, and re-encodes
//! to the same bytes again. The server- and client-side helpers never panic on a
//! decoded shard either.
use libfuzzer_sys::fuzz_target;
use xet_format::shard::{ChunkLookup, FullOptions, Shard, StoredXorb};

fuzz_target!(|data: &[u8]| {
    let Ok(shard) = Shard::decode(data) else {
        return;
    };
    let bytes = shard.to_bytes().expect("a decoded shard re-encodes");
    let again = Shard::decode(&bytes).expect("a re-encoded shard decodes");
    assert_eq!(again.files, shard.files);
    assert_eq!(again.xorbs, shard.xorbs);
    assert_eq!(
        again.footer.map(|f| FullOptions::from(&f)),
        shard.footer.map(|f| FullOptions::from(&f))
    );
    assert_eq!(again.to_bytes().expect("re-encodes"), bytes);

    // Helpers on hostile content: errors are fine, panics are not.
    let _ = shard.validate_for_upload();
    let _ = shard.global_dedup_eligible_chunks();
    let _ = shard.with_global_dedup_flags().to_full_bytes(&FullOptions::server_stored(0));
    let lookup = |h: &xet_format::MerkleHash| {
        shard.xorbs.iter().find(|x| x.xorb_hash == *h).map(StoredXorb::from)
    };
    let _ = shard.verify_terms(lookup);
    let _ = shard.verify_xorbs(lookup);
    if let Ok(resp) = shard.dedup_response([7; 32], 1, 2) {
        let b = resp.to_bytes().expect("a dedup response encodes");
        assert_eq!(Shard::decode(&b).expect("and decodes"), resp);
    }
    let index = ChunkLookup::new(&shard);
    if let Some(c) = shard.xorbs.first().and_then(|x| x.chunks.first()) {
        let _ = (index.find(&c.hash), shard.find_chunk(&c.hash));
    }
});
