//! The read model's state does not depend on the order inputs arrive in, on how they are cut
//! into batches, nor on redelivery: a proptest over interleavings, on the real embedded store.

use anyhow::Result;
use proptest::prelude::*;
use switchyard_decisions::DecisionQueries;
use switchyard_decisions::state::{PENDING_BY_DECISION, PENDING_BY_REQUEST};
use switchyard_events::{DecisionId, Event, FeedbackSource};
use switchyard_store::EmbeddedStore;

use crate::support::{
    DecisionSpec, T0, decision, dump, feedback, fold, judged, response, shadow_response,
};

/// What happens to one request.
#[derive(Debug, Clone)]
struct RequestPlan {
    decided: bool,
    responded: bool,
    /// Whether a shadow mirror of the request completed.
    mirrored: bool,
    feedback: Vec<u8>,
    judges: Vec<Option<u8>>,
    in_session: bool,
}

fn plan() -> impl Strategy<Value = RequestPlan> {
    (
        prop::bool::weighted(0.85),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(0u8..=10, 0..=3),
        prop::collection::vec(prop::option::of(0u8..=10), 0..=2),
        any::<bool>(),
    )
        .prop_map(
            |(decided, responded, mirrored, feedback, judges, in_session)| RequestPlan {
                decided,
                responded,
                mirrored,
                feedback,
                judges,
                in_session,
            },
        )
}

/// The model that serves every mirror; the responses the clients got are served by another.
const SHADOW_MODEL: &str = "demo/small";

const SOURCES: [FeedbackSource; 3] = [
    FeedbackSource::Nps,
    FeedbackSource::User,
    FeedbackSource::Admin,
];

/// The events of every plan, each request's decision first.
fn events_of(plans: &[RequestPlan]) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let request = format!("req-{i}");
        let decision_id = format!("dec-{i}");
        let session = plan.in_session.then_some("sess-1");
        let time = T0 + i as i64 * 1_000;
        if plan.decided {
            events.push(
                decision(&DecisionSpec {
                    org: "acme",
                    decision: &decision_id,
                    request: &request,
                    session,
                    route: if i.is_multiple_of(2) {
                        "support"
                    } else {
                        "sales"
                    },
                    time,
                })
                .into(),
            );
        }
        if plan.responded {
            events.push(
                response(
                    "acme",
                    &decision_id,
                    &request,
                    session,
                    100 + i as i64,
                    time + 500,
                )
                .into(),
            );
        }
        if plan.mirrored {
            // The mirror may complete before or after the response the client got.
            events.push(
                shadow_response(
                    "acme",
                    &decision_id,
                    &request,
                    session,
                    SHADOW_MODEL,
                    time + 400,
                )
                .into(),
            );
        }
        for (k, score) in plan.feedback.iter().enumerate() {
            events.push(
                feedback(
                    "acme",
                    &format!("fb-{i}-{k}"),
                    &request,
                    session,
                    SOURCES[k % SOURCES.len()],
                    f64::from(*score) / 10.0,
                    time + 900 + k as i64,
                )
                .into(),
            );
        }
        for (k, score) in plan.judges.iter().enumerate() {
            events.push(
                judged(
                    "acme",
                    &format!("jdg-{i}-{k}"),
                    &decision_id,
                    &request,
                    session,
                    score.map(|s| f64::from(s) / 10.0),
                    time + 950 + k as i64,
                )
                .into(),
            );
        }
    }
    events
}

type Scenario = (
    Vec<RequestPlan>,
    Vec<Event>,
    Vec<(usize, usize)>,
    Vec<usize>,
);

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::collection::vec(plan(), 1..=3).prop_flat_map(|plans| {
        let events = events_of(&plans);
        let n = events.len().max(1);
        (
            Just(plans),
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn state_is_identical_whatever_the_interleaving_batching_and_redelivery(
        (plans, shuffled, redeliveries, batches) in scenario()
    ) {
        let canonical = events_of(&plans);
        let mut delivered = shuffled.clone();
        for (which, at) in &redeliveries {
            if let Some(event) = shuffled.get(*which) {
                delivered.insert((*at).min(delivered.len()), event.clone());
            }
        }
        let (expected, actual, records) = block_on(async {
            let in_order = EmbeddedStore::temporary()?;
            fold(&in_order, &canonical, &[canonical.len().max(1)]).await?;
            let interleaved = EmbeddedStore::temporary()?;
            fold(&interleaved, &delivered, &batches).await?;
            let queries = DecisionQueries::new(interleaved.clone());
            let mut records = Vec::new();
            for i in 0..plans.len() {
                records.push(
                    queries
                        .get(&"acme".into(), &DecisionId::new(format!("dec-{i}")))
                        .await?,
                );
            }
            Ok((dump(&in_order).await?, dump(&interleaved).await?, records))
        })
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;

        prop_assert_eq!(&expected, &actual);

        for (plan, record) in plans.iter().zip(&records) {
            prop_assert_eq!(record.is_some(), plan.decided);
            let Some(record) = record else { continue };
            prop_assert_eq!(record.response.is_some(), plan.responded);
            // A mirror never stands in for the response the client got, nor the reverse.
            prop_assert!(record
                .response
                .as_ref()
                .is_none_or(|r| r.served_model.as_str() != SHADOW_MODEL));
            prop_assert_eq!(record.shadow_response.is_some(), plan.mirrored);
            prop_assert!(record
                .shadow_response
                .as_ref()
                .is_none_or(|r| r.served_model.as_str() == SHADOW_MODEL));
            let scored = plan.judges.iter().filter(|j| j.is_some()).count();
            prop_assert_eq!(record.feedback.count as usize, plan.feedback.len() + scored);
            prop_assert_eq!(
                record.feedback.judge_failures as usize,
                plan.judges.len() - scored
            );
        }
        if plans.iter().all(|p| p.decided) {
            for table in [PENDING_BY_DECISION, PENDING_BY_REQUEST] {
                let pending = actual.get(table.name()).map_or(0, Vec::len);
                prop_assert_eq!(pending, 0, "{} keeps entries", table);
            }
        }
    }
}
