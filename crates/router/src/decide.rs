//! One decision: capability filter, scores, constraints, choice, then the route's rollout.
//!
//! 1. **Pin.** A pinned route serves its pin when the pinned model can serve the request.
//! 2. **Capability filter** before anything else: a model that cannot meet the request's
//!    [`Needs`] (tools, json_schema, vision, context length, output length) is never chosen.
//! 3. **Scores** for every capable model, the baseline included (see [`crate::score`]).
//! 4. **Constraints**: each capable candidate is checked against the route's nine constraints;
//!    one failure excludes it. When the baseline itself cannot serve the request, the
//!    constraints relative to it (max_regression, max_cost_increase, min_confidence,
//!    min_samples) are moot and only the absolute ones apply.
//! 5. **Choice**: the highest score among the baseline and the qualifying candidates; ties go
//!    to the cheaper model, then to the lower id. No randomness: the seed only places the
//!    request in the canary split and the shadow-mirror sample.
//! 6. **Rollout**: `off` serves the baseline; `shadow` serves the baseline and records the
//!    choice (and mirrors a sampled share to it); `canary` serves the choice to the sessions
//!    whose sticky bucket falls under the percentage; `live` serves the choice.

use std::borrow::Cow;

use switchyard_events::{PinReason, RouteMode};
use switchyard_providers::{ModelInfo, Needs};

use crate::constraints::{CONSTRAINT_NAMES, Check, Subject, check_all};
use crate::math::{hash_parts, unit_draw};
use crate::policy::RoutePolicy;
use crate::priors::{Prior, Priors};
use crate::score::{
    ModelScore, ScoreInputs, Signal, anchor, estimate_cost, phase, relative, relative_confidence,
    score_model,
};
use crate::stats::{ModelStats, RouteStats};

/// The pin in force on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The pinned model.
    pub model: String,
    /// Why.
    pub reason: PinReason,
    /// Who pinned (`switchyard` for automatic rollbacks).
    pub pinned_by: String,
}

/// The request as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request<'a> {
    /// The caller's organisation.
    pub org: &'a str,
    /// What the request needs from a model.
    pub needs: Needs,
    /// The request's seed (see [`Request::seed_of`]).
    pub seed: u64,
    /// The request's sticky canary bucket, 0..10000 (see [`Request::bucket_of`]).
    pub canary_bucket: u32,
}

/// Stream label of the shadow-mirror draw.
const MIRROR_STREAM: u64 = 1;
/// Stream label of the exploration draw.
const EXPLORE_STREAM: u64 = 2;

/// Samples every cheaper candidate gets explored up to, whatever its prior says.
const EXPLORE_FIRST_LOOK: u64 = 10;

/// Constraints that more evidence can turn from failed to passed.
const EVIDENCE: [&str; 4] = [
    "min_confidence",
    "min_samples",
    "max_regression",
    "min_quality",
];

impl Request<'_> {
    /// Returns the seed of a request: a hash of its id, so a replay of the same request gets
    /// the same draws.
    pub fn seed_of(request_id: &str) -> u64 {
        hash_parts(&[request_id.as_bytes()])
    }

    /// Returns the sticky canary bucket (0..10000) of a session (or, without one, a request)
    /// on a route: every request of a session lands on the same side of a canary split.
    pub fn bucket_of(org: &str, route: &str, session_or_request: &str) -> u32 {
        (hash_parts(&[
            org.as_bytes(),
            route.as_bytes(),
            session_or_request.as_bytes(),
        ]) % 10_000) as u32
    }
}

/// The models the router may use: `None` for a model that is not in the catalog or whose
/// provider is not configured.
pub trait Models {
    /// Looks a model up.
    fn model(&self, id: &str) -> Option<&ModelInfo>;
}

impl Models for switchyard_providers::Catalog {
    fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.get(id)
    }
}

impl Models for Vec<ModelInfo> {
    fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.iter().find(|m| m.id == id)
    }
}

