//! The compiled-in schema set: every `.avsc` under `schemas/avro/` and `schemas/manifest.json`,
//! embedded with `include_str!` and parsed once per process.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use apache_avro::Schema;
use serde::Deserialize;

use crate::event::EventKind;

/// The Avro namespace of every event schema.
pub const NAMESPACE: &str = "io.switchyard.events";

/// One compiled-in schema file: `(kind, version, path under schemas/, text)`.
type Source = (EventKind, u32, &'static str, &'static str);

/// Declares the compiled-in schema files; the path literal is written once.
macro_rules! sources {
    ($(($kind:ident, $version:literal, $path:literal)),+ $(,)?) => {
        &[$((EventKind::$kind, $version, $path, include_str!(concat!("../../../schemas/", $path)))),+]
    };
}

/// Every schema file. A test asserts this equals the files on disk; add new versions here.
const SOURCES: &[Source] = sources![
    (
        RequestReceived,
        1,
        "avro/request_received/RequestReceived.v1.avsc"
    ),
    (
        RequestReceived,
        2,
        "avro/request_received/RequestReceived.v2.avsc"
    ),
    (
        ResponseCompleted,
        1,
        "avro/response_completed/ResponseCompleted.v1.avsc"
    ),
    (
        ResponseCompleted,
        2,
        "avro/response_completed/ResponseCompleted.v2.avsc"
    ),
    (RouteDecided, 1, "avro/route_decided/RouteDecided.v1.avsc"),
    (RouteDecided, 2, "avro/route_decided/RouteDecided.v2.avsc"),
    (RouteDecided, 3, "avro/route_decided/RouteDecided.v3.avsc"),
    (RouteDecided, 4, "avro/route_decided/RouteDecided.v4.avsc"),
    (RouteDecided, 5, "avro/route_decided/RouteDecided.v5.avsc"),
    (
        FeedbackSubmitted,
        1,
        "avro/feedback_submitted/FeedbackSubmitted.v1.avsc"
    ),
    (
        FeedbackSubmitted,
        2,
        "avro/feedback_submitted/FeedbackSubmitted.v2.avsc"
    ),
    (
        FeedbackSubmitted,
        3,
        "avro/feedback_submitted/FeedbackSubmitted.v3.avsc"
    ),
    (JudgeScored, 1, "avro/judge_scored/JudgeScored.v1.avsc"),
    (RoutePinned, 1, "avro/route_pinned/RoutePinned.v1.avsc"),
    (
        RouteUnpinned,
        1,
        "avro/route_unpinned/RouteUnpinned.v1.avsc"
    ),
    (
        ConstraintsChanged,
        1,
        "avro/constraints_changed/ConstraintsChanged.v1.avsc"
    ),
    (
        RoutingTableUpdated,
        1,
        "avro/routing_table_updated/RoutingTableUpdated.v1.avsc"
    ),
    (
        RoutingTableUpdated,
        2,
        "avro/routing_table_updated/RoutingTableUpdated.v2.avsc"
    ),
    (
        ApiKeyCreated,
        1,
        "avro/api_key_created/ApiKeyCreated.v1.avsc"
    ),
    (
        ApiKeyCreated,
        2,
        "avro/api_key_created/ApiKeyCreated.v2.avsc"
    ),
    (
        ApiKeyRevoked,
        1,
        "avro/api_key_revoked/ApiKeyRevoked.v1.avsc"
    ),
    (
        RouteConfigured,
        1,
        "avro/route_configured/RouteConfigured.v1.avsc"
    ),
    (
        KeyUsageReported,
        1,
        "avro/key_usage_reported/KeyUsageReported.v1.avsc"
    ),
];

/// The text of `schemas/manifest.json`.
pub const MANIFEST_JSON: &str = include_str!("../../../schemas/manifest.json");

/// One version of one event schema.
#[derive(Debug)]
pub struct SchemaEntry {
    kind: EventKind,
    version: u32,
    default_id: u32,
    path: &'static str,
    source: &'static str,
    schema: Schema,
}

impl SchemaEntry {
    /// Returns the event kind.
    pub const fn kind(&self) -> EventKind {
        self.kind
    }

    /// Returns the schema version (1-based).
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// Returns the schema id assigned in `schemas/manifest.json` (used when no registry is configured).
    pub const fn default_id(&self) -> u32 {
        self.default_id
    }

    /// Returns the path of the `.avsc` file, relative to `schemas/`.
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// Returns the `.avsc` text, as compiled in (what a registry is given).
    pub const fn source(&self) -> &'static str {
        self.source
    }

    /// Returns the parsed schema.
    pub const fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Returns the registry subject (`io.switchyard.events.<Event>`, Confluent `RecordNameStrategy`).
    pub fn subject(&self) -> String {
        self.kind.subject()
    }
}

/// Every compiled-in schema version, with the manifest's ids.
#[derive(Debug)]
pub struct SchemaSet {
    entries: Vec<SchemaEntry>,
}

impl SchemaSet {
    /// Returns every entry, ordered by kind (as in [`EventKind::ALL`]) then version.
    pub fn entries(&self) -> &[SchemaEntry] {
        &self.entries
    }

    /// Returns the entry of one version of one kind.
    pub fn get(&self, kind: EventKind, version: u32) -> Option<&SchemaEntry> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.version == version)
    }

    /// Returns every version of one kind, oldest first.
    pub fn versions(&self, kind: EventKind) -> impl Iterator<Item = &SchemaEntry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// Returns the latest version of one kind (the one the Rust types follow).
    pub fn latest(&self, kind: EventKind) -> Option<&SchemaEntry> {
        self.get(kind, kind.latest_version())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    namespace: String,
    framing: String,
    schemas: Vec<ManifestEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    event: String,
    version: u32,
    id: u32,
    subject: String,
    file: String,
}

