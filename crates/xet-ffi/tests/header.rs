//! `include/hf_xet.h` is generated from this crate by cbindgen and committed; this test
//! fails when it is out of date. Regenerate: `HF_XET_BLESS=1 cargo test -p xet-ffi --test header`.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../../include/hf_xet.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    if std::env::var_os("HF_XET_BLESS").is_some() {
        std::fs::create_dir_all(header.parent().unwrap()).unwrap();
        std::fs::write(&header, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/hf_xet.h is out of date with crates/xet-ffi: regenerate it with\n  HF_XET_BLESS=1 cargo test -p xet-ffi --test header\nand commit it"
    );
}
