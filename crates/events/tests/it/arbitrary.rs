//! proptest strategies for every event.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use switchyard_events::*;

pub fn text() -> impl Strategy<Value = String> {
    // ASCII, separators, newlines and non-ASCII, so escaping and UTF-8 lengths are exercised.
    "[a-zA-Z0-9 _/.:\\n\"é😀-]{0,12}"
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1.0e9..1.0e9f64,
        Just(0.0),
        Just(1.0),
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO
    ]
}

fn unit() -> impl Strategy<Value = UnitScore> {
    (0.0..=1.0f64).prop_map(UnitScore::saturating)
}

fn usd() -> impl Strategy<Value = Usd> {
    (0.0..1.0e4f64).prop_filter_map("usd", |v| Usd::new(v).ok())
}

fn percent() -> impl Strategy<Value = Percent> {
    (0u8..=100).prop_filter_map("percent", |v| Percent::new(v).ok())
}

fn phase() -> impl Strategy<Value = Phase> {
    (0u8..=2).prop_filter_map("phase", |v| Phase::new(v).ok())
}

fn text_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..4)
}

fn event_id() -> impl Strategy<Value = EventId> {
    (0u64..(1 << 48), any::<[u8; 10]>()).prop_filter_map("v7", |(ms, random)| {
        EventId::from_uuid(uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid()).ok()
    })
}

fn model() -> impl Strategy<Value = ModelName> {
    text().prop_map(ModelName::new)
}

fn route() -> impl Strategy<Value = RouteName> {
    text().prop_map(RouteName::new)
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp::from_micros)
}

prop_compose! {
    pub fn envelope()(
        event_id in event_id(),
        org in text(),
        event_time in timestamp(),
        trace_id in text(),
        partition_key in text(),
    ) -> Envelope {
        Envelope {
            event_id,
            org: OrgId::new(org),
            event_time,
            trace_id: TraceId::new(trace_id),
            partition_key: PartitionKey::new(partition_key),
        }
    }
}

prop_compose! {
    fn request_received()(
        envelope in envelope(),
        request_id in text(),
        session_id in option::of(text()),
        route in option::of(route()),
        api_key_id in text(),
        requested_model in prop_oneof![Just("auto".to_owned()), text()],
        flags in any::<[bool; 4]>(),
        message_count in any::<i32>(),
        input_chars in any::<i64>(),
        estimated_input_tokens in any::<i64>(),
        max_tokens in option::of(any::<i64>()),
        language in option::of(text()),
        prompt_text in option::of(text()),
        metadata in text_map(),
        client in option::of(text()),
    ) -> RequestReceived {
        RequestReceived {
            envelope,
            request_id: RequestId::new(request_id),
            session_id: session_id.map(SessionId::new),
            route,
            api_key_id: ApiKeyId::new(api_key_id),
            requested_model: RequestedModel::from(requested_model),
            stream: flags[0],
            message_count,
            input_chars,
            estimated_input_tokens,
            has_tools: flags[1],
            wants_json_schema: flags[2],
            has_images: flags[3],
            max_tokens,
            language,
            prompt_text,
            metadata,
            client,
        }
    }
}

prop_compose! {
    fn attempt()(
        provider in text(),
        model in model(),
        outcome in text(),
        status_code in option::of(any::<i32>()),
        latency_ms in any::<i64>(),
        reason in option::of(text()),
    ) -> Attempt {
        Attempt { provider: ProviderName::new(provider), model, outcome, status_code, latency_ms, reason }
    }
}

prop_compose! {
    fn response_completed()(
        envelope in envelope(),
        request_id in text(),
        decision_id in text(),
        session_id in option::of(text()),
        served_model in model(),
        provider in text(),
        status in proptest::sample::select(ResponseStatus::ALL),
        finish_reason in option::of(text()),
        usage in any::<[i64; 5]>(),
        cost_usd in option::of(usd()),
        latency_ms in any::<i64>(),
        ttft_ms in option::of(any::<i64>()),
        attempts in vec(attempt(), 0..3),
        error_code in option::of(text()),
        completion_text in option::of(text()),
        shadow in any::<bool>(),
    ) -> ResponseCompleted {
        ResponseCompleted {
            envelope,
            request_id: RequestId::new(request_id),
            decision_id: DecisionId::new(decision_id),
            session_id: session_id.map(SessionId::new),
            served_model,
            provider: ProviderName::new(provider),
            status,
            finish_reason,
            usage: Usage {
                prompt_tokens: usage[0],
                completion_tokens: usage[1],
                cached_tokens: usage[2],
                reasoning_tokens: usage[3],
                total_tokens: usage[4],
            },
            cost_usd,
            latency_ms,
            ttft_ms,
            attempts,
            error_code,
            completion_text,
            shadow,
        }
    }
}

