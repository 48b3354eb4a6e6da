//! `make bench-export`: the Parquet export and SQL over it, with DuckDB on the same files in the
//! same run.
//!
//! 1. **Export**: 1M `RouteDecided` events (the v2 schema sample with varied ids, routes, models
//!    and confidences; full trace JSON) through the sink's row builder and Parquet encoder into
//!    100k-row files on local disk: rows/s. The staging through the state store is measured
//!    separately on 100k rows (it is the path `serve` takes; the encoder is the file writer's).
//! 2. **Aggregate**: the 1M-row files copied ten times (10 orgs, 10M rows), then
//!    `SELECT route, chosen_model, count(*), avg(confidence) ... GROUP BY route, chosen_model`
//!    with DataFusion (this crate's engine, every org) and with DuckDB (`read_parquet` over the
//!    same files, Python from $SWITCHYARD_VENV, default ~/.cache/switchyard/venv, one process
//!    kept up): the engines take turns, one warm-up run each, then the median of 9 of wall
//!    time and of the process's CPU time (steadier on a shared machine), and the ratios. Both
//!    are timed the same way: DataFusion's runs include the per-query session (listing,
//!    footers) as `POST /v1/sql` has it, DuckDB's the glob and footers of `read_parquet`.
//!
//! Plain `main` (no criterion harness): one run of each step is seconds, not microseconds.
//! Set BENCH_EXPORT_ROWS to change the 1M.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use object_store::local::LocalFileSystem;
use switchyard_events::{
    Codec, DecisionId, Event, ModelName, OrgId, RequestId, RouteName, Timestamp, UnitScore,
};
use switchyard_processor::{Input, Output, Processor, StagedState};
use switchyard_sink::{SinkProcessor, Writer, WriterOptions, row_of, writer::encode};
use switchyard_sql::{Scope, SqlEngine, output};
use switchyard_store::{EmbeddedStore, StateStore};

const QUERY: &str = "SELECT route, chosen_model, count(*) AS n, avg(confidence) AS confidence \
                     FROM decisions GROUP BY route, chosen_model ORDER BY route, chosen_model";
const FILE_ROWS: usize = 100_000;
/// Timed runs of the aggregate per engine (after one warm-up run each).
const AGGREGATE_RUNS: usize = 9;
const T0: i64 = 1_764_000_000_000_000;

fn sample() -> Result<Event> {
    let hex_text = include_str!("../../../schemas/samples/route_decided/v2.bin.hex");
    let bytes = hex::decode(hex_text.trim())?;
    Ok(Codec::new()?.decode(&bytes)?)
}

