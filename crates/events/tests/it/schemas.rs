//! The schema files themselves: compiled-in set equals disk, shared named types are identical,
//! ids are unique, nullable fields are evolvable.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value as Json;
use switchyard_events::schema::{MANIFEST_JSON, compiled_in_files};
use switchyard_events::{Codec, EventKind, schema_set};

use crate::schemas_dir;

fn avsc_files(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            avsc_files(&path, root, out)?;
        } else if path.extension().is_some_and(|e| e == "avsc") {
            let rel = path
                .strip_prefix(root)?
                .to_str()
                .ok_or_else(|| anyhow!("non-UTF-8 path"))?
                .replace('\\', "/");
            out.insert(rel, fs::read_to_string(&path)?);
        }
    }
    Ok(())
}

#[test]
fn compiled_in_schemas_equal_the_files_on_disk() -> Result<()> {
    let root = schemas_dir();
    let mut on_disk = BTreeMap::new();
    avsc_files(&root.join("avro"), &root, &mut on_disk)?;
    let compiled: BTreeMap<String, String> = compiled_in_files()
        .map(|(p, s)| (p.to_owned(), s.to_owned()))
        .collect();
    let disk_paths: BTreeSet<&String> = on_disk.keys().collect();
    let compiled_paths: BTreeSet<&String> = compiled.keys().collect();
    assert_eq!(
        disk_paths, compiled_paths,
        "every .avsc on disk must be compiled in (crates/events/src/schema.rs SOURCES) and vice versa"
    );
    for (path, text) in &on_disk {
        assert_eq!(
            Some(text),
            compiled.get(path),
            "{path} differs from the compiled-in copy"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("manifest.json"))?,
        MANIFEST_JSON
    );
    Ok(())
}

#[test]
fn schema_files_are_named_after_their_event_and_version() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    for entry in set.entries() {
        let kind = entry.kind();
        let expected = format!(
            "avro/{}/{}.v{}.avsc",
            kind.snake_name(),
            kind.name(),
            entry.version()
        );
        assert_eq!(entry.path(), expected);
        assert_eq!(
            entry.subject(),
            format!("io.switchyard.events.{}", kind.name())
        );
    }
    Ok(())
}

#[test]
fn schema_ids_are_unique_and_fit_confluent_ids() -> Result<()> {
    let manifest: Json = serde_json::from_str(MANIFEST_JSON)?;
    assert_eq!(manifest["framing"], "confluent");
    let entries = manifest["schemas"].as_array().context("schemas array")?;
    let mut ids = HashSet::new();
    for e in entries {
        let id = e["id"].as_u64().context("numeric id")?;
        ensure!(ids.insert(id), "schema id {id} is assigned twice");
        ensure!(
            id > 0 && id <= i32::MAX as u64,
            "id {id} is not a positive Java int"
        );
    }
    let set = schema_set().map_err(|e| anyhow!(e))?;
    assert_eq!(ids.len(), set.entries().len());
    let codec = Codec::new()?;
    let mut codec_ids = HashSet::new();
    for entry in set.entries() {
        let id = codec
            .schema_id(entry.kind(), entry.version())
            .context("codec id")?;
        assert_eq!(id, entry.default_id());
        assert!(codec_ids.insert(id));
        assert_eq!(codec.lookup_id(id), Some((entry.kind(), entry.version())));
    }
    Ok(())
}