prop_compose! {
    fn candidate()(
        model in model(),
        parts in [option::of(finite()), option::of(finite()), option::of(finite()), option::of(finite())],
        filtered_reason in option::of(text()),
        estimated_cost_usd in option::of(usd()),
    ) -> Candidate {
        Candidate {
            model,
            score: parts[0],
            success: parts[1],
            feedback: parts[2],
            cost: parts[3],
            filtered_reason,
            estimated_cost_usd,
        }
    }
}

prop_compose! {
    fn signal()(
        source in proptest::sample::select(FeedbackSource::ALL),
        weight in finite(),
        value in option::of(finite()),
        contribution in finite(),
        samples in any::<i64>(),
    ) -> SignalContribution {
        SignalContribution { source, weight, value, contribution, samples }
    }
}

prop_compose! {
    fn check()(
        name in text(),
        passed in any::<bool>(),
        limit in option::of(finite()),
        observed in option::of(finite()),
        detail in option::of(text()),
    ) -> ConstraintCheck {
        ConstraintCheck { name, passed, limit, observed, detail }
    }
}

prop_compose! {
    fn request_features()(
        tokens in any::<[i64; 2]>(),
        flags in any::<[bool; 4]>(),
    ) -> RequestFeatures {
        RequestFeatures {
            input_tokens: tokens[0],
            max_output_tokens: tokens[1],
            tools: flags[0],
            json_schema: flags[1],
            vision: flags[2],
            stream: flags[3],
        }
    }
}

fn score_weights() -> impl Strategy<Value = ScoreWeights> {
    prop_oneof![
        Just(ScoreWeights::default()),
        [finite(), finite(), finite()].prop_map(|w| ScoreWeights {
            success: w[0],
            feedback: w[1],
            cost: w[2],
        }),
    ]
}

prop_compose! {
    pub fn route_decided()(
        envelope in envelope(),
        ids in [text(), text(), text()],
        session_id in option::of(text()),
        route in route(),
        mode in proptest::sample::select(RouteMode::ALL),
        models in [model(), model(), model()],
        reason in text(),
        phase in phase(),
        confidence in unit(),
        numbers in any::<[i64; 3]>(),
        candidates in vec(candidate(), 0..3),
        signals in vec(signal(), 0..3),
        constraints in vec(check(), 0..3),
        evidence in (option::of(finite()), option::of(finite()), btree_map(text(), any::<i64>(), 0..3)),
        pin in option::of((model(), proptest::sample::select(PinReason::ALL), text())),
        reversible in any::<bool>(),
        explanation in (text(), text()),
        shadow_model in option::of(model()),
        canary_percent in option::of(percent()),
        // With the v3 proof (v5's payload format in it, and v4's pool version): one more flat
        // parameter overflows a debug test thread's stack.
        signature in (
            text(),
            text(),
            option::of((any::<i64>(), any::<i64>(), vec(text(), 0..3), any::<i32>())),
            option::of(any::<i64>()),
        ),
        // The fields added in v2, as one tuple: a flat parameter list this long nests the
        // strategy deep enough to overflow a test thread's stack in debug builds.
        v2 in (
            request_features(),
            score_weights(),
            text(),
            any::<i64>(),
            vec(model(), 0..3),
            any::<bool>(),
            option::of(0..RouteDecided::CANARY_BUCKETS),
        ),
    ) -> RouteDecided {
        let (features, score_weights, constraints_hash, route_version, unpriced_models, mirrored,
             canary_bucket) = v2;
        let [decision_id, request_id, _] = ids;
        let [chosen_model, baseline_model, served_model] = models;
        RouteDecided {
            envelope,
            decision_id: DecisionId::new(decision_id),
            request_id: RequestId::new(request_id),
            session_id: session_id.map(SessionId::new),
            route,
            mode,
            chosen_model,
            baseline_model,
            served_model,
            reason,
            phase,
            confidence,
            routing_table_version: numbers[0],
            seed: numbers[1],
            candidates,
            signals,
            constraints,
            evidence: Evidence {
                samples: numbers[2],
                score_gap: evidence.0,
                variance: evidence.1,
                regressions: evidence.2,
            },
            pin: pin.map(|(model, reason, pinned_by)| PinInfo { model, reason, pinned_by }),
            reversible,
            explanation: explanation.0,
            explanation_language: explanation.1,
            shadow_model,
            canary_percent,
            signature: signature.0,
            signing_key_id: signature.1,
            features,
            score_weights,
            constraints_hash,
            route_version,
            unpriced_models,
            mirrored,
            canary_bucket,
            signature_proof: signature.2.map(|(leaf_index, tree_size, path, payload_format)| {
                SignatureProof {
                    leaf_index,
                    tree_size,
                    path,
                    payload_format,
                }
            }),
            pool_version: signature.3,
        }
    }
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        text().prop_map(|id| Target::Request {
            request_id: RequestId::new(id)
        }),
        text().prop_map(|id| Target::Session {
            session_id: SessionId::new(id)
        }),
        (route(), model()).prop_map(|(route, model)| Target::Pair { route, model }),
    ]
}

