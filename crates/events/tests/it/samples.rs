//! Frozen samples: every published version's bytes, decoded with today's code.
//!
//! `schemas/samples/<event>/v<N>.bin.hex` holds the Confluent-framed bytes written with version N,
//! `v<N>.json` the same record in the Avro JSON encoding (readable, and checked against the
//! bytes), `v<N>.expected.json` what today's `Event` decodes the bytes to (serde JSON).
//!
//! - `SWITCHYARD_REGENERATE_SAMPLES=1` writes the samples of versions that have none yet (a new
//!   version). It never overwrites a sample: once committed, a version's bytes are frozen.
//! - `SWITCHYARD_UPDATE_EXPECTED=1` rewrites every `v<N>.expected.json` from today's decoder, for
//!   a deliberate change of the Rust types; review the diff.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use apache_avro::reader::datum::GenericDatumReader;
use serde_json::Value as Json;
use switchyard_events::schema::SchemaEntry;
use switchyard_events::{Codec, HEADER_LEN, schema_set};

use crate::avro_json::to_avro_json;
use crate::fixtures::sample;
use crate::schemas_dir;

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn pretty(json: &Json) -> Result<String> {
    Ok(serde_json::to_string_pretty(json)? + "\n")
}

/// Returns the record in the bytes as written, without resolution, in the Avro JSON encoding.
fn written_avro_json(entry: &SchemaEntry, bytes: &[u8]) -> Result<Json> {
    let mut body = bytes.get(HEADER_LEN..).context("frame header")?;
    let value = GenericDatumReader::builder(entry.schema())
        .build()?
        .read_value(&mut body)?;
    if !body.is_empty() {
        bail!("{} trailing bytes", body.len());
    }
    to_avro_json(&value, entry.schema())
}

fn generate(codec: &Codec, entry: &SchemaEntry, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    let version = entry.version();
    let bytes = codec.encode_as_version(&sample(entry.kind())?, version)?;
    let json = written_avro_json(entry, &bytes)?;
    let expected = serde_json::to_value(codec.decode(&bytes)?)?;
    let write_new = |name: String, text: String| -> Result<()> {
        let path = dir.join(name);
        if path.exists() {
            bail!("refusing to overwrite frozen sample {}", path.display());
        }
        Ok(fs::write(path, text)?)
    };
    write_new(format!("v{version}.bin.hex"), hex::encode(&bytes) + "\n")?;
    write_new(format!("v{version}.json"), pretty(&json)?)?;
    write_new(format!("v{version}.expected.json"), pretty(&expected)?)?;
    Ok(())
}

fn check(codec: &Codec, entry: &SchemaEntry, dir: &Path, update_expected: bool) -> Result<()> {
    let version = entry.version();
    let hex_text = fs::read_to_string(dir.join(format!("v{version}.bin.hex")))?;
    let bytes = hex::decode(hex_text.trim())?;
    let id = Codec::peek_schema_id(&bytes)?;
    if id != entry.default_id() {
        bail!(
            "framed with id {id}, but the manifest id of this version is {}",
            entry.default_id()
        );
    }
    let written: Json =
        serde_json::from_str(&fs::read_to_string(dir.join(format!("v{version}.json")))?)?;
    if written_avro_json(entry, &bytes)? != written {
        bail!("v{version}.json does not match the bytes of v{version}.bin.hex");
    }
    let decoded = serde_json::to_value(codec.decode(&bytes)?)?;
    let expected_path = dir.join(format!("v{version}.expected.json"));
    if update_expected {
        fs::write(&expected_path, pretty(&decoded)?)?;
        return Ok(());
    }
    let expected: Json = serde_json::from_str(&fs::read_to_string(&expected_path)?)?;
    if decoded != expected {
        bail!(
            "today's decoder gives\n{}\nbut {} expects\n{}",
            pretty(&decoded)?,
            expected_path.display(),
            pretty(&expected)?
        );
    }
    Ok(())
}

#[test]
fn every_frozen_sample_decodes_to_its_expected_json() -> Result<()> {
    let regenerate = env_flag("SWITCHYARD_REGENERATE_SAMPLES");
    let update_expected = env_flag("SWITCHYARD_UPDATE_EXPECTED");
    let codec = Codec::new()?;
    let set = schema_set().map_err(|e| anyhow!(e))?;
    let mut failures = Vec::new();
    for entry in set.entries() {
        let dir = schemas_dir()
            .join("samples")
            .join(entry.kind().snake_name());
        let label = format!("{} v{}", entry.kind(), entry.version());
        if !dir.join(format!("v{}.bin.hex", entry.version())).exists() {
            if regenerate {
                generate(&codec, entry, &dir).with_context(|| format!("generating {label}"))?;
            } else {
                failures.push(format!(
                    "{label}: no frozen sample; run `SWITCHYARD_REGENERATE_SAMPLES=1 cargo test -p switchyard-events` and commit it"
                ));
                continue;
            }
        }
        if let Err(e) = check(&codec, entry, &dir, update_expected) {
            failures.push(format!("{label}: {e:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}
