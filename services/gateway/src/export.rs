//! `switchyard export`: decision exports on the command line.
//!
//! - `switchyard export verify FILE` checks a JSONL export (plain or gzip, detected by its
//!   magic bytes) against its trailer: exit 0 with a summary, non-zero with what is wrong.
//! - `switchyard export decisions -o FILE` writes the same export as
//!   `GET /v1/export/decisions` straight from the data directory's read model (server stopped),
//!   with progress on stderr.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use futures::StreamExt;
use switchyard_config::Config;
use switchyard_decisions::DecisionQueries;
use switchyard_events::OrgId;
use switchyard_ingress::export::{decisions_jsonl, export_filter, gzip_stream, verify};
use switchyard_runtime::{Clock, SystemClock};

/// `switchyard export verify FILE`.
pub fn verify_file(file: &Path, json: bool) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let verified = verify(f).with_context(|| format!("{} does not verify", file.display()))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &verified)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "ok: {} verifies: {} rows, {} bytes{}, sha256 {}",
            file.display(),
            verified.rows,
            verified.bytes,
            if verified.gzip { " (gzip)" } else { "" },
            verified.sha256
        )?;
    }
    Ok(())
}

/// What `switchyard export decisions` exports.
#[derive(Debug)]
pub struct DecisionsExport<'a> {
    /// The organisation.
    pub org: &'a str,
    /// Window start.
    pub from: Option<&'a str>,
    /// Window end.
    pub to: Option<&'a str>,
    /// Only this route.
    pub route: Option<&'a str>,
    /// The output file (`-` = stdout).
    pub output: &'a Path,
    /// Gzip the output (also implied by a `.gz` file name).
    pub gzip: bool,
}

/// `switchyard export decisions`.
pub async fn decisions(config: &Config, args: &DecisionsExport<'_>) -> anyhow::Result<()> {
    if args.org.is_empty() {
        bail!("--org must not be empty");
    }
    let filter = export_filter(args.from, args.to, args.route, SystemClock.now_micros())
        .map_err(|(message, param)| anyhow::anyhow!("--{param}: {message}"))?;
    let store = crate::backends::open_any_store(config).await.context(
        "cannot open the decisions read model (stop the server that holds the data directory, or use GET /v1/export/decisions)",
    )?;
    let queries = DecisionQueries::new(store);
    let to_stdout = args.output == Path::new("-");
    let gzip = args.gzip || args.output.extension().is_some_and(|e| e == "gz");
    let mut sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(args.output)
                .with_context(|| format!("cannot create {}", args.output.display()))?,
        ))
    };
    let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&rows);
    let started = std::time::Instant::now();
    let counted = decisions_jsonl(queries, OrgId::new(args.org), filter).map(move |chunk| {
        chunk.map(|c| {
            counter.fetch_add(c.rows, std::sync::atomic::Ordering::Relaxed);
            c.bytes
        })
    });
    let mut stream = if gzip {
        gzip_stream(counted).boxed_local()
    } else {
        counted.boxed_local()
    };
    let mut last_report = std::time::Instant::now();
    let mut stderr = std::io::stderr();
    while let Some(chunk) = stream.next().await {
        let bytes = chunk.context("reading the decisions read model")?;
        sink.write_all(&bytes)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        if last_report.elapsed().as_millis() >= 500 {
            last_report = std::time::Instant::now();
            let _ = write!(
                stderr,
                "\rexported {} decisions…",
                rows.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    drop(stream);
    sink.flush()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let rows = rows.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        stderr,
        "\rexported {rows} decisions of org {} in {secs:.2} s ({:.0} rows/s){}",
        args.org,
        rows as f64 / secs.max(1e-9),
        if to_stdout {
            String::new()
        } else {
            format!(" to {}", args.output.display())
        }
    );
    Ok(())
}
