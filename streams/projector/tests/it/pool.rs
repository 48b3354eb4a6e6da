//! The shared learning pool: the sharing orgs' observations per (category, model) become pool
//! priors that move the benchmark contribution of a sharing org with no signal of its own; a
//! private org neither feeds the pool nor reads it; a (category, model) needs `min_orgs` orgs.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, ensure};
use switchyard_events::{
    Constraints, Event, FeedbackSource, ResponseStatus, RouteEntry, RoutingTableUpdated,
};
use switchyard_projector::{POOL_ORG, PoolSettings, ProjectorConfig};
use switchyard_providers::{ModelInfo, Needs};
use switchyard_router::{Context, Outcome, Prior, Priors, Request, RoutePolicy, decide};

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

/// The shipped priors of the test: the cheap model's benchmark a little below the baseline's.
fn shipped() -> Priors {
    let mut priors = Priors::default();
    priors.extend([(BASE, 0.85), (CHEAP, 0.83)].map(|(m, s)| Prior {
        model: m.into(),
        category: "general".into(),
        score: s,
        source: "test".into(),
        as_of: "2026-11-24".into(),
    }));
    priors
}

/// A decision on `org`'s route `r1` with no statistics of its own, on `priors`.
fn decide_on(org: &str, priors: &Priors) -> Result<Outcome> {
    let policy = RoutePolicy::new("r1", BASE, vec![CHEAP.into()]);
    let models = vec![model_info(BASE, 10.0, 30.0), model_info(CHEAP, 0.5, 1.5)];
    let ctx = Context {
        policy: &policy,
        stats: None,
        table_version: 0,
        priors,
        models: &models,
        pin: None,
        mirror_budget_left: true,
    };
    let request = Request {
        org,
        needs: Needs {
            input_tokens: 1000,
            max_output_tokens: 500,
            ..Needs::default()
        },
        seed: Request::seed_of("req-x"),
        canary_bucket: Request::bucket_of(org, "r1", "req-x"),
    };
    Ok(decide(&ctx, &request)?)
}

/// The benchmark contribution's value for `model` in a decision's candidate table.
fn benchmark_value(outcome: &Outcome, model: &str) -> Result<f64> {
    outcome
        .candidate(model)
        .and_then(|c| c.score.as_ref())
        .and_then(|s| {
            s.signals
                .iter()
                .find(|s| s.source == FeedbackSource::Benchmark)
        })
        .and_then(|s| s.value)
        .with_context(|| format!("a benchmark value for {model}"))
}

/// `n` requests of `org` on r1 served by `model`, each judged `score`.
fn judged(org: &str, model: &str, n: i64, score: f64, offset: i64) -> Vec<Event> {
    (0..n)
        .flat_map(|i| {
            let req = Req::new(org, "r1", &format!("{org}-{model}-{i}"));
            let at = T0 + HOUR + (offset + i) * 10 * SECOND;
            [
                req.decision(model, BASE, at),
                req.response(model, ResponseStatus::Ok, Some(0.001), 300, at + SECOND),
                req.judged(
                    &format!("j-{org}-{model}-{i}"),
                    model,
                    Some(score),
                    at + 2 * SECOND,
                ),
            ]
        })
        .collect()
}

fn config(members: &[&str]) -> ProjectorConfig {
    ProjectorConfig {
        pool: PoolSettings {
            members: members
                .iter()
                .map(|m| (*m).to_owned())
                .collect::<BTreeSet<_>>(),
            min_orgs: 2,
        },
        ..test_config(Constraints::default())
    }
}

/// Folds `events` with `members` sharing; returns the newest pool snapshot.
async fn pool_after(members: &[&str], events: &[Event]) -> Result<Option<RoutingTableUpdated>> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), config(members), 4)?;
    harness.fold(events, &[7]).await?;
    Ok(harness.last_snapshot(POOL_ORG).cloned())
}

