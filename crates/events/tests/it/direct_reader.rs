//! The direct Avro reader (`Codec::decode_direct`, what `Codec::decode` tries first) against the
//! generic one (`Codec::decode_reference`: apache-avro's `GenericDatumReader` into a `Value`,
//! then converted): every valid record is read directly, to the same event, and on any other
//! bytes (mutated, truncated, another kind's body, garbage) whatever the direct reader accepts
//! the generic reader decodes to the same event, while `decode` gives exactly the generic result.

use anyhow::{Context, Result, ensure};
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

/// Checks a valid latest-version record: read directly, to `expected`, as the generic reader does.
fn check_valid(codec: &Codec, bytes: &[u8], expected: &Event) -> Result<()> {
    let kind = expected.kind();
    let direct = codec
        .decode_direct(bytes)
        .with_context(|| format!("{kind}: the direct reader refused a valid record"))?;
    ensure!(
        &direct == expected,
        "{kind}: read directly to another event"
    );
    ensure!(
        &codec.decode_reference(bytes)? == expected,
        "{kind}: the generic reader disagrees"
    );
    ensure!(
        &codec.decode(bytes)? == expected,
        "{kind}: decode disagrees"
    );
    Ok(())
}

/// Checks arbitrary bytes: the direct reader accepts only what the generic one reads the same
/// way, and `decode` answers exactly as the generic path does. (Events are compared through
/// `Debug` so that a NaN read both ways compares equal.)
fn check_any(codec: &Codec, bytes: &[u8]) -> Result<(), TestCaseError> {
    let reference = codec.decode_reference(bytes);
    if let Some(direct) = codec.decode_direct(bytes) {
        match &reference {
            Ok(event) => prop_assert_eq!(format!("{direct:?}"), format!("{event:?}")),
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "the direct reader accepted bytes the generic one rejects ({e}): {}",
                    hex::encode(bytes)
                )));
            }
        }
    }
    prop_assert_eq!(
        format!("{:?}", codec.decode(bytes)),
        format!("{reference:?}")
    );
    Ok(())
}

#[test]
fn every_fixture_and_frozen_sample_is_read_directly() -> Result<()> {
    let codec = codec();
    for kind in EventKind::ALL {
        let event = sample(*kind)?;
        check_valid(&codec, &codec.encode(&event)?, &event).context("fixture")?;
        let path = crate::schemas_dir().join(format!(
            "samples/{}/v{}.bin.hex",
            kind.snake_name(),
            kind.latest_version()
        ));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let bytes = hex::decode(text.trim())?;
        let event = codec.decode_reference(&bytes)?;
        check_valid(&codec, &bytes, &event).context("frozen sample")?;
    }
    Ok(())
}

#[test]
fn older_versions_are_left_to_the_generic_reader() -> Result<()> {
    let codec = codec();
    for kind in EventKind::ALL {
        let event = sample(*kind)?;
        for version in 1..kind.latest_version() {
            let bytes = codec.encode_as_version(&event, version)?;
            ensure!(
                codec.decode_direct(&bytes).is_none(),
                "{kind} v{version} read directly"
            );
            ensure!(codec.decode(&bytes).is_ok(), "{kind} v{version}");
        }
    }
    Ok(())
}

#[test]
fn errors_are_the_generic_errors() -> Result<()> {
    // Every rejection is decided by the generic path: same variant, same message.
    let codec = codec();
    let good = codec.encode(&sample(EventKind::RouteUnpinned)?)?;
    let mut trailing = good.clone();
    trailing.push(0);
    let truncated = good.get(..good.len() - 1).unwrap_or_default();
    for bytes in [&trailing[..], truncated] {
        ensure!(codec.decode_direct(bytes).is_none());
        ensure!(
            format!("{:?}", codec.decode(bytes)) == format!("{:?}", codec.decode_reference(bytes))
        );
    }
    ensure!(matches!(
        codec.decode(&trailing),
        Err(CodecError::TrailingBytes { count: 1, .. })
    ));
    ensure!(matches!(
        codec.decode(truncated),
        Err(CodecError::TruncatedBody { .. })
    ));
    Ok(())
}

/// The fixtures, and variants of them that reach every rule a decoded record is checked
/// against (a judge outcome without its score, `price_known` against `cost_usd`, a canary bucket
/// a byte away from out of range, every feedback target).
fn probed_events() -> Result<Vec<Event>> {
    let mut events = EventKind::ALL
        .iter()
        .map(|kind| sample(*kind))
        .collect::<Result<Vec<_>>>()?;
    let Event::JudgeScored(judged) = sample(EventKind::JudgeScored)? else {
        anyhow::bail!("fixture is not a JudgeScored");
    };
    for reason in [None, Some("timeout".to_owned())] {
        let mut failed = judged.clone();
        failed.outcome = JudgeOutcome::Failed { reason };
        events.push(failed.into());
    }
    let Event::ResponseCompleted(mut completed) = sample(EventKind::ResponseCompleted)? else {
        anyhow::bail!("fixture is not a ResponseCompleted");
    };
    completed.cost_usd = None;
    events.push(completed.into());
    let Event::RouteDecided(mut decided) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("fixture is not a RouteDecided");
    };
    decided.canary_bucket = Some(RouteDecided::CANARY_BUCKETS - 1);
    events.push(decided.into());
    let Event::FeedbackSubmitted(feedback) = sample(EventKind::FeedbackSubmitted)? else {
        anyhow::bail!("fixture is not a FeedbackSubmitted");
    };
    for target in [
        Target::Request {
            request_id: RequestId::new("req-1"),
        },
        Target::Pair {
            route: RouteName::new("support"),
            model: ModelName::new("demo/small"),
        },
    ] {
        let mut other = feedback.clone();
        other.target = target;
        events.push(other.into());
    }
    Ok(events)
}

