//! FULL compatibility between schema versions, and proof that the checker catches a break.

use anyhow::{Result, anyhow};
use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use switchyard_events::{EventKind, schema_set};

use crate::fixtures_dir;

fn full_both_ways(a: &Schema, b: &Schema) -> Result<()> {
    match SchemaCompatibility::can_read(a, b) {
        Ok(Compatibility::Full) => {}
        other => {
            return Err(anyhow!(
                "old data is not fully readable by the new schema: {other:?}"
            ));
        }
    }
    match SchemaCompatibility::can_read(b, a) {
        Ok(Compatibility::Full) => {}
        other => {
            return Err(anyhow!(
                "new data is not fully readable by the old schema: {other:?}"
            ));
        }
    }
    match SchemaCompatibility::mutual_read(a, b) {
        Ok(Compatibility::Full) => Ok(()),
        other => Err(anyhow!("mutual_read: {other:?}")),
    }
}

#[test]
fn adjacent_versions_are_fully_compatible_both_ways() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    let mut pairs = 0;
    for kind in EventKind::ALL {
        let versions: Vec<_> = set.versions(*kind).collect();
        for pair in versions.windows(2) {
            if let [old, new] = pair {
                full_both_ways(old.schema(), new.schema()).map_err(|e| {
                    anyhow!("{kind} v{} <-> v{}: {e}", old.version(), new.version())
                })?;
                pairs += 1;
            }
        }
    }
    assert!(
        pairs >= 2,
        "expected at least two evolved events, checked {pairs} pairs"
    );
    Ok(())
}

#[test]
fn every_version_is_fully_compatible_with_the_latest() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    for entry in set.entries() {
        let latest = set
            .latest(entry.kind())
            .ok_or_else(|| anyhow!("no latest {}", entry.kind()))?;
        full_both_ways(entry.schema(), latest.schema())
            .map_err(|e| anyhow!("{} v{}: {e}", entry.kind(), entry.version()))?;
    }
    Ok(())
}

#[test]
fn the_checker_rejects_a_field_added_without_default() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    let v1 = set
        .get(EventKind::RouteUnpinned, 1)
        .ok_or_else(|| anyhow!("RouteUnpinned v1"))?;
    let bad = Schema::parse_str(&std::fs::read_to_string(
        fixtures_dir().join("RouteUnpinned.incompatible-v2.avsc"),
    )?)?;
    // New data is readable by old readers (they skip the field)...
    assert!(matches!(
        SchemaCompatibility::can_read(&bad, v1.schema()),
        Ok(Compatibility::Full)
    ));
    // ...but old data is not readable by the new schema: the field has no default.
    assert!(SchemaCompatibility::can_read(v1.schema(), &bad).is_err());
    assert!(SchemaCompatibility::mutual_read(v1.schema(), &bad).is_err());
    assert!(full_both_ways(v1.schema(), &bad).is_err());
    Ok(())
}

#[test]
fn the_checker_rejects_a_changed_field_type() -> Result<()> {
    let set = schema_set().map_err(|e| anyhow!(e))?;
    let v1 = set
        .get(EventKind::RoutePinned, 1)
        .ok_or_else(|| anyhow!("RoutePinned v1"))?;
    let bad = Schema::parse_str(&std::fs::read_to_string(
        fixtures_dir().join("RoutePinned.incompatible-v2.avsc"),
    )?)?;
    assert!(SchemaCompatibility::can_read(v1.schema(), &bad).is_err());
    assert!(SchemaCompatibility::can_read(&bad, v1.schema()).is_err());
    Ok(())
}
