//! The fold: route configurations, pins with expiry, the constraints chain and its refusals,
//! read-your-writes offsets.

use switchyard_config::Config;
use switchyard_events::{
    Constraints, Envelope, ModelName, PartitionKey, PinReason, RouteMode, RouteUnpinned, TraceId,
};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};

use super::*;

fn plane() -> ControlPlane {
    let config = Config::defaults_in("/tmp/switchyard-control-tests").unwrap();
    ControlPlane::new(&config.routes, &config.routing)
}

fn configured_mode() -> RouteMode {
    let config = Config::defaults_in("/tmp/switchyard-control-tests").unwrap();
    config.routes[0].mode.into()
}

fn org(name: &str) -> OrgId {
    OrgId::new(name)
}

fn envelope(org: &str, route: &str, at_secs: i64) -> Envelope {
    let id = EventId::now_v7();
    Envelope {
        event_id: id,
        org: OrgId::new(org),
        event_time: Timestamp::from_micros(at_secs * 1_000_000),
        trace_id: TraceId::new(id.to_string()),
        partition_key: PartitionKey::route(&OrgId::new(org), &RouteName::new(route)),
    }
}

fn configured(org: &str, route: &str, sequence: i64, baseline: &str) -> Event {
    Event::RouteConfigured(RouteConfigured {
        envelope: envelope(org, route, 1),
        route: RouteName::new(route),
        baseline_model: ModelName::new(baseline),
        candidates: vec![ModelName::new("demo/small")],
        mode: RouteMode::Live,
        canary_percent: None,
        mirror_fraction: None,
        mirror_spend_cap_usd: None,
        category: Some("code".into()),
        changed_by: "key_test".into(),
        deleted: false,
        sequence,
    })
}

fn change(
    org: &str,
    route: &str,
    sequence: i64,
    prev_hash: &str,
    constraints: Constraints,
) -> ConstraintsChanged {
    let route_name = RouteName::new(route);
    ConstraintsChanged {
        envelope: envelope(org, route, 2),
        hash: ConstraintsChanged::compute_hash(prev_hash, &constraints, &route_name, sequence),
        route: route_name,
        sequence,
        constraints,
        changed_by: "key_test".into(),
        prev_hash: prev_hash.into(),
    }
}

fn pinned(org: &str, route: &str, model: &str, expires_at_secs: Option<i64>) -> Event {
    Event::RoutePinned(RoutePinned {
        envelope: envelope(org, route, 3),
        route: RouteName::new(route),
        model: ModelName::new(model),
        reason: PinReason::Incident,
        pinned_by: "key_test".into(),
        expires_at: expires_at_secs.map(|s| Timestamp::from_micros(s * 1_000_000)),
        note: Some("incident 42".into()),
    })
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_micros(secs * 1_000_000)
}

#[test]
fn configured_routes_start_from_the_file_for_every_org() {
    let plane = plane();
    for name in ["acme", "default"] {
        let policy = plane.effective_policy(&org(name), "default").unwrap();
        assert_eq!(policy.baseline, "demo/large");
        assert_eq!(policy.candidates, ["demo/small", "demo/medium"]);
        assert_eq!(policy.mode, configured_mode());
        assert_eq!(policy.version, 0);
        assert_eq!(policy.constraints_hash, "");
        assert_eq!(policy.constraints.max_regression, Some(0.05));
        assert_eq!(policy.constraints.min_confidence, Some(0.8));
        assert_eq!(policy.constraints.rollback_threshold, Some(3));
    }
    assert!(plane.effective_policy(&org("acme"), "nope").is_none());
    assert_eq!(plane.route_names(&org("acme")), ["default"]);
}

