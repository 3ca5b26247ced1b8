//! `xet download HASH[:SIZE] -o OUT [--range A-B]`

use std::path::PathBuf;

use anyhow::{bail, Context};
use xet_format::MerkleHash;
use xet_transfer::DownloadSession;

use crate::upload::{Bars, CasArgs};

/// Arguments of `xet download`.
#[derive(clap::Args)]
pub struct DownloadArgs {
    /// The file's Xet hash, optionally with its size as HASH:SIZE (checked).
    file: String,
    /// Where to write it (atomically: it appears only when complete and verified).
    #[arg(short, long)]
    output: PathBuf,
    /// Only bytes A to B, inclusive (e.g. 0-1023).
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

/// Runs `xet download`.
pub async fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let (hash, size) = match args.file.split_once(':') {
        Some((h, s)) => (
            h,
            Some(s.parse::<u64>().context("SIZE after ':' must be a number")?),
        ),
        None => (args.file.as_str(), None),
    };
    let hash: MerkleHash = hash.parse().context("HASH must be 64 hex digits")?;
    let range = args.range.as_deref().map(parse_range).transpose()?;
    let (cas, config) = args.cas.connect(false).await?;
    let bars = Bars::new(None, "downloading");
    let session = DownloadSession::new(cas, config)?.with_progress(bars.clone());
    let report = session
        .download_to_path(&hash, &args.output, range)
        .await
        .with_context(|| format!("downloading {hash}"))?;
    bars.finish();
    if let (Some(s), None) = (size, range) {
        if report.bytes != s {
            bail!("{hash} has {} bytes, not the {s} given", report.bytes);
        }
    }
    tracing::info!(bytes = report.bytes, fetched = report.fetched_bytes, "downloaded");
    Ok(())
}
