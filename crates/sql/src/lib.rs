//! switchyard-sql: SQL over the Parquet exports ([`switchyard_sink`]), with DataFusion.
//!
//! Place in the pipeline: the sink writes `<table>/org=<org>/date=<date>/*.parquet` to an
//! object store; [`SqlEngine`] reads them back for `switchyard sql` and `POST /v1/sql`.
//!
//! # Org isolation
//!
//! A query scoped to an org ([`Scope::Org`]) runs in a session whose only tables are that org's:
//! each of `decisions`, `requests`, `responses`, `feedback` and `judge_scores` is a listing
//! table over the directory `<table>/org=<org>/` alone. Other orgs' files are not in the session
//! at all, so no SQL text (a missing `WHERE`, an `OR`, a subquery, a join) can read them; the SQL
//! is never rewritten. The session also refuses DDL, DML and statements (`CREATE EXTERNAL
//! TABLE`, `COPY`, `SET`), so a query can neither register another location nor write files,
//! and URL tables (`SELECT * FROM 'file.parquet'`) are off.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionConfig;
use object_store::ObjectStore;
use switchyard_sink::SinkTable;

/// Whose rows a query sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every org's (the operator's `switchyard sql` without `--org`).
    All,
    /// One org's only (an API key's).
    Org(String),
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The SQL does not parse, plan or is not allowed (the client's mistake): DataFusion's
    /// message.
    #[error("{0}")]
    Invalid(String),
    /// Reading the files failed.
    #[error("query failed: {0}")]
    Execution(String),
    /// The org name cannot name a directory.
    #[error("invalid org `{0}`")]
    Org(String),
}

/// The result of a query.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result's schema.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Returns the number of rows.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

const STORE_URL: &str = "switchyard://exports";

/// Runs SQL over the export files of one object store.
#[derive(Debug, Clone)]
pub struct SqlEngine {
    objects: Arc<dyn ObjectStore>,
    target_partitions: usize,
}

impl SqlEngine {
    /// Returns an engine over `objects` (the sink's target).
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            objects,
            target_partitions: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
        }
    }

    /// Returns a session whose tables are `scope`'s.
    ///
    /// # Errors
    ///
    /// An org name that is not 1-64 of `[A-Za-z0-9_-]` ([`SqlError::Org`]).
    pub fn session(&self, scope: &Scope) -> Result<SessionContext, SqlError> {
        if let Scope::Org(org) = scope {
            let ok = !org.is_empty()
                && org.len() <= 64
                && org
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(SqlError::Org(org.clone()));
            }
        }
        let config = SessionConfig::new()
            .with_target_partitions(self.target_partitions)
            .with_information_schema(false);
        let ctx = SessionContext::new_with_config(config);
        let url =
            ObjectStoreUrl::parse(STORE_URL).map_err(|e| SqlError::Execution(e.to_string()))?;
        ctx.register_object_store(url.as_ref(), Arc::clone(&self.objects));
        for table in SinkTable::ALL {
            let dir = match scope {
                Scope::All => format!("{STORE_URL}/{}/", table.name()),
                Scope::Org(org) => format!("{STORE_URL}/{}/org={org}/", table.name()),
            };
            let path =
                ListingTableUrl::parse(&dir).map_err(|e| SqlError::Execution(e.to_string()))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(path)
                .with_listing_options(options)
                .with_schema(table.schema());
            let provider =
                ListingTable::try_new(config).map_err(|e| SqlError::Execution(e.to_string()))?;
            ctx.register_table(table.name(), Arc::new(provider))
                .map_err(|e| SqlError::Execution(e.to_string()))?;
        }
        Ok(ctx)
    }

    /// Runs one read-only query in `scope`.
    ///
    /// # Errors
    ///
    /// [`SqlError::Invalid`] for SQL that does not parse or plan, or that is not a query;
    /// [`SqlError::Execution`] when reading the files fails.
    pub async fn query(&self, scope: &Scope, sql: &str) -> Result<QueryResult, SqlError> {
        let ctx = self.session(scope)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| SqlError::Invalid(e.strip_backtrace()))?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| {
            let message = e.strip_backtrace();
            // Planning-time mistakes can surface at execution (a bad cast of a literal).
            if message.contains("Arrow error: Cast error") || message.contains("Invalid") {
                SqlError::Invalid(message)
            } else {
                SqlError::Execution(message)
            }
        })?;
        Ok(QueryResult { schema, batches })
    }
}

pub mod output;

/// Most rows `POST /v1/sql` returns; a larger result is an error asking for a `LIMIT`.
pub const HTTP_MAX_ROWS: usize = 10_000;

impl SqlEngine {
    /// Runs `sql` in `org`'s scope and renders the `POST /v1/sql` answer document.
    ///
    /// # Errors
    ///
    /// As [`SqlEngine::query`]; a result over [`HTTP_MAX_ROWS`] rows is [`SqlError::Invalid`].
    pub async fn query_document(
        &self,
        org: &str,
        sql: &str,
    ) -> Result<serde_json::Value, SqlError> {
        let result = self.query(&Scope::Org(org.to_owned()), sql).await?;
        if result.row_count() > HTTP_MAX_ROWS {
            return Err(SqlError::Invalid(format!(
                "the result has {} rows, more than the {HTTP_MAX_ROWS} an HTTP answer carries: add a LIMIT or aggregate",
                result.row_count()
            )));
        }
        output::json_document(&result)
    }
}