fn entry<'a>(pool: &'a RoutingTableUpdated, category: &str) -> Option<&'a RouteEntry> {
    pool.routes.iter().find(|r| r.route.as_str() == category)
}

#[tokio::test]
async fn sharing_orgs_move_the_priors_of_a_sharing_org_and_private_orgs_stay_out() -> Result<()> {
    // Orgs a and b share and find the cheap model excellent; d is private and finds it awful.
    let mut shared = judged("a", CHEAP, 10, 0.95, 0);
    shared.extend(judged("b", CHEAP, 10, 0.95, 20));
    shared.extend(judged("a", BASE, 5, 0.85, 40));
    let mut with_d = shared.clone();
    with_d.extend(judged("d", CHEAP, 30, 0.1, 60));
    // c shares and has no traffic; d and e are private.
    let members = ["a", "b", "c"];
    let pool = pool_after(&members, &with_d)
        .await?
        .context("a pool snapshot")?;
    let general = entry(&pool, "general").context("the general category")?;
    let cheap = general
        .models
        .iter()
        .find(|m| m.model.as_str() == CHEAP)
        .context("the cheap model in the pool")?;
    // Exactly a's and b's 20 observations: d's 30 low scores are not in it.
    ensure!(
        cheap.samples == 20 && (cheap.quality_mean - 0.95).abs() < 1e-9,
        "{cheap:?}"
    );
    ensure!(cheap.signals.get("orgs") == Some(&2.0), "{cheap:?}");
    // Only one org observed the baseline: below min_orgs, not in the pool.
    ensure!(
        general.models.iter().all(|m| m.model.as_str() != BASE),
        "{general:?}"
    );
    // d's feedback, however strong, changes nothing in the pool.
    let without_d = pool_after(&members, &shared)
        .await?
        .context("a pool snapshot")?;
    ensure!(pool.routes == without_d.routes, "{pool:?} vs {without_d:?}");
    // Had d shared, it would have moved it: the test can tell.
    let d_sharing = pool_after(&["a", "b", "c", "d"], &with_d)
        .await?
        .context("a pool snapshot")?;
    ensure!(d_sharing.routes != pool.routes);

    // c, sharing with no signal of its own, routes on the pool prior: (20·0.83 + 20·0.95)/40.
    let shipped = shipped();
    let pooled = shipped.with_pool(&pool, 20.0);
    let c = decide_on("c", &pooled)?;
    let value = benchmark_value(&c, CHEAP)?;
    ensure!((value - 0.89).abs() < 1e-9, "pool prior {value}");
    ensure!(
        pooled.get(CHEAP, "general").is_some_and(|p| p
            .source
            .starts_with("learning pool: 20 observations from 2 orgs")),
        "{:?}",
        pooled.get(CHEAP, "general")
    );
    // The baseline, not in the pool, keeps its shipped prior.
    ensure!((benchmark_value(&c, BASE)? - 0.85).abs() < 1e-9);
    // e, private, routes on the shipped priors.
    let e = decide_on("e", &shipped)?;
    ensure!((benchmark_value(&e, CHEAP)? - 0.83).abs() < 1e-9);
    Ok(())
}

#[tokio::test]
async fn one_sharing_org_alone_is_no_pool() -> Result<()> {
    let mut events = judged("a", CHEAP, 10, 0.95, 0);
    events.extend(judged("b", CHEAP, 10, 0.95, 20));
    // b is private: a alone is below min_orgs.
    let pool = pool_after(&["a", "c"], &events).await?;
    ensure!(
        pool.as_ref().is_none_or(|p| p.routes.is_empty()),
        "{pool:?}"
    );
    // No sharing org at all: no pool snapshot.
    ensure!(pool_after(&[], &events).await?.is_none());
    // Ingress recognises the pool's snapshots by the same pseudo-org.
    ensure!(POOL_ORG == switchyard_router::POOL_ORG);
    Ok(())
}
