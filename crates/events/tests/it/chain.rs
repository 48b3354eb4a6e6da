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

/// The signing payload of the frozen v1 decision sample, as v1 code computed it.
const V1_SAMPLE_PAYLOAD: &str = "{\"baseline_model\":\"large-careful\",\"canary_percent\":10,\
     \"candidates\":[{\"cost\":0.12,\"estimated_cost_usd\":0.0003,\"feedback\":0.78,\
     \"model\":\"small-fast\",\"score\":0.81,\"success\":0.99},\
     {\"filtered_reason\":\"min_quality\",\"model\":\"tiny\"}],\
     \"chosen_model\":\"small-fast\",\"confidence\":0.87,\"constraints\":[{\"limit\":0.05,\
     \"name\":\"max_regression\",\"observed\":0.012,\"passed\":true}],\
     \"decision_id\":\"dec-0001\",\
     \"envelope\":{\"event_id\":\"019ab5d3-6e80-7000-8000-000000000003\",\
     \"event_time\":1764000000123456,\"org\":\"acme\",\"partition_key\":\"sess-42\",\
     \"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"},\
     \"evidence\":{\"regressions\":{\"0-5%\":3,\"5-10%\":1},\"samples\":1204,\
     \"score_gap\":0.04,\"variance\":0.002},\
     \"explanation\":\"small-fast meets every constraint at 18% of the baseline cost\",\
     \"explanation_language\":\"en\",\"mode\":\"canary\",\"phase\":2,\
     \"reason\":\"cheapest_meeting_constraints\",\"request_id\":\"req-0001\",\
     \"reversible\":true,\"route\":\"support\",\"routing_table_version\":41,\"seed\":7311092,\
     \"served_model\":\"small-fast\",\"session_id\":\"sess-42\",\
     \"signals\":[{\"contribution\":0.32,\"samples\":212,\"source\":\"nps\",\"value\":0.8,\
     \"weight\":0.4}],\"signing_key_id\":\"router-2026-01\"}";

#[test]
fn a_v1_decision_keeps_its_signing_payload() -> Result<()> {
    // A decision signed before v2 must still verify: the fields v2 added read back as their
    // defaults and must not enter the payload.
    let hex_text =
        std::fs::read_to_string(crate::schemas_dir().join("samples/route_decided/v1.bin.hex"))?;
    let codec = Codec::new()?;
    let Event::RouteDecided(decision) = codec.decode(&hex::decode(hex_text.trim())?)? else {
        anyhow::bail!("the v1 sample is not a decision");
    };
    assert_eq!(decision.features, RequestFeatures::default());
    assert_eq!(decision.score_weights, ScoreWeights::default());
    assert_eq!(
        String::from_utf8(decision.signing_payload()?)?,
        V1_SAMPLE_PAYLOAD
    );
    Ok(())
}

/// A change to one field of a decision.
type Edit = fn(&mut RouteDecided);

#[test]
fn signing_payload_covers_every_v2_field() -> Result<()> {
    let Event::RouteDecided(decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    let payload = decision.signing_payload()?;
    let text = String::from_utf8(payload.clone())?;
    for member in [
        "\"features\":{",
        "\"score_weights\":{",
        "\"constraints_hash\":\"",
        "\"route_version\":3",
        "\"unpriced_models\":[\"tiny\"]",
        "\"canary_bucket\":731",
        "\"pool_version\":38",
    ] {
        assert!(text.contains(member), "{member} missing from {text}");
    }
    let edits: [(&str, Edit); 10] = [
        ("features", |d| d.features.input_tokens += 1),
        ("score_weights", |d| d.score_weights.cost = 0.25),
        ("constraints_hash", |d| d.constraints_hash.clear()),
        ("route_version", |d| d.route_version = 0),
        ("unpriced_models", |d| d.unpriced_models.clear()),
        ("mirrored", |d| d.mirrored = true),
        ("canary_bucket", |d| d.canary_bucket = Some(0)),
        ("canary_bucket", |d| d.canary_bucket = None),
        ("pool_version", |d| d.pool_version = Some(39)),
        ("pool_version", |d| d.pool_version = None),
    ];
    for (field, edit) in edits {
        let mut edited = decision.clone();
        edit(&mut edited);
        assert_ne!(edited.signing_payload()?, payload, "{field} is not covered");
    }
    Ok(())
}

#[test]
fn a_decision_at_the_v2_defaults_signs_like_its_v1_reading() -> Result<()> {
    let Event::RouteDecided(mut decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    decision.features = RequestFeatures::default();
    decision.score_weights = ScoreWeights::default();
    decision.constraints_hash = String::new();
    decision.route_version = 0;
    decision.unpriced_models = Vec::new();
    decision.mirrored = false;
    decision.canary_bucket = None;
    // Added in v3; never in the payload anyway (it is what links the payload to a batch).
    decision.signature_proof = None;
    // Added in v4.
    decision.pool_version = None;
    let codec = Codec::new()?;
    let Event::RouteDecided(through_v1) =
        codec.decode(&codec.encode_as_version(&decision.clone().into(), 1)?)?
    else {
        anyhow::bail!("decoded another kind");
    };
    assert_eq!(through_v1, decision);
    let text = String::from_utf8(decision.signing_payload()?)?;
    for field in [
        "features",
        "score_weights",
        "constraints_hash",
        "route_version",
        "unpriced_models",
        "mirrored",
        "canary_bucket",
        "pool_version",
    ] {
        assert!(!text.contains(&format!("\"{field}\"")), "{field} in {text}");
    }
    Ok(())
}

/// A decision that read no learning pool (`pool_version` null, the v4 default) has exactly the
/// payload its v3 reading has: the signatures of v3 decisions and of private orgs' decisions
/// are unchanged by v4.
#[test]
fn a_decision_without_a_pool_signs_like_its_v3_reading() -> Result<()> {
    let Event::RouteDecided(mut decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    let pooled = decision.signing_payload()?;
    decision.pool_version = None;
    // A v3 decision's proof is of the v1 payload (v5 added `payload_format`).
    if let Some(proof) = decision.signature_proof.as_mut() {
        proof.payload_format = 1;
    }
    let codec = Codec::new()?;
    let Event::RouteDecided(through_v3) =
        codec.decode(&codec.encode_as_version(&decision.clone().into(), 3)?)?
    else {
        anyhow::bail!("decoded another kind");
    };
    assert_eq!(through_v3, decision);
    let payload = decision.signing_payload()?;
    assert_eq!(payload, through_v3.signing_payload()?);
    assert_eq!(payload, decision.signing_payload_reference()?);
    assert!(!String::from_utf8(payload.clone())?.contains("pool_version"));
    assert_ne!(payload, pooled);
    Ok(())
}

/// The batch proof is not part of what it proves: a decision signs the same with or without it.
#[test]
fn the_signature_proof_is_outside_the_signing_payload() -> Result<()> {
    let Event::RouteDecided(mut decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    assert!(decision.signature_proof.is_some());
    let with = decision.signing_payload()?;
    assert!(!String::from_utf8(with.clone())?.contains("signature_proof"));
    assert_eq!(with, decision.signing_payload_reference()?);
    decision.signature_proof = None;
    assert_eq!(with, decision.signing_payload()?);
    Ok(())
}

proptest! {
    #[test]
    fn any_chain_verifies(sets in proptest::collection::vec(arbitrary::constraints(), 1..5), route in arbitrary::text()) {
        let changes = chain(&route, &sets).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(ConstraintsChanged::verify_chain(&changes).is_ok());
    }
}
