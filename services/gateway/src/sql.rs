//! `switchyard sql` and the `POST /v1/sql` backend: DataFusion over the sink's Parquet files
//! (`crates/sql`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use futures::FutureExt;
use futures::future::BoxFuture;
use switchyard_config::Config;
use switchyard_ingress::sql::{SqlBackend, SqlFailure};
use switchyard_sql::{Scope, SqlEngine, SqlError, output};

use crate::cli::{SqlArgs, SqlFormat};

/// The engine as ingress's [`SqlBackend`].
#[derive(Debug, Clone)]
pub struct EngineBackend(pub SqlEngine);

impl SqlBackend for EngineBackend {
    fn query<'a>(
        &'a self,
        org: &'a str,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<serde_json::Value, SqlFailure>> {
        async move {
            self.0.query_document(org, sql).await.map_err(|e| match e {
                SqlError::Invalid(m) => SqlFailure::Invalid(m),
                SqlError::Org(_) | SqlError::Execution(_) => SqlFailure::Failed(e.to_string()),
            })
        }
        .boxed()
    }
}

/// Opens the engine over the configured export target.
pub fn engine(config: &Config) -> anyhow::Result<SqlEngine> {
    let objects = switchyard_sink::objects::open(&config.sink.target)
        .context("cannot open the Parquet exports")?;
    Ok(SqlEngine::new(objects))
}

/// `switchyard sql`.
pub async fn run(config: &Config, args: &SqlArgs) -> anyhow::Result<()> {
    if args.format == SqlFormat::Parquet && args.output.is_none() {
        bail!("--format parquet needs --output FILE");
    }
    let scope = match &args.org {
        Some(org) => Scope::Org(org.clone()),
        None => Scope::All,
    };
    eprintln!(
        "switchyard: running the query over {:?}",
        config.sink.target
    );
    let result = engine(config)?
        .query(&scope, &args.query)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = match args.format {
        SqlFormat::Table => {
            let mut text = output::table(&result).map_err(|e| anyhow::anyhow!("{e}"))?;
            text.push('\n');
            text.into_bytes()
        }
        SqlFormat::Csv => output::csv(&result).map_err(|e| anyhow::anyhow!("{e}"))?,
        SqlFormat::Json => {
            let rows = output::json_rows(&result).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut text = serde_json::to_vec_pretty(&rows).context("render JSON")?;
            text.push(b'\n');
            text
        }
        SqlFormat::Parquet => output::parquet(&result).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    match &args.output {
        Some(path) => write_file(path, &bytes)?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .context("write to stdout")?,
    }
    eprintln!("switchyard: {} rows", result.row_count());
    Ok(())
}

fn write_file(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
