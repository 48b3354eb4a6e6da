//! The router's decisions: constraints, capability filter, rollout modes, pins, determinism.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard_events::{Constraints, PayloadFormat, PinReason, RouteMode};
use switchyard_providers::{ModelInfo, Needs};
use switchyard_router::{
    Context, ModelStats, Outcome, Pin, Prior, Priors, ReasonCode, Request, RoutePolicy, RouteStats,
    SourceStat, decide,
};

fn model(id: &str, input: f64, output: f64, tools: bool) -> ModelInfo {
    ModelInfo {
        id: id.into(),
        input_per_mtok: Some(input),
        cached_input_per_mtok: None,
        output_per_mtok: Some(output),
        source: "test".into(),
        as_of: "2026-11-24".into(),
        context_window: 100_000,
        max_output: 8_000,
        tools,
        json_schema: true,
        vision: false,
        embeddings: false,
    }
}

struct World {
    models: Vec<ModelInfo>,
    priors: Priors,
}

impl World {
    fn new() -> Self {
        let models = vec![
            model("p/base", 10.0, 30.0, true),
            model("p/cheap", 0.5, 1.5, true),
            model("p/mid", 3.0, 9.0, true),
            model("p/notools", 0.1, 0.3, false),
        ];
        let mut priors = Priors::default();
        priors.extend(
            [
                ("p/base", 0.85),
                ("p/cheap", 0.84),
                ("p/mid", 0.86),
                ("p/notools", 0.9),
            ]
            .map(|(m, s)| Prior {
                model: m.into(),
                category: "general".into(),
                score: s,
                source: "test".into(),
                as_of: "2026-11-24".into(),
            }),
        );
        World { models, priors }
    }
}

fn policy() -> RoutePolicy {
    let mut p = RoutePolicy::new(
        "r",
        "p/base",
        vec!["p/cheap".into(), "p/mid".into(), "p/notools".into()],
    );
    p.constraints = Constraints {
        max_regression: Some(0.05),
        min_confidence: Some(0.8),
        ..Constraints::default()
    };
    p
}

fn needs() -> Needs {
    Needs {
        input_tokens: 1000,
        max_output_tokens: 500,
        ..Needs::default()
    }
}

fn request(needs: Needs) -> Request<'static> {
    Request {
        org: "o",
        needs,
        seed: Request::seed_of("req-1"),
        canary_bucket: Request::bucket_of("o", "r", "session-1"),
    }
}

/// Judge evidence that a model is as good as `mean` over `n` samples.
fn judged(mean: f64, n: u64) -> ModelStats {
    ModelStats {
        requests: n,
        successes: n,
        judge: SourceStat {
            samples: n,
            mean,
            variance: 0.02,
        },
        ..ModelStats::default()
    }
}

