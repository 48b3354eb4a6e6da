//! Policy layers and the small HTTP helpers.

use switchyard_config::{Config, EnvVars, SUPPORTED_LANGUAGES};
use switchyard_events::{Envelope, EventId, TraceId};
use switchyard_router::Lang;

use super::*;

fn config(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![("SWITCHYARD__DATA_DIR", "/tmp/switchyard-routes-tests")];
    all.extend_from_slice(vars);
    switchyard_config::load(&[], EnvVars::from_vars(all)).unwrap()
}

fn defaults(config: &Config) -> RoutingDefaults {
    RoutingDefaults::new(&config.routes, &config.routing)
}

fn envelope() -> Envelope {
    let id = EventId::now_v7();
    Envelope {
        event_id: id,
        org: OrgId::new("acme"),
        event_time: Timestamp::from_micros(5_000_000),
        trace_id: TraceId::new(id.to_string()),
        partition_key: PartitionKey::new("acme/default"),
    }
}

#[test]
fn the_configuration_file_is_the_first_layer() {
    let config = config(&[
        ("SWITCHYARD__ROUTES__DEFAULT__MODE", "canary"),
        ("SWITCHYARD__ROUTES__DEFAULT__CANARY_PERCENT", "25"),
        ("SWITCHYARD__ROUTES__DEFAULT__MIRROR_DAILY_CAP_USD", "3"),
        ("SWITCHYARD__ROUTING__SCORE_WEIGHTS__COST", "0.5"),
        ("SWITCHYARD__ROUTING__LEARNING__PHASE1_MIN_SAMPLES", "7"),
    ]);
    let defaults = defaults(&config);
    let route = &config.routes[0];
    let view = build_view(Some(route), None, &defaults).unwrap().unwrap();
    let p = &view.policy;
    assert_eq!(p.mode, RouteMode::Canary);
    assert_eq!(f64::from(p.canary_percent), 25.0);
    assert_eq!(view.mirror_daily_cap_usd, Some(3.0));
    assert_eq!(p.weights.cost, 0.5);
    assert_eq!(p.learning.phase1_min_samples, 7);
    assert_eq!(p.learning.blends, Learning::default().blends);
    assert_eq!(p.constraints, defaults.default_constraints);
    assert_eq!(view.source, RouteSource::Config);
    assert_eq!(view.constraints_source, ConstraintsSource::Default);
    assert_eq!(p.version, 0);
}

#[test]
fn events_lay_over_the_file_and_the_chain_over_both() {
    let config = config(&[]);
    let defaults = defaults(&config);
    let route = &config.routes[0];
    let constraints = Constraints {
        max_p95_latency_ms: Some(900),
        ..Constraints::default()
    };
    let name = RouteName::new("default");
    let head = ConstraintsChanged {
        envelope: envelope(),
        hash: ConstraintsChanged::compute_hash("", &constraints, &name, 0),
        route: name.clone(),
        sequence: 0,
        constraints,
        changed_by: "key_a".into(),
        prev_hash: String::new(),
    };
    let facts = RouteFacts {
        configured: Some(RouteConfigured {
            envelope: envelope(),
            route: name.clone(),
            baseline_model: ModelName::new("demo/medium"),
            candidates: vec![ModelName::new("demo/small")],
            mode: RouteMode::Shadow,
            canary_percent: None,
            mirror_fraction: Some(UnitScore::new(0.2).unwrap()),
            mirror_spend_cap_usd: Some(Usd::new(1.5).unwrap()),
            category: None,
            changed_by: "key_a".into(),
            deleted: false,
            sequence: 6,
        }),
        chain: vec![head.clone()],
        ..RouteFacts::default()
    };
    let view = build_view(Some(route), Some(&facts), &defaults)
        .unwrap()
        .unwrap();
    let p = &view.policy;
    assert_eq!(p.baseline, "demo/medium");
    assert_eq!(p.mode, RouteMode::Shadow);
    assert_eq!(p.mirror_fraction, 0.2);
    assert_eq!(view.mirror_daily_cap_usd, Some(1.5));
    assert_eq!(p.category, "general");
    assert_eq!(p.version, 7);
    assert_eq!(p.constraints, constraints);
    assert_eq!(p.constraints_hash, head.hash);
    assert_eq!(view.source, RouteSource::Events);
    assert_eq!(view.constraints_source, ConstraintsSource::Chain(0));

    // The same events on a route the file does not have: the default constraints are the
    // starting point, then the chain.
    let view = build_view(None, Some(&facts), &defaults).unwrap().unwrap();
    assert_eq!(view.policy.constraints, constraints);
    let without_chain = RouteFacts {
        chain: Vec::new(),
        ..facts.clone()
    };
    let view = build_view(None, Some(&without_chain), &defaults)
        .unwrap()
        .unwrap();
    assert_eq!(view.policy.constraints, defaults.default_constraints);

    // Pins and constraints alone do not make a route.
    let only_chain = RouteFacts {
        configured: None,
        ..facts
    };
    assert!(
        build_view(None, Some(&only_chain), &defaults)
            .unwrap()
            .is_none()
    );
}

#[test]
fn if_match_compares_entity_tags() {
    assert!(if_match_admits("*", "abc"));
    assert!(if_match_admits("\"abc\"", "abc"));
    assert!(if_match_admits("W/\"abc\"", "abc"));
    assert!(if_match_admits("\"x\", \"abc\"", "abc"));
    assert!(if_match_admits("\"\"", ""));
    assert!(!if_match_admits("\"abd\"", "abc"));
    assert!(!if_match_admits("\"abc\"", ""));
}

#[test]
fn the_anonymous_caller_administers_only_when_keys_are_not_required() {
    let caller = |key: &str, admin: bool| Caller {
        org: OrgId::new("default"),
        key_id: switchyard_events::ApiKeyId::new(key),
        admin,
        default_route: None,
        limits: crate::limits::KeyLimits::default(),
    };
    assert!(may_administer(&caller("anonymous", false), false));
    assert!(!may_administer(&caller("anonymous", false), true));
    assert!(!may_administer(&caller("key_1", false), false));
    assert!(may_administer(&caller("key_1", true), true));
}

#[test]
fn configured_languages_are_the_routers() {
    let router: Vec<&str> = Lang::ALL.iter().map(|l| l.code()).collect();
    assert_eq!(router, SUPPORTED_LANGUAGES);
}
