//! `DecisionQueries` over a read model folded into the real embedded store: org scoping, lookups
//! by either id, every filter against a brute-force answer, pagination, the scan budget.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use switchyard_decisions::{DecisionFilter, DecisionQueries, QueryError};
use switchyard_events::{
    DecisionId, Event, FeedbackSource, OrgId, RequestId, RouteName, SessionId, Timestamp,
};
use switchyard_store::EmbeddedStore;

use crate::support::{
    DecisionSpec, T0, decision, feedback, fold, judged, response, shadow_response,
};

const DECISIONS: usize = 30;

/// What the fixture knows about each decision of org `acme`, to compute expected answers.
#[derive(Debug, Clone)]
struct Known {
    id: String,
    route: &'static str,
    session: Option<&'static str>,
    time: i64,
    latency: Option<i64>,
    quality: Option<f64>,
}

fn route_of(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "support"
    } else {
        "sales"
    }
}

fn session_of(i: usize) -> Option<&'static str> {
    match i % 5 {
        4 => None,
        _ if i.is_multiple_of(3) => Some("s1"),
        _ => Some("s2"),
    }
}

/// 30 decisions of `acme` one second apart, and 5 of `globex` reusing the same decision ids.
async fn fixture() -> Result<(EmbeddedStore, Vec<Known>)> {
    let mut events: Vec<Event> = Vec::new();
    let mut known = Vec::new();
    for i in 0..DECISIONS {
        let id = format!("dec-{i:02}");
        let request = format!("req-{i:02}");
        let session = session_of(i);
        let time = T0 + i as i64 * 1_000_000;
        // Outcomes first for even decisions, so some joins go through the pending tables.
        let mut outcome: Vec<Event> = Vec::new();
        let latency = (i % 4 != 3).then_some(100 * i as i64);
        if let Some(latency) = latency {
            outcome.push(response("acme", &id, &request, session, latency, time + 10).into());
        }
        let mut scores = Vec::new();
        match i % 3 {
            0 => {
                outcome.push(
                    feedback(
                        "acme",
                        &format!("fb-{i}"),
                        &request,
                        session,
                        FeedbackSource::Nps,
                        0.2,
                        time + 20,
                    )
                    .into(),
                );
                scores.push(0.2);
            }
            1 => {
                outcome.push(
                    feedback(
                        "acme",
                        &format!("fb-{i}"),
                        &request,
                        session,
                        FeedbackSource::User,
                        0.9,
                        time + 20,
                    )
                    .into(),
                );
                scores.push(0.9);
            }
            _ => {}
        }
        if i.is_multiple_of(6) {
            outcome.push(
                judged(
                    "acme",
                    &format!("j-{i}"),
                    &id,
                    &request,
                    session,
                    Some(0.4),
                    time + 30,
                )
                .into(),
            );
            scores.push(0.4);
        }
        let decided: Event = decision(&DecisionSpec {
            org: "acme",
            decision: &id,
            request: &request,
            session,
            route: route_of(i),
            time,
        })
        .into();
        if i.is_multiple_of(2) {
            events.extend(outcome);
            events.push(decided);
        } else {
            events.push(decided);
            events.extend(outcome);
        }
        let quality =
            (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
        known.push(Known {
            id,
            route: route_of(i),
            session,
            time,
            latency,
            quality,
        });
    }
    for i in 0..5 {
        events.push(
            decision(&DecisionSpec {
                org: "globex",
                decision: &format!("dec-{i:02}"),
                request: &format!("globex-req-{i}"),
                session: Some("s1"),
                route: "support",
                time: T0 + i as i64 * 1_000_000,
            })
            .into(),
        );
    }
    let store = EmbeddedStore::temporary()?;
    fold(&store, &events, &[7, 3, 11]).await?;
    Ok((store, known))
}

fn expected(known: &[Known], filter: &DecisionFilter) -> Vec<String> {
    let mut matching: Vec<&Known> = known
        .iter()
        .filter(|k| filter.route.as_ref().is_none_or(|r| r.as_str() == k.route))
        .filter(|k| {
            filter
                .session
                .as_ref()
                .is_none_or(|s| Some(s.as_str()) == k.session)
        })
        .filter(|k| filter.from.is_none_or(|f| k.time >= f.as_micros()))
        .filter(|k| filter.to.is_none_or(|t| k.time < t.as_micros()))
        .filter(|k| {
            filter
                .latency_above_ms
                .is_none_or(|t| k.latency.is_some_and(|l| l > t))
        })
        .filter(|k| {
            filter
                .quality_below
                .is_none_or(|t| k.quality.is_some_and(|q| q < t))
        })
        .collect();
    matching.sort_by_key(|k| std::cmp::Reverse(k.time));
    matching.into_iter().map(|k| k.id.clone()).collect()
}

/// Lists every page; returns the ids in order and the pages' sizes and cursors.
async fn list_all(
    queries: &DecisionQueries<EmbeddedStore>,
    filter: &DecisionFilter,
    limit: usize,
) -> Result<(Vec<String>, Vec<(usize, bool)>)> {
    let acme = OrgId::new("acme");
    let mut ids = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let page = queries
            .list(&acme, filter, cursor.as_deref(), limit)
            .await?;
        ensure!(page.items.len() <= limit);
        ids.extend(page.items.iter().map(|r| r.decision_id.as_str().to_owned()));
        pages.push((page.items.len(), page.next_cursor.is_some()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((ids, pages)),
        }
    }
    anyhow::bail!("pagination did not end")
}

fn filters() -> Vec<(&'static str, DecisionFilter)> {
    let t = |i: i64| Some(Timestamp::from_micros(T0 + i * 1_000_000));
    vec![
        ("everything", DecisionFilter::default()),
        (
            "route",
            DecisionFilter {
                route: Some(RouteName::new("support")),
                ..Default::default()
            },
        ),
        (
            "session",
            DecisionFilter {
                session: Some(SessionId::new("s1")),
                ..Default::default()
            },
        ),
        (
            "session and route",
            DecisionFilter {
                session: Some(SessionId::new("s2")),
                route: Some(RouteName::new("sales")),
                ..Default::default()
            },
        ),
        (
            "window",
            DecisionFilter {
                from: t(5),
                to: t(17),
                ..Default::default()
            },
        ),
        (
            "from",
            DecisionFilter {
                from: t(25),
                ..Default::default()
            },
        ),
        (
            "to",
            DecisionFilter {
                to: t(3),
                ..Default::default()
            },
        ),
        (
            "low quality",
            DecisionFilter {
                quality_below: Some(0.35),
                ..Default::default()
            },
        ),
        (
            "high latency",
            DecisionFilter {
                latency_above_ms: Some(1_500),
                ..Default::default()
            },
        ),
        (
            "route, window, latency",
            DecisionFilter {
                route: Some(RouteName::new("support")),
                from: t(4),
                to: t(26),
                latency_above_ms: Some(900),
                ..Default::default()
            },
        ),
        (
            "nothing",
            DecisionFilter {
                route: Some(RouteName::new("nope")),
                ..Default::default()
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_org_scoped_and_finds_decisions_by_either_id() -> Result<()> {
    let (store, _) = fixture().await?;
    let queries = DecisionQueries::new(store);
    let acme = OrgId::new("acme");
    let globex = OrgId::new("globex");

    let record = queries
        .get(&acme, &DecisionId::new("dec-06"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("dec-06 not found"))?;
    ensure!(record.org == acme && record.request_id.as_str() == "req-06");
    ensure!(
        record.route.as_str() == "support"
            && record.session_id.as_ref().map(SessionId::as_str) == Some("s1")
    );
    ensure!(record.decided_at == Timestamp::from_micros(T0 + 6_000_000));
    // The whole decision trace, as serde JSON of the event.
    ensure!(
        record.decision["decision_id"] == "dec-06",
        "{}",
        record.decision
    );
    ensure!(record.decision["type"].is_null() && record.decision["candidates"].is_array());
    let response = record
        .response
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no response"))?;
    ensure!(response.latency_ms == 600 && response.attempts.len() == 2);
    ensure!(record.feedback.count == 2, "{:?}", record.feedback);
    ensure!(record.feedback.mean.is_some_and(|m| (m - 0.3).abs() < 1e-9));
    let nps = record.feedback.by_source.get(&FeedbackSource::Nps);
    ensure!(nps.is_some_and(|s| s.count == 1 && (s.mean - 0.2).abs() < 1e-9));
    let judge = record.feedback.by_source.get(&FeedbackSource::Judge);
    ensure!(judge.is_some_and(|s| s.count == 1 && (s.mean - 0.4).abs() < 1e-9));

    // Another org's decision with the same id is its own; an org without it finds nothing.
    let theirs = queries.get(&globex, &DecisionId::new("dec-03")).await?;
    ensure!(theirs.is_some_and(|r| r.org == globex && r.request_id.as_str() == "globex-req-3"));
    ensure!(
        queries
            .get(&globex, &DecisionId::new("dec-20"))
            .await?
            .is_none()
    );
    ensure!(
        queries
            .get(&OrgId::new("initech"), &DecisionId::new("dec-06"))
            .await?
            .is_none()
    );

    let by_request = queries
        .get_by_request(&acme, &RequestId::new("req-06"))
        .await?;
    ensure!(by_request.as_ref() == Some(&record));
    ensure!(
        queries
            .get_by_request(&globex, &RequestId::new("req-06"))
            .await?
            .is_none()
    );
    ensure!(queries.lookup(&acme, "dec-06").await?.as_ref() == Some(&record));
    ensure!(queries.lookup(&acme, "req-06").await?.as_ref() == Some(&record));
    ensure!(queries.lookup(&acme, "nope").await?.is_none());

    // What the HTTP layer returns.
    let json = serde_json::to_value(&record)?;
    ensure!(json["feedback"]["by_source"]["nps"]["count"] == 1, "{json}");
    ensure!(json["response"]["latency_ms"] == 600);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_applies_every_filter_newest_first_across_pages() -> Result<()> {
    let (store, known) = fixture().await?;
    let queries = DecisionQueries::new(store);
    for (name, filter) in filters() {
        let want = expected(&known, &filter);
        for limit in [1, 4, 500] {
            let (got, pages) = list_all(&queries, &filter, limit).await?;
            ensure!(
                got == want,
                "{name}, limit {limit}: got {got:?}, want {want:?}"
            );
            // Without a scan-budget cut, every page but the last is full.
            let (last, full) = pages
                .split_last()
                .ok_or_else(|| anyhow::anyhow!("no page"))?;
            ensure!(
                full.iter().all(|(n, more)| *n == limit && *more),
                "{name}: {pages:?}"
            );
            ensure!(!last.1, "{name}: the last page has no cursor");
        }
    }
    // Another org sees only its own decisions.
    let page = queries
        .list(&OrgId::new("globex"), &DecisionFilter::default(), None, 100)
        .await?;
    let ids: Vec<&str> = page.items.iter().map(|r| r.decision_id.as_str()).collect();
    ensure!(
        ids == ["dec-04", "dec-03", "dec-02", "dec-01", "dec-00"],
        "{ids:?}"
    );
    ensure!(page.items.iter().all(|r| r.org.as_str() == "globex"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_budget_bounds_each_page_and_a_cursor_continues() -> Result<()> {
    let (store, known) = fixture().await?;
    let queries = DecisionQueries::new(store).with_scan_budget(4);
    let filter = DecisionFilter {
        quality_below: Some(0.35),
        ..Default::default()
    };
    let want = expected(&known, &filter);
    let (got, pages) = list_all(&queries, &filter, 10).await?;
    ensure!(got == want, "got {got:?}, want {want:?}");
    ensure!(
        pages.len() >= DECISIONS / 4,
        "each call reads at most 4 entries: {pages:?}"
    );
    ensure!(
        pages.iter().any(|(n, more)| *n < 10 && *more),
        "a short page with a cursor: {pages:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_or_malformed_cursors_and_bad_filters_are_client_errors() -> Result<()> {
    let (store, _) = fixture().await?;
    let queries = DecisionQueries::new(store);
    let acme = OrgId::new("acme");
    let globex = OrgId::new("globex");
    let everything = DecisionFilter::default();
    let by_route = DecisionFilter {
        route: Some(RouteName::new("support")),
        ..Default::default()
    };
    let cursor = queries
        .list(&acme, &everything, None, 2)
        .await?
        .next_cursor
        .ok_or_else(|| anyhow::anyhow!("a cursor"))?;

    let mut errors = BTreeMap::new();
    errors.insert(
        "other org",
        queries
            .list(&globex, &everything, Some(&cursor), 2)
            .await
            .err(),
    );
    errors.insert(
        "other index",
        queries.list(&acme, &by_route, Some(&cursor), 2).await.err(),
    );
    errors.insert(
        "garbage",
        queries.list(&acme, &everything, Some("!!"), 2).await.err(),
    );
    errors.insert(
        "empty",
        queries.list(&acme, &everything, Some(""), 2).await.err(),
    );
    for (case, error) in errors {
        ensure!(
            matches!(error, Some(QueryError::InvalidCursor)),
            "{case}: {error:?}"
        );
    }
    let backwards = DecisionFilter {
        from: Some(Timestamp::from_micros(T0 + 10)),
        to: Some(Timestamp::from_micros(T0)),
        ..Default::default()
    };
    let error = queries.list(&acme, &backwards, None, 2).await.err();
    ensure!(
        error.as_ref().is_some_and(QueryError::is_client_error),
        "{error:?}"
    );
    let nan = DecisionFilter {
        quality_below: Some(f64::NAN),
        ..Default::default()
    };
    ensure!(matches!(
        queries.list(&acme, &nan, None, 2).await,
        Err(QueryError::InvalidFilter(_))
    ));
    // The limit is clamped to 1..=500.
    ensure!(queries.list(&acme, &everything, None, 0).await?.items.len() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_mirror_is_shown_beside_the_response_and_never_replaces_it() -> Result<()> {
    let store = EmbeddedStore::temporary()?;
    let spec = DecisionSpec {
        org: "acme",
        decision: "dec-m",
        request: "req-m",
        session: None,
        route: "support",
        time: T0,
    };
    // The mirror completes last: the record keeps the response the client got.
    let events: Vec<Event> = vec![
        decision(&spec).into(),
        response("acme", "dec-m", "req-m", None, 700, T0 + 10).into(),
        shadow_response("acme", "dec-m", "req-m", None, "demo/small", T0 + 20).into(),
    ];
    fold(&store, &events, &[1]).await?;
    let queries = DecisionQueries::new(store);
    let record = queries
        .lookup(&OrgId::new("acme"), "req-m")
        .await?
        .ok_or_else(|| anyhow::anyhow!("req-m not found"))?;
    let json = serde_json::to_value(&record)?;
    ensure!(json["response"]["latency_ms"] == 700, "{json}");
    ensure!(json["response"]["served_model"] == "small-fast", "{json}");
    ensure!(
        json["shadow_response"]["served_model"] == "demo/small",
        "{json}"
    );
    ensure!(json["shadow_response"]["status"] == "ok", "{json}");
    ensure!(json["shadow_response"]["latency_ms"] == 50, "{json}");
    ensure!(json["shadow_response"]["cost_usd"].is_number(), "{json}");
    // The mirror's own request id leads nowhere: clients never saw it.
    ensure!(
        queries
            .lookup(&OrgId::new("acme"), "req-m#mirror")
            .await?
            .is_none()
    );
    Ok(())
}