fn stats(entries: &[(&str, ModelStats)]) -> RouteStats {
    RouteStats {
        models: entries
            .iter()
            .map(|(m, s)| ((*m).to_owned(), s.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn run(
    world: &World,
    policy: &RoutePolicy,
    stats: Option<&RouteStats>,
    pin: Option<&Pin>,
    req: &Request<'_>,
) -> Outcome {
    let ctx = Context {
        policy,
        stats,
        table_version: 7,
        priors: &world.priors,
        models: &world.models,
        pin,
        mirror_budget_left: true,
    };
    decide(&ctx, req).expect("a capable model")
}

/// Route statistics where p/cheap is well evidenced as good as the baseline.
fn cheap_is_good() -> RouteStats {
    stats(&[
        ("p/base", judged(0.85, 500)),
        ("p/cheap", judged(0.85, 500)),
        ("p/mid", judged(0.70, 500)),
    ])
}

#[test]
fn day_zero_follows_the_priors_with_their_uncertainty() {
    let w = World::new();
    // p/cheap's prior is 0.01 below the baseline's: within the 0.05 margin, but with priors
    // only (sd 0.04 each) the confidence is Φ(0.04/0.0566) ≈ 0.76 < 0.8, so the baseline holds.
    let mut p = policy();
    p.candidates = vec!["p/cheap".into()];
    let o = run(&w, &p, None, None, &request(needs()));
    assert_eq!(o.phase, 0);
    assert_eq!(o.served, "p/base");
    assert_eq!(o.reason, ReasonCode::LowConfidence);
    assert!((o.confidence - 0.76).abs() < 0.01, "{}", o.confidence);
    assert_eq!(o.checked_model.as_deref(), Some("p/cheap"));
    // p/notools' prior is 0.05 above: Φ(0.1/0.0566) ≈ 0.96, and it is the cheapest: it serves.
    p.candidates = vec!["p/cheap".into(), "p/notools".into()];
    let o = run(&w, &p, None, None, &request(needs()));
    assert_eq!(
        (o.served.as_str(), o.reason),
        ("p/notools", ReasonCode::Routed)
    );
    assert!(o.candidates.iter().all(|c| c.score.is_some()));
}

#[test]
fn evidence_moves_the_route_to_the_cheaper_model() {
    let w = World::new();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into(), "p/mid".into()];
    let s = cheap_is_good();
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(o.phase, 1);
    assert_eq!(o.chosen, "p/cheap");
    assert_eq!(o.served, "p/cheap");
    assert_eq!(o.reason, ReasonCode::Routed);
    assert!(o.confidence >= 0.8, "{}", o.confidence);
    assert!(o.checks.iter().all(|c| c.passed));
    assert_eq!(o.checked_model.as_deref(), Some("p/cheap"));
    assert_eq!(o.table_version, 7);
    let contributions: f64 = o.signals.iter().map(|s| s.contribution).sum();
    let cheap = o
        .candidate("p/cheap")
        .and_then(|c| c.score.as_ref())
        .expect("scored");
    assert!((contributions - 0.4 * cheap.feedback).abs() < 1e-9);
}

#[test]
fn each_constraint_blocks_an_otherwise_winning_candidate() {
    let w = World::new();
    let mut base = policy();
    base.candidates = vec!["p/cheap".into()];
    let good = cheap_is_good();
    let routed = run(&w, &base, Some(&good), None, &request(needs()));
    assert_eq!(
        routed.served, "p/cheap",
        "precondition: p/cheap wins unconstrained"
    );

    let mut slow = good.clone();
    if let Some(m) = slow.models.get_mut("p/cheap") {
        m.p95_latency_ms = Some(9_000);
        m.latency_samples = 100;
        m.errors = 100;
        m.regressions.insert("5-10%".into(), 4);
    }
    let regressed = stats_with_cheap_mean(0.83);
    let cases: Vec<(&str, Constraints, &RouteStats)> = vec![
        (
            "max_regression",
            Constraints {
                max_regression: Some(0.0),
                ..Constraints::default()
            },
            &regressed,
        ),
        (
            "min_quality",
            Constraints {
                min_quality: Some(0.9),
                ..Constraints::default()
            },
            &good,
        ),
        (
            "max_error_rate",
            Constraints {
                max_error_rate: Some(0.05),
                ..Constraints::default()
            },
            &slow,
        ),
        (
            "max_cost_increase",
            Constraints {
                max_cost_increase: Some(-0.99),
                ..Constraints::default()
            },
            &good,
        ),
        (
            "max_cost_per_request",
            Constraints {
                max_cost_per_request: Some(0.0001),
                ..Constraints::default()
            },
            &good,
        ),
        (
            "max_p95_latency_ms",
            Constraints {
                max_p95_latency_ms: Some(2_000),
                ..Constraints::default()
            },
            &slow,
        ),
        (
            "min_confidence",
            Constraints {
                min_confidence: Some(0.999_999),
                ..Constraints::default()
            },
            &good,
        ),
        (
            "min_samples",
            Constraints {
                min_samples: Some(10_000),
                ..Constraints::default()
            },
            &good,
        ),
        (
            "rollback_threshold",
            Constraints {
                rollback_threshold: Some(3),
                ..Constraints::default()
            },
            &slow,
        ),
    ];
    assert_eq!(cases.len(), 9);
    for (name, constraints, s) in cases {
        let mut p = base.clone();
        p.constraints = constraints;
        p.validate().expect("valid policy");
        let o = run(&w, &p, Some(s), None, &request(needs()));
        assert_eq!(o.served, "p/base", "{name} should block p/cheap");
        let cheap = o.candidate("p/cheap").expect("listed");
        assert!(
            cheap.failed.contains(&name),
            "{name}: failed {:?}",
            cheap.failed
        );
        assert!(
            o.checks.iter().any(|c| c.name == name && !c.passed),
            "{name}: the trace reports the failed check"
        );
        let expected = if name == "min_confidence" {
            ReasonCode::LowConfidence
        } else {
            ReasonCode::ConstraintFailed
        };
        assert_eq!(o.reason, expected, "{name}");
    }
}

fn stats_with_cheap_mean(mean: f64) -> RouteStats {
    stats(&[
        ("p/base", judged(0.85, 500)),
        ("p/cheap", judged(mean, 500)),
    ])
}

#[test]
fn capability_filter_comes_before_cost() {
    let w = World::new();
    let mut p = policy();
    p.candidates = vec!["p/notools".into(), "p/cheap".into()];
    let s = stats(&[
        ("p/base", judged(0.85, 500)),
        ("p/notools", judged(0.95, 500)),
        ("p/cheap", judged(0.85, 500)),
    ]);
    let tools = Needs {
        tools: true,
        ..needs()
    };
    let o = run(&w, &p, Some(&s), None, &request(tools));
    assert_eq!(o.served, "p/cheap");
    let nt = o.candidate("p/notools").expect("listed");
    assert!(nt.score.is_none());
    assert!(nt.filtered.as_deref().is_some_and(|f| f.contains("tools")));
    // Without tools, the cheapest and best model wins.
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(o.served, "p/notools");
}

#[test]
fn baseline_that_cannot_serve_falls_to_the_best_qualifying_candidate() {
    let mut w = World::new();
    w.models[0].tools = false;
    let p = policy();
    let tools = Needs {
        tools: true,
        ..needs()
    };
    let o = run(&w, &p, None, None, &request(tools));
    assert_ne!(o.served, "p/base");
    assert_eq!(o.reason, ReasonCode::BaselineIncapable);

    let mut p = policy();
    p.candidates = vec!["p/notools".into()];
    let ctx = Context {
        policy: &p,
        stats: None,
        table_version: 0,
        priors: &w.priors,
        models: &w.models,
        pin: None,
        mirror_budget_left: true,
    };
    let err = decide(&ctx, &request(tools)).expect_err("nothing can serve");
    assert!(err.to_string().contains("p/notools"), "{err}");
}

#[test]
fn modes_apply_the_choice() {
    let w = World::new();
    let s = cheap_is_good();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into()];

    p.mode = RouteMode::Off;
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(
        (o.served.as_str(), o.reason),
        ("p/base", ReasonCode::RouteOff)
    );

    p.mode = RouteMode::Shadow;
    p.mirror_fraction = 1.0;
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(o.served, "p/base");
    assert_eq!(o.chosen, "p/cheap");
    assert_eq!(o.shadow.as_deref(), Some("p/cheap"));
    assert!(o.mirror);
    assert_eq!(o.reason, ReasonCode::Shadow);
    p.mirror_fraction = 0.0;
    assert!(!run(&w, &p, Some(&s), None, &request(needs())).mirror);

    p.mode = RouteMode::Live;
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(o.served, "p/cheap");
    assert!(o.shadow.is_none());
}

#[test]
fn mirroring_respects_the_fraction_and_the_budget() {
    let w = World::new();
    let s = cheap_is_good();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into()];
    p.mode = RouteMode::Shadow;
    p.mirror_fraction = 0.25;
    let mut mirrored = 0;
    for i in 0..4000 {
        let id = format!("req-{i}");
        let req = Request {
            seed: Request::seed_of(&id),
            ..request(needs())
        };
        let ctx = Context {
            policy: &p,
            stats: Some(&s),
            table_version: 1,
            priors: &w.priors,
            models: &w.models,
            pin: None,
            mirror_budget_left: true,
        };
        if decide(&ctx, &req).expect("decides").mirror {
            mirrored += 1;
        }
        let broke = Context {
            mirror_budget_left: false,
            ..ctx
        };
        assert!(!decide(&broke, &req).expect("decides").mirror);
    }
    assert!((900..1100).contains(&mirrored), "{mirrored} of 4000 at 25%");
}

#[test]
fn canary_is_sticky_per_session_and_proportional() {
    let w = World::new();
    let s = cheap_is_good();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into()];
    p.mode = RouteMode::Canary;
    p.canary_percent = 30;
    let mut inside = 0;
    for session in 0..2000 {
        let sid = format!("s-{session}");
        let bucket = Request::bucket_of("o", "r", &sid);
        let served: Vec<String> = (0..5)
            .map(|i| {
                let req = Request {
                    seed: Request::seed_of(&format!("{sid}-{i}")),
                    canary_bucket: bucket,
                    ..request(needs())
                };
                run(&w, &p, Some(&s), None, &req).served
            })
            .collect();
        assert!(
            served.windows(2).all(|x| x[0] == x[1]),
            "sticky: {served:?}"
        );
        if served[0] == "p/cheap" {
            inside += 1;
        }
    }
    assert!(
        (500..700).contains(&inside),
        "{inside} of 2000 sessions at 30%"
    );
    p.canary_percent = 0;
    assert_eq!(
        run(&w, &p, Some(&s), None, &request(needs())).served,
        "p/base"
    );
    p.canary_percent = 100;
    assert_eq!(
        run(&w, &p, Some(&s), None, &request(needs())).served,
        "p/cheap"
    );
}

