//! The loop without HTTP: traffic and judge scores folded into windows, the snapshot turned
//! into router statistics by the conversion ingress applies (`switchyard_router::stats_of`),
//! and the router's decision moving to the cheaper model once its window shows it holds
//! quality; then a degradation of that model rolls the route back.

use anyhow::{Context as _, Result, ensure};
use switchyard_events::{Constraints, Event, PinReason, ResponseStatus, RoutingTableUpdated};
use switchyard_providers::{ModelInfo, Needs};
use switchyard_router::{
    Context, Outcome, Pin, Prior, Priors, ReasonCode, Request, RoutePolicy, decide, stats_of,
};

use crate::support::{BASE, CHEAP, HOUR, Harness, Req, SECOND, T0, test_config};

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

fn constraints() -> Constraints {
    Constraints {
        max_regression: Some(0.05),
        min_confidence: Some(0.8),
        rollback_threshold: Some(3),
        ..Constraints::default()
    }
}

struct World {
    models: Vec<ModelInfo>,
    priors: Priors,
    policy: RoutePolicy,
}

impl World {
    fn new() -> Self {
        let mut priors = Priors::default();
        // The cheap model's public benchmark is a little below the baseline's: on priors alone
        // the router is not confident enough to move.
        priors.extend([(BASE, 0.85), (CHEAP, 0.83)].map(|(m, s)| Prior {
            model: m.into(),
            category: "general".into(),
            score: s,
            source: "test".into(),
            as_of: "2026-11-24".into(),
        }));
        let mut policy = RoutePolicy::new("r1", BASE, vec![CHEAP.into()]);
        policy.constraints = constraints();
        World {
            models: vec![model_info(BASE, 10.0, 30.0), model_info(CHEAP, 0.5, 1.5)],
            priors,
            policy,
        }
    }

    fn decide(&self, snapshot: Option<&RoutingTableUpdated>, pin: Option<&Pin>) -> Result<Outcome> {
        let stats = snapshot.map(stats_of);
        let route = stats.as_ref().and_then(|s| s.get("r1"));
        let ctx = Context {
            policy: &self.policy,
            stats: route,
            table_version: snapshot.map_or(0, |s| s.version),
            priors: &self.priors,
            models: &self.models,
            pin,
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
}

/// `n` requests served by `model`, 10 s apart from `step`·10 s past T0 + 1 h, each judged
/// `score(i)`.
fn traffic(model: &str, label: &str, n: i64, step: i64, score: impl Fn(i64) -> f64) -> Vec<Event> {
    (0..n)
        .flat_map(|i| {
            let req = Req::new("acme", "r1", &format!("{label}-{i}"));
            let at = T0 + HOUR + (step + i) * SECOND * 10;
            [
                req.decision(model, BASE, at),
                req.response(model, ResponseStatus::Ok, Some(0.001), 300, at + SECOND),
                req.judged(
                    &format!("j-{label}-{i}"),
                    model,
                    Some(score(i)),
                    at + 2 * SECOND,
                ),
            ]
        })
        .collect()
}

#[tokio::test]
async fn the_route_moves_to_the_cheaper_model_that_holds_quality_then_rolls_back() -> Result<()> {
    let world = World::new();
    // Day 0: priors only; the baseline holds.
    let day0 = world.decide(None, None)?;
    ensure!(day0.served == BASE, "{day0:?}");
    ensure!(
        day0.reason == ReasonCode::LowConfidence,
        "{:?}",
        day0.reason
    );

    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(constraints()), 4)?;
    // Both models judged alike (0.80 / 0.90 alternating), 200 requests each.
    let alike = |i: i64| if i % 2 == 0 { 0.8 } else { 0.9 };
    let mut events = traffic(BASE, "base", 200, 0, alike);
    events.extend(traffic(CHEAP, "cheap", 200, 0, alike));
    harness.fold(&events, &[64]).await?;
    let snapshot = harness.last_snapshot("acme").context("a snapshot")?.clone();
    let moved = world.decide(Some(&snapshot), None)?;
    ensure!(moved.served == CHEAP, "{moved:#?}");
    ensure!(moved.reason == ReasonCode::Routed, "{:?}", moved.reason);
    ensure!(moved.phase == 1, "judge evidence: phase {}", moved.phase);
    ensure!(moved.table_version == snapshot.version);

    // The cheap model degrades, an hour later: its answers are now judged 0.4.
    let degraded = traffic(CHEAP, "cheap-degraded", 3, 700, |_| 0.4);
    let emitted = harness.fold(&degraded, &[3]).await?;
    let pin = emitted
        .iter()
        .find_map(|e| match e {
            Event::RoutePinned(p) => Some(p.clone()),
            _ => None,
        })
        .context("the regressions roll the route back")?;
    ensure!(pin.reason == PinReason::AutoRollback && pin.model.as_str() == BASE);
    let snapshot = harness.last_snapshot("acme").context("a snapshot")?.clone();
    // As ingress serves it: the pin (from the pins topic) holds the route on its baseline...
    let pinned = world.decide(
        Some(&snapshot),
        Some(&Pin {
            model: pin.model.as_str().to_owned(),
            reason: pin.reason,
            pinned_by: pin.pinned_by.clone(),
        }),
    )?;
    ensure!(
        pinned.served == BASE && pinned.reason == ReasonCode::Pinned,
        "{pinned:?}"
    );
    // ...and even without it, the window's regressions fail the candidate's rollback_threshold.
    let unpinned = world.decide(Some(&snapshot), None)?;
    ensure!(unpinned.served == BASE, "{unpinned:#?}");
    ensure!(
        unpinned
            .checks
            .iter()
            .any(|c| c.name == "rollback_threshold" && !c.passed),
        "{:?}",
        unpinned.checks
    );
    Ok(())
}
