//! The merge step: every partition's window cells of an org, its routes' events and the
//! configuration, merged into one `RoutingTableUpdated`; and the automatic rollback, decided on
//! the merged windows.
//!
//! A snapshot is a function of the inputs folded so far, which its `source_offsets` name: the
//! window reference time is the newest event time folded (the partitions' watermarks), the
//! version is the sum of the next offsets of every input partition (so it grows with every
//! input, whatever the partition), and the cells hold integers (see [`crate::stats`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchyard_events::{
    Constraints, Envelope, FeedbackSource, ModelName, ModelStats, OrgId, PartitionKey, Phase,
    PinReason, RouteEntry, RouteMode, RouteName, RoutePinned, RoutingTableUpdated, SourceStats,
    Timestamp, Topic,
};
use switchyard_processor::{Input, Output, ProcessError, StagedState};
use switchyard_store::{StateStore, Table};

use crate::config::ProjectorConfig;
use crate::process::SCAN_PAGE;
use crate::state::{
    BaselineHint, CELLS, HINTS, ORGS, OrgState, POOL, POOL_ORG, PROGRESS, PROGRESS_KEY, PinFacts,
    PoolShare, Progress, ROLLBACK, ROUTES, RollbackState, RouteControl, org_id_key, org_key,
    parse_cell_key, take_str,
};
use switchyard_router::SourceStat;
use switchyard_router::calibration::{CalibrationSettings, JudgeOffsets};

use crate::stats::{Counts, ModelWindow, Moments, RegressionRule, WindowCell};

/// The category of a route that names none (`switchyard_config::DEFAULT_CATEGORY`).
const DEFAULT_CATEGORY: &str = "general";

/// Who an automatic rollback is pinned by.
pub const ROLLBACK_PINNED_BY: &str = "switchyard";

/// The sources the org's own windows hold, in the order snapshots list them.
const ORG_SOURCES: [FeedbackSource; 4] = [
    FeedbackSource::Nps,
    FeedbackSource::Judge,
    FeedbackSource::Admin,
    FeedbackSource::User,
];

/// Reads every entry of `table` under `prefix`, a page at a time.
pub(crate) async fn scan_all<S: StateStore>(
    state: &StagedState<'_, S>,
    table: Table,
    prefix: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<(), ProcessError>,
) -> Result<(), ProcessError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = state
            .scan_prefix(table, prefix, after.as_deref(), SCAN_PAGE)
            .await?;
        let full = page.len() == SCAN_PAGE;
        for (key, value) in &page {
            each(key, value)?;
        }
        match page.into_iter().last() {
            Some((key, _)) if full => after = Some(key),
            _ => return Ok(()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T, ProcessError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ProcessError::fatal(format!("stored {table} entry does not parse: {e}")))
}

/// Returns the inputs folded so far (the entry the fold keeps up to date with every input).
async fn progress<S: StateStore>(state: &StagedState<'_, S>) -> Result<Progress, ProcessError> {
    match state.get(PROGRESS, PROGRESS_KEY).await? {
        Some(bytes) => Progress::decode(&bytes)
            .ok_or_else(|| ProcessError::fatal(format!("stored {PROGRESS} entry does not parse"))),
        None => Ok(Progress::default()),
    }
}

/// Returns the newest event time folded on any partition (the window's "now").
async fn watermark<S: StateStore>(state: &StagedState<'_, S>) -> Result<i64, ProcessError> {
    Ok(progress(state).await?.watermark.unwrap_or(i64::MIN))
}

/// Returns the version (sum of every input partition's next offset) and the source offsets
/// (`topic/partition` → the last offset folded).
async fn offsets<S: StateStore>(
    state: &StagedState<'_, S>,
) -> Result<(i64, BTreeMap<String, i64>), ProcessError> {
    let mut version: i64 = 0;
    let mut sources = BTreeMap::new();
    for ((code, partition), next) in progress(state).await?.next {
        let Some(topic) = Topic::from_code(code) else {
            continue;
        };
        let next = i64::try_from(next).unwrap_or(i64::MAX);
        version = version.saturating_add(next);
        sources.insert(format!("{}/{partition}", topic.name()), next - 1);
    }
    Ok((version, sources))
}

