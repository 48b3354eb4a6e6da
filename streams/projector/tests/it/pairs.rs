//! Admin ratings of a (route, model) pair: folded into the pair's admin signal, the newest
//! rating per feedback id winning, a redelivery counting once; and the router's admin
//! contribution for that model moving in the next table.

use anyhow::{Context as _, Result, ensure};
use switchyard_events::{
    Constraints, Envelope, Event, FeedbackId, FeedbackSource, FeedbackSubmitted, ModelName, OrgId,
    PartitionKey, RawScale, ResponseStatus, RouteName, RoutingTableUpdated, Target, Timestamp,
    TraceId, UnitScore,
};
use switchyard_providers::{ModelInfo, Needs};
use switchyard_router::{Context, Outcome, Priors, Request, RoutePolicy, decide, stats_of};

use crate::support::{
    BASE, CHEAP, HOUR, Harness, Req, SECOND, T0, event_id, model, source, test_config,
};

/// An admin's rating of `model` on `route` (feedback id `id`; `label` tells versions apart).
#[expect(clippy::expect_used, reason = "a test's fixed scores")]
fn pair_rating(
    org: &str,
    route: &str,
    model: &str,
    id: &str,
    label: &str,
    score: f64,
    time: i64,
) -> Event {
    Event::FeedbackSubmitted(FeedbackSubmitted {
        envelope: Envelope {
            event_id: event_id(&format!("pair/{org}/{id}/{label}")),
            org: OrgId::new(org),
            event_time: Timestamp::from_micros(time),
            trace_id: TraceId::new(id),
            partition_key: PartitionKey::new(format!("pair/{route}")),
        },
        feedback_id: FeedbackId::new(id),
        target: Target::Pair {
            route: RouteName::new(route),
            model: ModelName::new(model),
        },
        source: FeedbackSource::Admin,
        raw_score: score,
        raw_scale: RawScale::Unit,
        normalized_score: UnitScore::new(score).expect("score in 0..=1"),
        idempotency_key: None,
        comment: None,
        derived_from: None,
        route: Some(RouteName::new(route)),
        model: Some(ModelName::new(model)),
        labels: Default::default(),
    })
}

fn model_info(id: &str, input: f64, output: f64) -> ModelInfo {
    ModelInfo {
        id: id.into(),
        input_per_mtok: Some(input),
        cached_input_per_mtok: None,
        output_per_mtok: Some(output),
        source: "test".into(),
        as_of: "2026-11-24".into(),
        context_window: 100_000,
        max_output: 8_000,
        tools: true,
        json_schema: true,
        vision: false,
        embeddings: false,
    }
}

/// The router's decision on route `r1` of `acme` with `snapshot`'s statistics.
fn decide_with(snapshot: &RoutingTableUpdated) -> Result<Outcome> {
    let policy = RoutePolicy::new("r1", BASE, vec![CHEAP.into()]);
    let models = vec![model_info(BASE, 10.0, 30.0), model_info(CHEAP, 0.5, 1.5)];
    let priors = Priors::default();
    let stats = stats_of(snapshot);
    let ctx = Context {
        policy: &policy,
        stats: stats.get("r1"),
        table_version: snapshot.version,
        priors: &priors,
        models: &models,
        pin: None,
        mirror_budget_left: true,
    };
    let request = Request {
        org: "acme",
        needs: Needs {
            input_tokens: 1000,
            max_output_tokens: 500,
            ..Needs::default()
        },
        seed: Request::seed_of("req-x"),
        canary_bucket: Request::bucket_of("acme", "r1", "req-x"),
    };
    Ok(decide(&ctx, &request)?)
}

/// The admin signal (value, samples) of `model` in a decision's candidate table.
fn admin_signal(outcome: &Outcome, model: &str) -> Result<(Option<f64>, u64)> {
    let score = outcome
        .candidate(model)
        .and_then(|c| c.score.as_ref())
        .with_context(|| format!("{model} is scored"))?;
    let signal = score
        .signals
        .iter()
        .find(|s| s.source == FeedbackSource::Admin)
        .context("an admin signal")?;
    Ok((signal.value, signal.samples))
}

