//! The Xet CAS HTTP server: the API of XET-PROTOCOL.md §10 (v1 and v2 routes), the
//! grant -> PUT -> commit xorb upload and signed transfer URLs the official client
//! uses (`CLIENT-WIRE.md`), bearer tokens with read/write scopes, and the Hub's xet
//! token endpoints so the whole auth flow runs locally (§11). Storage is
//! [`xet_store::Store`].
//!
//! # Tour
//!
//! - [`ServerConfig`] (plain values) and [`AuthConfig`].
//! - [`Server::bind`] then [`Server::run`]; [`Server::url`] is where it listens.
//! - [`router`] gives the axum [`Router`](axum::Router) for embedding or tests.
//! - [`Error`]: the one mapping of failures to HTTP statuses.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("xet-server-doctest-{}", std::process::id()));
//! let config = xet_server::ServerConfig::new(
//!     xet_store::StoreConfig::local(&dir),
//!     xet_server::AuthConfig::new(vec!["user-token".into()]),
//! );
//! let server = xet_server::Server::bind(config).await.unwrap();
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```
//!
//! # Limits
//!
//! Single tenant: one namespace of content-addressed objects. CAS tokens from the
//! token endpoints record the repository and revision they were issued for, but
//! authorize every file (see [`AuthConfig::issue_repo_token`]). Xorb byte ranges
//! are streamed in blocks of [`xet_store::XorbRangeReader::MAX_BLOCK_BYTES`], so a
//! download holds one block per response in memory, not its whole range.
//! `/v2/file-chunk-hashes` answers with gap states in xet-core's subtree format
//! (see `xet_store::HashSubtree`), which no public spec documents.

#![deny(missing_docs)]

mod auth;
mod body;
mod error;
mod range;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use auth::{AuthConfig, Scope};
pub use error::{Error, Result};
use tokio::net::TcpListener;
use xet_store::{Store, StoreConfig};

/// Everything a server needs, as plain values (no environment reads here).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Where objects are kept.
    pub store: StoreConfig,
    /// Tokens, secrets, lifetimes.
    pub auth: AuthConfig,
    /// Base URL clients reach the server at (for `casUrl` and signed URLs); `None`:
    /// `http://` plus the request's `Host` header.
    pub public_url: Option<String>,
    /// How long a `/v2/shards` stream may stay silent before the last progress event
    /// is sent again as a heartbeat (§10.3); [`DEFAULT_SHARD_HEARTBEAT`] by default.
    pub shard_heartbeat: Duration,
}

/// The `/v2/shards` heartbeat interval: xet-core's comment says the server re-sends
/// progress about every 20 s during a stall (XET-PROTOCOL.md §10.3), well inside
/// the read timeouts clients use.
pub const DEFAULT_SHARD_HEARTBEAT: Duration = Duration::from_secs(20);

impl ServerConfig {
    /// Listening on `127.0.0.1`, a free port.
    pub fn new(store: StoreConfig, auth: AuthConfig) -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            store,
            auth,
            public_url: None,
            shard_heartbeat: DEFAULT_SHARD_HEARTBEAT,
        }
    }
}

/// Counts of requests served, by kind: lets tests (and operators) see which routes
/// a client used, e.g. that a repeated upload sent no xorb.
#[derive(Debug, Default)]
pub struct Stats {
    /// `POST /v1/xorb-grants/...` answered 201 (a new upload URL).
    pub xorb_grants: AtomicU64,
    /// Xorb bodies received: grant PUTs and direct `POST /v1/xorbs/...`.
    pub xorb_bodies: AtomicU64,
    /// Of those, direct `POST /v1/xorbs/...`.
    pub xorb_posts: AtomicU64,
    /// `POST /v1/shards`.
    pub shards_v1: AtomicU64,
    /// `POST /v2/shards`.
    pub shards_v2: AtomicU64,
    /// `GET /v1/reconstructions/...` (and the batch form).
    pub reconstructions_v1: AtomicU64,
    /// `GET /v2/reconstructions/...`.
    pub reconstructions_v2: AtomicU64,
    /// Signed fetch URL GETs.
    pub fetches: AtomicU64,
    /// Global-dedup queries.
    pub dedup_queries: AtomicU64,
    /// Heartbeat lines sent on `/v2/shards` streams (§10.3).
    pub shard_heartbeats: AtomicU64,
}

impl Stats {
    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Store,
    auth: std::sync::Arc<AuthConfig>,
    public_url: Option<String>,
    stats: std::sync::Arc<Stats>,
    shard_heartbeat: Duration,
    /// Buffers for xorb bodies.
    bodies: body::BodyPool,
}

impl AppState {
    /// State over an open store.
    pub fn new(store: Store, auth: AuthConfig, public_url: Option<String>) -> Self {
        AppState {
            store,
            auth: std::sync::Arc::new(auth),
            public_url,
            stats: Default::default(),
            shard_heartbeat: DEFAULT_SHARD_HEARTBEAT,
            bodies: xet_format::bufpool::Pool::new(body::POOL_IDLE),
        }
    }

    /// The same state with another `/v2/shards` heartbeat interval (at least 1 ms).
    pub fn with_shard_heartbeat(mut self, every: Duration) -> Self {
        self.shard_heartbeat = every.max(Duration::from_millis(1));
        self
    }

    /// Request counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The auth settings.
    pub fn auth(&self) -> &AuthConfig {
        &self.auth
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The CAS API as an axum router over `state`.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    url: String,
}

impl Server {
    /// Opens the store and binds the socket.
    pub async fn bind(config: ServerConfig) -> Result<Server> {
        let store = Store::open(config.store).await?;
        let listener = TcpListener::bind(config.addr).await.map_err(|source| Error::Io {
            op: "binding",
            addr: config.addr.to_string(),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| Error::Io {
            op: "reading the address of",
            addr: config.addr.to_string(),
            source,
        })?;
        let url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));
        tracing::info!(%url, data = %store.describe(), "xet CAS server listening");
        Ok(Server {
            listener,
            state: AppState::new(store, config.auth, config.public_url)
                .with_shard_heartbeat(config.shard_heartbeat),
            url,
        })
    }

    /// The base URL it answers at.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Its shared state (store, auth).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the task is dropped or the process ends.
    pub async fn run(self) -> Result<()> {
        let addr = self.url.clone();
        axum::serve(self.listener, router(self.state))
            .await
            .map_err(|source| Error::Io {
                op: "serving",
                addr,
                source,
            })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let addr = self.url.clone();
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| Error::Io {
                op: "serving",
                addr,
                source,
            })
    }
}

/// Binds and serves `config` until the process ends.
pub async fn serve(config: ServerConfig) -> Result<()> {
    Server::bind(config).await?.run().await
}
