//! Integration tests of the CAS server over real HTTP on loopback: the official
//! client (PyPI `hf-xet==1.8.0`) end to end on every route family, bad input, auth,
//! and concurrency.

mod api;
mod chunk_hashes;
mod concurrency;
mod official;
mod support;
