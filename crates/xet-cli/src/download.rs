//! `xet download HASH[:SIZE]... -o OUT [--range A-B]`

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use xet_format::MerkleHash;
use xet_transfer::DownloadSession;

use crate::progress::Bars;
use crate::upload::CasArgs;

/// Files downloaded at once; each also fetches its ranges concurrently.
const FILES_IN_FLIGHT: usize = 4;

/// Arguments of `xet download`.
#[derive(clap::Args)]
pub struct DownloadArgs {
    /// The file's Xet hash, optionally with its size as HASH:SIZE (checked). Several
    /// files download in one session.
    #[arg(required = true)]
    files: Vec<String>,
    /// Where to write the file (atomically: it appears only when complete and
    /// verified). With several files: a directory (created if needed) that gets
    /// each file under its hash.
    #[arg(short, long)]
    output: PathBuf,
    /// Only bytes A to B, inclusive (e.g. 0-1023); one file only.
    #[arg(long)]
    range: Option<String>,
    #[command(flatten)]
    cas: CasArgs,
}

fn parse_range(r: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = r.split_once('-').context("--range must be A-B, e.g. 0-1023")?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    if b < a {
        bail!("--range {a}-{b} ends before it starts");
    }
    Ok((a, b))
}

/// `HASH` or `HASH:SIZE`.
fn parse_file(spec: &str) -> anyhow::Result<(MerkleHash, Option<u64>)> {
    let (hash, size) = match spec.split_once(':') {
        Some((h, s)) => (
            h,
            Some(
                s.parse::<u64>()
                    .with_context(|| format!("{spec}: SIZE after ':' must be a number"))?,
            ),
        ),
        None => (spec, None),
    };
    let hash = hash
        .parse()
        .with_context(|| format!("{spec}: HASH must be 64 hex digits"))?;
    Ok((hash, size))
}

/// Runs `xet download`.
pub async fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let files = args
        .files
        .iter()
        .map(|f| parse_file(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let range = args.range.as_deref().map(parse_range).transpose()?;
    let outputs: Vec<PathBuf> = if let [_] = files[..] {
        vec![args.output.clone()]
    } else {
        if range.is_some() {
            bail!("--range applies to one file; {} were given", files.len());
        }
        let mut seen = HashSet::new();
        if let Some((h, _)) = files.iter().find(|(h, _)| !seen.insert(*h)) {
            bail!("{h} is given twice: each file is written to OUTPUT/HASH");
        }
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("creating the output directory {}", args.output.display()))?;
        files
            .iter()
            .map(|(h, _)| args.output.join(h.to_string()))
            .collect()
    };
    let (cas, config) = args.cas.connect(false).await?;
    let total = match range {
        Some((a, b)) => Some(b - a + 1),
        None => files.iter().map(|(_, s)| *s).sum(),
    };
    let bars = Bars::new("downloading", files.len(), total);
    let session = Arc::new(DownloadSession::new(cas, config)?.with_progress(bars.clone()));
    let mut set = tokio::task::JoinSet::new();
    for ((hash, size), out) in files.into_iter().zip(outputs) {
        if set.len() >= FILES_IN_FLIGHT {
            if let Some(r) = set.join_next().await {
                r??;
            }
        }
        let session = session.clone();
        set.spawn(async move {
            // A wrong size fails before anything is written (never a complete-looking
            // file of the wrong size at `out`).
            let report = session
                .download_to_path_sized(&hash, size, &out, range)
                .await
                .with_context(|| format!("downloading {hash}"))?;
            tracing::info!(%hash, bytes = report.bytes, fetched = report.fetched_bytes, "downloaded");
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    bars.finish();
    Ok(())
}
