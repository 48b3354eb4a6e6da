//! The codec: round trips for every event, older versions, typed errors, and no panics on garbage.

use std::collections::BTreeMap;

use anyhow::Result;
use proptest::prelude::*;
use switchyard_events::*;

use crate::arbitrary;
use crate::fixtures::sample;

fn codec() -> Codec {
    match Codec::new() {
        Ok(codec) => codec,
        Err(e) => unreachable!("compiled-in schemas are invalid: {e}"),
    }
}

/// What an event looks like after a trip through an older version: fields that version lacks
/// come back as their defaults.
fn as_seen_through(event: &Event, version: u32) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::RequestReceived(e) if version < 2 => e.client = None,
        Event::FeedbackSubmitted(e) if version < 2 => e.labels = BTreeMap::new(),
        Event::ResponseCompleted(e) if version < 2 => e.shadow = false,
        Event::RouteDecided(e) if version < 2 => {
            e.features = RequestFeatures::default();
            e.score_weights = ScoreWeights::default();
            e.constraints_hash = String::new();
            e.route_version = 0;
            e.unpriced_models = Vec::new();
            e.mirrored = false;
            e.canary_bucket = None;
            e.signature_proof = None;
            e.pool_version = None;
        }
        Event::RouteDecided(e) if version < 3 => {
            e.signature_proof = None;
            e.pool_version = None;
        }
        Event::RouteDecided(e) if version < 4 => {
            e.pool_version = None;
            if let Some(proof) = &mut e.signature_proof {
                proof.payload_format = 1;
            }
        }
        Event::RouteDecided(e) if version < 5 => {
            if let Some(proof) = &mut e.signature_proof {
                proof.payload_format = 1;
            }
        }
        Event::ApiKeyCreated(e) if version < 2 => {
            e.requests_per_minute = None;
            e.tokens_per_minute = None;
        }
        Event::RoutingTableUpdated(e) if version < 2 => {
            for route in &mut e.routes {
                route.constraints_hash = String::new();
                route.route_version = 0;
                for stats in &mut route.models {
                    stats.sources = Vec::new();
                    stats.successes = 0;
                    stats.errors = 0;
                    stats.regressions = BTreeMap::new();
                    stats.latency_samples = 0;
                }
            }
        }
        _ => {}
    }
    // Before v3 a pair rating reads as feedback about a request named by its feedback id.
    if let Event::FeedbackSubmitted(e) = &mut event
        && version < 3
        && matches!(e.target, Target::Pair { .. })
    {
        e.target = Target::Request {
            request_id: RequestId::new(e.feedback_id.as_str()),
        };
    }
    event
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_round_trips(event in arbitrary::event()) {
        let codec = codec();
        let bytes = codec.encode(&event).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert_eq!(bytes[0], MAGIC_BYTE);
        let id = Codec::peek_schema_id(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Some(id), codec.schema_id(event.kind(), event.kind().latest_version()));
        let decoded = codec.decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert_eq!(&decoded, &event);
        prop_assert_eq!(decoded.topic(), event.kind().topic());
    }

    #[test]
    fn every_event_round_trips_through_serde_json(event in arbitrary::event()) {
        let json = serde_json::to_string(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Event = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(back, event);
    }

    #[test]
    fn every_older_version_decodes_to_today(event in arbitrary::event()) {
        let codec = codec();
        for version in 1..=event.kind().latest_version() {
            let bytes = codec
                .encode_as_version(&event, version)
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            let id = Codec::peek_schema_id(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(codec.lookup_id(id), Some((event.kind(), version)));
            let decoded = codec.decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            prop_assert_eq!(decoded, as_seen_through(&event, version));
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = codec().decode(&bytes);
    }

    #[test]
    fn decoding_garbage_behind_a_valid_header_never_panics(
        kind in proptest::sample::select(EventKind::ALL),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let codec = codec();
        let mut bytes = vec![MAGIC_BYTE];
        let id = codec.schema_id(kind, 1).unwrap_or_default();
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&body);
        let _ = codec.decode(&bytes);
    }

    #[test]
    fn truncated_or_mutated_events_fail_cleanly(
        event in arbitrary::event(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let codec = codec();
        let bytes = codec.encode(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let cut = cut.index(bytes.len());
        prop_assert!(codec.decode(&bytes[..cut]).is_err(), "a strict prefix decoded");
        let mut mutated = bytes.clone();
        let i = flip.index(mutated.len());
        mutated[i] ^= xor;
        let _ = codec.decode(&mutated);
    }
}

#[test]
fn decode_errors_are_typed() -> Result<()> {
    let codec = codec();
    let good = codec.encode(&sample(EventKind::RouteUnpinned)?)?;

    let err = codec.decode(&[]).err();
    assert!(matches!(err, Some(CodecError::Truncated { len: 0 })));
    assert_eq!(err.map(|e| e.metric_label()), Some("truncated"));

    let mut bad_magic = good.clone();
    bad_magic[0] = 0x7b; // `{`: someone wrote JSON to the topic
    assert!(matches!(
        codec.decode(&bad_magic),
        Err(CodecError::BadMagic { found: 0x7b })
    ));

    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&9_999_999u32.to_be_bytes());
    let err = codec.decode(&unknown).err();
    assert!(matches!(
        err,
        Some(CodecError::UnknownSchemaId { id: 9_999_999 })
    ));
    assert_eq!(err.map(|e| e.metric_label()), Some("unknown_schema_id"));

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        codec.decode(&trailing),
        Err(CodecError::TrailingBytes { count: 1, .. })
    ));

    // The sample ends inside a nullable string; a cut there must not read as "absent".
    let truncated = &good[..good.len() - 1];
    let err = codec.decode(truncated).err();
    assert!(
        matches!(err, Some(CodecError::TruncatedBody { .. })),
        "{err:?}"
    );
    assert_eq!(err.map(|e| e.metric_label()), Some("truncated"));
    Ok(())
}

