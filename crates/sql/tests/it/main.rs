//! SQL over real Parquet files written by the sink's encoder: per-org isolation whatever the
//! SQL says, read-only sessions, errors for bad SQL, and the output formats.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, ensure};
use object_store::local::LocalFileSystem;
use serde_json::json;
use switchyard_sink::SinkTable;
use switchyard_sql::{Scope, SqlEngine, SqlError, output};

const T0: i64 = 1_764_000_000_123_456;

fn decision(org: &str, n: usize, route: &str, chosen: &str, confidence: f64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event_id": format!("e-{org}-{n}"), "org": org, "date": "2025-11-24",
        "event_time": T0 + n as i64, "decision_id": format!("d-{org}-{n}"),
        "request_id": format!("r-{org}-{n}"), "route": route, "mode": "live",
        "chosen_model": chosen, "baseline_model": "demo/large", "served_model": chosen,
        "reason": "best_score", "phase": 2, "confidence": confidence,
        "routing_table_version": 7, "route_version": 1, "input_tokens": 10,
        "candidate_count": 2, "mirrored": false, "signing_key_id": "k1",
        "trace_json": "{}"
    }))
    .unwrap_or_default()
}

/// Writes `rows` of `org` as one decisions file.
fn write(dir: &Path, org: &str, name: &str, rows: Vec<Vec<u8>>) -> Result<()> {
    let rows: Vec<(Vec<u8>, Vec<u8>)> = rows.into_iter().map(|r| (Vec::new(), r)).collect();
    let (file, _, _) = switchyard_sink::writer::encode(SinkTable::Decisions, &rows)?;
    let path = dir.join(format!("decisions/org={org}/date=2025-11-24"));
    std::fs::create_dir_all(&path)?;
    std::fs::write(path.join(name), file)?;
    Ok(())
}

fn engine(dir: &Path) -> Result<SqlEngine> {
    Ok(SqlEngine::new(Arc::new(LocalFileSystem::new_with_prefix(
        dir,
    )?)))
}

fn fixture() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    write(
        dir.path(),
        "acme",
        "part-00000-00000000000000000000.parquet",
        (0..6)
            .map(|n| {
                let chosen = if n % 3 == 0 {
                    "demo/small"
                } else {
                    "demo/large"
                };
                decision("acme", n, "support", chosen, 0.5 + n as f64 / 100.0)
            })
            .collect(),
    )?;
    write(
        dir.path(),
        "acme",
        "part-00000-00000000000000000006.parquet",
        vec![decision("acme", 6, "sales", "demo/small", 0.9)],
    )?;
    write(
        dir.path(),
        "globex",
        "part-00000-00000000000000000000.parquet",
        (0..4)
            .map(|n| decision("globex", n, "support", "demo/small", 0.1))
            .collect(),
    )?;
    Ok(dir)
}

#[tokio::test]
async fn an_org_sees_only_its_rows_whatever_the_sql_says() -> Result<()> {
    let dir = fixture()?;
    let engine = engine(dir.path())?;
    let acme = Scope::Org("acme".into());
    for sql in [
        "SELECT count(*) AS n FROM decisions",
        "SELECT count(*) AS n FROM decisions WHERE org = 'globex' OR 1 = 1",
        "SELECT count(*) AS n FROM (SELECT * FROM decisions UNION ALL SELECT * FROM decisions WHERE org <> 'acme')",
    ] {
        let result = engine.query(&acme, sql).await?;
        let rows = output::json_rows(&result)?;
        ensure!(rows == [json!({"n": 7})], "{sql}: {rows:?}");
    }
    let globex = engine
        .query(
            &Scope::Org("globex".into()),
            "SELECT DISTINCT org FROM decisions",
        )
        .await?;
    ensure!(output::json_rows(&globex)? == [json!({"org": "globex"})]);
    let all = engine
        .query(&Scope::All, "SELECT count(*) AS n FROM decisions")
        .await?;
    ensure!(output::json_rows(&all)? == [json!({"n": 11})]);
    // An org without files has empty tables, not errors.
    let none = engine
        .query(
            &Scope::Org("initech".into()),
            "SELECT count(*) AS n FROM judge_scores",
        )
        .await?;
    ensure!(output::json_rows(&none)? == [json!({"n": 0})]);
    Ok(())
}

#[tokio::test]
async fn a_session_cannot_register_or_write_files() -> Result<()> {
    let dir = fixture()?;
    let engine = engine(dir.path())?;
    let acme = Scope::Org("acme".into());
    let globex_dir = dir.path().join("decisions/org=globex");
    for sql in [
        format!(
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
            globex_dir.display()
        ),
        format!("SELECT * FROM '{}'", globex_dir.display()),
        "COPY decisions TO '/tmp/x.parquet'".to_owned(),
        "SET datafusion.execution.batch_size = 1".to_owned(),
        "INSERT INTO decisions SELECT * FROM decisions".to_owned(),
    ] {
        match engine.query(&acme, &sql).await {
            Err(SqlError::Invalid(_)) => {}
            other => anyhow::bail!("{sql}: {other:?}"),
        }
    }
    ensure!(matches!(
        engine
            .query(&Scope::Org("../acme".into()), "SELECT 1")
            .await,
        Err(SqlError::Org(_))
    ));
    Ok(())
}

