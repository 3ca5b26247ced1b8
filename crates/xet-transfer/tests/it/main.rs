//! Integration tests of xet-transfer through its public API (one binary, STYLE.md §8).

mod download;
mod http;
mod interop;
mod mock;
mod support;
mod upload;
