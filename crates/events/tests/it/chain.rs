//! The constraints hash chain and the decision signing payload.

use anyhow::Result;
use proptest::prelude::*;
use switchyard_events::*;

use crate::arbitrary;
use crate::fixtures::sample;

fn chain(route: &str, sets: &[Constraints]) -> Result<Vec<ConstraintsChanged>> {
    let route = RouteName::new(route);
    let mut prev = String::new();
    let mut out = Vec::new();
    for (sequence, constraints) in (0_i64..).zip(sets) {
        let hash = ConstraintsChanged::compute_hash(&prev, constraints, &route, sequence);
        out.push(ConstraintsChanged {
            envelope: Envelope {
                event_id: EventId::now_v7(),
                org: OrgId::new("acme"),
                event_time: Timestamp::from_micros(sequence),
                trace_id: TraceId::new("t"),
                partition_key: PartitionKey::new("acme/support"),
            },
            route: route.clone(),
            sequence,
            constraints: *constraints,
            changed_by: "admin".into(),
            prev_hash: prev,
            hash: hash.clone(),
        });
        prev = hash;
    }
    Ok(out)
}

#[test]
fn a_chain_verifies_after_a_trip_through_the_codec() -> Result<()> {
    let sets = [
        Constraints {
            max_regression: Some(0.05),
            ..Constraints::default()
        },
        Constraints {
            max_regression: Some(0.05),
            min_samples: Some(200),
            ..Constraints::default()
        },
        Constraints {
            max_cost_per_request: Some(0.01),
            ..Constraints::default()
        },
    ];
    let changes = chain("support", &sets)?;
    ConstraintsChanged::verify_chain(&changes)?;
    let codec = Codec::new()?;
    let mut decoded = Vec::new();
    for change in &changes {
        match codec.decode(&codec.encode(&Event::from(change.clone()))?)? {
            Event::ConstraintsChanged(c) => decoded.push(c),
            other => anyhow::bail!("decoded {:?}", other.kind()),
        }
    }
    ConstraintsChanged::verify_chain(&decoded)?;
    assert_eq!(decoded, changes);
    Ok(())
}

#[test]
fn tampering_breaks_the_chain() -> Result<()> {
    let sets = [
        Constraints::default(),
        Constraints {
            min_quality: Some(0.7),
            ..Constraints::default()
        },
    ];
    let good = chain("support", &sets)?;

    let mut edited = good.clone();
    edited[1].constraints.min_quality = Some(0.1);
    assert!(matches!(
        ConstraintsChanged::verify_chain(&edited),
        Err(ChainError::BadHash { sequence: 1, .. })
    ));

    let mut relinked = good.clone();
    relinked[1].prev_hash = "00".repeat(32);
    assert!(matches!(
        ConstraintsChanged::verify_chain(&relinked),
        Err(ChainError::BrokenLink { sequence: 1, .. })
    ));

    let mut dropped = good.clone();
    dropped.remove(0);
    assert!(matches!(
        ConstraintsChanged::verify_chain(&dropped),
        Err(ChainError::BadSequence {
            found: 1,
            expected: 0,
            ..
        })
    ));

    // Unset and set-to-something are different constraints, so different hashes.
    let unset =
        ConstraintsChanged::compute_hash("", &Constraints::default(), &RouteName::new("r"), 0);
    let zero = ConstraintsChanged::compute_hash(
        "",
        &Constraints {
            max_regression: Some(0.0),
            ..Constraints::default()
        },
        &RouteName::new("r"),
        0,
    );
    assert_ne!(unset, zero);
    Ok(())
}

#[test]
fn the_sample_constraints_change_verifies() -> Result<()> {
    match sample(EventKind::ConstraintsChanged)? {
        Event::ConstraintsChanged(c) => ConstraintsChanged::verify_chain([&c])?,
        other => anyhow::bail!("sample is {:?}", other.kind()),
    }
    Ok(())
}

#[test]
fn signing_payload_covers_everything_but_the_signature() -> Result<()> {
    let Event::RouteDecided(decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    let payload = decision.signing_payload()?;
    let text = String::from_utf8(payload.clone())?;
    assert!(!text.contains("\"signature\""));
    assert!(text.contains("\"signing_key_id\":\"router-2026-01\""));
    assert!(text.contains("\"org\":\"acme\""));
    // Null members are left out, so a field added later with a null default keeps old payloads.
    assert!(!text.contains("null"));

    let mut resigned = decision.clone();
    resigned.signature = "other".into();
    assert_eq!(resigned.signing_payload()?, payload);

    let mut edited = decision.clone();
    edited.served_model = ModelName::new("large-careful");
    assert_ne!(edited.signing_payload()?, payload);
    Ok(())
}

proptest! {
    #[test]
    fn any_chain_verifies(sets in proptest::collection::vec(arbitrary::constraints(), 1..5), route in arbitrary::text()) {
        let changes = chain(&route, &sets).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(ConstraintsChanged::verify_chain(&changes).is_ok());
    }
}