prop_compose! {
    fn feedback_submitted()(
        envelope in envelope(),
        feedback_id in text(),
        target in target(),
        source in proptest::sample::select(FeedbackSource::ALL),
        raw_score in finite(),
        raw_scale in proptest::sample::select(RawScale::ALL.to_vec()),
        normalized_score in unit(),
        optional in [option::of(text()), option::of(text())],
        derived_from in option::of(event_id()),
        route in option::of(route()),
        model in option::of(model()),
        labels in text_map(),
    ) -> FeedbackSubmitted {
        let [idempotency_key, comment] = optional;
        FeedbackSubmitted {
            envelope,
            feedback_id: FeedbackId::new(feedback_id),
            target,
            source,
            raw_score,
            raw_scale,
            normalized_score,
            idempotency_key,
            comment,
            derived_from,
            route,
            model,
            labels,
        }
    }
}

fn judge_outcome() -> impl Strategy<Value = JudgeOutcome> {
    prop_oneof![
        unit().prop_map(|score| JudgeOutcome::Scored { score }),
        option::of(text()).prop_map(|reason| JudgeOutcome::Failed { reason }),
    ]
}

prop_compose! {
    fn judge_scored()(
        envelope in envelope(),
        ids in [text(), text(), text()],
        route in route(),
        model in model(),
        judge_model in model(),
        outcome in judge_outcome(),
        rubric_version in text(),
        attempts in any::<i32>(),
        cost_usd in option::of(usd()),
    ) -> JudgeScored {
        let [judgement_id, request_id, decision_id] = ids;
        JudgeScored {
            envelope,
            judgement_id: JudgementId::new(judgement_id),
            request_id: RequestId::new(request_id),
            decision_id: DecisionId::new(decision_id),
            route,
            model,
            judge_model,
            outcome,
            rubric_version,
            attempts,
            cost_usd,
        }
    }
}

prop_compose! {
    fn route_pinned()(
        envelope in envelope(),
        route in route(),
        model in model(),
        reason in proptest::sample::select(PinReason::ALL),
        pinned_by in text(),
        expires_at in option::of(timestamp()),
        note in option::of(text()),
    ) -> RoutePinned {
        RoutePinned { envelope, route, model, reason, pinned_by, expires_at, note }
    }
}

prop_compose! {
    fn route_unpinned()(
        envelope in envelope(),
        route in route(),
        unpinned_by in text(),
        reason in option::of(text()),
    ) -> RouteUnpinned {
        RouteUnpinned { envelope, route, unpinned_by, reason }
    }
}

prop_compose! {
    pub fn constraints()(
        floats in [option::of(finite()), option::of(finite()), option::of(finite()),
                   option::of(finite()), option::of(finite()), option::of(finite())],
        longs in [option::of(any::<i64>()), option::of(any::<i64>()), option::of(any::<i64>())],
    ) -> Constraints {
        Constraints {
            max_regression: floats[0],
            min_quality: floats[1],
            max_error_rate: floats[2],
            max_cost_increase: floats[3],
            max_cost_per_request: floats[4],
            max_p95_latency_ms: longs[0],
            min_confidence: floats[5],
            min_samples: longs[1],
            rollback_threshold: longs[2],
        }
    }
}

prop_compose! {
    fn constraints_changed()(
        envelope in envelope(),
        route in route(),
        sequence in any::<i64>(),
        constraints in constraints(),
        changed_by in text(),
        prev_hash in text(),
        hash in text(),
    ) -> ConstraintsChanged {
        ConstraintsChanged { envelope, route, sequence, constraints, changed_by, prev_hash, hash }
    }
}

prop_compose! {
    fn source_stats()(
        source in proptest::sample::select(FeedbackSource::ALL),
        samples in any::<i64>(),
        mean in finite(),
        variance in finite(),
    ) -> SourceStats {
        SourceStats { source, samples, mean, variance }
    }
}

