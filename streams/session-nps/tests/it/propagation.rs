//! The propagation rules on the real embedded store: existing and later decisions, the window,
//! replacement ratings, late ratings, redelivery, isolation and partition keys.

use std::time::Duration;

use anyhow::{Result, ensure};
use switchyard_events::{Event, FeedbackSource, Target};
use switchyard_processor::{ErrorClass, Output, Processor, StagedState};
use switchyard_session_nps::{SESSION_FEEDBACK_LABEL, SessionNpsConfig, SessionNpsProcessor};
use switchyard_store::EmbeddedStore;

use crate::support::{HOUR, T0, decision, effect, fold, input_of, rating};

fn requests(events: &[switchyard_events::FeedbackSubmitted]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .map(|e| match &e.target {
            Target::Request { request_id } => request_id.as_str().to_owned(),
            Target::Session { session_id } => format!("session:{session_id}"),
            Target::Pair { route, model } => format!("pair:{route}/{model}"),
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_rating_reaches_earlier_decisions_and_later_ones_within_the_window() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig::default();
    let events: Vec<Event> = vec![
        decision("acme", "d1", Some("s1"), T0 - 48 * HOUR).into(),
        decision("acme", "d2", Some("s1"), T0 - HOUR).into(),
        // Other sessions, another org with the same session id, no session: untouched.
        decision("acme", "x1", Some("s2"), T0 - HOUR).into(),
        decision("globex", "g1", Some("s1"), T0 - HOUR).into(),
        decision("acme", "n1", None, T0 - HOUR).into(),
        rating("acme", "s1", "r1", 9, T0).into(),
        // Later decisions: within the window (inclusive), and past it.
        decision("acme", "d3", Some("s1"), T0 + HOUR).into(),
        decision("acme", "d4", Some("s1"), T0 + 24 * HOUR).into(),
        decision("acme", "d5", Some("s1"), T0 + 24 * HOUR + 1).into(),
    ];
    let emitted = fold(&store, config, &events, &[3]).await?;
    ensure!(
        requests(&emitted) == ["req-d1", "req-d2", "req-d3", "req-d4"],
        "{:?}",
        requests(&emitted)
    );
    for event in &emitted {
        let effect = effect("acme", "s1", event)?;
        ensure!(effect.score == 9.0 && (event.normalized_score.get() - 0.9).abs() < 1e-12);
        ensure!(
            effect.rated_at == T0,
            "every emission carries the rating's time"
        );
        ensure!(
            event
                .route
                .as_ref()
                .is_some_and(|r| r.as_str() == "support")
        );
        ensure!(
            event
                .model
                .as_ref()
                .is_some_and(|m| m.as_str() == "demo/small")
        );
        ensure!(event.labels.len() == 1);
        ensure!(event.labels.get(SESSION_FEEDBACK_LABEL).map(String::as_str) == Some("fb-s1"));
        ensure!(event.comment.is_none());
    }
    // The two earlier decisions were emitted by the rating, the two later ones by themselves.
    let rating_id = rating("acme", "s1", "r1", 9, T0).envelope.event_id;
    ensure!(emitted.iter().all(|e| e.derived_from == Some(rating_id)));
    Ok(())
}

#[tokio::test]
async fn the_window_is_configurable_and_measured_in_event_time() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig {
        window: Duration::from_secs(60),
        ..SessionNpsConfig::default()
    };
    // The late decision is *processed* long before the rating but *taken* after its window.
    let events: Vec<Event> = vec![
        decision("acme", "late", Some("s1"), T0 + 61_000_000).into(),
        decision("acme", "edge", Some("s1"), T0 + 60_000_000).into(),
        rating("acme", "s1", "r1", 3, T0).into(),
        decision("acme", "soon", Some("s1"), T0 + 1).into(),
    ];
    let emitted = fold(&store, config, &events, &[1]).await?;
    ensure!(
        requests(&emitted) == ["req-edge", "req-soon"],
        "{:?}",
        requests(&emitted)
    );
    Ok(())
}

#[tokio::test]
async fn a_later_rating_replaces_the_earlier_one_with_the_same_feedback_ids() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig::default();
    let first: Vec<Event> = vec![
        decision("acme", "d1", Some("s1"), T0 - HOUR).into(),
        rating("acme", "s1", "r1", 2, T0).into(),
        decision("acme", "d2", Some("s1"), T0 + HOUR).into(),
    ];
    let before = fold(&store, config, &first, &[10]).await?;
    // A changed mind an hour later; it also covers a decision the first rating's window missed.
    let second: Vec<Event> = vec![
        decision("acme", "d3", Some("s1"), T0 + 24 * HOUR + 30 * 60_000_000).into(),
        rating("acme", "s1", "r2", 10, T0 + HOUR).into(),
        // The first rating again (a redelivery) and an even older one delivered late.
        rating("acme", "s1", "r1", 2, T0).into(),
        rating("acme", "s1", "r0", 0, T0 - 1).into(),
    ];
    let after = fold(&store, config, &second, &[1]).await?;
    ensure!(requests(&before) == ["req-d1", "req-d2"]);
    ensure!(
        requests(&after) == ["req-d1", "req-d2", "req-d3"],
        "{:?}",
        requests(&after)
    );
    for event in &after {
        ensure!(event.raw_score == 10.0 && event.envelope.event_time.as_micros() == T0 + HOUR);
    }
    // Same feedback id per decision, newer version: latest-wins consumers replace.
    for old in &before {
        let new = after
            .iter()
            .find(|e| e.target == old.target)
            .ok_or_else(|| anyhow::anyhow!("no replacement for {:?}", old.target))?;
        ensure!(new.feedback_id == old.feedback_id);
        ensure!(new.envelope.event_id != old.envelope.event_id);
        ensure!(new.envelope.event_time > old.envelope.event_time);
    }
    Ok(())
}

