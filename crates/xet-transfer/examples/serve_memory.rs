//! Serves an in-memory CAS over HTTP until killed, for whole-process benchmarks of
//! `xet` against the official client on one server (see BENCHMARKS.md). Prints the
//! base URL. `cargo run --release --features testing --example serve_memory [PORT]`

use std::sync::Arc;

#[tokio::main]
async fn main() {
    let cas = Arc::new(xet_transfer::testing::MemoryCas::new());
    let base = xet_transfer::testing::serve(cas).await.expect("binding a port");
    println!("{base}");
    std::future::pending::<()>().await;
}