#[tokio::test]
async fn bad_sql_is_the_clients_error_with_the_engines_message() -> Result<()> {
    let dir = fixture()?;
    let engine = engine(dir.path())?;
    let acme = Scope::Org("acme".into());
    let Err(SqlError::Invalid(message)) = engine.query(&acme, "SELEC 1").await else {
        anyhow::bail!("a typo must be invalid");
    };
    ensure!(message.contains("SELEC"), "{message}");
    let Err(SqlError::Invalid(message)) = engine.query(&acme, "SELECT nope FROM decisions").await
    else {
        anyhow::bail!("an unknown column must be invalid");
    };
    ensure!(message.contains("nope"), "{message}");
    Ok(())
}

#[tokio::test]
async fn aggregates_render_as_table_csv_json_and_parquet() -> Result<()> {
    let dir = fixture()?;
    let engine = engine(dir.path())?;
    let result = engine
        .query(
            &Scope::Org("acme".into()),
            "SELECT route, chosen_model, count(*) AS n, round(avg(confidence), 4) AS c \
             FROM decisions GROUP BY route, chosen_model ORDER BY route, chosen_model",
        )
        .await?;
    let rows = output::json_rows(&result)?;
    ensure!(
        rows == [
            json!({"route": "sales", "chosen_model": "demo/small", "n": 1, "c": 0.9}),
            json!({"route": "support", "chosen_model": "demo/large", "n": 4, "c": 0.53}),
            json!({"route": "support", "chosen_model": "demo/small", "n": 2, "c": 0.515}),
        ],
        "{rows:?}"
    );
    let table = output::table(&result)?;
    ensure!(table.contains("| support | demo/large   | 4 "), "{table}");
    let csv = String::from_utf8(output::csv(&result)?)?;
    ensure!(
        csv.starts_with("route,chosen_model,n,c\nsales,demo/small,1,0.9\n"),
        "{csv}"
    );
    let doc = engine
        .query_document("acme", "SELECT count(*) AS n FROM decisions")
        .await?;
    ensure!(
        doc["rows"] == json!([{"n": 7}]) && doc["columns"][0]["name"] == "n",
        "{doc}"
    );
    let parquet = output::parquet(&result)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )?
    .build()?;
    let n: usize = reader
        .map(|b| b.map(|b| b.num_rows()))
        .sum::<Result<usize, _>>()?;
    ensure!(n == 3);
    Ok(())
}

#[tokio::test]
async fn one_engine_sees_files_that_land_between_queries_and_answers_strings_as_utf8() -> Result<()>
{
    let dir = fixture()?;
    let engine = engine(dir.path())?;
    let acme = Scope::Org("acme".into());
    let sql = "SELECT chosen_model, count(*) AS n FROM decisions GROUP BY chosen_model \
               ORDER BY chosen_model";
    let before = engine.query(&acme, sql).await?;
    ensure!(
        output::json_rows(&before)?
            == [
                json!({"chosen_model": "demo/large", "n": 4}),
                json!({"chosen_model": "demo/small", "n": 3})
            ]
    );
    // The sink closes another file: the engine's shared runtime must not serve a stale listing
    // (nor stale footers).
    write(
        dir.path(),
        "acme",
        "part-00000-00000000000000000007.parquet",
        vec![decision("acme", 7, "sales", "demo/tiny", 0.2)],
    )?;
    let after = engine.query(&acme, sql).await?;
    ensure!(
        output::json_rows(&after)?
            == [
                json!({"chosen_model": "demo/large", "n": 4}),
                json!({"chosen_model": "demo/small", "n": 3}),
                json!({"chosen_model": "demo/tiny", "n": 1})
            ],
        "{:?}",
        output::json_rows(&after)?
    );
    let all = engine
        .query(&Scope::All, "SELECT count(*) AS n FROM decisions")
        .await?;
    ensure!(output::json_rows(&all)? == [json!({"n": 12})]);
    // Strings are read as Utf8View but answered as Utf8, in the schema and in every batch.
    let doc = engine.query_document("acme", sql).await?;
    ensure!(doc["columns"][0]["type"] == "Utf8", "{doc}");
    ensure!(after.batches.iter().all(|b| b.schema() == after.schema));
    ensure!(after.schema.field(0).data_type() == &arrow::datatypes::DataType::Utf8);
    Ok(())
}