/// One model's window on one route, merged over partitions: in total and per time bucket.
#[derive(Default)]
struct ModelView {
    total: ModelWindow,
    buckets: BTreeMap<i64, ModelWindow>,
}

/// What the org's state says, merged over partitions.
#[derive(Default)]
struct OrgView {
    controls: BTreeMap<String, RouteControl>,
    /// Route → model → window.
    windows: BTreeMap<String, BTreeMap<String, ModelView>>,
    hints: BTreeMap<String, BaselineHint>,
}

impl OrgView {
    async fn load<S: StateStore>(
        config: &ProjectorConfig,
        state: &StagedState<'_, S>,
        org: &OrgId,
        now: i64,
    ) -> Result<Self, ProcessError> {
        let prefix = org_key(org);
        let mut view = OrgView::default();
        scan_all(state, ROUTES, &prefix, |key, value| {
            if let Some((route, [])) = key.strip_prefix(prefix.as_slice()).and_then(take_str) {
                view.controls
                    .insert(route.to_owned(), parse(ROUTES, value)?);
            }
            Ok(())
        })
        .await?;
        let horizon = now.saturating_sub(config.window_micros());
        scan_all(state, CELLS, &prefix, |key, value| {
            let Some(cell_key) = parse_cell_key(&prefix, key) else {
                return Ok(());
            };
            if cell_key.bucket.saturating_add(config.bucket_micros()) <= horizon {
                return Ok(());
            }
            let cell: WindowCell = parse(CELLS, value)?;
            let model = view
                .windows
                .entry(cell_key.route)
                .or_default()
                .entry(cell_key.model)
                .or_default();
            model.total.merge_cell(&cell);
            model
                .buckets
                .entry(cell_key.bucket)
                .or_default()
                .merge_cell(&cell);
            Ok(())
        })
        .await?;
        scan_all(state, HINTS, &prefix, |key, value| {
            let Some((route, _partition)) = key.strip_prefix(prefix.as_slice()).and_then(take_str)
            else {
                return Ok(());
            };
            let hint: BaselineHint = parse(HINTS, value)?;
            let newer = view
                .hints
                .get(route)
                .is_none_or(|h| (h.at, &h.baseline) < (hint.at, &hint.baseline));
            if newer {
                view.hints.insert(route.to_owned(), hint);
            }
            Ok(())
        })
        .await?;
        Ok(view)
    }
}

/// A route's effective settings for one org: its events over the configuration file.
struct Resolved {
    baseline: Option<ModelName>,
    candidates: Vec<ModelName>,
    mode: RouteMode,
    canary_percent: Option<switchyard_events::Percent>,
    route_version: i64,
    constraints: Constraints,
    constraints_hash: String,
    pin: Option<PinFacts>,
    category: String,
}

