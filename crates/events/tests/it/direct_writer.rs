//! The direct Avro writer (`Codec::encode_into`) against the generic one
//! (`Codec::encode_reference`: a `Value` tree written by apache-avro's `GenericDatumWriter`): the
//! same bytes for every event kind, on the fixtures, the frozen samples and generated events.
//!
//! The generic path writes map entries in `HashMap` order, the direct one in key order, so the
//! byte-for-byte comparison is made on events whose maps have at most one entry; events with
//! larger maps are compared by length and by decoding.

use std::collections::BTreeMap;

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

fn keep_first<V>(map: &mut BTreeMap<String, V>) {
    if let Some(first) = map.keys().next().cloned() {
        map.retain(|k, _| *k == first);
    }
}

/// Cuts every map of the event down to its first entry (so its generic encoding is deterministic).
fn at_most_one_map_entry(event: &Event) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::RequestReceived(e) => keep_first(&mut e.metadata),
        Event::FeedbackSubmitted(e) => keep_first(&mut e.labels),
        Event::RouteDecided(e) => keep_first(&mut e.evidence.regressions),
        Event::RoutingTableUpdated(e) => {
            keep_first(&mut e.source_offsets);
            for route in &mut e.routes {
                for stats in &mut route.models {
                    keep_first(&mut stats.signals);
                    keep_first(&mut stats.regressions);
                }
            }
        }
        Event::ResponseCompleted(_)
        | Event::JudgeScored(_)
        | Event::RoutePinned(_)
        | Event::RouteUnpinned(_)
        | Event::ConstraintsChanged(_)
        | Event::ApiKeyCreated(_)
        | Event::ApiKeyRevoked(_)
        | Event::RouteConfigured(_)
        | Event::KeyUsageReported(_) => {}
    }
    event
}

fn encode_both(codec: &Codec, event: &Event) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut direct = vec![0xAA];
    codec.encode_into(event, &mut direct)?;
    let mut reference = vec![0xAA];
    codec.encode_reference(event, &mut reference)?;
    Ok((direct, reference))
}

/// Checks the direct bytes of `event` against the generic ones and decodes them back.
fn check(codec: &Codec, event: &Event) -> Result<()> {
    let kind = event.kind();
    let trimmed = at_most_one_map_entry(event);
    let (direct, reference) = encode_both(codec, &trimmed)?;
    ensure!(
        direct == reference,
        "{kind}: direct bytes differ from GenericDatumWriter's\n direct:    {}\n reference: {}",
        hex::encode(&direct),
        hex::encode(&reference)
    );
    ensure!(
        direct.first() == Some(&0xAA),
        "{kind}: appended, not overwritten"
    );
    let decoded = codec.decode(direct.get(1..).unwrap_or_default())?;
    ensure!(decoded == trimmed, "{kind}: decodes to another event");

    let (direct, reference) = encode_both(codec, event)?;
    ensure!(direct.len() == reference.len(), "{kind}: lengths differ");
    let decoded = codec.decode(direct.get(1..).unwrap_or_default())?;
    ensure!(&decoded == event, "{kind}: decodes to another event");
    ensure!(
        codec.encode(event)? == direct.get(1..).unwrap_or_default(),
        "{kind}: two encodings differ"
    );
    Ok(())
}

#[test]
fn every_fixture_is_written_as_the_generic_writer_writes_it() -> Result<()> {
    let codec = codec();
    for kind in EventKind::ALL {
        check(&codec, &sample(*kind)?).with_context(|| format!("fixture {kind}"))?;
    }
    Ok(())
}

#[test]
fn every_frozen_sample_re_encodes_as_the_generic_writer_writes_it() -> Result<()> {
    let codec = codec();
    for kind in EventKind::ALL {
        let path = crate::schemas_dir().join(format!(
            "samples/{}/v{}.bin.hex",
            kind.snake_name(),
            kind.latest_version()
        ));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let event = codec.decode(&hex::decode(text.trim())?)?;
        check(&codec, &event).with_context(|| format!("sample {kind}"))?;
    }
    Ok(())
}

#[test]
fn the_gateway_events_are_covered_at_full_size() -> Result<()> {
    // The hot ones, with every optional field set and many candidates (~6 KB).
    let codec = codec();
    let Event::RouteDecided(mut decided) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("fixture is not a RouteDecided");
    };
    let template = decided
        .candidates
        .first()
        .cloned()
        .context("fixture has no candidate")?;
    decided.candidates = (0..21)
        .map(|i| Candidate {
            model: ModelName::new(format!("provider-{i}/model-{i}")),
            ..template.clone()
        })
        .collect();
    let event = Event::RouteDecided(decided);
    check(&codec, &event)?;
    ensure!(codec.encode(&event)?.len() > 2_000, "not a large decision");
    Ok(())
}

#[test]
fn map_entries_are_written_in_key_order() -> Result<()> {
    let codec = codec();
    let Event::RequestReceived(mut received) = sample(EventKind::RequestReceived)? else {
        anyhow::bail!("fixture is not a RequestReceived");
    };
    received.metadata = (b'a'..=b'z')
        .rev()
        .map(|c| (format!("key-{}", char::from(c)), "v".to_owned()))
        .collect();
    let bytes = codec.encode(&Event::RequestReceived(received))?;
    let positions: Vec<usize> = (b'a'..=b'z')
        .map(|c| {
            let key = format!("key-{}", char::from(c));
            bytes
                .windows(key.len())
                .position(|w| w == key.as_bytes())
                .unwrap_or(usize::MAX)
        })
        .collect();
    ensure!(
        positions.iter().all(|&p| p != usize::MAX),
        "a key is missing"
    );
    ensure!(positions.is_sorted(), "keys out of order: {positions:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_generated_event_is_written_as_the_generic_writer_writes_it(
        event in arbitrary::event()
    ) {
        let codec = codec();
        check(&codec, &event).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    }
}