#[tokio::test]
async fn redelivered_inputs_change_nothing_and_emit_nothing() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig::default();
    let events: Vec<Event> = vec![
        decision("acme", "d1", Some("s1"), T0 - HOUR).into(),
        rating("acme", "s1", "r1", 7, T0).into(),
        decision("acme", "d2", Some("s1"), T0 + HOUR).into(),
    ];
    let first = fold(&store, config, &events, &[1]).await?;
    ensure!(first.len() == 2);
    let snapshot = crate::support::dump(&store).await?;
    let again = fold(&store, config, &events, &[2]).await?;
    ensure!(again.is_empty(), "redelivery emitted {again:?}");
    ensure!(crate::support::dump(&store).await? == snapshot);
    Ok(())
}

#[tokio::test]
async fn its_own_outputs_and_other_feedback_are_ignored() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig::default();
    let events: Vec<Event> = vec![
        decision("acme", "d1", Some("s1"), T0 - HOUR).into(),
        rating("acme", "s1", "r1", 7, T0).into(),
    ];
    let emitted = fold(&store, config, &events, &[2]).await?;
    ensure!(emitted.len() == 1);
    // Reading its output back (it consumes `feedback`), or an admin's session feedback.
    let mut admin = rating("acme", "s1", "admin", 1, T0 + HOUR);
    admin.source = FeedbackSource::Admin;
    let mut back: Vec<Event> = emitted.into_iter().map(Event::from).collect();
    back.push(admin.into());
    ensure!(fold(&store, config, &back, &[1]).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn events_keyed_outside_their_session_are_poison() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let processor = SessionNpsProcessor::default();
    let mut misrouted = rating("acme", "s1", "r1", 7, T0);
    misrouted.envelope.partition_key = switchyard_events::PartitionKey::new("someone-else");
    let mut wrong_decision = decision("acme", "d1", Some("s1"), T0);
    wrong_decision.envelope.partition_key = switchyard_events::PartitionKey::new("req-d1");
    let mut empty_session = rating("acme", "", "r2", 7, T0);
    empty_session.envelope.partition_key = switchyard_events::PartitionKey::new("");
    for event in [
        Event::from(misrouted),
        wrong_decision.into(),
        empty_session.into(),
    ] {
        let mut state = StagedState::new(&store);
        let input = input_of(&event, 0);
        let mut out = Output::new(processor.group(), input.event_id());
        let result = processor.process(&input, &mut state, &mut out).await;
        ensure!(
            matches!(&result, Err(e) if e.class() == ErrorClass::Poison),
            "{result:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn decisions_and_ratings_are_forgotten_after_the_retention() -> Result<()> {
    use switchyard_session_nps::state::{DECISIONS, RATINGS};
    use switchyard_store::StateStore;

    let store = EmbeddedStore::temporary()?;
    let config = SessionNpsConfig {
        retention: Duration::from_secs(48 * 3600),
        ..SessionNpsConfig::default()
    };
    let events: Vec<Event> = vec![
        decision("acme", "old", Some("s1"), T0).into(),
        decision("acme", "recent", Some("s1"), T0 + 47 * HOUR).into(),
        // Any input past the old decision's retention drives the sweep.
        decision("acme", "other", Some("s2"), T0 + 48 * HOUR + 1).into(),
        rating("acme", "s1", "r1", 9, T0 + 48 * HOUR + 2).into(),
    ];
    let emitted = fold(&store, config, &events, &[1]).await?;
    ensure!(
        requests(&emitted) == ["req-recent"],
        "the forgotten decision gets no rating: {:?}",
        requests(&emitted)
    );
    // The rating is forgotten the retention after its 24 h window closes.
    let later: Vec<Event> = vec![
        decision(
            "acme",
            "much-later",
            Some("s3"),
            T0 + (48 + 24 + 48) * HOUR + 3,
        )
        .into(),
    ];
    fold(&store, config, &later, &[1]).await?;
    ensure!(
        store.scan_prefix(RATINGS, b"", None, 10).await?.is_empty(),
        "the rating was forgotten"
    );
    let left = store.scan_prefix(DECISIONS, b"", None, 10).await?.len();
    ensure!(
        left == 1,
        "only the newest decision is still indexed: {left}"
    );
    Ok(())
}