fn resolve(
    config: &ProjectorConfig,
    view: &OrgView,
    route: &str,
    now: Timestamp,
) -> Option<Resolved> {
    let control = view.controls.get(route);
    let configured = control.and_then(|c| c.configured.as_ref());
    if configured.is_some_and(|c| c.deleted) {
        return None;
    }
    let defaults = config.routes.get(route);
    let head = control.and_then(|c| c.constraints.as_ref());
    Some(Resolved {
        baseline: configured
            .map(|c| c.baseline.clone())
            .or_else(|| defaults.map(|d| d.baseline.clone()))
            .or_else(|| view.hints.get(route).map(|h| h.baseline.clone())),
        candidates: configured
            .map(|c| c.candidates.clone())
            .or_else(|| defaults.map(|d| d.candidates.clone()))
            .unwrap_or_default(),
        mode: configured
            .map(|c| c.mode)
            .or_else(|| defaults.map(|d| d.mode))
            .unwrap_or(RouteMode::Live),
        canary_percent: match configured {
            Some(c) => c.canary_percent,
            None => defaults.and_then(|d| d.canary_percent),
        },
        route_version: configured.map_or(0, |c| c.sequence),
        constraints: head
            .map(|h| h.constraints)
            .or_else(|| defaults.map(|d| d.constraints))
            .unwrap_or(config.default_constraints),
        constraints_hash: head.map(|h| h.hash.clone()).unwrap_or_default(),
        pin: control
            .and_then(|c| c.pin.clone())
            .filter(|pin| pin.in_force(now)),
        category: configured
            .and_then(|c| c.category.clone())
            .or_else(|| config.route_categories.get(route).cloned())
            .unwrap_or_else(|| DEFAULT_CATEGORY.to_owned()),
    })
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Returns a model's published statistics.
fn model_stats(
    model: &ModelName,
    window: &ModelWindow,
    regressions: &BTreeMap<String, u64>,
) -> ModelStats {
    let mut quality = crate::stats::Moments::default();
    let mut sources = Vec::new();
    let mut signals = BTreeMap::new();
    for source in ORG_SOURCES {
        let moments = window.source_moments(source);
        if moments.count == 0 {
            continue;
        }
        quality.merge(&moments);
        signals.insert(source.as_str().to_owned(), moments.mean);
        sources.push(SourceStats {
            source,
            samples: count(moments.count),
            mean: moments.mean,
            variance: moments.variance(),
        });
    }
    let rate = |n: u64| {
        if window.requests == 0 {
            0.0
        } else {
            n as f64 / window.requests as f64
        }
    };
    ModelStats {
        model: model.clone(),
        samples: count(window.requests),
        success_rate: rate(window.successes),
        quality_mean: quality.mean,
        quality_variance: quality.variance(),
        // No price known for any request: not a made-up $0 (readers treat NaN as unknown).
        cost_mean_usd: match window.cost_mean_usd() {
            Some(mean) => mean,
            None if window.requests > 0 => f64::NAN,
            None => 0.0,
        },
        p95_latency_ms: window.latency.p95().map_or(0, count),
        error_rate: rate(window.errors),
        signals,
        sources,
        successes: count(window.successes),
        errors: count(window.errors),
        regressions: regressions
            .iter()
            .map(|(label, n)| (label.clone(), count(*n)))
            .collect(),
        latency_samples: count(window.latency.total()),
    }
}

/// Returns the route's learning phase from its org samples (the router's rule).
fn phase_of(config: &ProjectorConfig, models: &BTreeMap<String, ModelView>) -> Phase {
    let (judge_admin, nps) = models
        .values()
        .map(|m| &m.total)
        .fold((0, 0), |(ja, nps), m| {
            (
                ja + m.source_moments(FeedbackSource::Judge).count
                    + m.source_moments(FeedbackSource::Admin).count,
                nps + m.source_moments(FeedbackSource::Nps).count,
            )
        });
    let phase = if judge_admin >= config.phase1_min_samples && nps >= config.phase2_min_samples {
        2
    } else if judge_admin >= config.phase1_min_samples {
        1
    } else {
        0
    };
    Phase::new(phase).unwrap_or(Phase::ZERO)
}

/// Formats a duration for a rollback note: `24h`, `90m`, `45s`, else milliseconds.
fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() != 0 {
        format!("{}ms", duration.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// A rollback decided by [`evaluate_rollback`].
struct Rollback {
    model: ModelName,
    regressions: u64,
    threshold: u64,
    margin: f64,
}

/// Decides a route's automatic rollback on the merged window, and keeps its state.
///
/// A non-baseline model whose regressions in the window, beyond those already accounted for,
/// reach `rollback_threshold` pins the route to its baseline: once (not again until an unpin),
/// never while any pin holds, and only in `canary` and `live` modes (elsewhere the baseline
/// serves every user already).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the parts of a route's view"
)]
async fn evaluate_rollback<S: StateStore>(
    config: &ProjectorConfig,
    state: &mut StagedState<'_, S>,
    org: &OrgId,
    route: &str,
    resolved: &Resolved,
    models: &[ModelName],
    regressions: &BTreeMap<ModelName, BTreeMap<String, u64>>,
    emitted_before: &mut Option<ModelName>,
) -> Result<Option<Rollback>, ProcessError> {
    let key = org_id_key(org, route);
    let stored = state.get_json::<RollbackState>(ROLLBACK, &key).await?;
    let mut rollback = stored.clone().unwrap_or_default();
    // A rollback pin that lapsed (it was read back, and is no longer in force) re-arms the
    // rollback like an unpin: the regressions already counted do not fire it again.
    if rollback.fired && rollback.emitted.is_none() && resolved.pin.is_none() {
        rollback.fired = false;
        rollback.rearm_pending = true;
    }
    let totals: Vec<(&ModelName, u64)> = models
        .iter()
        .filter(|m| Some(*m) != resolved.baseline.as_ref())
        .map(|m| (m, regressions.get(m).map_or(0, |r| r.values().sum())))
        .collect();
    for (model, total) in &totals {
        let offset = rollback.offsets.get(model.as_str()).copied().unwrap_or(0);
        let offset = if rollback.rearm_pending {
            *total
        } else {
            offset.min(*total)
        };
        if offset == 0 {
            rollback.offsets.remove(model.as_str());
        } else {
            rollback.offsets.insert(model.as_str().to_owned(), offset);
        }
    }
    rollback.rearm_pending = false;

    let threshold = resolved
        .constraints
        .rollback_threshold
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t >= 1);
    let mut fired = None;
    if let (Some(threshold), Some(baseline)) = (threshold, resolved.baseline.as_ref())
        && matches!(resolved.mode, RouteMode::Canary | RouteMode::Live)
        && !rollback.fired
        && resolved.pin.is_none()
        && rollback.emitted.is_none()
    {
        for (model, total) in &totals {
            let offset = rollback.offsets.get(model.as_str()).copied().unwrap_or(0);
            if total.saturating_sub(offset) >= threshold {
                rollback.fired = true;
                rollback.emitted = Some(baseline.clone());
                fired = Some(Rollback {
                    model: (*model).clone(),
                    regressions: *total,
                    threshold,
                    margin: resolved
                        .constraints
                        .max_regression
                        .unwrap_or(config.default_max_regression),
                });
                break;
            }
        }
    }
    emitted_before.clone_from(&rollback.emitted);
    let unchanged = match &stored {
        Some(stored) => *stored == rollback,
        None => rollback == RollbackState::default(),
    };
    if !unchanged {
        state.put_json(ROLLBACK, key, &rollback)?;
    }
    Ok(fired)
}

