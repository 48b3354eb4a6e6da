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
//!
//! # Speed
//!
//! String columns are read as `Utf8View` (what DataFusion infers for Parquet by default,
//! `schema_force_view_types`; the tables' explicit schemas would otherwise pin them to `Utf8`,
//! which copies every string out of the Parquet dictionary and groups by them through offsets):
//! on the `make bench-export` aggregate this roughly halves the scan and the grouping. Results
//! are cast back to `Utf8`, so answers keep their column types. Sessions are per query (each
//! scope lists its own directories), but they share one runtime, so Parquet footers and file
//! statistics are read once per file, not once per query; its file-listing cache is off, so a
//! file the sink closes is seen by the next query.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
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
    /// Shared by every query's session: the object store and the caches of Parquet footers and
    /// file statistics (closed files are immutable; a rewrite after a crash has the same rows,
    /// and the caches check each file's size and modification time anyway). `None` if it could
    /// not be built: each session then has its own, as DataFusion's default.
    runtime: Option<Arc<RuntimeEnv>>,
    target_partitions: usize,
}

impl SqlEngine {
    /// Returns an engine over `objects` (the sink's target).
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        // No file-listing cache: DataFusion's keeps a listing forever, and files keep landing.
        let runtime = RuntimeEnvBuilder::new()
            .with_object_list_cache_limit(0)
            .build_arc()
            .ok();
        if let (Some(runtime), Ok(url)) = (&runtime, ObjectStoreUrl::parse(STORE_URL)) {
            runtime.register_object_store(url.as_ref(), Arc::clone(&objects));
        }
        Self {
            objects,
            runtime,
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
        let ctx = match &self.runtime {
            Some(runtime) => SessionContext::new_with_config_rt(config, Arc::clone(runtime)),
            None => {
                let ctx = SessionContext::new_with_config(config);
                let url = ObjectStoreUrl::parse(STORE_URL)
                    .map_err(|e| SqlError::Execution(e.to_string()))?;
                ctx.register_object_store(url.as_ref(), Arc::clone(&self.objects));
                ctx
            }
        };
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
                .with_schema(view_schema(&table.schema()));
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
        let schema = utf8_schema(frame.schema().as_arrow());
        let batches = frame.collect().await.map_err(|e| {
            let message = e.strip_backtrace();
            // Planning-time mistakes can surface at execution (a bad cast of a literal).
            if message.contains("Arrow error: Cast error") || message.contains("Invalid") {
                SqlError::Invalid(message)
            } else {
                SqlError::Execution(message)
            }
        })?;
        let batches = batches
            .iter()
            .map(|batch| to_utf8(batch, &schema))
            .collect::<Result<_, _>>()?;
        Ok(QueryResult { schema, batches })
    }
}

/// `schema` with its `Utf8` columns as `Utf8View`: how the tables are read.
fn view_schema(schema: &Schema) -> SchemaRef {
    retype(schema, &DataType::Utf8, DataType::Utf8View)
}

/// `schema` with its `Utf8View` columns as `Utf8`: the types answers are given in.
fn utf8_schema(schema: &Schema) -> SchemaRef {
    retype(schema, &DataType::Utf8View, DataType::Utf8)
}

fn retype(schema: &Schema, from: &DataType, to: DataType) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let field = f.as_ref().clone();
            if field.data_type() == from {
                field.with_data_type(to.clone())
            } else {
                field
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its `Utf8View` columns cast to `Utf8`, as `schema` (from [`utf8_schema`]) says.
fn to_utf8(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, SqlError> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => arrow::compute::cast(column, &DataType::Utf8),
            _ => Ok(Arc::clone(column)),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqlError::Execution(e.to_string()))?;
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| SqlError::Execution(e.to_string()))
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
