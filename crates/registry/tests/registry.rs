//! The registry path against the local stand-in of Confluent's REST API
//! (`tests/python/registry_standin.py`; no Confluent-compatible registry installs here).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use switchyard_events::{Codec, CodecError, EventKind, schema_set};
use switchyard_registry::{Registry, RegistryError, codec_for};

/// The stand-in as a child process, killed on drop.
struct StandIn {
    child: Child,
    url: String,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start_standin() -> anyhow::Result<StandIn> {
    let python = std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(repo_root().join("tests/python/registry_standin.py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {python}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        bail!("the stand-in did not start: {line:?}");
    };
    Ok(StandIn {
        url: url.to_owned(),
        child,
    })
}

fn sample(kind_dir: &str, version: u32) -> anyhow::Result<Vec<u8>> {
    let path = repo_root().join(format!("schemas/samples/{kind_dir}/v{version}.bin.hex"));
    hex_decode(std::fs::read_to_string(&path)?.trim())
}

fn hex_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2).context("odd hex length")?;
            Ok(u8::from_str_radix(pair, 16)?)
        })
        .collect()
}

fn reframe(id: u32, framed: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(framed.get(5..).unwrap_or_default());
    out.extend_from_slice(extra);
    out
}

/// A plain-HTTP client for the test's own calls (the workspace's reqwest has no default TLS
/// provider: install ring's).
fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().build()?)
}