/// Publishes the org's snapshot when due (or `force`d): every route with its models, the
/// automatic rollbacks it decides first.
pub(crate) async fn publish<S: StateStore>(
    config: &ProjectorConfig,
    state: &mut StagedState<'_, S>,
    out: &mut Output,
    input: &Input,
    org: &OrgId,
    force: bool,
) -> Result<(), ProcessError> {
    let org_state = state
        .get_json::<OrgState>(ORGS, &org_key(org))
        .await?
        .unwrap_or_default();
    let now = watermark(state).await?;
    let due = force
        || org_state
            .published_at
            .is_none_or(|at| now >= at.saturating_add(config.publish_micros()));
    if !due {
        return Ok(());
    }
    let now_ts = Timestamp::from_micros(now);
    let view = OrgView::load(config, state, org, now).await?;

    let names: BTreeSet<&str> = config
        .routes
        .keys()
        .map(String::as_str)
        .chain(view.controls.keys().map(String::as_str))
        .chain(view.windows.keys().map(String::as_str))
        .chain(view.hints.keys().map(String::as_str))
        .collect();
    let empty = BTreeMap::new();
    // The judge's offset per provider of the judged model, over every route of the org (the
    // same estimate the router makes from the snapshot).
    let judge_offsets = if config.calibrate_judge {
        let stat = |m: Moments| SourceStat {
            samples: m.count,
            mean: m.mean,
            variance: m.variance(),
        };
        JudgeOffsets::estimate(
            view.windows.iter().flat_map(|(route, models)| {
                models.iter().map(move |(model, w)| {
                    (
                        route.as_str(),
                        model.as_str(),
                        stat(w.total.source_moments(FeedbackSource::Judge)),
                        stat(w.total.source_moments(FeedbackSource::Nps)),
                    )
                })
            }),
            &CalibrationSettings::default(),
        )
    } else {
        JudgeOffsets::default()
    };
    let mut routes = Vec::new();
    let mut rollbacks = Vec::new();
    let mut share = PoolShare::default();
    for route in names {
        let Some(resolved) = resolve(config, &view, route, now_ts) else {
            continue;
        };
        let windows = view.windows.get(route).unwrap_or(&empty);
        for (model, window) in windows {
            let mut merged = Counts::<u16>::default();
            for source in ORG_SOURCES {
                if let Some(counts) = window.total.quality.get(&source) {
                    merged.merge(counts);
                }
            }
            if !merged.is_empty() {
                share
                    .observations
                    .entry(resolved.category.clone())
                    .or_default()
                    .entry(model.clone())
                    .or_default()
                    .merge(&merged);
            }
        }
        // The baseline, the candidates, then any other model the window saw.
        let mut models: Vec<ModelName> = Vec::new();
        for model in resolved
            .baseline
            .iter()
            .chain(&resolved.candidates)
            .cloned()
            .chain(windows.keys().map(|m| ModelName::new(m.clone())))
        {
            if !models.contains(&model) {
                models.push(model);
            }
        }
        let mut rule = RegressionRule {
            judge_shift: 0.0,
            margin: resolved
                .constraints
                .max_regression
                .unwrap_or(config.default_max_regression),
            min_baseline_samples: config.min_baseline_samples,
            min_bucket_samples: config.min_bucket_samples,
            z: config.regression_z,
        };
        let baseline_window = resolved
            .baseline
            .as_ref()
            .and_then(|b| windows.get(b.as_str()));
        let mut regressions: BTreeMap<ModelName, BTreeMap<String, u64>> = BTreeMap::new();
        for model in &models {
            if Some(model) == resolved.baseline.as_ref() {
                continue;
            }
            let (Some(window), Some(baseline)) = (windows.get(model.as_str()), baseline_window)
            else {
                continue;
            };
            if let Some(b) = resolved.baseline.as_ref() {
                rule.judge_shift = judge_offsets.of(model.as_str()) - judge_offsets.of(b.as_str());
            }
            let found = rule.regressions(window.buckets.values(), &baseline.total);
            if !found.is_empty() {
                regressions.insert(model.clone(), found);
            }
        }
        let mut emitted = None;
        if let Some(rollback) = evaluate_rollback(
            config,
            state,
            org,
            route,
            &resolved,
            &models,
            &regressions,
            &mut emitted,
        )
        .await?
        {
            rollbacks.push((RouteName::new(route), resolved.baseline.clone(), rollback));
        }
        let none = BTreeMap::new();
        let no_window = ModelWindow::default();
        let entry = RouteEntry {
            route: RouteName::new(route),
            baseline_model: resolved
                .baseline
                .clone()
                .unwrap_or_else(|| ModelName::new("")),
            mode: resolved.mode,
            canary_percent: resolved.canary_percent,
            pinned_model: resolved.pin.as_ref().map(|p| p.model.clone()).or(emitted),
            phase: phase_of(config, windows),
            models: models
                .iter()
                .map(|model| {
                    model_stats(
                        model,
                        windows.get(model.as_str()).map_or(&no_window, |w| &w.total),
                        regressions.get(model).unwrap_or(&none),
                    )
                })
                .collect(),
            constraints_hash: resolved.constraints_hash.clone(),
            route_version: resolved.route_version,
        };
        routes.push(entry);
    }

    let envelope = |key: PartitionKey| Envelope {
        // Replaced by `Output::emit` with an id derived from the input's.
        event_id: input.event_id(),
        org: org.clone(),
        event_time: now_ts,
        trace_id: input.event.envelope().trace_id.clone(),
        partition_key: key,
    };
    for (route, baseline, rollback) in rollbacks {
        let Some(baseline) = baseline else { continue };
        let note = format!(
            "auto-rollback: {} regressions of {} in the last {} (threshold {}, max_regression {}); \
             pinned to the baseline {}. Override: DELETE /v1/routes/{}/pin",
            rollback.regressions,
            rollback.model,
            human(config.window),
            rollback.threshold,
            rollback.margin,
            baseline,
            route,
        );
        tracing::info!(org = %org, route = %route, model = %rollback.model, regressions = rollback.regressions, "automatic rollback to the baseline");
        out.emit(
            "auto-rollback",
            RoutePinned {
                envelope: envelope(PartitionKey::route(org, &route)),
                route,
                model: baseline,
                reason: PinReason::AutoRollback,
                pinned_by: ROLLBACK_PINNED_BY.to_owned(),
                expires_at: config.rollback_pin.map(|d| {
                    Timestamp::from_micros(
                        now_ts
                            .as_micros()
                            .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
                    )
                }),
                note: Some(note),
            },
        );
    }

    let (version, source_offsets) = offsets(state).await?;
    // The id names the input *and* the version: after a crash the same input may be processed
    // again after other inputs than the first time (another batch), and must not reuse the
    // first snapshot's id for a different table.
    out.emit(
        &format!("routing-table/v{version}"),
        RoutingTableUpdated {
            envelope: envelope(PartitionKey::org(org)),
            version,
            generated_at: now_ts,
            routes,
            source_offsets: source_offsets.clone(),
        },
    );
    let published = OrgState {
        published_at: Some(now),
        version,
        dirty: false,
    };
    state.put_json(ORGS, org_key(org), &published)?;
    if config.pool.members.contains(org.as_str()) {
        publish_pool(
            config,
            state,
            out,
            input,
            org,
            share,
            now,
            (version, &source_offsets),
        )
        .await?;
    }
    Ok(())
}