/// Collects every named type definition (record, enum, fixed) in a schema JSON.
fn named_definitions(json: &Json, out: &mut Vec<(String, Json)>) {
    match json {
        Json::Object(map) => {
            let kind = map.get("type").and_then(Json::as_str);
            if let (Some("record" | "enum" | "fixed"), Some(name)) =
                (kind, map.get("name").and_then(Json::as_str))
            {
                out.push((name.to_owned(), json.clone()));
            }
            for v in map.values() {
                named_definitions(v, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|v| named_definitions(v, out)),
        _ => {}
    }
}

#[test]
fn inlined_envelope_and_shared_types_are_identical_everywhere() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    // A named type used by one event only (`ModelStats` in `RoutingTableUpdated`) may evolve
    // between that event's versions, under the FULL compatibility checks; a type shared by
    // several events (`Envelope`, `FeedbackSource`, `RouteMode`, ...) must be identical in every
    // file, or one event's evolution would silently fork another's.
    let mut users: BTreeMap<String, BTreeSet<EventKind>> = BTreeMap::new();
    for entry in set.entries() {
        let json: Json = serde_json::from_str(entry.source())?;
        let mut defs = Vec::new();
        named_definitions(&json["fields"], &mut defs);
        for (name, _) in defs {
            users.entry(name).or_default().insert(entry.kind());
        }
    }
    let mut first: BTreeMap<String, (String, Json)> = BTreeMap::new();
    let mut envelopes = 0;
    for entry in set.entries() {
        let json: Json = serde_json::from_str(entry.source())?;
        let fields = json["fields"].as_array().context("fields")?;
        let envelope = fields.first().context("first field")?;
        assert_eq!(
            envelope["name"],
            "envelope",
            "{}: envelope must be the first field",
            entry.path()
        );
        assert_eq!(envelope["type"]["name"], "Envelope", "{}", entry.path());
        envelopes += 1;
        // The event record and its private types change between versions; shared types must not.
        let mut defs = Vec::new();
        named_definitions(&json["fields"], &mut defs);
        for (name, def) in defs {
            if users.get(&name).is_none_or(|kinds| kinds.len() < 2) {
                continue;
            }
            match first.get(&name) {
                Some((path, seen)) => assert_eq!(
                    &def,
                    seen,
                    "named type {name} in {} differs from its definition in {path}",
                    entry.path()
                ),
                None => {
                    first.insert(name, (entry.path().to_owned(), def));
                }
            }
        }
    }
    assert_eq!(envelopes, set.entries().len());
    for shared in ["Envelope", "FeedbackSource", "RouteMode", "PinReason"] {
        assert!(
            users.get(shared).is_some_and(|kinds| kinds.len() > 1),
            "{shared} should be shared by several events"
        );
    }
    let envelope = &first.get("Envelope").context("Envelope defined")?.1;
    let names: Vec<&str> = envelope["fields"]
        .as_array()
        .context("envelope fields")?
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["event_id", "org", "event_time", "trace_id", "partition_key"]
    );
    assert_eq!(
        envelope["fields"][2]["type"]["logicalType"],
        "timestamp-micros"
    );
    Ok(())
}

/// Checks evolvability rules on every record field of a schema JSON.
fn check_fields(json: &Json, path: &str, problems: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            if map.get("type").and_then(Json::as_str) == Some("enum") {
                let symbols = map.get("symbols").and_then(Json::as_array);
                let default = map.get("default");
                if !default.is_some_and(|d| symbols.is_some_and(|s| s.contains(d))) {
                    problems.push(format!(
                        "{path}: enum {:?} needs a reader default symbol",
                        map.get("name")
                    ));
                }
            }
            if let Some(fields) = map.get("fields").and_then(Json::as_array) {
                for field in fields {
                    let name = field["name"].as_str().unwrap_or("?");
                    if let Some(branches) = field["type"].as_array()
                        && branches.iter().any(|b| b == "null")
                    {
                        if branches.first() != Some(&Json::from("null")) {
                            problems.push(format!("{path}: {name}: null must be the first branch"));
                        }
                        if field.get("default") != Some(&Json::Null) {
                            problems.push(format!(
                                "{path}: {name}: nullable fields need \"default\": null"
                            ));
                        }
                    }
                }
            }
            map.values().for_each(|v| check_fields(v, path, problems));
        }
        Json::Array(items) => items.iter().for_each(|v| check_fields(v, path, problems)),
        _ => {}
    }
}

#[test]
fn nullable_fields_and_enums_are_evolvable() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    let mut problems = Vec::new();
    for entry in set.entries() {
        let json: Json = serde_json::from_str(entry.source())?;
        check_fields(&json, entry.path(), &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

#[test]
fn every_kind_has_every_version_up_to_its_latest() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    for kind in EventKind::ALL {
        let versions: Vec<u32> = set.versions(*kind).map(|e| e.version()).collect();
        assert_eq!(
            versions,
            (1..=kind.latest_version()).collect::<Vec<_>>(),
            "{kind}"
        );
    }
    Ok(())
}
