//! The decision trace: an [`Outcome`] as the `RouteDecided` event that is published, stored,
//! served at `GET /v1/decisions/{id}` and signed.
//!
//! The trace records every input an audit needs to recompute the decision: the request's
//! features, the routing-table version, the route configuration version and constraints hash,
//! the score weights and the seed.

use std::collections::BTreeMap;

use switchyard_events::{
    Candidate, ConstraintCheck, DecisionId, Envelope, Evidence, ModelName, Percent, Phase, PinInfo,
    RequestFeatures, RequestId, RouteDecided, RouteName, ScoreWeights as EventWeights, SessionId,
    SignalContribution, UnitScore, Usd,
};
use switchyard_providers::Needs;

use crate::decide::Outcome;
use crate::explain::{Explanation, Lang};
use crate::policy::{RoutePolicy, ScoreWeights};
use crate::stats::RouteStats;

/// Returns the recorded features of a request's needs.
pub fn features_of(needs: &Needs) -> RequestFeatures {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    RequestFeatures {
        input_tokens: clamp(needs.input_tokens),
        max_output_tokens: clamp(needs.max_output_tokens),
        tools: needs.tools,
        json_schema: needs.json_schema,
        vision: needs.vision,
        stream: needs.stream,
    }
}

/// Returns the needs recorded in a trace (the inverse of [`features_of`]).
pub fn needs_of(features: &RequestFeatures) -> Needs {
    let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
    Needs {
        input_tokens: clamp(features.input_tokens),
        max_output_tokens: clamp(features.max_output_tokens),
        tools: features.tools,
        json_schema: features.json_schema,
        vision: features.vision,
        stream: features.stream,
    }
}

/// Returns the score weights as recorded in traces.
pub fn event_weights(w: ScoreWeights) -> EventWeights {
    EventWeights {
        success: w.success,
        feedback: w.feedback,
        cost: w.cost,
    }
}

/// The identity of the decided request.
#[derive(Debug, Clone)]
pub struct TraceIds {
    /// The envelope (org, event time, trace id, partition key).
    pub envelope: Envelope,
    /// The decision id.
    pub decision_id: DecisionId,
    /// The request id.
    pub request_id: RequestId,
    /// The session, when any.
    pub session_id: Option<SessionId>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Builds the (unsigned) trace of an outcome.
pub fn build_trace(
    ids: TraceIds,
    policy: &RoutePolicy,
    stats: Option<&RouteStats>,
    needs: &Needs,
    outcome: &Outcome,
    lang: Lang,
) -> RouteDecided {
    let candidates = outcome
        .candidates
        .iter()
        .map(|c| Candidate {
            model: ModelName::new(c.model.as_str()),
            score: c.score.as_ref().and_then(|s| finite(s.score)),
            success: c.score.as_ref().and_then(|s| finite(s.success)),
            feedback: c.score.as_ref().and_then(|s| finite(s.feedback)),
            cost: c.score.as_ref().and_then(|s| finite(s.cost)),
            filtered_reason: c.filtered.as_deref().map(str::to_owned),
            estimated_cost_usd: c
                .score
                .as_ref()
                .and_then(|s| s.estimated_cost_usd)
                .and_then(|x| Usd::new(x).ok()),
        })
        .collect();
    let signals = outcome
        .signals
        .iter()
        .map(|s| SignalContribution {
            source: s.source,
            weight: s.weight,
            value: s.value,
            contribution: s.contribution,
            samples: i64::try_from(s.samples).unwrap_or(i64::MAX),
        })
        .collect();
    let checked = outcome.checked_model.as_deref().unwrap_or("");
    let constraints = outcome
        .checks
        .iter()
        .map(|c| ConstraintCheck {
            name: c.name.to_owned(),
            passed: c.passed,
            limit: finite(c.limit),
            observed: c.observed.and_then(finite),
            detail: Some(match c.detail {
                Some(d) => {
                    let mut text = String::with_capacity(checked.len() + 2 + d.len());
                    text.push_str(checked);
                    text.push_str(": ");
                    text.push_str(d);
                    text
                }
                None => checked.to_owned(),
            }),
        })
        .collect();
    let reported = outcome.checked_model.as_deref().unwrap_or(&outcome.chosen);
    let variance = outcome
        .candidate(reported)
        .and_then(|c| c.score.as_ref())
        .map(|s| s.feedback_variance);
    let regressions: BTreeMap<String, i64> = stats
        .and_then(|s| s.model(reported))
        .map(|m| {
            m.regressions
                .iter()
                .map(|(k, v)| (k.clone(), i64::try_from(*v).unwrap_or(i64::MAX)))
                .collect()
        })
        .unwrap_or_default();
    let explanation =
        Explanation::of(&policy.name, outcome, policy.constraints.min_confidence).render(lang);

    RouteDecided {
        envelope: ids.envelope,
        decision_id: ids.decision_id,
        request_id: ids.request_id,
        session_id: ids.session_id,
        route: RouteName::new(policy.name.as_str()),
        mode: outcome.mode,
        chosen_model: ModelName::new(outcome.chosen.as_str()),
        baseline_model: ModelName::new(outcome.baseline.as_str()),
        served_model: ModelName::new(outcome.served.as_str()),
        reason: outcome.reason.as_str().to_owned(),
        phase: Phase::new(outcome.phase).unwrap_or(Phase::ZERO),
        confidence: UnitScore::new(outcome.confidence).unwrap_or(UnitScore::MIN),
        routing_table_version: outcome.table_version,
        // The seed is recorded bit for bit: u64 → i64 two's complement.
        seed: outcome.seed as i64,
        candidates,
        signals,
        constraints,
        evidence: Evidence {
            samples: i64::try_from(outcome.evidence_samples()).unwrap_or(i64::MAX),
            score_gap: outcome.score_gap.and_then(finite),
            variance: variance.and_then(finite),
            regressions,
        },
        pin: outcome.pin.as_ref().map(|p| PinInfo {
            model: ModelName::new(p.model.as_str()),
            reason: p.reason,
            pinned_by: p.pinned_by.clone(),
        }),
        reversible: outcome.served != outcome.baseline || outcome.pin.is_some(),
        explanation,
        explanation_language: lang.code().to_owned(),
        shadow_model: outcome.shadow.as_deref().map(ModelName::new),
        canary_percent: outcome
            .canary_percent
            .and_then(|p| Percent::new(p.round().clamp(0.0, 100.0) as u8).ok()),
        signature: String::new(),
        signing_key_id: String::new(),
        features: features_of(needs),
        score_weights: event_weights(policy.weights),
        constraints_hash: policy.constraints_hash.clone(),
        route_version: policy.version,
        unpriced_models: outcome
            .unpriced
            .iter()
            .map(|m| ModelName::new(m.as_str()))
            .collect(),
        mirrored: outcome.mirror,
        canary_bucket: outcome.canary_bucket.and_then(|b| i32::try_from(b).ok()),
        signature_proof: None,
        pool_version: outcome.pool_version,
    }
}