#[tokio::test]
async fn a_pair_rating_moves_the_admin_signal_once_and_the_newest_wins() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(Constraints::default()), 4)?;
    // Traffic on both models, judged alike: enough judge scores for phase 1, where admin
    // ratings carry weight.
    let mut events = Vec::new();
    for i in 0..24i64 {
        let served = if i % 2 == 0 { BASE } else { CHEAP };
        let at = T0 + HOUR + i * 10 * SECOND;
        let req = Req::new("acme", "r1", &format!("req-{i}"));
        events.push(req.decision(served, BASE, at));
        events.push(req.response(served, ResponseStatus::Ok, Some(0.001), 300, at + SECOND));
        events.push(req.judged(&format!("j-{i}"), served, Some(0.8), at + 2 * SECOND));
    }
    harness.fold(&events, &[4]).await?;
    let before = harness.last_snapshot("acme").context("a snapshot")?.clone();
    let cheap = model(&before, "r1", CHEAP).context("cheap in the table")?;
    ensure!(
        source(cheap, FeedbackSource::Admin) == (0, 0.0),
        "{cheap:?}"
    );
    let decided = decide_with(&before)?;
    ensure!(decided.phase == 1, "phase {}", decided.phase);
    ensure!(
        admin_signal(&decided, CHEAP)?.0.is_none(),
        "{:?}",
        admin_signal(&decided, CHEAP)
    );

    // An admin rates the cheap model on r1: 0.2.
    let t = T0 + 2 * HOUR;
    let first = pair_rating("acme", "r1", CHEAP, "fb-k1", "v1", 0.2, t);
    harness.fold(std::slice::from_ref(&first), &[1]).await?;
    let rated = harness.last_snapshot("acme").context("a snapshot")?.clone();
    ensure!(rated.version > before.version);
    let cheap = model(&rated, "r1", CHEAP).context("cheap in the table")?;
    ensure!(
        source(cheap, FeedbackSource::Admin) == (1, 0.2),
        "{cheap:?}"
    );
    // Nothing else moved: the baseline has no admin observation.
    let base = model(&rated, "r1", BASE).context("base in the table")?;
    ensure!(source(base, FeedbackSource::Admin) == (0, 0.0), "{base:?}");
    let decided = decide_with(&rated)?;
    let (value, samples) = admin_signal(&decided, CHEAP)?;
    ensure!(value == Some(0.2) && samples == 1, "{value:?} {samples}");

    // The same key changes its mind (same feedback id, newer event): replaced, not added.
    let second = pair_rating("acme", "r1", CHEAP, "fb-k1", "v2", 0.9, t + SECOND);
    harness.fold(std::slice::from_ref(&second), &[1]).await?;
    let replaced = harness.last_snapshot("acme").context("a snapshot")?.clone();
    let cheap = model(&replaced, "r1", CHEAP).context("cheap in the table")?;
    ensure!(
        source(cheap, FeedbackSource::Admin) == (1, 0.9),
        "{cheap:?}"
    );
    let (value, _) = admin_signal(&decide_with(&replaced)?, CHEAP)?;
    ensure!(value == Some(0.9), "{value:?}");

    // The first event delivered again changes nothing; another key's rating adds one.
    harness.fold(std::slice::from_ref(&first), &[1]).await?;
    let other = pair_rating("acme", "r1", CHEAP, "fb-k2", "v1", 0.5, t + 2 * SECOND);
    harness.fold(std::slice::from_ref(&other), &[1]).await?;
    let both = harness.last_snapshot("acme").context("a snapshot")?.clone();
    let cheap = model(&both, "r1", CHEAP).context("cheap in the table")?;
    let (samples, mean) = source(cheap, FeedbackSource::Admin);
    ensure!(samples == 2 && (mean - 0.7).abs() < 1e-9, "{cheap:?}");
    // Another org's table never sees it.
    ensure!(harness.last_snapshot("globex").is_none());
    Ok(())
}
