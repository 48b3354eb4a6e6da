//! What propagation means does not depend on the order the two topics are consumed in, on
//! batching, nor on redelivery: a proptest over interleavings, on the real embedded store.
//!
//! With one rating per session, the emitted (decision, score) pairs are exactly the covered
//! decisions, each once. With several, each (rating, decision) pair is emitted at most once,
//! only for covered decisions, and the latest emission per feedback id — what a latest-wins
//! consumer keeps — is the session's latest rating on every decision it covers. The state is
//! byte for byte the same as the in-order fold's.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use proptest::prelude::*;
use switchyard_events::{Event, FeedbackSubmitted};
use switchyard_session_nps::SessionNpsConfig;
use switchyard_store::EmbeddedStore;

use crate::support::{
    Effect, HOUR, T0, decision, dump, effect, fold, latest_per_feedback_id, rating,
};

const SESSIONS: [&str; 2] = ["s1", "s2"];

#[derive(Debug, Clone)]
struct Plan {
    /// (session index, hours from T0) per decision.
    decisions: Vec<(usize, i64)>,
    /// (session index, hours from T0, nps) per rating.
    ratings: Vec<(usize, i64, u8)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((0usize..2, -30i64..=60), 1..=8),
        prop::collection::vec((0usize..2, 0i64..=12, 0u8..=10), 0..=4),
    )
        .prop_map(|(decisions, ratings)| Plan { decisions, ratings })
}

/// A rating's time: distinct per rating (the index breaks ties between equal hours).
fn rating_time(index: usize, hours: i64) -> i64 {
    T0 + hours * HOUR + index as i64
}

fn events_of(plan: &Plan) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for (i, (session, hours)) in plan.decisions.iter().enumerate() {
        events.push(
            decision(
                "acme",
                &format!("d{i}"),
                Some(SESSIONS[*session]),
                T0 + hours * HOUR,
            )
            .into(),
        );
    }
    for (i, (session, hours, nps)) in plan.ratings.iter().enumerate() {
        events.push(
            rating(
                "acme",
                SESSIONS[*session],
                &format!("r{i}"),
                *nps,
                rating_time(i, *hours),
            )
            .into(),
        );
    }
    events
}

/// The latest effect per decision that a latest-wins consumer should end up with.
fn expected(plan: &Plan, session: usize) -> BTreeMap<String, Effect> {
    let window = 24 * HOUR;
    let latest = plan
        .ratings
        .iter()
        .enumerate()
        .filter(|(_, (s, _, _))| *s == session)
        .map(|(i, (_, hours, nps))| (rating_time(i, *hours), *nps))
        .max();
    let Some((rated_at, nps)) = latest else {
        return BTreeMap::new();
    };
    plan.decisions
        .iter()
        .enumerate()
        .filter(|(_, (s, hours))| *s == session && T0 + hours * HOUR <= rated_at + window)
        .map(|(i, _)| {
            (
                format!("req-d{i}"),
                Effect {
                    request: format!("req-d{i}"),
                    score: f64::from(nps),
                    rated_at,
                },
            )
        })
        .collect()
}

type Scenario = (Plan, Vec<Event>, Vec<(usize, usize)>, Vec<usize>);

fn scenario() -> impl Strategy<Value = Scenario> {
    plan().prop_flat_map(|plan| {
        let events = events_of(&plan);
        let n = events.len().max(1);
        (
            Just(plan),
            Just(events).prop_shuffle(),
            // Redeliveries: (which event, where it is delivered again).
            prop::collection::vec((0..n, 0..=n), 0..=3),
            prop::collection::vec(1usize..=4, 1..=4),
        )
    })
}

fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

fn of_session(events: &[FeedbackSubmitted], session: &str) -> Vec<FeedbackSubmitted> {
    events
        .iter()
        .filter(|e| e.envelope.partition_key.as_str() == session)
        .cloned()
        .collect::<Vec<_>>()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn propagation_is_independent_of_interleaving_batching_and_redelivery(
        (plan, shuffled, redeliveries, batches) in scenario()
    ) {
        let canonical = events_of(&plan);
        let mut delivered = shuffled.clone();
        for (which, at) in &redeliveries {
            if let Some(event) = shuffled.get(*which) {
                delivered.insert((*at).min(delivered.len()), event.clone());
            }
        }
        let config = SessionNpsConfig::default();
        let (in_order_state, interleaved_state, emitted) = block_on(async {
            let in_order = EmbeddedStore::temporary()?;
            fold(&in_order, config, &canonical, &[canonical.len().max(1)]).await?;
            let interleaved = EmbeddedStore::temporary()?;
            let emitted = fold(&interleaved, config, &delivered, &batches).await?;
            Ok((dump(&in_order).await?, dump(&interleaved).await?, emitted))
        })
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;

        prop_assert_eq!(&in_order_state, &interleaved_state);

        // Every output has its own event id, and no (rating, decision) pair is emitted twice.
        let ids: BTreeSet<_> = emitted.iter().map(|e| e.envelope.event_id).collect();
        prop_assert_eq!(ids.len(), emitted.len());
        let pairs: BTreeSet<_> = emitted
            .iter()
            .map(|e| (e.derived_from, e.feedback_id.clone()))
            .collect();
        prop_assert_eq!(pairs.len(), emitted.len());

        for (index, session) in SESSIONS.iter().enumerate() {
            let mine = of_session(&emitted, session);
            let effects = mine
                .iter()
                .map(|e| effect("acme", session, e))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            // Sound: an emission only ever carries a rating to a decision it covers.
            for effect in &effects {
                let decision: usize = effect.request["req-d".len()..].parse().map_err(|_| TestCaseError::fail("id"))?;
                let decided_at = T0 + plan.decisions[decision].1 * HOUR;
                prop_assert!(decided_at <= effect.rated_at + 24 * HOUR);
                prop_assert_eq!(plan.decisions[decision].0, index);
            }
            // Complete: what a latest-wins consumer keeps is the latest rating on every
            // covered decision.
            let latest: BTreeMap<String, Effect> = latest_per_feedback_id("acme", session, &mine)
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?
                .into_values()
                .map(|e| (e.request.clone(), e))
                .collect();
            let want = expected(&plan, index);
            prop_assert_eq!(&latest, &want);
            // With one rating, the emitted pairs are exactly the expected ones, once each.
            let ratings = plan.ratings.iter().filter(|(s, _, _)| *s == index).count();
            if ratings == 1 {
                let mut got: Vec<(String, f64)> =
                    effects.iter().map(|e| (e.request.clone(), e.score)).collect();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                let want: Vec<(String, f64)> =
                    want.values().map(|e| (e.request.clone(), e.score)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
