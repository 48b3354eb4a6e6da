//! Regressions and the automatic rollback: exactly one `RoutePinned` past the threshold, none
//! while pinned, re-armed by an unpin (and only new regressions fire it again).

use anyhow::{Result, ensure};
use switchyard_events::{
    Constraints, Event, PinReason, ResponseStatus, RouteMode, RoutePinned, RoutingTableUpdated,
};
use switchyard_projector::{ProjectorConfig, ROLLBACK_PINNED_BY};

use crate::support::{
    BASE, CHEAP, HOUR, Harness, MID, Req, SECOND, T0, model, pinned, route_defaults, test_config,
    unpinned,
};

fn constraints() -> Constraints {
    Constraints {
        max_regression: Some(0.05),
        rollback_threshold: Some(3),
        ..Constraints::default()
    }
}

/// A request served by `model` on `r1`, judged `score`, at `minute` past T0 + 1 h.
fn judged_request(label: &str, model: &str, score: f64, minute: i64) -> Vec<Event> {
    let req = Req::new("acme", "r1", label);
    let at = T0 + HOUR + minute * 60 * SECOND;
    vec![
        req.decision(model, BASE, at),
        req.response(model, ResponseStatus::Ok, Some(0.001), 200, at + SECOND),
        req.judged(&format!("j-{label}"), model, Some(score), at + 2 * SECOND),
    ]
}

/// The baseline's reference: five requests judged 0.9.
fn baseline_history() -> Vec<Event> {
    (0..5)
        .flat_map(|i| judged_request(&format!("base-{i}"), BASE, 0.9, i))
        .collect()
}

fn regressions(snapshot: &RoutingTableUpdated, m: &str) -> i64 {
    model(snapshot, "r1", m).map_or(0, |s| s.regressions.values().sum())
}

fn pins_in(events: &[Event]) -> Vec<RoutePinned> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RoutePinned(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn exactly_one_rollback_past_the_threshold_and_an_unpin_rearms_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(constraints()), 4)?;
    harness.fold(&baseline_history(), &[5]).await?;
    ensure!(harness.rollbacks().is_empty());

    // Two regressions of p/cheap (0.5 against a baseline mean of 0.9: a drop of 0.4): below the
    // threshold. A good p/mid answer is no regression.
    let mut events = judged_request("cheap-1", CHEAP, 0.5, 10);
    events.extend(judged_request("cheap-2", CHEAP, 0.5, 11));
    events.extend(judged_request("mid-1", MID, 0.88, 12));
    harness.fold(&events, &[2]).await?;
    ensure!(harness.rollbacks().is_empty());
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    assert_eq!(regressions(snapshot, CHEAP), 2);
    assert_eq!(
        model(snapshot, "r1", CHEAP).map(|m| m.regressions.clone()),
        Some([("20%+".to_owned(), 2)].into_iter().collect())
    );
    assert_eq!(regressions(snapshot, MID), 0);
    assert_eq!(regressions(snapshot, BASE), 0);

    // The third fires the rollback, once.
    let emitted = harness
        .fold(&judged_request("cheap-3", CHEAP, 0.5, 13), &[3])
        .await?;
    let pins = pins_in(&emitted);
    assert_eq!(pins.len(), 1, "{pins:?}");
    let pin = &pins[0];
    assert_eq!(pin.model.as_str(), BASE);
    assert_eq!(pin.route.as_str(), "r1");
    assert_eq!(pin.reason, PinReason::AutoRollback);
    assert_eq!(pin.pinned_by, ROLLBACK_PINNED_BY);
    // The pin lapses after `rollback_pin` (one day by default); the rollback_threshold
    // constraint keeps the model out while its regressions remain in the window.
    assert_eq!(
        pin.expires_at
            .map(|t| t.as_micros() - pin.envelope.event_time.as_micros()),
        Some(24 * 3600 * 1_000_000)
    );
    assert_eq!(pin.envelope.partition_key.as_str(), "acme/r1");
    let note = pin.note.clone().unwrap_or_default();
    assert!(
        note.contains("3 regressions of p/cheap in the last 6h"),
        "{note}"
    );
    assert!(note.contains("DELETE /v1/routes/r1/pin"), "{note}");
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    assert_eq!(
        snapshot.routes[0].pinned_model.as_ref().map(|m| m.as_str()),
        Some(BASE)
    );

    // More regressions while the pin is on its way and after it is read back: no second pin.
    harness
        .fold(&judged_request("cheap-4", CHEAP, 0.4, 14), &[3])
        .await?;
    harness
        .fold(&[Event::RoutePinned(pin.clone())], &[1])
        .await?;
    harness
        .fold(&judged_request("cheap-5", CHEAP, 0.4, 15), &[3])
        .await?;
    assert_eq!(harness.rollbacks().len(), 1);
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    assert_eq!(regressions(snapshot, CHEAP), 5);
    assert_eq!(
        snapshot.routes[0].pinned_model.as_ref().map(|m| m.as_str()),
        Some(BASE)
    );

    // The override: unpinned, re-armed. The five regressions already counted do not fire it.
    let at = T0 + HOUR + 20 * 60 * SECOND;
    let emitted = harness
        .fold(&[unpinned("acme", "r1", "u1", at)], &[1])
        .await?;
    ensure!(pins_in(&emitted).is_empty());
    let snapshot = harness.last_snapshot("acme").expect("a forced snapshot");
    assert_eq!(snapshot.routes[0].pinned_model, None);
    let mut events = judged_request("cheap-6", CHEAP, 0.5, 21);
    events.extend(judged_request("cheap-7", CHEAP, 0.5, 22));
    harness.fold(&events, &[6]).await?;
    assert_eq!(harness.rollbacks().len(), 1);
    // The third new one fires it again.
    let emitted = harness
        .fold(&judged_request("cheap-8", CHEAP, 0.5, 23), &[3])
        .await?;
    assert_eq!(pins_in(&emitted).len(), 1);
    assert_eq!(harness.rollbacks().len(), 2);
    let note = harness.rollbacks()[1].note.clone().unwrap_or_default();
    assert!(note.contains("8 regressions of p/cheap"), "{note}");
    Ok(())
}

