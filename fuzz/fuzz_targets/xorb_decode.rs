#![no_main]
//! The xorb decoders (whole xorb, record run, footer, header, validation) never panic
//! on any bytes, and agree with one another and with the encoders:
//! - a whole-xorb decode that succeeds validates under the hash it computed (if it
//!   has chunks), and validation never succeeds where decoding fails;
//! - a record run decodes to as many bytes as its headers declare, and to the same
//!   chunks as the whole-xorb decode when there is no footer;
//! - a version 1 footer that decodes re-encodes to the same bytes;
//! - a rebuilt xorb (records + summary footer) decodes to the same chunks.
use libfuzzer_sys::fuzz_target;
use xet_format::xorb::{
    decode_chunk_run, decode_xorb, validate_xorb, ChunkHeader, ChunkRecords, XorbObjectInfo, MAX_XORB_CHUNKS,
};
use xet_format::MerkleHash;

fuzz_target!(|data: &[u8]| {
    let _ = ChunkHeader::parse(data);
    let _ = ChunkRecords::new(data).decoded().count();

    if let Ok(info) = XorbObjectInfo::decode(data) {
        if info.version() == 1 {
            assert_eq!(info.to_bytes().expect("a decoded V1 footer re-encodes"), data);
        }
    }
    if let Ok((info, start)) = XorbObjectInfo::from_xorb_tail(data) {
        assert_eq!(XorbObjectInfo::decode(&data[start..]).as_ref(), Ok(&info));
    }

    let mut out = vec![0xA5];
    let run = decode_chunk_run(data, &mut out);
    match &run {
        Ok(headers) => {
            let total: usize = headers.iter().map(|h| h.uncompressed_len as usize).sum();
            assert_eq!(out.len(), 1 + total);
        }
        Err(_) => assert_eq!(out, [0xA5], "a failed run leaves the output alone"),
    }

    match decode_xorb(data) {
        Ok(d) => {
            if let Ok(headers) = &run {
                if d.footer.is_none() {
                    assert_eq!(headers.len(), d.chunks.len());
                    assert_eq!(out[1..], d.chunks.concat_data());
                }
            }
            match validate_xorb(data, &d.hash) {
                Ok(s) => {
                    assert_eq!(s.chunks.len(), d.chunks.len());
                    assert_eq!(s.body_len, d.body_len);
                    let footer = s.footer();
                    let mut rebuilt = data[..s.body_len].to_vec();
                    footer.write_to(&mut rebuilt).expect("summary footer encodes");
                    let again = decode_xorb(&rebuilt).expect("rebuilt xorb decodes");
                    assert_eq!(again.chunks, d.chunks);
                    assert_eq!(again.footer.as_ref(), Some(&footer));
                }
                // Only an empty xorb, or one over the size limit, is refused.
                Err(e) => assert!(d.chunks.is_empty() || data.len() > 64 << 20, "{e}"),
            }
        }
        Err(_) => {
            assert!(validate_xorb(data, &MerkleHash::ZERO).is_err());
            if let Ok(h) = &run {
                // The run decoded, so only the chunk limit can have failed it.
                assert!(h.len() > MAX_XORB_CHUNKS || data.is_empty());
            }
        }
    }
});

trait ConcatData {
    fn concat_data(&self) -> Vec<u8>;
}

impl ConcatData for Vec<xet_format::xorb::DecodedChunk> {
    fn concat_data(&self) -> Vec<u8> {
        self.iter().flat_map(|c| c.data.iter().copied()).collect()
    }
}