/// Decision `n`: 8 routes, 5 chosen models, a confidence spread over 0..1.
fn decision(base: &Event, n: usize) -> Event {
    let mut event = base.clone();
    if let Event::RouteDecided(e) = &mut event {
        e.envelope.org = OrgId::new("org0");
        e.envelope.event_id = e.envelope.event_id.derive(&n.to_string());
        e.envelope.event_time = Timestamp::from_micros(T0 + n as i64 * 1000);
        e.decision_id = DecisionId::new(format!("dec-{n:09}"));
        e.request_id = RequestId::new(format!("req-{n:09}"));
        e.route = RouteName::new(format!("route-{}", n % 8));
        e.chosen_model = ModelName::new(format!("model-{}", (n / 8) % 5));
        e.served_model = e.chosen_model.clone();
        e.confidence = UnitScore::saturating((n % 1000) as f64 / 1000.0);
    }
    event
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

async fn staged_path(base: &Event, rows: usize, exports: &Path) -> Result<f64> {
    let store = EmbeddedStore::temporary()?;
    let processor = SinkProcessor::default();
    let start = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let mut state = StagedState::new(&store);
        for &n in chunk {
            let event = decision(base, n);
            let input = Input {
                topic: event.topic(),
                partition: 0,
                offset: n as u64,
                key: Vec::new(),
                headers: Vec::new(),
                event,
            };
            let mut out = Output::new(processor.group(), input.event_id());
            processor.process(&input, &mut state, &mut out).await?;
            state.commit_record();
        }
        store.apply(state.into_write_batch()).await?;
    }
    std::fs::create_dir_all(exports)?;
    let writer = Writer::new(
        store,
        Arc::new(LocalFileSystem::new_with_prefix(exports)?),
        WriterOptions::default(),
    );
    let files = writer.flush_all().await?;
    let written: u64 = files.iter().map(|f| f.rows).sum();
    if written != rows as u64 {
        bail!("staged path wrote {written} of {rows} rows");
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// DuckDB in a Python child that stays up: one view over the files, then one query per line
/// read, answering `wall_secs cpu_secs rows_counted groups` (CPU: the whole process's).
struct DuckDb {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    threads: String,
}

impl DuckDb {
    fn start(venv: &Path, root: &Path) -> Result<DuckDb> {
        let script = r#"
import sys, time, duckdb
root, query = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"CREATE VIEW decisions AS SELECT * FROM read_parquet('{root}/decisions/**/*.parquet')")
print(con.execute("SELECT current_setting('threads')").fetchone()[0], flush=True)
for _ in sys.stdin:
    wall, cpu = time.perf_counter(), time.process_time()
    rows = con.execute(query).fetchall()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(wall, cpu, sum(r[2] for r in rows), len(rows), flush=True)
"#;
        let mut child = std::process::Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .arg(root)
            .arg(QUERY)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("run DuckDB (python with duckdb; `make deps`)")?;
        let input = child.stdin.take().context("DuckDB's stdin")?;
        let stdout = child.stdout.take().context("DuckDB's stdout")?;
        let mut output = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let threads = output.next().context("DuckDB did not start")??;
        Ok(DuckDb {
            child,
            input,
            output,
            threads,
        })
    }

    /// Runs the query once: wall time, CPU time, the answer (`rows groups`).
    fn run(&mut self) -> Result<(Duration, Duration, String)> {
        std::io::Write::write_all(&mut self.input, b"run\n")?;
        std::io::Write::flush(&mut self.input)?;
        let line = self.output.next().context("DuckDB stopped")??;
        let mut fields = line.split_whitespace();
        let mut secs = || -> Result<Duration> {
            let text = fields.next().context("a short DuckDB answer")?;
            Ok(Duration::from_secs_f64(text.parse()?))
        };
        let (wall, cpu) = (secs()?, secs()?);
        Ok((wall, cpu, fields.collect::<Vec<_>>().join(" ")))
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of this process so far: the sum of its threads' run time (`/proc/self/task/*/
/// schedstat`, nanoseconds; the runtime's threads outlive a query).
fn process_cpu() -> Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let rows: usize = std::env::var("BENCH_EXPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let venv = std::env::var_os("SWITCHYARD_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/switchyard/venv"))
        })
        .context("no SWITCHYARD_VENV or HOME")?;
    let work = tempfile::tempdir()?;
    let base = sample()?;

    // 1. Export: rows built and encoded into 100k-row Parquet files.
    let one = work.path().join("one");
    let dir = one.join("decisions/org=org0/date=2025-11-24");
    std::fs::create_dir_all(&dir)?;
    let start = Instant::now();
    let mut json_bytes = 0usize;
    for (file, first) in (0..rows).step_by(FILE_ROWS).enumerate() {
        let mut staged = Vec::with_capacity(FILE_ROWS);
        for n in first..(first + FILE_ROWS).min(rows) {
            let row = row_of(&decision(&base, n), false)?.context("a decision has a row")?;
            json_bytes += row.json.len();
            staged.push((Vec::new(), row.json));
        }
        let (bytes, _, _) = encode(switchyard_sink::SinkTable::Decisions, &staged)?;
        std::fs::write(dir.join(format!("part-{file:05}.parquet")), bytes)?;
    }
    let export = start.elapsed();
    let parquet_bytes = dir_bytes(&one)?;
    println!(
        "export: {rows} decisions in {:.2} s = {:.0} rows/s ({:.0} MB of row JSON -> {:.1} MB Parquet, zstd)",
        export.as_secs_f64(),
        rows as f64 / export.as_secs_f64(),
        json_bytes as f64 / 1e6,
        parquet_bytes as f64 / 1e6
    );
    let staged_rows = (rows / 10).max(1);
    let staged = staged_path(&base, staged_rows, &work.path().join("staged")).await?;
    println!(
        "export through the state store (stage + close, as serve runs it): {staged_rows} decisions at {staged:.0} rows/s"
    );

    // 2. Aggregate over ten copies (10 orgs).
    let ten = work.path().join("ten");
    for org in 0..10 {
        copy_dir(
            &one.join("decisions/org=org0"),
            &ten.join(format!("decisions/org=org{org}")),
        )?;
    }
    let total = rows * 10;
    let engine = SqlEngine::new(Arc::new(LocalFileSystem::new_with_prefix(&ten)?));
    let mut duck = DuckDb::start(&venv, &ten)?;
    // The engines take turns (the order alternates), so load from other processes on a shared
    // machine falls on both alike; the first round warms the page cache and is not counted.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..=AGGREGATE_RUNS {
        for engine_turn in [round % 2, 1 - round % 2] {
            if engine_turn == 0 {
                let (wall, cpu) = (Instant::now(), process_cpu()?);
                let result = engine.query(&Scope::All, QUERY).await?;
                let (wall, cpu) = (wall.elapsed(), process_cpu()?.saturating_sub(cpu));
                let json = output::json_rows(&result)?;
                let n: i64 = json.iter().filter_map(|r| r["n"].as_i64()).sum();
                ours.push((wall, cpu, format!("{n} {}", json.len())));
            } else {
                theirs.push(duck.run()?);
            }
        }
    }
    if let Some(((_, _, a), (_, _, b))) = ours
        .iter()
        .zip(&theirs)
        .find(|((_, _, a), (_, _, b))| a != b)
    {
        bail!("the engines disagree: DataFusion {a}, DuckDB {b}");
    }
    let medians = |runs: &[(Duration, Duration, String)]| {
        let walls = runs[1..].iter().map(|r| r.0).collect();
        let cpus = runs[1..].iter().map(|r| r.1).collect();
        (median(walls), median(cpus))
    };
    let ((wall, cpu), (duck_wall, duck_cpu)) = (medians(&ours), medians(&theirs));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "aggregate over {total} rows (GROUP BY route, chosen_model; count, avg), median of {AGGREGATE_RUNS} alternating runs after a warm-up: \
         DataFusion {:.0} ms ({} partitions; CPU {:.0} ms), DuckDB {:.0} ms ({} threads; CPU {:.0} ms); \
         DataFusion/DuckDB = {:.2}x (CPU {:.2}x)",
        ms(wall),
        std::thread::available_parallelism().map_or(0, usize::from),
        ms(cpu),
        ms(duck_wall),
        duck.threads,
        ms(duck_cpu),
        wall.as_secs_f64() / duck_wall.as_secs_f64(),
        cpu.as_secs_f64() / duck_cpu.as_secs_f64(),
    );
    Ok(())
}
