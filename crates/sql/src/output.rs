//! Rendering a [`QueryResult`](crate::QueryResult): a text table, CSV, JSON rows, or Parquet.

use std::sync::Arc;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;

use crate::{QueryResult, SqlError};

/// Renders the result as an ASCII table.
///
/// # Errors
///
/// A value that cannot be formatted.
pub fn table(result: &QueryResult) -> Result<String, SqlError> {
    if result.batches.is_empty() {
        let empty = RecordBatch::new_empty(Arc::clone(&result.schema));
        return arrow::util::pretty::pretty_format_batches(&[empty])
            .map(|t| t.to_string())
            .map_err(|e| SqlError::Execution(e.to_string()));
    }
    arrow::util::pretty::pretty_format_batches(&result.batches)
        .map(|t| t.to_string())
        .map_err(|e| SqlError::Execution(e.to_string()))
}

/// Renders the result as CSV with a header line.
///
/// # Errors
///
/// A value that cannot be written.
pub fn csv(result: &QueryResult) -> Result<Vec<u8>, SqlError> {
    let mut out = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        if result.batches.is_empty() {
            writer
                .write(&RecordBatch::new_empty(Arc::clone(&result.schema)))
                .map_err(|e| SqlError::Execution(e.to_string()))?;
        }
        for batch in &result.batches {
            writer
                .write(batch)
                .map_err(|e| SqlError::Execution(e.to_string()))?;
        }
    }
    Ok(out)
}

/// Returns the rows as JSON objects (column name → value; nulls kept).
///
/// # Errors
///
/// A value that cannot be written.
pub fn json_rows(result: &QueryResult) -> Result<Vec<serde_json::Value>, SqlError> {
    let mut out = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut out);
        let batches: Vec<&RecordBatch> = result.batches.iter().collect();
        writer
            .write_batches(&batches)
            .map_err(|e| SqlError::Execution(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| SqlError::Execution(e.to_string()))?;
    }
    if out.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&out).map_err(|e| SqlError::Execution(e.to_string()))
}

/// Returns the result as the JSON document `POST /v1/sql` answers with:
/// `{"object": "sql.result", "columns": [{"name", "type"}], "rows": [...], "row_count": n}`.
///
/// # Errors
///
/// A value that cannot be written.
pub fn json_document(result: &QueryResult) -> Result<serde_json::Value, SqlError> {
    let columns: Vec<serde_json::Value> = result
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let rows = json_rows(result)?;
    Ok(serde_json::json!({
        "object": "sql.result",
        "columns": columns,
        "row_count": rows.len(),
        "rows": rows,
    }))
}

/// Encodes the result as one Parquet file.
///
/// # Errors
///
/// A value that cannot be encoded.
pub fn parquet(result: &QueryResult) -> Result<Vec<u8>, SqlError> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, Arc::clone(&result.schema), None)
        .map_err(|e| SqlError::Execution(e.to_string()))?;
    for batch in &result.batches {
        writer
            .write(batch)
            .map_err(|e| SqlError::Execution(e.to_string()))?;
    }
    writer
        .close()
        .map_err(|e| SqlError::Execution(e.to_string()))?;
    Ok(out)
}
