//! `switchyard audit`: wiring of the audit (`switchyard_ingress::audit`) to the configured log,
//! the configuration's routes, catalog and priors, and the decision-signing keys.
//!
//! Exit status: 0 when every decision in the window verified (unverifiable ones, older than
//! the audit horizon, are listed but do not fail it), 1 with one line per finding otherwise.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use switchyard_config::Config;
use switchyard_ingress::audit::{AuditReport, Auditor, ConfiguredModels, Progress, audit};
use switchyard_ingress::export::parse_time;
use switchyard_ingress::routes::RoutingDefaults;
use switchyard_log::EventLog;
use switchyard_router::PublicKey;
use switchyard_runtime::{Clock, SystemClock};

/// Settings of `switchyard audit`.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Window start (RFC 3339, microseconds, `now` or `-24h`).
    pub from: Option<String>,
    /// Window end.
    pub to: Option<String>,
    /// Write the JSON report here (`-` = stdout instead of the text summary).
    pub json: Option<PathBuf>,
    /// Extra JWK sets (as served by `GET /v1/keys`) whose keys verify signatures.
    pub jwks: Vec<PathBuf>,
    /// Most findings printed as text.
    pub max_printed: usize,
}

fn verification_keys(config: &Config, jwks: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    let path = config.routing.signing_key.path();
    match std::fs::read(path) {
        Ok(doc) => keys.push(
            switchyard_router::DecisionSigner::from_pkcs8(&doc)
                .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", path.display()))?
                .public_key()
                .clone(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !jwks.is_empty() => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot read the decision-signing key {} (or pass --jwks with the server's GET /v1/keys)",
                    path.display()
                )
            });
        }
    }
    for file in jwks {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let set: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        let Some(list) = set.get("keys").and_then(serde_json::Value::as_array) else {
            bail!("{} is not a JWK set (no `keys` array)", file.display());
        };
        for jwk in list {
            keys.push(
                PublicKey::from_jwk(jwk).with_context(|| format!("a key in {}", file.display()))?,
            );
        }
    }
    Ok(keys)
}

/// `switchyard audit`.
pub async fn run(config: &Config, options: &AuditOptions) -> anyhow::Result<()> {
    let now = SystemClock.now_micros();
    let from = options
        .from
        .as_deref()
        .map(|t| parse_time(t, now).map_err(|e| anyhow::anyhow!("--from: {e}")))
        .transpose()?;
    let to = options
        .to
        .as_deref()
        .map(|t| parse_time(t, now).map_err(|e| anyhow::anyhow!("--to: {e}")))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        bail!("--from must not be after --to");
    }
    let keys = verification_keys(config, &options.jwks)?;
    let defaults = RoutingDefaults::new(&config.routes, &config.routing);
    let priors = crate::serve::load_priors(config)?;
    let (catalog, providers) = crate::serve::build_providers(config)?;
    let models = ConfiguredModels {
        catalog,
        providers: providers.keys().cloned().collect(),
    };
    let auditor = Auditor {
        defaults: &defaults,
        priors: &priors,
        pool: &config.learning_pool,
        models: &models,
        keys,
        now_micros: now,
        horizon_micros: i64::try_from(config.log.audit_horizon.as_micros()).unwrap_or(i64::MAX),
    };
    let codec = switchyard_registry::codec_for(config.schema_registry.url.as_deref()).await?;
    let log = crate::backends::open_log(config).await.context(
        "cannot open the event log (stop the server that holds the data directory, or audit a copy of it)",
    )?;
    let started = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    let mut progress = |p: Progress| {
        if last.elapsed().as_millis() >= 500 || p.read == p.total {
            last = std::time::Instant::now();
            let _ = write!(
                std::io::stderr(),
                "\raudit: {}/{} decision records read, {} decisions in the window, {} findings",
                p.read,
                p.total,
                p.decisions,
                p.findings
            );
        }
    };
    let report = audit(&log, &codec, &auditor, from, to, &mut progress).await;
    let _ = writeln!(std::io::stderr());
    log.close().await.ok();
    let report = report.context("the audit could not read the log")?;
    let took = started.elapsed().as_secs_f64();
    write_report(&report, options, took)?;
    if !report.passed() {
        bail!(
            "the audit failed: {} finding(s) in {} decision(s)",
            report.findings.len(),
            report.decisions
        );
    }
    Ok(())
}

fn write_report(report: &AuditReport, options: &AuditOptions, took: f64) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match &options.json {
        Some(path) if path.as_os_str() == "-" => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
            return Ok(());
        }
        Some(path) => {
            let text = serde_json::to_vec_pretty(report)?;
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {}
    }
    for f in report.findings.iter().take(options.max_printed) {
        writeln!(
            out,
            "MISMATCH {} org={} route={} field={}: expected {} recorded {} ({})",
            f.decision_id.as_deref().unwrap_or("-"),
            f.org,
            f.route,
            f.field,
            f.expected,
            f.recorded,
            f.position
        )?;
    }
    if report.findings.len() > options.max_printed {
        writeln!(
            out,
            "… and {} more findings (use --json for all)",
            report.findings.len() - options.max_printed
        )?;
    }
    for u in report.unverifiable.iter().take(options.max_printed) {
        writeln!(
            out,
            "UNVERIFIABLE {} org={}: {}",
            u.decision_id, u.org, u.reason
        )?;
    }
    writeln!(
        out,
        "{}: {} decisions ({} recomputed exactly, {} named a model), {} signatures verified, {} unverifiable (inputs compacted, older than the horizon), {} constraints chains with {} links, {} findings, {took:.2} s",
        if report.passed() {
            "audit passed"
        } else {
            "audit FAILED"
        },
        report.decisions,
        report.recomputed,
        report.named_model,
        report.signatures_verified,
        report.unverifiable.len(),
        report.chains,
        report.chain_links,
        report.findings.len(),
    )?;
    Ok(())
}