#[test]
fn a_non_finite_constraint_is_left_to_the_generic_reader() -> Result<()> {
    let codec = codec();
    let Event::ConstraintsChanged(mut changed) = sample(EventKind::ConstraintsChanged)? else {
        anyhow::bail!("fixture is not a ConstraintsChanged");
    };
    let marker = 0.123_456_789_f64;
    changed.constraints.max_error_rate = Some(marker);
    let good = codec.encode(&changed.into())?;
    let at = good
        .windows(8)
        .position(|w| w == marker.to_le_bytes())
        .context("marker not found")?;
    for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
        let mut bytes = good.clone();
        bytes.splice(at..at + 8, bad.to_le_bytes());
        ensure!(codec.decode_direct(&bytes).is_none(), "{bad} read directly");
        let err = codec.decode(&bytes).err();
        ensure!(
            matches!(err, Some(CodecError::Invalid { ref source, .. }) if source.path == "constraints.max_error_rate"),
            "{bad}: {err:?}"
        );
    }
    Ok(())
}

#[test]
fn every_small_byte_at_every_position_of_every_fixture() -> Result<()> {
    // Union branches, enum indexes, booleans and short lengths are small varints: setting any
    // body byte to any of 0..8 (or flipping its continuation bit) probes each of them.
    let codec = codec();
    for event in probed_events()? {
        let kind = event.kind();
        let good = codec.encode(&event)?;
        for at in HEADER_LEN..good.len() {
            let original = good.get(at).copied().unwrap_or_default();
            for value in (0u8..8).chain([original ^ 0x80]) {
                let mut bytes = good.clone();
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
                check_any(&codec, &bytes)
                    .map_err(|e| anyhow::anyhow!("{kind}: byte {at} set to {value}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// A change to a record's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Xor(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, x)| Mutation::Xor(i, x)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        // Small values: union branches, enum indexes and booleans live there.
        3 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<prop::sample::Index>(), 1u8..8).prop_map(|(i, x)| Mutation::Xor(i, x)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

/// Applies a mutation to the body (the frame header stays).
fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let body = bytes.len().saturating_sub(HEADER_LEN).max(1);
    let at = |i: &prop::sample::Index| (HEADER_LEN + i.index(body)).min(bytes.len());
    match mutation {
        Mutation::Xor(i, x) => {
            let at = at(i);
            if let Some(b) = bytes.get_mut(at) {
                *b ^= x;
            }
        }
        Mutation::Set(i, v) => {
            let at = at(i);
            if let Some(b) = bytes.get_mut(at) {
                *b = *v;
            }
        }
        Mutation::Insert(i, v) => {
            let at = at(i);
            bytes.insert(at, *v);
        }
        Mutation::Remove(i) => {
            let at = at(i);
            if at < bytes.len() {
                bytes.remove(at);
            }
        }
        Mutation::Truncate(i) => {
            let at = at(i);
            bytes.truncate(at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_generated_event_is_read_directly(event in arbitrary::event()) {
        let codec = codec();
        let bytes = codec.encode(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_valid(&codec, &bytes, &event).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    }

    #[test]
    fn mutated_records_read_directly_only_as_the_generic_reader_reads_them(
        event in arbitrary::event(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let codec = codec();
        let mut bytes = codec.encode(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for mutation in &mutations {
            apply(&mut bytes, mutation);
            check_any(&codec, &bytes)?;
        }
    }

    #[test]
    fn another_kinds_body_reads_directly_only_as_the_generic_reader_reads_it(
        event in arbitrary::event(),
        as_kind in proptest::sample::select(EventKind::ALL),
    ) {
        let codec = codec();
        let mut bytes = codec.encode(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let id = codec.schema_id(as_kind, as_kind.latest_version()).unwrap_or_default();
        bytes.splice(1..HEADER_LEN, id.to_be_bytes());
        check_any(&codec, &bytes)?;
    }

    #[test]
    fn garbage_reads_directly_only_as_the_generic_reader_reads_it(
        kind in proptest::sample::select(EventKind::ALL),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let codec = codec();
        let mut bytes = vec![MAGIC_BYTE];
        let id = codec.schema_id(kind, kind.latest_version()).unwrap_or_default();
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&body);
        check_any(&codec, &bytes)?;
    }
}
