//! Integration tests of the `xet` binary (one test binary: see STYLE.md §8).

mod support;

mod cli;
mod differential;
mod interop;
mod restart;
mod serve;
mod transfer;