static SCHEMA_SET: LazyLock<Result<SchemaSet, String>> = LazyLock::new(load);

/// Returns the compiled-in schema set, parsed on first use.
///
/// # Errors
/// A message when a compiled-in schema or the manifest is invalid or inconsistent (a build of
/// this crate whose tests pass never returns it).
pub fn schema_set() -> Result<&'static SchemaSet, String> {
    SCHEMA_SET.as_ref().map_err(Clone::clone)
}

fn load() -> Result<SchemaSet, String> {
    let manifest: Manifest = serde_json::from_str(MANIFEST_JSON)
        .map_err(|e| format!("schemas/manifest.json is invalid: {e}"))?;
    if manifest.namespace != NAMESPACE {
        return Err(format!(
            "manifest namespace `{}` is not `{NAMESPACE}`",
            manifest.namespace
        ));
    }
    if manifest.framing != "confluent" {
        return Err(format!(
            "manifest framing `{}` is not `confluent`",
            manifest.framing
        ));
    }
    let mut ids = HashSet::new();
    let mut by_key = BTreeMap::new();
    for m in &manifest.schemas {
        let kind: EventKind = m.event.parse().map_err(|e| format!("manifest: {e}"))?;
        if !ids.insert(m.id) {
            return Err(format!("manifest: schema id {} is assigned twice", m.id));
        }
        if m.subject != kind.subject() {
            return Err(format!(
                "manifest: subject of {} v{} is `{}`, expected `{}`",
                m.event,
                m.version,
                m.subject,
                kind.subject()
            ));
        }
        if by_key.insert((kind, m.version), m).is_some() {
            return Err(format!(
                "manifest: {} v{} is listed twice",
                m.event, m.version
            ));
        }
    }
    if by_key.len() != SOURCES.len() {
        return Err(format!(
            "manifest lists {} schemas but {} are compiled in",
            by_key.len(),
            SOURCES.len()
        ));
    }
    let mut entries = Vec::with_capacity(SOURCES.len());
    for &(kind, version, path, source) in SOURCES {
        let m = by_key
            .get(&(kind, version))
            .ok_or_else(|| format!("manifest has no entry for {kind} v{version}"))?;
        if m.file != path {
            return Err(format!(
                "manifest file of {kind} v{version} is `{}`, expected `{path}`",
                m.file
            ));
        }
        let schema = Schema::parse_str(source).map_err(|e| format!("{path}: {e}"))?;
        let full_name = schema.name().map(|n| n.fullname(None));
        if full_name.as_deref() != Some(kind.subject().as_str()) {
            return Err(format!(
                "{path}: record name {full_name:?} is not `{}`",
                kind.subject()
            ));
        }
        entries.push(SchemaEntry {
            kind,
            version,
            default_id: m.id,
            path,
            source,
            schema,
        });
    }
    entries.sort_by_key(|e| (e.kind, e.version));
    for kind in EventKind::ALL {
        let versions: Vec<u32> = entries
            .iter()
            .filter(|e| e.kind == *kind)
            .map(|e| e.version)
            .collect();
        let expected: Vec<u32> = (1..=kind.latest_version()).collect();
        if versions != expected {
            return Err(format!(
                "{kind}: schema versions {versions:?} compiled in, but the Rust types follow v{} \
                 (versions must be 1..=latest)",
                kind.latest_version()
            ));
        }
    }
    Ok(SchemaSet { entries })
}

/// Returns the compiled-in files as `(path under schemas/, text)` (for the on-disk equality test).
pub fn compiled_in_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    SOURCES.iter().map(|&(_, _, path, source)| (path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_set_loads() -> Result<(), String> {
        let set = schema_set()?;
        assert_eq!(set.entries().len(), SOURCES.len());
        for kind in EventKind::ALL {
            assert!(set.latest(*kind).is_some(), "{kind} has no latest schema");
        }
        Ok(())
    }

    #[test]
    fn rust_enums_match_schema_enums() -> Result<(), String> {
        let set = schema_set()?;
        let mut checked = 0;
        for (name, rust_symbols) in crate::wire::rust_enum_symbols() {
            for entry in set.entries() {
                if let Some(symbols) = find_enum(&entry.schema_json()?, name) {
                    let rust: Vec<String> = rust_symbols.iter().map(|s| (*s).to_owned()).collect();
                    assert_eq!(symbols, rust, "{name} in {}", entry.path());
                    checked += 1;
                }
            }
        }
        assert!(checked >= 6, "only {checked} enum definitions found");
        Ok(())
    }

    impl SchemaEntry {
        fn schema_json(&self) -> Result<serde_json::Value, String> {
            serde_json::from_str(self.source).map_err(|e| e.to_string())
        }
    }

    fn find_enum(json: &serde_json::Value, name: &str) -> Option<Vec<String>> {
        match json {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("enum")
                    && map.get("name").and_then(|n| n.as_str()) == Some(name)
                {
                    let symbols = map.get("symbols")?.as_array()?;
                    return Some(
                        symbols
                            .iter()
                            .filter_map(|s| s.as_str())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                map.values().find_map(|v| find_enum(v, name))
            }
            serde_json::Value::Array(items) => items.iter().find_map(|v| find_enum(v, name)),
            _ => None,
        }
    }
}