/// Everything a decision reads besides the request.
pub struct Context<'a> {
    /// The route.
    pub policy: &'a RoutePolicy,
    /// The route's statistics from the routing table, when it has any.
    pub stats: Option<&'a RouteStats>,
    /// The routing table's version.
    pub table_version: i64,
    /// Benchmark priors.
    pub priors: &'a Priors,
    /// Looks a model up: `None` when it is not in the catalog or its provider is not
    /// configured.
    pub models: &'a dyn Models,
    /// The pin in force.
    pub pin: Option<&'a Pin>,
    /// Whether the route's shadow-mirror spend cap still has room.
    pub mirror_budget_left: bool,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("route", &self.policy.name)
            .field("table_version", &self.table_version)
            .finish_non_exhaustive()
    }
}

/// Why the router chose what it chose (machine-readable codes in traces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// A candidate qualified and outscored the baseline.
    Routed,
    /// The baseline scored highest.
    BaselineBest,
    /// No candidate can serve this request; the baseline serves.
    NoAlternative,
    /// A better-scoring candidate was not confident enough; the baseline serves.
    LowConfidence,
    /// A better-scoring candidate failed a constraint; the baseline serves.
    ConstraintFailed,
    /// The baseline cannot serve this request; the best qualifying candidate serves.
    BaselineIncapable,
    /// The route is pinned.
    Pinned,
    /// The route is pinned to a model that cannot serve this request; the baseline serves.
    PinUnservable,
    /// The route is off: the baseline serves.
    RouteOff,
    /// Shadow mode: the baseline serves, the choice is recorded.
    Shadow,
    /// Canary mode, and the session is inside the canary share.
    CanaryIn,
    /// Canary mode, and the session is outside the canary share.
    CanaryOut,
}

impl ReasonCode {
    /// Returns the code as it appears in traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Routed => "routed",
            ReasonCode::BaselineBest => "baseline_best",
            ReasonCode::NoAlternative => "no_alternative",
            ReasonCode::LowConfidence => "low_confidence",
            ReasonCode::ConstraintFailed => "constraint_failed",
            ReasonCode::BaselineIncapable => "baseline_incapable",
            ReasonCode::Pinned => "pinned",
            ReasonCode::PinUnservable => "pin_unservable",
            ReasonCode::RouteOff => "route_off",
            ReasonCode::Shadow => "shadow",
            ReasonCode::CanaryIn => "canary_in",
            ReasonCode::CanaryOut => "canary_out",
        }
    }
}

/// One model as the router saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateEval {
    /// `provider/model`.
    pub model: String,
    /// Whether this is the baseline.
    pub baseline: bool,
    /// Its score, unless it was filtered before scoring.
    pub score: Option<ModelScore>,
    /// Its confidence against the baseline (candidates only).
    pub confidence: Option<f64>,
    /// Constraints that failed (candidates only), in check order.
    pub failed: Vec<&'static str>,
    /// Why it was excluded: capability, catalog or a failed constraint (a fixed text for all
    /// but the capability reasons that name numbers).
    pub filtered: Option<Cow<'static, str>>,
    /// Whether its price is unknown.
    pub unpriced: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The router's choice.
    pub chosen: String,
    /// The model that serves.
    pub served: String,
    /// The route's baseline.
    pub baseline: String,
    /// Why the router chose `chosen` (the rollout can still serve something else).
    pub choice: ReasonCode,
    /// Why `served` serves: the choice, or the rollout that overrode it.
    pub reason: ReasonCode,
    /// The route's mode.
    pub mode: RouteMode,
    /// Learning phase 0..=2.
    pub phase: u8,
    /// Confidence of the decisive comparison: the chosen candidate's, or when the baseline
    /// holds, that of the best-scoring candidate it held against (1 when there was none).
    pub confidence: f64,
    /// Every model considered, the baseline first.
    pub candidates: Vec<CandidateEval>,
    /// The model whose constraint checks are reported (the chosen candidate, or the rival the
    /// baseline held against).
    pub checked_model: Option<String>,
    /// Its constraint checks.
    pub checks: Vec<Check>,
    /// Signal contributions to the chosen model's score.
    pub signals: Vec<Signal>,
    /// Score gap between the chosen model and the best other model.
    pub score_gap: Option<f64>,
    /// The pin in force.
    pub pin: Option<Pin>,
    /// The model recorded in shadow mode.
    pub shadow: Option<String>,
    /// Whether this request is also sent to the shadow model.
    pub mirror: bool,
    /// The canary bucket, in canary mode.
    pub canary_bucket: Option<u32>,
    /// The canary share, in canary mode.
    pub canary_percent: Option<f64>,
    /// Models without a known price.
    pub unpriced: Vec<String>,
    /// The routing-table version used.
    pub table_version: i64,
    /// The version of the learning pool's snapshot blended into the priors used
    /// ([`Priors::pool_version`]), `None` for priors without the pool.
    pub pool_version: Option<i64>,
    /// The request's seed.
    pub seed: u64,
}