#[tokio::test]
async fn a_redelivered_batch_does_not_roll_back_twice() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(constraints()), 2)?;
    harness.fold(&baseline_history(), &[15]).await?;
    let events: Vec<Event> = (1..=3)
        .flat_map(|i| judged_request(&format!("cheap-{i}"), CHEAP, 0.5, 10 + i))
        .collect();
    let inputs: Vec<_> = events.iter().map(|e| harness.place(e)).collect();
    let first = harness.process(&inputs).await?;
    assert_eq!(pins_in(&first).len(), 1);
    // The same records again (a store without atomic batches): the facts are known, nothing
    // changes, nothing is emitted.
    let again = harness.process(&inputs).await?;
    assert!(again.is_empty(), "{again:?}");
    // The same events appended again at new offsets (a producer's retry): likewise.
    let retried = harness.fold(&events, &[4]).await?;
    assert!(retried.is_empty(), "{retried:?}");
    assert_eq!(harness.rollbacks().len(), 1);
    Ok(())
}

#[tokio::test]
async fn no_rollback_while_pinned_or_where_the_baseline_serves_everyone() -> Result<()> {
    // A manual pin holds: regressions count, nothing fires; unpinned, they stay accounted for.
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(constraints()), 2)?;
    harness.fold(&baseline_history(), &[15]).await?;
    harness
        .fold(
            &[pinned(
                "acme",
                "r1",
                MID,
                "manual",
                T0 + HOUR + 9 * 60 * SECOND,
            )],
            &[1],
        )
        .await?;
    let events: Vec<Event> = (1..=4)
        .flat_map(|i| judged_request(&format!("cheap-{i}"), CHEAP, 0.3, 10 + i))
        .collect();
    harness.fold(&events, &[3]).await?;
    ensure!(harness.rollbacks().is_empty());
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    assert_eq!(regressions(snapshot, CHEAP), 4);
    assert_eq!(
        snapshot.routes[0].pinned_model.as_ref().map(|m| m.as_str()),
        Some(MID)
    );
    harness
        .fold(
            &[unpinned("acme", "r1", "u", T0 + HOUR + 20 * 60 * SECOND)],
            &[1],
        )
        .await?;
    harness
        .fold(&judged_request("cheap-5", CHEAP, 0.3, 21), &[3])
        .await?;
    ensure!(harness.rollbacks().is_empty());

    // Shadow mode: the baseline serves every user already; regressions are published, no pin.
    let dir = tempfile::tempdir()?;
    let mut config: ProjectorConfig = test_config(constraints());
    config.routes.insert(
        "r1".into(),
        route_defaults(RouteMode::Shadow, constraints()),
    );
    let mut harness = Harness::open(dir.path(), config, 2)?;
    harness.fold(&baseline_history(), &[15]).await?;
    let events: Vec<Event> = (1..=5)
        .flat_map(|i| judged_request(&format!("cheap-{i}"), CHEAP, 0.3, 10 + i))
        .collect();
    harness.fold(&events, &[5]).await?;
    ensure!(harness.rollbacks().is_empty());
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    assert_eq!(regressions(snapshot, CHEAP), 5);

    // No rollback_threshold: no automatic rollback at all.
    let dir = tempfile::tempdir()?;
    let unbounded = Constraints {
        rollback_threshold: None,
        ..constraints()
    };
    let mut harness = Harness::open(dir.path(), test_config(unbounded), 2)?;
    harness.fold(&baseline_history(), &[15]).await?;
    harness.fold(&events, &[5]).await?;
    ensure!(harness.rollbacks().is_empty());
    Ok(())
}
