#![no_main]
//! The Git LFS pointer parser never panics, and whatever it accepts prints as a
//! canonical pointer that parses back to the same value and prints the same again.
use libfuzzer_sys::fuzz_target;
use xet_format::lfs_pointer::LfsPointer;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = LfsPointer::parse(data) {
        let text = p.to_string();
        let q = LfsPointer::parse(text.as_bytes()).expect("a printed pointer parses");
        assert_eq!(q, p);
        assert_eq!(q.to_string(), text);
        // A canonical input prints back unchanged (the legacy version URL is rewritten).
        if !data.starts_with(b"version https://hawser.github.com/") {
            assert_eq!(text.as_bytes(), data);
        }
    }
});