impl Outcome {
    /// Returns the evaluation of a model.
    pub fn candidate(&self, model: &str) -> Option<&CandidateEval> {
        self.candidates.iter().find(|c| c.model == model)
    }

    /// Returns the org samples behind the reported comparison.
    pub fn evidence_samples(&self) -> u64 {
        self.checked_model
            .as_deref()
            .or(Some(self.chosen.as_str()))
            .and_then(|m| self.candidate(m))
            .and_then(|c| c.score.as_ref())
            .map_or(0, |s| s.org_samples)
    }
}

/// The error when no model of the route can serve the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("no model of route `{route}` can serve this request: {}", .reasons.join("; "))]
pub struct NoCapableModel {
    /// The route.
    pub route: String,
    /// `model: why`, per model.
    pub reasons: Vec<String>,
}

/// Returns why a candidate whose first failed constraint is `name` was excluded.
fn failed_reason(name: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(match name {
        "max_regression" => "constraint max_regression failed",
        "min_quality" => "constraint min_quality failed",
        "max_error_rate" => "constraint max_error_rate failed",
        "max_cost_increase" => "constraint max_cost_increase failed",
        "max_cost_per_request" => "constraint max_cost_per_request failed",
        "max_p95_latency_ms" => "constraint max_p95_latency_ms failed",
        "min_confidence" => "constraint min_confidence failed",
        "min_samples" => "constraint min_samples failed",
        "rollback_threshold" => "constraint rollback_threshold failed",
        other => return Cow::Owned(format!("constraint {other} failed")),
    })
}

/// Constraints that compare a candidate with the baseline.
const RELATIVE: [&str; 4] = [
    "max_regression",
    "max_cost_increase",
    "min_confidence",
    "min_samples",
];

