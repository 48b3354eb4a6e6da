//! The single-node control socket: `<data-dir>/control.sock`, a Unix socket through which CLI
//! commands reach a running server that holds the data directory (the embedded log allows one
//! process). One JSON request per line, one JSON response per line. Access is governed by the
//! directory's permissions, like the data itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use switchyard_events::{Codec, Event};
use switchyard_ingress::control::{ControlPlane, KeyInfo};
use switchyard_log::embedded::EmbeddedLog;
use switchyard_log::{EventLog, Record};
use switchyard_runtime::CancellationToken;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Append one encoded control event (hex of the Confluent-framed bytes).
    Append { event: String },
    /// List the API keys the server knows.
    ListKeys,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Keys { keys: Vec<KeyInfo> },
    Error { message: String },
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    // A socket file left by a killed server is stale: we hold the data directory's lock, so no
    // other server can be using it.
    if path.exists() {
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    UnixListener::bind(path)
        .with_context(|| format!("cannot bind the control socket {}", path.display()))
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    log: EmbeddedLog,
    codec: Arc<Codec>,
    plane: ControlPlane,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::debug!(path = %path.display(), "control socket listening");
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted.context("control socket accept")?,
        };
        let (log, codec, plane) = (log.clone(), Arc::clone(&codec), plane.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &log, &codec, &plane).await {
                tracing::warn!(error = %e, "control socket request failed");
            }
        });
    }
}

async fn handle(
    stream: UnixStream,
    log: &EmbeddedLog,
    codec: &Codec,
    plane: &ControlPlane,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    reader.read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
        Ok(Request::ListKeys) => Response::Keys {
            keys: plane.snapshot().keys(),
        },
        Ok(Request::Append { event }) => match append(log, codec, &event).await {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error {
                message: format!("{e:#}"),
            },
        },
    };
    let mut out = serde_json::to_vec(&response)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

async fn append(log: &EmbeddedLog, codec: &Codec, hex_event: &str) -> anyhow::Result<()> {
    let bytes = hex::decode(hex_event.trim()).context("event is not hex")?;
    let event = codec.decode(&bytes).context("event does not decode")?;
    // Only control-plane facts may enter through this door.
    if !matches!(event, Event::ApiKeyCreated(_) | Event::ApiKeyRevoked(_)) {
        bail!(
            "only API key events are accepted here, got {}",
            event.kind().name()
        );
    }
    log.append(
        event.topic(),
        vec![Record::new(event.partition_key().as_str(), bytes)],
    )
    .await?;
    Ok(())
}

/// Sends one request to a running server.
pub async fn call(path: &Path, request: &Request) -> anyhow::Result<Response> {
    let connect = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(path)).await;
    let stream = match connect {
        Ok(Ok(stream)) => stream,
        _ => bail!(
            "the data directory is in use by another switchyard process, and its control socket {} does not answer",
            path.display()
        ),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(read.take(MAX_LINE as u64)).read_line(&mut answer),
    )
    .await
    .context("the running server did not answer in time")??;
    serde_json::from_str(&answer).context("unreadable answer from the running server")
}
