//! One realistic, fixed event per kind: the source of the frozen samples of new schema versions.

use std::collections::BTreeMap;

use anyhow::Result;
use switchyard_events::*;

fn envelope(event_id: &str, partition_key: &str) -> Result<Envelope> {
    Ok(Envelope {
        event_id: event_id.parse()?,
        org: OrgId::new("acme"),
        event_time: Timestamp::from_micros(1_764_000_000_123_456),
        trace_id: TraceId::new("4bf92f3577b34da6a3ce929d0e0e4736"),
        partition_key: PartitionKey::new(partition_key),
    })
}

/// Returns the sample event of a kind.
pub fn sample(kind: EventKind) -> Result<Event> {
    let session = SessionId::new("sess-42");
    let request = RequestId::new("req-0001");
    Ok(match kind {
        EventKind::RequestReceived => RequestReceived {
            envelope: envelope("019ab5d3-6e7b-7c1a-8f2e-3d4c5b6a7980", "sess-42")?,
            request_id: request,
            session_id: Some(session),
            route: Some(RouteName::new("support")),
            api_key_id: ApiKeyId::new("key-7"),
            requested_model: RequestedModel::Auto,
            stream: true,
            message_count: 3,
            input_chars: 1834,
            estimated_input_tokens: 459,
            has_tools: false,
            wants_json_schema: true,
            has_images: false,
            max_tokens: Some(512),
            language: Some("de".into()),
            prompt_text: None,
            metadata: BTreeMap::from([("tenant_tier".into(), "gold".into())]),
            client: Some("OpenAI/Python 1.99.0".into()),
        }
        .into(),
        // From v2 the sample is a shadow-mode mirror, so the frozen sample covers `shadow`.
        EventKind::ResponseCompleted => ResponseCompleted {
            envelope: envelope("019ab5d3-7f10-7aa0-9b11-000000000002", "sess-42")?,
            request_id: ResponseCompleted::mirror_request_id(&request),
            decision_id: DecisionId::new("dec-0001"),
            session_id: Some(session),
            served_model: ModelName::new("small-fast"),
            provider: ProviderName::new("demo"),
            status: ResponseStatus::Ok,
            finish_reason: Some("stop".into()),
            usage: Usage {
                prompt_tokens: 459,
                completion_tokens: 120,
                cached_tokens: 0,
                reasoning_tokens: 0,
                total_tokens: 579,
            },
            cost_usd: Some(Usd::new(0.000_317)?),
            latency_ms: 842,
            ttft_ms: Some(131),
            attempts: vec![
                Attempt {
                    provider: ProviderName::new("openai"),
                    model: ModelName::new("small-fast"),
                    outcome: "http_error".into(),
                    status_code: Some(503),
                    latency_ms: 95,
                    reason: Some("upstream overloaded".into()),
                },
                Attempt {
                    provider: ProviderName::new("demo"),
                    model: ModelName::new("small-fast"),
                    outcome: "ok".into(),
                    status_code: Some(200),
                    latency_ms: 740,
                    reason: None,
                },
            ],
            error_code: None,
            completion_text: None,
            shadow: true,
        }
        .into(),
        EventKind::RouteDecided => RouteDecided {
            envelope: envelope("019ab5d3-6e80-7000-8000-000000000003", "sess-42")?,
            decision_id: DecisionId::new("dec-0001"),
            request_id: request,
            session_id: Some(session),
            route: RouteName::new("support"),
            mode: RouteMode::Canary,
            chosen_model: ModelName::new("small-fast"),
            baseline_model: ModelName::new("large-careful"),
            served_model: ModelName::new("small-fast"),
            reason: "cheapest_meeting_constraints".into(),
            phase: Phase::new(2)?,
            confidence: UnitScore::new(0.87)?,
            routing_table_version: 41,
            seed: 7_311_092,
            candidates: vec![
                Candidate {
                    model: ModelName::new("small-fast"),
                    score: Some(0.81),
                    success: Some(0.99),
                    feedback: Some(0.78),
                    cost: Some(0.12),
                    filtered_reason: None,
                    estimated_cost_usd: Some(Usd::new(0.0003)?),
                },
                Candidate {
                    model: ModelName::new("tiny"),
                    score: None,
                    success: None,
                    feedback: None,
                    cost: None,
                    filtered_reason: Some("min_quality".into()),
                    estimated_cost_usd: None,
                },
            ],
            signals: vec![SignalContribution {
                source: FeedbackSource::Nps,
                weight: 0.4,
                value: Some(0.8),
                contribution: 0.32,
                samples: 212,
            }],
            constraints: vec![ConstraintCheck {
                name: "max_regression".into(),
                passed: true,
                limit: Some(0.05),
                observed: Some(0.012),
                detail: None,
            }],
            evidence: Evidence {
                samples: 1_204,
                score_gap: Some(0.04),
                variance: Some(0.002),
                regressions: BTreeMap::from([("0-5%".into(), 3), ("5-10%".into(), 1)]),
            },
            pin: None,
            reversible: true,
            explanation: "small-fast meets every constraint at 18% of the baseline cost".into(),
            explanation_language: "en".into(),
            shadow_model: None,
            canary_percent: Some(Percent::new(10)?),
            signature: "c2lnbmF0dXJlLXBsYWNlaG9sZGVy".into(),
            signing_key_id: "router-2026-01".into(),
            features: RequestFeatures {
                input_tokens: 459,
                max_output_tokens: 512,
                tools: false,
                json_schema: true,
                vision: false,
                stream: true,
            },
            score_weights: ScoreWeights {
                success: 0.3,
                feedback: 0.5,
                cost: 0.2,
            },
            constraints_hash: sample_constraints_hash(),
            route_version: 3,
            unpriced_models: vec![ModelName::new("tiny")],
            mirrored: false,
            canary_bucket: Some(731),
            signature_proof: Some(SignatureProof {
                leaf_index: 5,
                tree_size: 6,
                path: vec![
                    "5f0a3c1e9d2b4a6f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817".into(),
                    "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e".into(),
                ],
                payload_format: 2,
            }),
            pool_version: Some(38),
        }
        .into(),
        EventKind::FeedbackSubmitted => FeedbackSubmitted {
            envelope: envelope("019ab5d4-0000-7000-8000-000000000004", "sess-42")?,
            feedback_id: FeedbackId::new("fb-9"),
            target: Target::Session {
                session_id: session,
            },
            source: FeedbackSource::Nps,
            raw_score: 9.0,
            raw_scale: RawScale::Nps,
            normalized_score: normalize(9.0, RawScale::Nps)?,
            idempotency_key: Some("idem-9".into()),
            comment: Some("schnell und hilfreich".into()),
            derived_from: None,
            route: Some(RouteName::new("support")),
            model: None,
            labels: BTreeMap::from([("channel".into(), "widget".into())]),
        }
        .into(),
        EventKind::JudgeScored => JudgeScored {
            envelope: envelope("019ab5d4-1000-7000-8000-000000000005", "sess-42")?,
            judgement_id: JudgementId::new("jdg-3"),
            request_id: request,
            decision_id: DecisionId::new("dec-0001"),
            route: RouteName::new("support"),
            model: ModelName::new("small-fast"),
            judge_model: ModelName::new("large-careful"),
            outcome: JudgeOutcome::Scored {
                score: UnitScore::new(0.75)?,
            },
            rubric_version: "helpfulness-v3".into(),
            attempts: 1,
            cost_usd: Some(Usd::new(0.0021)?),
        }
        .into(),
        EventKind::RoutePinned => RoutePinned {
            envelope: envelope("019ab5d4-2000-7000-8000-000000000006", "acme/support")?,
            route: RouteName::new("support"),
            model: ModelName::new("large-careful"),
            reason: PinReason::AutoRollback,
            pinned_by: "switchyard".into(),
            expires_at: Some(Timestamp::from_micros(1_764_086_400_000_000)),
            note: Some("3 regressions above threshold".into()),
        }
        .into(),
        EventKind::RouteUnpinned => RouteUnpinned {
            envelope: envelope("019ab5d4-3000-7000-8000-000000000007", "acme/support")?,
            route: RouteName::new("support"),
            unpinned_by: "admin@acme.example".into(),
            reason: Some("incident resolved".into()),
        }
        .into(),
        EventKind::ConstraintsChanged => {
            let constraints = sample_constraints();
            let route = RouteName::new("support");
            let hash = ConstraintsChanged::compute_hash("", &constraints, &route, 0);
            ConstraintsChanged {
                envelope: envelope("019ab5d4-4000-7000-8000-000000000008", "acme/support")?,
                route,
                sequence: 0,
                constraints,
                changed_by: "admin@acme.example".into(),
                prev_hash: String::new(),
                hash,
            }
            .into()
        }
        EventKind::RoutingTableUpdated => RoutingTableUpdated {
            envelope: envelope("019ab5d4-5000-7000-8000-000000000009", "acme")?,
            version: 42,
            generated_at: Timestamp::from_micros(1_764_000_060_000_000),
            routes: vec![RouteEntry {
                route: RouteName::new("support"),
                baseline_model: ModelName::new("large-careful"),
                mode: RouteMode::Canary,
                canary_percent: Some(Percent::new(10)?),
                pinned_model: None,
                phase: Phase::new(2)?,
                models: vec![ModelStats {
                    model: ModelName::new("small-fast"),
                    samples: 1_204,
                    success_rate: 0.99,
                    quality_mean: 0.78,
                    quality_variance: 0.002,
                    cost_mean_usd: 0.0003,
                    p95_latency_ms: 1_900,
                    error_rate: 0.01,
                    signals: BTreeMap::from([("judge".into(), 0.74), ("nps".into(), 0.8)]),
                    sources: vec![
                        SourceStats {
                            source: FeedbackSource::Judge,
                            samples: 310,
                            mean: 0.74,
                            variance: 0.0031,
                        },
                        SourceStats {
                            source: FeedbackSource::Nps,
                            samples: 212,
                            mean: 0.8,
                            variance: 0.0425,
                        },
                    ],
                    successes: 1_192,
                    errors: 12,
                    regressions: BTreeMap::from([("0-5%".into(), 3), ("5-10%".into(), 1)]),
                    latency_samples: 1_204,
                }],
                constraints_hash: sample_constraints_hash(),
                route_version: 3,
            }],
            source_offsets: BTreeMap::from([
                ("feedback/0".into(), 5_120),
                ("responses/0".into(), 88_004),
            ]),
        }
        .into(),
        EventKind::ApiKeyCreated => ApiKeyCreated {
            envelope: envelope("019ab5d4-6000-7000-8000-00000000000a", "key-7")?,
            key_id: ApiKeyId::new("key-7"),
            key_hash: KeyHash::of_secret("sk-sample-not-a-real-secret"),
            admin: false,
            default_route: Some(RouteName::new("support")),
            label: Some("support widget".into()),
            requests_per_minute: Some(600),
            tokens_per_minute: None,
        }
        .into(),
        EventKind::ApiKeyRevoked => ApiKeyRevoked {
            envelope: envelope("019ab5d4-7000-7000-8000-00000000000b", "key-7")?,
            key_id: ApiKeyId::new("key-7"),
            reason: Some("rotated".into()),
        }
        .into(),
        EventKind::RouteConfigured => RouteConfigured {
            envelope: envelope("019ab5d4-8000-7000-8000-00000000000c", "acme/support")?,
            route: RouteName::new("support"),
            baseline_model: ModelName::new("large-careful"),
            candidates: vec![
                ModelName::new("large-careful"),
                ModelName::new("small-fast"),
                ModelName::new("tiny"),
            ],
            mode: RouteMode::Canary,
            canary_percent: Some(Percent::new(10)?),
            mirror_fraction: Some(UnitScore::new(0.05)?),
            mirror_spend_cap_usd: Some(Usd::new(2.5)?),
            category: Some("general".into()),
            changed_by: "admin@acme.example".into(),
            deleted: false,
            sequence: 3,
        }
        .into(),
        EventKind::KeyUsageReported => KeyUsageReported {
            envelope: envelope("019ab5d4-9000-7000-8000-00000000000d", "ingress-a/key-7")?,
            replica: "ingress-a".into(),
            key_id: ApiKeyId::new("key-7"),
            minute: 29_400_000,
            requests: 42,
            tokens: 18_250,
            previous_requests: 57,
            previous_tokens: 24_900,
            day: 20_416,
            spend_micro_usd: 1_250_000,
        }
        .into(),
    })
}

/// Returns the constraints of the sample constraints change.
fn sample_constraints() -> Constraints {
    Constraints {
        max_regression: Some(0.05),
        min_quality: Some(0.7),
        max_cost_per_request: Some(0.01),
        min_samples: Some(200),
        rollback_threshold: Some(3),
        ..Constraints::default()
    }
}

/// Returns the hash of the sample constraints change: the head of the sample route's chain.
fn sample_constraints_hash() -> String {
    ConstraintsChanged::compute_hash("", &sample_constraints(), &RouteName::new("support"), 0)
}
