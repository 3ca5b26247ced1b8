//! `xet upload PATH...`, and the CAS connection options shared by the transfer
//! commands.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use xet_transfer::{Auth, Cas, Config, HttpCas, HubTokenRefresher, LocalCas, Sha256Source, UploadSession};

use crate::progress::Bars;

/// How to reach a CAS: `--endpoint` (+ `--token`), or `--hub` + `--repo` (token
/// from `HF_TOKEN`), or neither for the embedded local store.
#[derive(clap::Args, Debug, Clone)]
pub struct CasArgs {
    /// CAS server base URL, e.g. http://127.0.0.1:8080 (a `xet serve` or the Hub's CAS).
    #[arg(long, conflicts_with = "hub")]
    pub endpoint: Option<String>,
    /// Bearer token for --endpoint (a CAS token, never refreshed).
    #[arg(long, requires = "endpoint")]
    pub token: Option<String>,
    /// Hub-style server whose token endpoint issues (and refreshes) CAS tokens;
    /// the user token comes from HF_TOKEN.
    #[arg(long, requires = "repo")]
    pub hub: Option<String>,
    /// Repository for --hub: TYPE/NAMESPACE/NAME (TYPE = model, dataset or space).
    #[arg(long)]
    pub repo: Option<String>,
    /// Directory of the embedded store used when neither --endpoint nor --hub is
    /// given (default: `local-store` in the Xet cache directory).
    #[arg(long, conflicts_with_all = ["endpoint", "hub"])]
    pub store: Option<PathBuf>,
    /// Revision for --hub (default: main).
    #[arg(long)]
    pub rev: Option<String>,
}

/// The `--endpoint` or `casUrl` made into a directory name, so each server gets
/// its own caches: a shard cached from one server names xorbs another may lack.
fn endpoint_tag(url: &str) -> String {
    url.trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl CasArgs {
    /// The CAS to talk to and the config with its per-server cache directory.
    pub async fn connect(&self, write: bool) -> anyhow::Result<(Arc<dyn Cas>, Config)> {
        let mut config = Config::from_env()?;
        let root = config.cache_dir.clone();
        let cas: HttpCas = if let Some(endpoint) = &self.endpoint {
            let auth = match &self.token {
                Some(t) => Auth::Static(t.clone()),
                None => Auth::None,
            };
            HttpCas::new(endpoint, auth, &config)?
        } else if let (Some(hub), Some(repo)) = (&self.hub, &self.repo) {
            let hf_token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
            let refresher = HubTokenRefresher::new(hub, repo, self.rev.as_deref(), write, hf_token)?;
            HttpCas::from_refresher(Arc::new(refresher), &config)
                .await
                .with_context(|| format!("getting a CAS token from {hub}"))?
        } else {
            // Neither: the embedded store, in process, under the cache directory.
            let dir = match (&self.store, &root) {
                (Some(dir), _) => dir.clone(),
                (None, Some(root)) => root.join("local-store"),
                (None, None) => bail!("no cache directory to keep the embedded store in: set HF_XET_CACHE or HF_HOME, or pass --store DIR"),
            };
            let cas = LocalCas::open(&dir)
                .await
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
            config.cache_dir = root.map(|r| r.join("local"));
            return Ok((Arc::new(cas), config));
        };
        config.cache_dir = root.map(|r| r.join(endpoint_tag(cas.endpoint())));
        Ok((Arc::new(cas), config))
    }
}

/// Arguments of `xet upload`.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// Files to upload (all in one session: they dedup against each other).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    cas: CasArgs,
    /// Print one JSON object with every file and the dedup metrics.
    #[arg(long)]
    json: bool,
    /// Skip the SHA-256 (Storage Buckets do not need it; Git-backed repos do).
    #[arg(long)]
    no_sha256: bool,
}

/// Runs `xet upload`.
pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let (cas, config) = args.cas.connect(true).await?;
    let total: u64 = args
        .paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bars = Bars::new("uploading", args.paths.len(), Some(total));
    let session = Arc::new(UploadSession::new(cas, config)?.with_progress(bars.clone()));
    let sha = if args.no_sha256 {
        Sha256Source::Skip
    } else {
        Sha256Source::Compute
    };
    // Files are chunked concurrently (two at a time per core would only thrash).
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let mut set = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    let done = |r: (usize, xet_transfer::FileUpload), results: &mut Vec<_>| {
        bars.file_finished(&r.1.name);
        results.push(r);
    };
    for (i, p) in args.paths.iter().enumerate() {
        if set.len() >= parallel {
            if let Some(r) = set.join_next().await {
                done(r??, &mut results);
            }
        }
        let s = session.clone();
        let p = p.clone();
        set.spawn(async move {
            let f = s
                .upload_file(&p, sha)
                .await
                .with_context(|| format!("uploading {}", p.display()))?;
            anyhow::Ok((i, f))
        });
    }
    while let Some(r) = set.join_next().await {
        done(r??, &mut results);
    }
    let session = Arc::try_unwrap(session).map_err(|_| anyhow::anyhow!("upload tasks still running"))?;
    let report = session.finish().await?;
    bars.finish();
    results.sort_by_key(|(i, _)| *i);
    let hex = |d: &Option<[u8; 32]>| d.map(|d| xet_format::hash::hex(&d));
    if args.json {
        let files: Vec<serde_json::Value> = results
            .iter()
            .map(|(_, f)| {
                serde_json::json!({
                    "path": f.name, "hash": f.file_hash.to_string(), "size": f.size,
                    "sha256": hex(&f.sha256), "deduped_bytes": f.deduped_bytes, "new_bytes": f.new_bytes,
                })
            })
            .collect();
        let out = serde_json::json!({
            "files": files,
            "total_bytes": report.total_bytes,
            "deduped_bytes": report.deduped_bytes,
            "new_bytes": report.new_bytes,
            "xorbs_uploaded": report.xorbs_uploaded,
            "xorb_bytes_uploaded": report.xorb_bytes_uploaded,
            "shards_uploaded": report.shards_uploaded,
            "dedup_queries": report.dedup_queries,
            "dedup_query_hits": report.dedup_query_hits,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (_, f) in &results {
            // Same layout as `xet hash`.
            println!(
                "{}  {}  {}  {}",
                f.file_hash,
                f.size,
                hex(&f.sha256).unwrap_or_else(|| "-".into()),
                f.name
            );
        }
    }
    Ok(())
}