/// Records a sharing org's share of the learning pool and publishes the pool when it changed
/// (at most once per `publish_interval` of event time; a change held back waits for the next
/// sharing org's snapshot).
///
/// The pool is, per (route category, model), the merged quality observations of every sharing
/// org's window — only orgs in `config.pool.members` now, so an org that stopped sharing is
/// left out of the next pool — kept when at least `min_orgs` orgs observed it. It is published
/// as the snapshot of the pseudo-org [`POOL_ORG`]: one route entry per category, one model entry
/// per model, the pool's observations as its `benchmark` source (`signals.orgs`: how many orgs
/// contributed).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the parts of the org's snapshot"
)]
async fn publish_pool<S: StateStore>(
    config: &ProjectorConfig,
    state: &mut StagedState<'_, S>,
    out: &mut Output,
    input: &Input,
    org: &OrgId,
    share: PoolShare,
    now: i64,
    (version, source_offsets): (i64, &BTreeMap<String, i64>),
) -> Result<(), ProcessError> {
    let stored = state
        .get_json::<PoolShare>(POOL, &org_key(org))
        .await?
        .unwrap_or_default();
    let changed = stored != share;
    if changed {
        state.put_json(POOL, org_key(org), &share)?;
    }
    let pool_key = org_key(&OrgId::new(POOL_ORG));
    let mut pool_state = state
        .get_json::<OrgState>(ORGS, &pool_key)
        .await?
        .unwrap_or_default();
    if !changed && !pool_state.dirty {
        return Ok(());
    }
    let due = pool_state
        .published_at
        .is_none_or(|at| now >= at.saturating_add(config.publish_micros()));
    if !due {
        if !pool_state.dirty {
            pool_state.dirty = true;
            state.put_json(ORGS, pool_key, &pool_state)?;
        }
        return Ok(());
    }

    // category → model → (observations, contributing orgs)
    let mut pool: BTreeMap<String, BTreeMap<String, (Counts<u16>, u64)>> = BTreeMap::new();
    scan_all(state, POOL, b"", |key, value| {
        let Some((member, [])) = take_str(key) else {
            return Ok(());
        };
        if !config.pool.members.contains(member) {
            return Ok(());
        }
        let share: PoolShare = parse(POOL, value)?;
        for (category, models) in share.observations {
            for (model, counts) in models {
                let slot = pool
                    .entry(category.clone())
                    .or_default()
                    .entry(model)
                    .or_default();
                slot.0.merge(&counts);
                slot.1 += 1;
            }
        }
        Ok(())
    })
    .await?;
    let now_ts = Timestamp::from_micros(now);
    let routes = pool
        .into_iter()
        .filter_map(|(category, models)| {
            let models: Vec<ModelStats> = models
                .into_iter()
                .filter(|(_, (_, orgs))| *orgs >= config.pool.min_orgs)
                .map(|(model, (counts, orgs))| {
                    let moments = counts.moments();
                    ModelStats {
                        model: ModelName::new(model),
                        samples: count(moments.count),
                        success_rate: 0.0,
                        quality_mean: moments.mean,
                        quality_variance: moments.variance(),
                        cost_mean_usd: 0.0,
                        p95_latency_ms: 0,
                        error_rate: 0.0,
                        signals: BTreeMap::from([("orgs".to_owned(), orgs as f64)]),
                        sources: vec![SourceStats {
                            source: FeedbackSource::Benchmark,
                            samples: count(moments.count),
                            mean: moments.mean,
                            variance: moments.variance(),
                        }],
                        successes: 0,
                        errors: 0,
                        regressions: BTreeMap::new(),
                        latency_samples: 0,
                    }
                })
                .collect();
            (!models.is_empty()).then(|| RouteEntry {
                route: RouteName::new(category),
                baseline_model: ModelName::new(""),
                mode: RouteMode::Off,
                canary_percent: None,
                pinned_model: None,
                phase: Phase::ZERO,
                models,
                constraints_hash: String::new(),
                route_version: 0,
            })
        })
        .collect();
    let pool_org = OrgId::new(POOL_ORG);
    out.emit(
        &format!("learning-pool/v{version}"),
        RoutingTableUpdated {
            envelope: Envelope {
                event_id: input.event_id(),
                org: pool_org.clone(),
                event_time: now_ts,
                trace_id: input.event.envelope().trace_id.clone(),
                partition_key: PartitionKey::org(&pool_org),
            },
            version,
            generated_at: now_ts,
            routes,
            source_offsets: source_offsets.clone(),
        },
    );
    state.put_json(
        ORGS,
        pool_key,
        &OrgState {
            published_at: Some(now),
            version,
            dirty: false,
        },
    )?;
    Ok(())
}

/// Returns how old a snapshot's newest input is at `now` (clock time of whoever applies it):
/// the feedback-in → table-out staleness. `generated_at` is the newest event time the snapshot
/// folded, so this is what an ingress node records when it swaps a snapshot in.
pub fn staleness(snapshot: &RoutingTableUpdated, now: Timestamp) -> Duration {
    let micros = now
        .as_micros()
        .saturating_sub(snapshot.generated_at.as_micros());
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally_in_notes() {
        assert_eq!(human(Duration::from_secs(24 * 3600)), "24h");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }
}