#[test]
fn a_route_configuration_overrides_the_file_for_its_org_only() {
    let plane = plane();
    plane.apply(&configured("acme", "default", 0, "demo/medium"));
    let acme = plane.effective_policy(&org("acme"), "default").unwrap();
    assert_eq!(acme.baseline, "demo/medium");
    assert_eq!(acme.candidates, ["demo/small"]);
    assert_eq!(acme.mode, RouteMode::Live);
    assert_eq!(acme.category, "code");
    assert_eq!(acme.version, 1);
    // The file's constraints still apply: the configuration does not carry any.
    assert_eq!(acme.constraints.max_regression, Some(0.05));
    let other = plane.effective_policy(&org("other"), "default").unwrap();
    assert_eq!(other.baseline, "demo/large");

    // An older configuration arriving late is stale; a newer one wins.
    plane.apply(&configured("acme", "default", 3, "demo/large"));
    plane.apply(&configured("acme", "default", 2, "demo/small"));
    let acme = plane.effective_policy(&org("acme"), "default").unwrap();
    assert_eq!((acme.baseline.as_str(), acme.version), ("demo/large", 4));

    // A route the file does not know exists for the org that configured it.
    plane.apply(&configured("acme", "support", 0, "demo/large"));
    assert_eq!(plane.route_names(&org("acme")), ["default", "support"]);
    assert!(plane.effective_policy(&org("other"), "support").is_none());

    // Deleted: gone for that org, even a route of the file.
    let Event::RouteConfigured(mut deleted) = configured("acme", "default", 5, "demo/large") else {
        unreachable!()
    };
    deleted.deleted = true;
    plane.apply(&Event::RouteConfigured(deleted));
    assert!(plane.effective_policy(&org("acme"), "default").is_none());
    assert_eq!(plane.route_names(&org("acme")), ["support"]);
    assert!(plane.effective_policy(&org("other"), "default").is_some());
}

#[test]
fn an_invalid_configuration_from_the_log_falls_back_to_the_file() {
    let plane = plane();
    // The baseline listed as a candidate: not a valid policy.
    plane.apply(&configured("acme", "default", 0, "demo/small"));
    let policy = plane.effective_policy(&org("acme"), "default").unwrap();
    assert_eq!(policy.baseline, "demo/large");
    assert_eq!(plane.fold_stats().invalid_policies, 1);
}

#[test]
fn a_pin_is_in_force_until_unpinned_or_expired() {
    let plane = plane();
    assert!(plane.pin(&org("acme"), "default", at(100)).is_none());
    plane.apply(&pinned("acme", "default", "demo/medium", Some(200)));
    let pin = plane.pin(&org("acme"), "default", at(100)).unwrap();
    assert_eq!(pin.model, "demo/medium");
    assert_eq!(pin.reason, PinReason::Incident);
    assert_eq!(pin.pinned_by, "key_test");
    // Expiry is read against the caller's clock, not the fold's.
    assert!(plane.pin(&org("acme"), "default", at(199)).is_some());
    assert!(plane.pin(&org("acme"), "default", at(200)).is_none());
    assert!(plane.pin(&org("other"), "default", at(100)).is_none());
    let resolved = plane.route(&org("acme"), "default", at(100)).unwrap();
    assert_eq!(resolved.pin.unwrap().note.as_deref(), Some("incident 42"));

    plane.apply(&pinned("acme", "default", "demo/small", None));
    plane.apply(&Event::RouteUnpinned(RouteUnpinned {
        envelope: envelope("acme", "default", 4),
        route: RouteName::new("default"),
        unpinned_by: "key_test".into(),
        reason: None,
    }));
    assert!(plane.pin(&org("acme"), "default", at(100)).is_none());
}

#[test]
fn the_constraints_chain_replaces_the_constraints_and_verifies() {
    let plane = plane();
    let first = change(
        "acme",
        "default",
        0,
        "",
        Constraints {
            min_quality: Some(0.7),
            ..Constraints::default()
        },
    );
    let second = change(
        "acme",
        "default",
        1,
        &first.hash,
        Constraints {
            max_cost_per_request: Some(0.01),
            ..Constraints::default()
        },
    );
    plane.apply(&first.clone().into());
    plane.apply(&second.clone().into());
    // Redelivery is harmless.
    plane.apply(&first.clone().into());
    let policy = plane.effective_policy(&org("acme"), "default").unwrap();
    assert_eq!(policy.constraints, second.constraints);
    assert_eq!(policy.constraints_hash, second.hash);
    let facts = plane.facts(&RouteKey::new(&org("acme"), &RouteName::new("default")));
    assert_eq!(facts.chain, [first, second]);
    assert!(facts.verified());
    assert_eq!(plane.fold_stats().refused_constraints, 0);
    // Other orgs keep the file's constraints.
    let other = plane.effective_policy(&org("other"), "default").unwrap();
    assert_eq!(other.constraints_hash, "");
}

