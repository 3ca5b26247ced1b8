//! `xet serve`: run a CAS server. Settings come from flags or `XET_SERVE_*`
//! environment variables; everything else is `xet-server`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use xet_server::{AuthConfig, Server, ServerConfig};
use xet_store::{S3Config, StoreConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// Directory holding the stored objects, the server secret and the generated user
    /// token [default: $XDG_DATA_HOME/xet/server or ~/.local/share/xet/server].
    #[arg(long, env = "XET_SERVE_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "XET_SERVE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// A user token allowed to get CAS tokens (repeatable; env: comma-separated).
    /// Without one, a token is generated, kept in the data directory and printed.
    #[arg(long = "user-token", env = "XET_SERVE_USER_TOKENS", value_delimiter = ',')]
    user_tokens: Vec<String>,
    /// Base URL clients reach the server at [default: http:// + the request's Host].
    #[arg(long, env = "XET_SERVE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lifetime of CAS tokens and signed URLs, in seconds.
    #[arg(long, env = "XET_SERVE_TOKEN_TTL", default_value_t = 3600)]
    token_ttl: u64,
    /// Serve CAS routes without any token (trusted networks and tests only).
    #[arg(long, env = "XET_SERVE_NO_AUTH")]
    no_auth: bool,
    /// Keep objects in this S3-compatible endpoint instead of the data directory
    /// (e.g. http://127.0.0.1:9000); needs --s3-bucket. Servers sharing a bucket
    /// should share `server-secret` too.
    #[arg(long, env = "XET_SERVE_S3_ENDPOINT", requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The bucket (must exist).
    #[arg(long, env = "XET_SERVE_S3_BUCKET")]
    s3_bucket: Option<String>,
    /// Signing region.
    #[arg(long, env = "XET_SERVE_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// Key prefix inside the bucket.
    #[arg(long, env = "XET_SERVE_S3_PREFIX", default_value = "")]
    s3_prefix: String,
    /// Access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "", hide_env_values = true)]
    s3_access_key_id: String,
    /// Secret access key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    s3_secret_access_key: String,
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("xet").join("server");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local").join("share").join("xet").join("server")
}

/// Reads a hex secret kept in `path`, or creates one (readable by the owner only).
fn load_or_create(path: &Path, len: usize) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut b = vec![0u8; len];
    xet_store::random_bytes(&mut b);
    let value = xet_format::hash::hex(&b);
    let tmp = path.with_extension("tmp");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(value)
}

pub fn run(args: ServeArgs) -> Result<()> {
    let data = args.data.unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data).with_context(|| format!("creating data directory {}", data.display()))?;
    let mut user_tokens = args.user_tokens;
    user_tokens.retain(|t| !t.is_empty());
    let generated = if user_tokens.is_empty() {
        let t = format!("xet_user_{}", load_or_create(&data.join("user-token"), 24)?);
        user_tokens.push(t.clone());
        Some(t)
    } else {
        None
    };
    // The secret signs CAS tokens and URLs; keeping it makes tokens survive restarts.
    let secret_hex = load_or_create(&data.join("server-secret"), 32)?;
    let mut secret = [0u8; 32];
    for (i, b) in secret.iter_mut().enumerate() {
        *b = u8::from_str_radix(
            secret_hex
                .get(2 * i..2 * i + 2)
                .context("server-secret is too short")?,
            16,
        )
        .context("server-secret is not hex")?;
    }
    let mut auth = AuthConfig::new(user_tokens);
    auth.secret = secret;
    auth.token_ttl = Duration::from_secs(args.token_ttl);
    auth.url_ttl = Duration::from_secs(args.token_ttl);
    auth.open = args.no_auth;
    let config = ServerConfig {
        addr: args.addr,
        store: match args.s3_endpoint {
            Some(endpoint) => StoreConfig::S3(S3Config {
                endpoint,
                bucket: args.s3_bucket.unwrap_or_default(),
                region: args.s3_region,
                access_key_id: args.s3_access_key_id,
                secret_access_key: args.s3_secret_access_key,
                prefix: args.s3_prefix,
            }),
            None => StoreConfig::local(data.join("store")),
        },
        auth,
        public_url: args.public_url,
        shard_heartbeat: xet_server::DEFAULT_SHARD_HEARTBEAT,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let server = Server::bind(config).await?;
        let url = server.url().to_string();
        let mut out = std::io::stdout().lock();
        writeln!(out, "xet CAS server listening on {url}")?;
        writeln!(out, "data directory: {}", data.display())?;
        writeln!(out, "objects: {}", server.state().store().describe())?;
        if let Some(t) = &generated {
            writeln!(out, "user token (kept in {}): {t}", data.join("user-token").display())?;
            writeln!(
                out,
                "get a CAS token: curl -H 'Authorization: Bearer {t}' {url}/api/models/me/repo/xet-write-token/main"
            )?;
        }
        if args.no_auth {
            writeln!(out, "WARNING: --no-auth: anyone who reaches {url} can read and write")?;
        }
        out.flush()?;
        drop(out);
        server
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
