//! Integration tests of xet-transfer through its public API (one binary, STYLE.md §8).

mod download;
mod http;
mod mock;
mod support;
mod upload;