#[test]
fn a_change_that_breaks_the_chain_is_refused_counted_and_flagged() {
    let plane = plane();
    let key = RouteKey::new(&org("acme"), &RouteName::new("default"));
    let first = change("acme", "default", 0, "", Constraints::default());
    plane.apply(&first.clone().into());

    // A wrong prev_hash.
    let broken = change("acme", "default", 1, "feedface", Constraints::default());
    plane.apply(&broken.into());
    // A gap.
    let gap = change("acme", "default", 5, &first.hash, Constraints::default());
    plane.apply(&gap.into());
    // A fork: another change claiming sequence 0.
    let fork = change(
        "acme",
        "default",
        0,
        "",
        Constraints {
            min_samples: Some(1),
            ..Constraints::default()
        },
    );
    plane.apply(&fork.into());
    // A tampered hash.
    let mut tampered = change("acme", "default", 1, &first.hash, Constraints::default());
    tampered.constraints.min_quality = Some(0.1);
    plane.apply(&tampered.into());

    let facts = plane.facts(&key);
    assert_eq!(
        facts.chain,
        std::slice::from_ref(&first),
        "nothing refused was applied"
    );
    assert_eq!(facts.refused.len(), 4);
    assert!(!facts.verified());
    assert_eq!(plane.fold_stats().refused_constraints, 4);
    assert_eq!(
        plane
            .effective_policy(&org("acme"), "default")
            .unwrap()
            .constraints_hash,
        first.hash
    );

    // The chain still extends from its verified head.
    let next = change("acme", "default", 1, &first.hash, Constraints::default());
    plane.apply(&next.clone().into());
    assert_eq!(plane.facts(&key).chain, [first, next]);
}

#[tokio::test]
async fn commit_returns_once_this_node_has_folded_the_event() -> anyhow::Result<()> {
    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    let codec = Arc::new(Codec::new()?);
    let plane = plane().with_writer(ControlWriter::new(log.clone(), Arc::clone(&codec)));
    let (caught_up, mut caught_up_rx) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let follower = tokio::spawn(follow(
        log.clone(),
        Arc::clone(&codec),
        plane.clone(),
        caught_up,
        shutdown.clone(),
    ));
    caught_up_rx.wait_for(|c| *c).await?;

    let event = pinned("acme", "default", "demo/small", None);
    let position = plane.commit(&event, Duration::from_secs(10)).await?;
    assert_eq!(position.topic, Topic::Pins);
    // Visible at once: no polling needed after commit.
    assert!(plane.pin(&org("acme"), "default", at(0)).is_some());
    assert!(plane.applied_offset(Topic::Pins, position.partition) > position.offset);
    assert!(
        plane
            .wait_applied(
                Topic::Pins,
                position.partition,
                position.offset,
                Duration::ZERO
            )
            .await
    );
    assert!(
        !plane
            .wait_applied(
                Topic::Pins,
                position.partition,
                position.offset + 1,
                Duration::from_millis(50)
            )
            .await,
        "an offset not yet written times out"
    );

    // A plane without a writer refuses writes.
    assert!(matches!(
        super::ControlPlane::default()
            .commit(&event, Duration::from_secs(1))
            .await,
        Err(ControlError::ReadOnly)
    ));

    // A second plane following the same log converges (another replica).
    let replica = plane_following(&log, &codec, &shutdown).await?;
    assert!(replica.pin(&org("acme"), "default", at(0)).is_some());

    shutdown.cancel();
    follower.await??;
    log.close().await?;
    Ok(())
}

async fn plane_following(
    log: &EmbeddedLog,
    codec: &Arc<Codec>,
    shutdown: &CancellationToken,
) -> anyhow::Result<ControlPlane> {
    let replica = plane();
    let (caught_up, mut rx) = watch::channel(false);
    tokio::spawn(follow(
        log.clone(),
        Arc::clone(codec),
        replica.clone(),
        caught_up,
        shutdown.clone(),
    ));
    rx.wait_for(|c| *c).await?;
    Ok(replica)
}
