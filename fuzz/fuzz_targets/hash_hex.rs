#![no_main]
//! The hash string parser never panics, and whatever it accepts prints back the same
//! (up to letter case).
use libfuzzer_sys::fuzz_target;
use xet_format::MerkleHash;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(h) = MerkleHash::from_hex(s) {
            assert_eq!(h.to_string(), s.to_ascii_lowercase());
        }
    }
});
