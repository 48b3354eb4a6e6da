//! switchyard-sink: the Parquet sink.
//!
//! Place in the pipeline: consumes the decisions, requests, responses, feedback and
//! judge-scores topics and writes them as Parquet files partitioned by org and UTC date of the
//! event time, `<table>/org=<org>/date=YYYY-MM-DD/part-<partition>-<offset>.parquet`, through
//! `object_store` (a local directory by default, an S3-compatible bucket when configured).
//! `switchyard sql` and `POST /v1/sql` (crates/sql) read them back; so can DuckDB, Spark or a
//! BigQuery load job.
//!
//! Two halves over one state store:
//!
//! - [`SinkProcessor`] ([`stage`]) is a [`switchyard_processor::Processor`]: it stages each
//!   input's row in the store, atomically with the input's checkpoint. Nothing acknowledged is
//!   lost, and no input is staged twice.
//! - [`Writer`] ([`writer`]) closes staged buffers into immutable files by size and by age, with
//!   a recorded intent so a crash rewrites the same file instead of adding one; `_manifest/`
//!   lists every closed file.
//!
//! The tables and their columns are in [`rows`].

pub mod objects;
pub mod rows;
pub mod stage;
pub mod writer;

pub use rows::{SinkTable, StagedRow, row_of};
pub use stage::{GROUP, INPUTS, SinkProcessor};
pub use writer::{MANIFEST_DIR, ManifestEntry, WriteError, Writer, WriterOptions};

/// The writer options of a `[sink]` configuration.
pub fn writer_options(config: &switchyard_config::SinkConfig) -> WriterOptions {
    WriterOptions {
        max_rows: config.max_rows_per_file,
        max_bytes: config.max_file_bytes,
        roll_interval: config.roll_interval,
        check_every: config.flush_check,
    }
}