/// Decides one request. Pure: the same inputs give the same outcome.
pub fn decide(ctx: &Context<'_>, req: &Request<'_>) -> Result<Outcome, NoCapableModel> {
    let policy = ctx.policy;
    let learning = &policy.learning;
    let phase = phase(ctx.stats, learning);
    let out_tokens = learning.output_tokens(&req.needs);
    let lookup = |id: &str| ctx.models.model(id);
    // A model's statistics and prior, looked up once per decision.
    let evidence_of = |id: &str| {
        (
            ctx.stats.and_then(|s| s.model(id)),
            ctx.priors.get(id, &policy.category),
        )
    };
    let score_of = |evidence: (Option<&ModelStats>, Option<&Prior>),
                    info: Option<&ModelInfo>,
                    base_cost: Option<f64>| {
        let est = estimate_cost(info, req.needs.input_tokens, out_tokens);
        score_model(&ScoreInputs {
            stats: evidence.0,
            prior: evidence.1,
            phase,
            learning,
            weights: policy.weights,
            estimated_cost_usd: est,
            baseline_cost_usd: base_cost.or(est),
        })
    };
    let filter_of = |info: Option<&ModelInfo>| match info {
        None => Some(Cow::Borrowed(
            "not in the model catalog, or its provider is not configured",
        )),
        Some(m) => m.cannot_meet(&req.needs),
    };

    // The baseline: scored even when it cannot serve, because relative constraints and the
    // cost component are measured against it.
    let base_info = lookup(&policy.baseline);
    let base_evidence = evidence_of(&policy.baseline);
    let base_cost = estimate_cost(base_info, req.needs.input_tokens, out_tokens);
    let base_score = score_of(base_evidence, base_info, base_cost);
    let base_filtered = filter_of(base_info);
    let base_capable = base_filtered.is_none();
    let max_regression = policy.constraints.max_regression.unwrap_or(0.0);

    let mut candidates = Vec::with_capacity(1 + policy.candidates.len());
    candidates.push(CandidateEval {
        model: policy.baseline.clone(),
        baseline: true,
        score: base_capable.then(|| base_score.clone()),
        confidence: None,
        failed: Vec::new(),
        filtered: base_filtered,
        unpriced: base_info.is_some_and(|m| !m.price_known()),
    });
    // Every candidate's constraint checks in one buffer (one allocation per decision, not
    // one per candidate); `checks_at[i]` is where candidate `i`'s begin.
    let mut all_checks: Vec<Check> =
        Vec::with_capacity(policy.candidates.len() * CONSTRAINT_NAMES.len());
    let mut checks_at: Vec<usize> = Vec::with_capacity(2 + policy.candidates.len());
    checks_at.push(0);
    for id in &policy.candidates {
        let info = lookup(id);
        let unpriced = info.is_some_and(|m| !m.price_known());
        let mut eval = CandidateEval {
            model: id.clone(),
            baseline: false,
            score: None,
            confidence: None,
            failed: Vec::new(),
            filtered: filter_of(info),
            unpriced,
        };
        checks_at.push(all_checks.len());
        if eval.filtered.is_none() {
            let first_check = all_checks.len();
            let evidence = evidence_of(id);
            let mut score = score_of(evidence, info, base_cost);
            let rel = relative(evidence, base_evidence, &base_score, phase, learning);
            anchor(&mut score, &base_score, &rel, policy.weights);
            let conf = relative_confidence(&rel, max_regression);
            check_all(
                &policy.constraints,
                &Subject {
                    score: &score,
                    baseline: &base_score,
                    stats: evidence.0,
                    confidence: conf,
                },
                &mut all_checks,
            );
            eval.failed = all_checks[first_check..]
                .iter()
                .filter(|c| !c.passed && (base_capable || !RELATIVE.contains(&c.name)))
                .map(|c| c.name)
                .collect();
            if let Some(first) = eval.failed.first() {
                eval.filtered = Some(failed_reason(first));
            }
            eval.confidence = Some(conf);
            eval.score = Some(score);
        }
        candidates.push(eval);
    }
    checks_at.push(all_checks.len());
    let checks_of = |i: usize| all_checks[checks_at[i]..checks_at[i + 1]].to_vec();

    let unpriced: Vec<String> = candidates
        .iter()
        .filter(|c| c.unpriced)
        .map(|c| c.model.clone())
        .collect();

    // Rank: score desc, then cheaper, then id.
    let better = |a: &CandidateEval, b: &CandidateEval| -> bool {
        let (Some(sa), Some(sb)) = (&a.score, &b.score) else {
            return a.score.is_some();
        };
        if sa.score != sb.score {
            return sa.score > sb.score;
        }
        let ca = sa.estimated_cost_usd.unwrap_or(f64::INFINITY);
        let cb = sb.estimated_cost_usd.unwrap_or(f64::INFINITY);
        if ca != cb {
            return ca < cb;
        }
        a.model < b.model
    };
    let mut best_eligible: Option<usize> = None;
    let mut best_rival: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        if c.score.is_none() {
            continue;
        }
        let eligible = c.baseline || c.failed.is_empty();
        if eligible && best_eligible.is_none_or(|b| better(c, &candidates[b])) {
            best_eligible = Some(i);
        }
        if !c.baseline && best_rival.is_none_or(|b| better(c, &candidates[b])) {
            best_rival = Some(i);
        }
    }

    let pin_ok = ctx.pin.and_then(|pin| {
        let info = lookup(&pin.model)?;
        info.cannot_meet(&req.needs).is_none().then_some(pin)
    });

    let (chosen_idx, choice) = match best_eligible {
        Some(0) => {
            let rival = best_rival.filter(|r| better(&candidates[*r], &candidates[0]));
            let why = match rival.map(|r| &candidates[r].failed) {
                Some(failed) if failed.as_slice() == ["min_confidence"] => {
                    ReasonCode::LowConfidence
                }
                Some(_) => ReasonCode::ConstraintFailed,
                None if best_rival.is_none() => ReasonCode::NoAlternative,
                None => ReasonCode::BaselineBest,
            };
            (0, why)
        }
        Some(i) if base_capable => (i, ReasonCode::Routed),
        Some(i) => (i, ReasonCode::BaselineIncapable),
        None if pin_ok.is_none() => {
            return Err(NoCapableModel {
                route: policy.name.clone(),
                reasons: candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {}",
                            c.model,
                            c.filtered.as_deref().unwrap_or("not eligible")
                        )
                    })
                    .collect(),
            });
        }
        None => (0, ReasonCode::BaselineIncapable),
    };

    let chosen = candidates[chosen_idx].model.clone();
    let mut served = chosen.clone();
    let mut reason = choice;
    let mut shadow = None;
    let mut mirror = false;
    let mut canary_bucket = None;
    let mut canary_percent = None;
    let mut chosen_out = chosen.clone();
    let baseline_serves = |served: &mut String| {
        if base_capable {
            served.clone_from(&policy.baseline);
            true
        } else {
            false
        }
    };

    if let Some(pin) = pin_ok {
        served.clone_from(&pin.model);
        chosen_out.clone_from(&pin.model);
        reason = ReasonCode::Pinned;
    } else {
        if ctx.pin.is_some() {
            if baseline_serves(&mut served) {
                chosen_out.clone_from(&policy.baseline);
            }
            reason = ReasonCode::PinUnservable;
        } else {
            match policy.mode {
                RouteMode::Off => {
                    if baseline_serves(&mut served) {
                        chosen_out.clone_from(&policy.baseline);
                        reason = ReasonCode::RouteOff;
                    }
                }
                RouteMode::Shadow => {
                    if chosen != policy.baseline && baseline_serves(&mut served) {
                        reason = ReasonCode::Shadow;
                        shadow = Some(chosen.clone());
                        mirror = ctx.mirror_budget_left
                            && policy.mirror_fraction > 0.0
                            && unit_draw(req.seed, MIRROR_STREAM) < policy.mirror_fraction;
                    }
                }
                RouteMode::Canary => {
                    canary_bucket = Some(req.canary_bucket);
                    canary_percent = Some(f64::from(policy.canary_percent));
                    let inside = req.canary_bucket < u32::from(policy.canary_percent) * 100;
                    if chosen != policy.baseline {
                        if inside {
                            reason = ReasonCode::CanaryIn;
                        } else if baseline_serves(&mut served) {
                            reason = ReasonCode::CanaryOut;
                        }
                    }
                }
                RouteMode::Live => {}
            }
        }
    }

    // Exploration: a seeded share of requests is mirrored to the model the router most needs
    // evidence on. Candidates qualify when they are cheaper than what serves (the router only
    // ever moves to save), their only failed constraints are ones evidence can fix, and either
    // they have not had a first look yet (`EXPLORE_FIRST_LOOK` samples, whatever the prior says:
    // priors are often wrong about a category) or their optimistic quality (two standard
    // deviations up) reaches the bar. The baseline qualifies when it does not serve: its
    // evidence is the reference and expires with the window. The least sampled goes first; a
    // model with `explore_until_samples` samples is not explored.
    if !mirror
        && policy.explore_fraction > 0.0
        && ctx.mirror_budget_left
        && unit_draw(req.seed, EXPLORE_STREAM) < policy.explore_fraction
    {
        let bar = base_score.feedback - max_regression;
        let served_cost = candidates
            .iter()
            .find(|c| c.model == served)
            .and_then(|c| c.score.as_ref())
            .and_then(|s| s.estimated_cost_usd);
        let target = candidates
            .iter()
            .filter(|c| c.model != served)
            .filter_map(|c| c.score.as_ref().map(|s| (c, s)))
            .filter(|(c, s)| {
                if c.baseline {
                    // The reference is the dearest model to mirror: a quarter of the samples.
                    return s.org_samples < policy.explore_until_samples / 4;
                }
                if s.org_samples >= policy.explore_until_samples {
                    return false;
                }
                let cheaper = match (s.estimated_cost_usd, served_cost) {
                    (Some(cost), Some(top)) => cost < top,
                    _ => false,
                };
                cheaper
                    && c.failed.iter().all(|f| EVIDENCE.contains(f))
                    && (s.org_samples < EXPLORE_FIRST_LOOK
                        || s.feedback + 2.0 * s.feedback_variance.sqrt() >= bar)
            })
            .min_by(|(a, sa), (b, sb)| {
                sa.org_samples
                    .cmp(&sb.org_samples)
                    .then_with(|| {
                        let ca = sa.estimated_cost_usd.unwrap_or(f64::INFINITY);
                        let cb = sb.estimated_cost_usd.unwrap_or(f64::INFINITY);
                        ca.total_cmp(&cb)
                    })
                    .then_with(|| a.model.cmp(&b.model))
            })
            .map(|(c, _)| c.model.clone());
        if let Some(target) = target {
            shadow = Some(target);
            mirror = true;
        }
    }

    // What the trace reports: the chosen model's checks, or those of the rival the baseline
    // held against.
    let reported = if chosen_idx != 0 {
        Some(chosen_idx)
    } else {
        best_rival.filter(|r| better(&candidates[*r], &candidates[0]))
    };
    let (checked_model, checks, confidence) = match reported {
        Some(i) => (
            Some(candidates[i].model.clone()),
            checks_of(i),
            candidates[i].confidence.unwrap_or(1.0),
        ),
        None => (None, Vec::new(), 1.0),
    };
    let chosen_score = candidates[chosen_idx].score.as_ref();
    let signals = chosen_score.map_or_else(Vec::new, |s| s.signals.to_vec());
    let score_gap = chosen_score.and_then(|s| {
        candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != chosen_idx)
            .filter_map(|(_, c)| c.score.as_ref().map(|x| x.score))
            .max_by(f64::total_cmp)
            .map(|runner_up| s.score - runner_up)
    });

    Ok(Outcome {
        chosen: chosen_out,
        served,
        baseline: policy.baseline.clone(),
        choice,
        reason,
        mode: policy.mode,
        phase,
        confidence,
        candidates,
        checked_model,
        checks,
        signals,
        score_gap,
        pin: ctx.pin.cloned(),
        shadow,
        mirror,
        canary_bucket,
        canary_percent,
        unpriced,
        table_version: ctx.table_version,
        pool_version: ctx.priors.pool_version(),
        seed: req.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed texts say what the formatted one said.
    #[test]
    fn failed_reasons_name_the_constraint() {
        for name in CONSTRAINT_NAMES {
            assert_eq!(failed_reason(name), format!("constraint {name} failed"));
            assert!(matches!(failed_reason(name), Cow::Borrowed(_)), "{name}");
        }
        assert_eq!(failed_reason("other"), "constraint other failed");
    }
}