async fn post_json(url: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let response = client()?
        .post(url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.to_string())
        .send()
        .await?;
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

async fn get_json(url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = client()?.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, serde_json::from_slice(&response.bytes().await?)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_registered_and_their_ids_frame_what_is_written() -> anyhow::Result<()> {
    let standin = start_standin()?;
    let set = schema_set().map_err(anyhow::Error::msg)?;
    let codec = codec_for(Some(&standin.url)).await?;

    // Every version is registered under its record's full name, oldest first, and framed with
    // the registry's id, not the manifest's.
    let mut ids = HashMap::new();
    for entry in set.entries() {
        let id = codec
            .schema_id(entry.kind(), entry.version())
            .context("no id")?;
        assert_ne!(
            id,
            entry.default_id(),
            "{} v{}",
            entry.kind(),
            entry.version()
        );
        let (status, body) = get_json(&format!("{}/schemas/ids/{id}", standin.url)).await?;
        assert_eq!(status, 200);
        let registered: serde_json::Value =
            serde_json::from_str(body["schema"].as_str().context("schema")?)?;
        assert_eq!(
            registered,
            serde_json::from_str::<serde_json::Value>(entry.source())?
        );
        ids.insert((entry.kind(), entry.version()), id);
    }
    let subject = EventKind::RouteDecided.subject();
    assert_eq!(subject, "io.switchyard.events.RouteDecided");
    let (_, versions) = get_json(&format!("{}/subjects/{subject}/versions", standin.url)).await?;
    let expected_versions: Vec<u32> = (1..=EventKind::RouteDecided.latest_version()).collect();
    assert_eq!(versions, serde_json::json!(expected_versions));
    let (_, subjects) = get_json(&format!("{}/subjects", standin.url)).await?;
    assert_eq!(
        subjects.as_array().map(Vec::len),
        Some(EventKind::ALL.len())
    );

    // What is written carries the registry id of the latest version and reads back.
    let manifest = Codec::new()?;
    let event = manifest.decode(&sample("route_decided", 3)?)?;
    let bytes = codec.encode(&event)?;
    let latest = (
        EventKind::RouteDecided,
        EventKind::RouteDecided.latest_version(),
    );
    assert_eq!(Codec::peek_schema_id(&bytes)?, ids[&latest]);
    assert_eq!(codec.decode(&bytes)?, event);
    // Records framed with manifest ids before the registry was configured stay readable.
    assert_eq!(codec.decode(&manifest.encode(&event)?)?, event);
    let old = sample("route_decided", 1)?;
    assert_eq!(codec.decode(&old)?, manifest.decode(&old)?);

    // Another process (a restart, a replica) gets the same ids: identical schemas keep theirs.
    let again = codec_for(Some(&format!("{}/", standin.url))).await?;
    for (&(kind, version), &id) in &ids {
        assert_eq!(again.schema_id(kind, version), Some(id));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_registered_later_is_resolved_through_the_registry() -> anyhow::Result<()> {
    let standin = start_standin()?;
    let codec = codec_for(Some(&standin.url)).await?;
    let set = schema_set().map_err(anyhow::Error::msg)?;
    let v1 = set.get(EventKind::RouteUnpinned, 1).context("v1")?;

    // A newer producer registers RouteUnpinned v2 (v1 + a field with a default) after we started.
    let mut newer: serde_json::Value = serde_json::from_str(v1.source())?;
    newer["fields"]
        .as_array_mut()
        .context("fields")?
        .push(serde_json::json!({"name": "note", "type": "string", "default": ""}));
    let subject = EventKind::RouteUnpinned.subject();
    let answer = post_json(
        &format!("{}/subjects/{subject}/versions", standin.url),
        &serde_json::json!({"schema": newer.to_string()}),
    )
    .await?;
    let new_id = u32::try_from(answer["id"].as_u64().context("id")?)?;
    assert!(codec.lookup_id(new_id).is_none());

    // Its records decode (from a Tokio worker: the lookup runs on the resolver's own thread),
    // resolved to today's type; the new field is dropped.
    let sample = sample("route_unpinned", 1)?;
    let expected = Codec::new()?.decode(&sample)?;
    let framed = reframe(new_id, &sample, &[4, b'h', b'i']);
    assert_eq!(codec.decode(&framed)?, expected);
    assert_eq!(codec.decode(&framed)?, expected);
    // The stand-in gone, the cached id still decodes; a new unknown id is a resolve error.
    drop(standin);
    assert_eq!(codec.decode(&framed)?, expected);
    match codec.decode(&reframe(new_id + 1000, &sample, &[])) {
        Err(CodecError::Resolve { id, message }) => {
            assert_eq!(id, new_id + 1000);
            assert!(
                message.contains("schema registry http://127.0.0.1:"),
                "{message}"
            );
        }
        other => bail!("expected a resolve error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_the_registry_does_not_have_is_unknown() -> anyhow::Result<()> {
    let standin = start_standin()?;
    let codec = codec_for(Some(&standin.url)).await?;
    let sample = sample("route_unpinned", 1)?;
    assert!(matches!(
        codec.decode(&reframe(4242, &sample, &[])),
        Err(CodecError::UnknownSchemaId { id: 4242 })
    ));
    assert_eq!(Registry::new(&standin.url)?.schema_text(4242).await?, None);
    Ok(())
}

#[tokio::test]
async fn registry_errors_at_startup_name_the_url() -> anyhow::Result<()> {
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = codec_for(Some(&url)).await.err().context("must fail")?;
    assert!(matches!(error, RegistryError::Register { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "schema registry {url}: cannot register io.switchyard.events."
        )),
        "{text}"
    );

    // A registry that answers errors (no such routes under this path).
    let standin = start_standin()?;
    let url = format!("{}/not-a-registry", standin.url);
    let text = codec_for(Some(&url))
        .await
        .err()
        .context("must fail")?
        .to_string();
    assert!(text.contains(&url) && text.contains("404"), "{text}");

    let text = codec_for(Some("ftp://x"))
        .await
        .err()
        .context("must fail")?
        .to_string();
    assert!(
        text.contains("ftp://x") && text.contains("http://"),
        "{text}"
    );

    // No URL (or an empty one): the manifest ids.
    let manifest = Codec::new()?;
    for url in [None, Some(""), Some("  ")] {
        let codec = codec_for(url).await?;
        assert_eq!(
            codec.schema_id(EventKind::RequestReceived, 1),
            manifest.schema_id(EventKind::RequestReceived, 1)
        );
    }
    Ok(())
}