#[test]
fn out_of_range_values_on_the_wire_are_rejected_not_clamped() -> Result<()> {
    // A judge score of 1.5 can only come from a buggy producer in another language; the decoder
    // must refuse it rather than hand the learner an impossible score.
    let codec = codec();
    let Event::JudgeScored(mut judged) = sample(EventKind::JudgeScored)? else {
        anyhow::bail!("sample is not a judge score");
    };
    judged.outcome = JudgeOutcome::Scored {
        score: UnitScore::MAX,
    };
    let mut bytes = codec.encode(&judged.clone().into())?;
    // 1.0 as a little-endian double is 00 00 00 00 00 00 f0 3f; 1.5 is 00 .. f8 3f.
    let one = 1.0f64.to_le_bytes();
    let at = bytes
        .windows(8)
        .position(|w| w == one)
        .ok_or_else(|| anyhow::anyhow!("score not found"))?;
    bytes[at..at + 8].copy_from_slice(&1.5f64.to_le_bytes());
    let err = codec.decode(&bytes).err();
    assert!(
        matches!(err, Some(CodecError::Invalid { ref source, .. }) if source.path == "score"),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn a_canary_bucket_out_of_range_is_rejected() -> Result<()> {
    let codec = codec();
    let Event::RouteDecided(mut decided) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    for bucket in [RouteDecided::CANARY_BUCKETS, -1] {
        decided.canary_bucket = Some(bucket);
        let err = codec.decode(&codec.encode(&decided.clone().into())?).err();
        assert!(
            matches!(err, Some(CodecError::Invalid { ref source, .. }) if source.path == "canary_bucket"),
            "{bucket}: {err:?}"
        );
    }
    decided.canary_bucket = Some(RouteDecided::CANARY_BUCKETS - 1);
    assert_eq!(
        codec.decode(&codec.encode(&decided.clone().into())?)?,
        Event::RouteDecided(decided)
    );
    Ok(())
}

#[test]
fn route_configurations_are_compacted_control_records_keyed_by_route() -> Result<()> {
    let event = sample(EventKind::RouteConfigured)?;
    let Event::RouteConfigured(configured) = &event else {
        anyhow::bail!("sample is not a route configuration");
    };
    assert_eq!(event.topic(), Topic::Control);
    assert_eq!(event.topic().cleanup(), Cleanup::Compact);
    assert_eq!(
        event.partition_key(),
        &PartitionKey::route(&configured.envelope.org, &configured.route)
    );
    Ok(())
}

#[test]
fn registry_ids_frame_new_records_and_manifest_ids_still_decode() -> Result<()> {
    let manifest_codec = codec();
    let event = sample(EventKind::FeedbackSubmitted)?;
    let old_bytes = manifest_codec.encode(&event)?;

    let registry_ids = EventKind::ALL
        .iter()
        .flat_map(|k| (1..=k.latest_version()).map(move |v| (*k, v)))
        .zip(100u32..)
        .collect();
    let registry_codec = Codec::with_ids(registry_ids)?;
    let new_bytes = registry_codec.encode(&event)?;
    assert_ne!(new_bytes[1..5], old_bytes[1..5]);
    assert_eq!(registry_codec.decode(&new_bytes)?, event);
    assert_eq!(registry_codec.decode(&old_bytes)?, event);
    // The body is the same Avro datum; only the id differs.
    assert_eq!(new_bytes[5..], old_bytes[5..]);
    Ok(())
}