#[test]
fn a_pin_overrides_routing_and_an_unservable_pin_falls_back() {
    let w = World::new();
    let s = cheap_is_good();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into()];
    let pin = Pin {
        model: "p/mid".into(),
        reason: PinReason::Manual,
        pinned_by: "alice".into(),
    };
    let o = run(&w, &p, Some(&s), Some(&pin), &request(needs()));
    assert_eq!((o.served.as_str(), o.reason), ("p/mid", ReasonCode::Pinned));
    assert_eq!(o.pin.as_ref(), Some(&pin));

    let pin = Pin {
        model: "p/notools".into(),
        ..pin
    };
    let tools = Needs {
        tools: true,
        ..needs()
    };
    let o = run(&w, &p, Some(&s), Some(&pin), &request(tools));
    assert_eq!(
        (o.served.as_str(), o.reason),
        ("p/base", ReasonCode::PinUnservable)
    );
}

#[test]
fn phases_follow_the_evidence() {
    let w = World::new();
    let p = policy();
    let mut s = stats(&[("p/base", judged(0.85, 5))]);
    assert_eq!(run(&w, &p, Some(&s), None, &request(needs())).phase, 0);
    s = stats(&[("p/base", judged(0.85, 25))]);
    assert_eq!(run(&w, &p, Some(&s), None, &request(needs())).phase, 1);
    if let Some(m) = s.models.get_mut("p/base") {
        m.nps = SourceStat {
            samples: 12,
            mean: 0.8,
            variance: 0.05,
        };
    }
    let o = run(&w, &p, Some(&s), None, &request(needs()));
    assert_eq!(o.phase, 2);
    let base = o
        .candidate("p/base")
        .and_then(|c| c.score.as_ref())
        .expect("scored");
    let nps = base
        .signals
        .iter()
        .find(|x| x.source == switchyard_events::FeedbackSource::Nps)
        .expect("nps signal");
    assert!(nps.weight > 0.0 && nps.samples == 12);
}