prop_compose! {
    fn model_stats()(
        model in model(),
        counts in any::<[i64; 4]>(),
        floats in [finite(), finite(), finite(), finite(), finite()],
        p95_latency_ms in any::<i64>(),
        signals in btree_map(text(), finite(), 0..3),
        sources in vec(source_stats(), 0..3),
        regressions in btree_map(text(), any::<i64>(), 0..3),
    ) -> ModelStats {
        ModelStats {
            model,
            samples: counts[0],
            success_rate: floats[0],
            quality_mean: floats[1],
            quality_variance: floats[2],
            cost_mean_usd: floats[3],
            p95_latency_ms,
            error_rate: floats[4],
            signals,
            sources,
            successes: counts[1],
            errors: counts[2],
            regressions,
            latency_samples: counts[3],
        }
    }
}

prop_compose! {
    fn route_entry()(
        route in route(),
        baseline_model in model(),
        mode in proptest::sample::select(RouteMode::ALL),
        canary_percent in option::of(percent()),
        pinned_model in option::of(model()),
        phase in phase(),
        models in vec(model_stats(), 0..3),
        constraints_hash in text(),
        route_version in any::<i64>(),
    ) -> RouteEntry {
        RouteEntry {
            route,
            baseline_model,
            mode,
            canary_percent,
            pinned_model,
            phase,
            models,
            constraints_hash,
            route_version,
        }
    }
}

prop_compose! {
    fn routing_table_updated()(
        envelope in envelope(),
        version in any::<i64>(),
        generated_at in timestamp(),
        routes in vec(route_entry(), 0..3),
        source_offsets in btree_map(text(), any::<i64>(), 0..3),
    ) -> RoutingTableUpdated {
        RoutingTableUpdated { envelope, version, generated_at, routes, source_offsets }
    }
}

prop_compose! {
    fn api_key_created()(
        envelope in envelope(),
        key_id in text(),
        secret in text(),
        admin in any::<bool>(),
        default_route in option::of(route()),
        label in option::of(text()),
        limits in (option::of(any::<i64>()), option::of(any::<i64>())),
    ) -> ApiKeyCreated {
        ApiKeyCreated {
            envelope,
            key_id: ApiKeyId::new(key_id),
            key_hash: KeyHash::of_secret(&secret),
            admin,
            default_route,
            label,
            requests_per_minute: limits.0,
            tokens_per_minute: limits.1,
        }
    }
}

prop_compose! {
    fn api_key_revoked()(
        envelope in envelope(),
        key_id in text(),
        reason in option::of(text()),
    ) -> ApiKeyRevoked {
        ApiKeyRevoked { envelope, key_id: ApiKeyId::new(key_id), reason }
    }
}

prop_compose! {
    fn route_configured()(
        envelope in envelope(),
        route in route(),
        baseline_model in model(),
        candidates in vec(model(), 0..4),
        mode in proptest::sample::select(RouteMode::ALL),
        canary_percent in option::of(percent()),
        mirror_fraction in option::of(unit()),
        mirror_spend_cap_usd in option::of(usd()),
        category in option::of(text()),
        changed_by in text(),
        deleted in any::<bool>(),
        sequence in any::<i64>(),
    ) -> RouteConfigured {
        RouteConfigured {
            envelope,
            route,
            baseline_model,
            candidates,
            mode,
            canary_percent,
            mirror_fraction,
            mirror_spend_cap_usd,
            category,
            changed_by,
            deleted,
            sequence,
        }
    }
}

prop_compose! {
    fn key_usage_reported()(
        envelope in envelope(),
        replica in text(),
        key_id in text(),
        counts in proptest::array::uniform7(any::<i64>()),
    ) -> KeyUsageReported {
        KeyUsageReported {
            envelope,
            replica,
            key_id: ApiKeyId::new(key_id),
            minute: counts[0],
            requests: counts[1],
            tokens: counts[2],
            previous_requests: counts[3],
            previous_tokens: counts[4],
            day: counts[5],
            spend_micro_usd: counts[6],
        }
    }
}

/// Any event of any kind.
pub fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        request_received().prop_map(Event::from),
        response_completed().prop_map(Event::from),
        route_decided().prop_map(Event::from),
        feedback_submitted().prop_map(Event::from),
        judge_scored().prop_map(Event::from),
        route_pinned().prop_map(Event::from),
        route_unpinned().prop_map(Event::from),
        constraints_changed().prop_map(Event::from),
        routing_table_updated().prop_map(Event::from),
        api_key_created().prop_map(Event::from),
        api_key_revoked().prop_map(Event::from),
        route_configured().prop_map(Event::from),
        key_usage_reported().prop_map(Event::from),
    ]
}
