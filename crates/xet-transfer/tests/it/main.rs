//! Integration tests of xet-transfer through its public API (one binary, STYLE.md §8).

mod http;
mod mock;