fn arb_source() -> impl Strategy<Value = SourceStat> {
    (0u64..300, 0.0f64..=1.0, 0.0f64..0.1).prop_map(|(samples, mean, variance)| SourceStat {
        samples,
        mean,
        variance,
    })
}

fn arb_stats() -> impl Strategy<Value = ModelStats> {
    (
        arb_source(),
        arb_source(),
        arb_source(),
        0u64..500,
        0u64..50,
        proptest::option::of(100u64..10_000),
        0u64..6,
    )
        .prop_map(|(judge, admin, nps, requests, errors, p95, regressions)| {
            let errors = errors.min(requests);
            let mut m = ModelStats {
                requests,
                successes: requests - errors,
                errors,
                judge,
                admin,
                nps,
                p95_latency_ms: p95,
                latency_samples: u64::from(p95.is_some()) * 50,
                ..ModelStats::default()
            };
            if regressions > 0 {
                m.regressions.insert("0-5%".into(), regressions);
            }
            m
        })
}

fn arb_constraints() -> impl Strategy<Value = Constraints> {
    (
        proptest::option::of(0.0f64..0.2),
        proptest::option::of(0.3f64..0.95),
        proptest::option::of(0.0f64..0.2),
        proptest::option::of(-0.5f64..1.0),
        proptest::option::of(0.0001f64..0.05),
        proptest::option::of(200i64..8000),
        proptest::option::of(0.3f64..0.99),
        proptest::option::of(0i64..400),
        proptest::option::of(1i64..5),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i)| Constraints {
            max_regression: a,
            min_quality: b,
            max_error_rate: c,
            max_cost_increase: d,
            max_cost_per_request: e,
            max_p95_latency_ms: f,
            min_confidence: g,
            min_samples: h,
            rollback_threshold: i,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever the scores, the router never serves a candidate that violates a constraint;
    /// the violations are re-derived here from the raw inputs, not taken from the outcome.
    #[test]
    fn a_violating_candidate_is_never_chosen(
        base in arb_stats(),
        cheap in arb_stats(),
        mid in arb_stats(),
        constraints in arb_constraints(),
        input_tokens in 10u64..20_000,
        mode in prop_oneof![Just(RouteMode::Live), Just(RouteMode::Canary), Just(RouteMode::Shadow)],
        session in "[a-z]{1,8}",
    ) {
        let w = World::new();
        let mut p = policy();
        p.candidates = vec!["p/cheap".into(), "p/mid".into()];
        p.constraints = constraints;
        p.mode = mode;
        p.canary_percent = 50;
        let s = stats(&[("p/base", base), ("p/cheap", cheap.clone()), ("p/mid", mid.clone())]);
        let req = Request {
            needs: Needs { input_tokens, max_output_tokens: 400, ..Needs::default() },
            canary_bucket: Request::bucket_of("o", "r", &session),
            ..request(needs())
        };
        let o = run(&w, &p, Some(&s), None, &req);
        let again = run(&w, &p, Some(&s), None, &req);
        prop_assert_eq!(&o, &again, "decisions are deterministic");
        for served in [&o.served, &o.chosen] {
            if served == "p/base" {
                continue;
            }
            let m = if served == "p/cheap" { &cheap } else { &mid };
            let info = w.models.iter().find(|x| &x.id == served).expect("known");
            let cost = (input_tokens as f64 * info.input_per_mtok.unwrap_or(0.0)
                + 400.0 * info.output_per_mtok.unwrap_or(0.0)) / 1e6;
            let base_cost = (input_tokens as f64 * 10.0 + 400.0 * 30.0) / 1e6;
            if let Some(limit) = constraints.max_cost_per_request {
                prop_assert!(cost <= limit + 1e-12, "cost {} > {}", cost, limit);
            }
            if let Some(limit) = constraints.max_cost_increase {
                prop_assert!(cost / base_cost - 1.0 <= limit + 1e-12);
            }
            if let (Some(limit), true) = (constraints.max_error_rate, m.requests > 0) {
                prop_assert!(m.errors as f64 / m.requests as f64 <= limit + 1e-12);
            }
            if let (Some(limit), Some(p95)) = (constraints.max_p95_latency_ms, m.p95_latency_ms) {
                prop_assert!(p95 as i64 <= limit);
            }
            if let Some(limit) = constraints.min_samples {
                let n = m.judge.samples + m.admin.samples + m.nps.samples + m.user.samples;
                prop_assert!(n as i64 >= limit);
            }
            if let Some(limit) = constraints.rollback_threshold {
                prop_assert!((m.regression_count() as i64) < limit);
            }
            let eval = o.candidate(served).expect("listed");
            let score = eval.score.as_ref().expect("scored");
            let base_q = o.candidate("p/base").and_then(|c| c.score.as_ref()).expect("scored").feedback;
            if let Some(limit) = constraints.max_regression {
                prop_assert!(base_q - score.feedback <= limit + 1e-12);
            }
            if let Some(limit) = constraints.min_quality {
                prop_assert!(score.feedback >= limit - 1e-12);
            }
            if let Some(limit) = constraints.min_confidence {
                prop_assert!(eval.confidence.expect("candidate confidence") >= limit - 1e-12);
            }
        }
        // Shadow mode never serves the choice; canary serves it only inside the share.
        if mode == RouteMode::Shadow {
            prop_assert_eq!(&o.served, "p/base");
        }
    }
}

/// An audit recomputes a decision from its trace alone: the recorded features, seed, canary
/// bucket and versions give back the same choice.
#[test]
fn a_trace_recomputes_to_the_same_decision() {
    use switchyard_events::{
        DecisionId, Envelope, EventId, OrgId, PartitionKey, RequestId, Timestamp, TraceId,
    };
    use switchyard_router::{Lang, TraceIds, build_trace, needs_of};

    let w = World::new();
    let s = cheap_is_good();
    let mut p = policy();
    p.candidates = vec!["p/cheap".into(), "p/mid".into()];
    p.mode = RouteMode::Canary;
    p.canary_percent = 40;
    for session in 0..50 {
        let sid = format!("s-{session}");
        let req = Request {
            seed: Request::seed_of(&format!("dec-{session}")),
            canary_bucket: Request::bucket_of("o", "r", &sid),
            needs: Needs {
                input_tokens: 100 + session * 37,
                max_output_tokens: if session % 3 == 0 { 0 } else { 300 },
                tools: session % 4 == 0,
                ..Needs::default()
            },
            ..request(needs())
        };
        let original = run(&w, &p, Some(&s), None, &req);
        let request_id = RequestId::new(format!("req-{session}"));
        let trace = build_trace(
            TraceIds {
                envelope: Envelope {
                    event_id: EventId::now_v7(),
                    org: OrgId::new("o"),
                    event_time: Timestamp::from_micros(0),
                    trace_id: TraceId::new("t"),
                    partition_key: PartitionKey::session_or_request(None, &request_id),
                },
                decision_id: DecisionId::new(format!("dec-{session}")),
                request_id,
                session_id: None,
            },
            &p,
            Some(&s),
            &req.needs,
            &original,
            Lang::En,
        );
        // Only what the trace recorded goes into the recomputation.
        let replayed = Request {
            org: "o",
            needs: needs_of(&trace.features),
            seed: trace.seed as u64,
            canary_bucket: trace.canary_bucket.map_or(0, |b| b as u32),
        };
        assert_eq!(trace.routing_table_version, 7);
        let again = run(&w, &p, Some(&s), None, &replayed);
        assert_eq!(
            (
                again.chosen.as_str(),
                again.served.as_str(),
                again.reason.as_str()
            ),
            (
                trace.chosen_model.as_str(),
                trace.served_model.as_str(),
                trace.reason.as_str()
            ),
            "session {session}"
        );
    }
}

/// Builds the traces of `n` decisions of one route.
fn traces(n: usize) -> Vec<switchyard_events::RouteDecided> {
    use switchyard_events::{
        DecisionId, Envelope, EventId, OrgId, PartitionKey, RequestId, Timestamp, TraceId,
    };
    use switchyard_router::{Lang, TraceIds, build_trace};

    let w = World::new();
    let s = cheap_is_good();
    let p = policy();
    (0..n)
        .map(|i| {
            let req = Request {
                seed: Request::seed_of(&format!("dec-{i}")),
                ..request(needs())
            };
            let outcome = run(&w, &p, Some(&s), None, &req);
            let request_id = RequestId::new(format!("req-{i}"));
            build_trace(
                TraceIds {
                    envelope: Envelope {
                        event_id: EventId::now_v7(),
                        org: OrgId::new("o"),
                        event_time: Timestamp::from_micros(i as i64),
                        trace_id: TraceId::new("t"),
                        partition_key: PartitionKey::session_or_request(None, &request_id),
                    },
                    decision_id: DecisionId::new(format!("dec-{i}")),
                    request_id,
                    session_id: None,
                },
                &p,
                Some(&s),
                &req.needs,
                &outcome,
                Lang::En,
            )
        })
        .collect()
}

/// Every trace of a signed batch verifies on its own; a changed trace, a proof moved to
/// another trace or a forged proof does not.
#[test]
fn each_trace_of_a_signed_batch_verifies_alone() {
    use switchyard_router::DecisionSigner;

    let (signer, _) = DecisionSigner::generate().expect("key");
    let key = signer.public_key().clone();
    for (n, format) in [1, 2, 3, 7, 8, 13]
        .into_iter()
        .flat_map(|n| [(n, PayloadFormat::V1), (n, PayloadFormat::V2)])
    {
        let mut batch = traces(n);
        if format == PayloadFormat::CURRENT {
            signer.sign_batch(batch.iter_mut()).expect("signs");
        } else {
            let mut signing = signer.batch_as(format);
            for t in batch.iter_mut() {
                signing.add(t);
            }
            signing.finish().expect("signs");
        }
        let signature = &batch[0].signature;
        for (i, t) in batch.iter().enumerate() {
            assert_eq!(&t.signature, signature, "one signature per batch");
            let proof = t.signature_proof.as_ref().expect("proof");
            assert_eq!((proof.leaf_index, proof.tree_size), (i as i64, n as i64));
            assert_eq!(proof.payload_format, format.number());
            key.verify(t).expect("verifies");

            // The format is part of what is signed: read as the other format, or as one this
            // verifier does not know, the trace fails.
            let mut reformatted = t.clone();
            if let Some(p) = reformatted.signature_proof.as_mut() {
                p.payload_format = 3 - p.payload_format;
            }
            assert!(
                key.verify(&reformatted).is_err(),
                "size {n}, {format:?}: verified as the other format"
            );
            if let Some(p) = reformatted.signature_proof.as_mut() {
                p.payload_format = 3;
            }
            assert!(matches!(
                key.verify(&reformatted),
                Err(switchyard_router::SignError::UnknownFormat(3))
            ));

            let mut changed = t.clone();
            changed.served_model = switchyard_events::ModelName::new("p/forged");
            assert!(
                key.verify(&changed).is_err(),
                "size {n}: a changed trace fails"
            );
            let mut dropped = t.clone();
            dropped.signature_proof = None;
            assert!(
                key.verify(&dropped).is_err(),
                "size {n}: without its proof it fails"
            );
            if n > 1 {
                let mut moved = t.clone();
                moved.signature_proof = batch[(i + 1) % n].signature_proof.clone();
                assert!(
                    key.verify(&moved).is_err(),
                    "size {n}: another trace's proof fails"
                );
                let mut forged = t.clone();
                if let Some(p) = forged.signature_proof.as_mut() {
                    p.path[0] = "00".repeat(32);
                }
                assert!(
                    key.verify(&forged).is_err(),
                    "size {n}: a forged proof fails"
                );
            }
        }
    }
    // A trace signed before batches (schema v2: no proof, the payload itself signed).
    let mut legacy = traces(1).remove(0);
    legacy.signing_key_id = key.key_id.clone();
    legacy.signature = signer.sign_bytes(&legacy.signing_payload().expect("payload"));
    key.verify(&legacy).expect("a v2 trace still verifies");
}

/// Traces signed by the code before payload v2 existed (schemas/samples/route_decided/
/// signed-payload-v1.json: schema v1 and v2 decisions signed directly, v3 and v4 decisions in a
/// batch of three and a batch of one, all over the v1 payload and the v1 batch context, with
/// proofs that have no `payload_format`) verify; changed, they do not.
#[test]
fn traces_signed_before_payload_v2_still_verify() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/samples/route_decided/signed-payload-v1.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    assert!(
        !doc.to_string().contains("payload_format"),
        "written before the field existed"
    );
    let key = switchyard_router::PublicKey::from_jwk(&doc["keys"][0]).expect("key");
    let traces: Vec<switchyard_events::RouteDecided> =
        serde_json::from_value(doc["traces"].clone()).expect("traces");
    assert_eq!(traces.len(), 6);
    for (i, t) in traces.iter().enumerate() {
        key.verify(t)
            .unwrap_or_else(|e| panic!("trace {i} no longer verifies: {e}"));
        if let Some(proof) = &t.signature_proof {
            assert_eq!(proof.payload_format, 1, "an old proof reads as format 1");
        }
        let mut changed = t.clone();
        changed.seed += 1;
        assert!(
            key.verify(&changed).is_err(),
            "trace {i}: a changed trace fails"
        );
        // Claiming the v2 format for an old proof fails too.
        if changed.signature_proof.is_some() {
            let mut claimed = t.clone();
            if let Some(p) = claimed.signature_proof.as_mut() {
                p.payload_format = 2;
            }
            assert!(key.verify(&claimed).is_err(), "trace {i}: read as v2");
        }
    }
}

/// A batch signed in steps (`batch`, `add` per trace, `finish`: how the benchmark times each
/// trace's own signing work) is the batch `sign_batch` signs: the same signature and proofs.
#[test]
fn a_batch_signed_in_steps_is_the_batch_signed_at_once() {
    use switchyard_router::DecisionSigner;

    let (signer, _) = DecisionSigner::generate().expect("key");
    for n in [1, 5, 64] {
        let mut at_once = traces(n);
        let mut in_steps = at_once.clone();
        signer.sign_batch(at_once.iter_mut()).expect("signs");
        let mut batch = signer.batch();
        for t in in_steps.iter_mut() {
            batch.add(t);
        }
        batch.finish().expect("signs");
        assert_eq!(at_once, in_steps, "size {n}");
        for t in &in_steps {
            signer.public_key().verify(t).expect("verifies");
        }
    }
    // An empty batch signs nothing and is no error.
    signer.batch().finish().expect("an empty batch");
}
