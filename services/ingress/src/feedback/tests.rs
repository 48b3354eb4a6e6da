//! The pure parts of `POST /v1/feedback`: parsing and validation, scale inference, feedback
//! ids and partition keys. Over HTTP: `services/gateway/tests/cli/feedback.rs`.

use serde_json::json;

use super::*;

fn caller(admin: bool) -> Caller {
    Caller {
        org: OrgId::new("acme"),
        key_id: ApiKeyId::new("key-1"),
        admin,
        default_route: None,
        limits: crate::limits::KeyLimits::default(),
    }
}

fn parse_ok(body: Value) -> Submission {
    match parse(&body, &caller(true)) {
        Ok(submission) => submission,
        Err(e) => panic!("{body} was refused: {e:?}"),
    }
}

fn refused(body: Value, admin: bool) -> ApiError {
    match parse(&body, &caller(admin)) {
        Ok(submission) => panic!("{body} was accepted: {submission:?}"),
        Err(e) => e,
    }
}

#[test]
fn scales_are_inferred_by_the_documented_rule() {
    assert_eq!(infer_scale(1.0), Some(RawScale::Thumbs));
    assert_eq!(infer_scale(-1.0), Some(RawScale::Thumbs));
    assert_eq!(infer_scale(0.0), Some(RawScale::Unit));
    assert_eq!(infer_scale(0.75), Some(RawScale::Unit));
    for stars in [2.0, 3.0, 4.0, 5.0] {
        assert_eq!(infer_scale(stars), Some(RawScale::FivePoint));
    }
    for ambiguous in [-0.5, 1.5, 6.0, 7.0, 50.0, 4.5] {
        assert_eq!(infer_scale(ambiguous), None, "{ambiguous}");
    }
}

#[test]
fn request_feedback_normalises_on_each_scale() {
    let cases = [
        (
            json!({"id": "chatcmpl-1", "score": 1}),
            RawScale::Thumbs,
            1.0,
        ),
        (
            json!({"id": "chatcmpl-1", "score": -1}),
            RawScale::Thumbs,
            0.0,
        ),
        (
            json!({"id": "chatcmpl-1", "score": 0.25}),
            RawScale::Unit,
            0.25,
        ),
        (
            json!({"id": "chatcmpl-1", "score": 4}),
            RawScale::FivePoint,
            0.75,
        ),
        (
            json!({"id": "chatcmpl-1", "score": 1, "scale": "stars"}),
            RawScale::FivePoint,
            0.0,
        ),
        (
            json!({"id": "chatcmpl-1", "score": 80, "scale": "percent"}),
            RawScale::Percent,
            0.8,
        ),
        (
            json!({"id": "chatcmpl-1", "score": 7, "scale": "nps"}),
            RawScale::Nps,
            0.7,
        ),
    ];
    for (body, scale, normalized) in cases {
        let Submission { subject, score } = parse_ok(body.clone());
        assert_eq!(subject, SubjectRef::Request(RequestId::new("chatcmpl-1")));
        assert_eq!(score.scale, scale, "{body}");
        assert!(
            (score.normalized.get() - normalized).abs() < 1e-12,
            "{body}"
        );
        assert_eq!(score.source, FeedbackSource::User);
    }
}

#[test]
fn decision_ids_and_sessions_are_recognised() {
    let Submission { subject, score } =
        parse_ok(json!({"id": "dec-0193", "score": 1, "source": "admin", "comment": "ok"}));
    assert_eq!(subject, SubjectRef::Decision(DecisionId::new("dec-0193")));
    assert_eq!(score.source, FeedbackSource::Admin);
    assert_eq!(score.comment.as_deref(), Some("ok"));
    let Submission { subject, score } = parse_ok(json!({"session_id": "s-1", "nps": 9}));
    assert_eq!(subject, SubjectRef::Session(SessionId::new("s-1")));
    assert_eq!(score.source, FeedbackSource::Nps);
    assert_eq!(score.scale, RawScale::Nps);
    assert!((score.normalized.get() - 0.9).abs() < 1e-12);
    // `dec-` alone is not a decision id; it is taken as a request id.
    let Submission { subject, .. } = parse_ok(json!({"id": "dec-", "score": 1}));
    assert_eq!(subject, SubjectRef::Request(RequestId::new("dec-")));
}

#[test]
fn bad_input_names_its_param() {
    let long = "x".repeat(MAX_COMMENT_CHARS + 1);
    let cases = [
        (json!({"score": 1}), "id"),
        (json!({"id": "", "score": 1}), "id"),
        (json!({"id": "a\nb", "score": 1}), "id"),
        (
            json!({"id": "x".repeat(MAX_ID_BYTES + 1), "score": 1}),
            "id",
        ),
        (json!({"id": 42, "score": 1}), "id"),
        (json!({"id": "r"}), "score"),
        (json!({"id": "r", "score": "1"}), "score"),
        (json!({"id": "r", "score": 7}), "scale"),
        (json!({"id": "r", "score": 0, "scale": "thumbs"}), "score"),
        (json!({"id": "r", "score": 6, "scale": "stars"}), "score"),
        (json!({"id": "r", "score": 1, "scale": "emoji"}), "scale"),
        (json!({"id": "r", "score": 1, "source": "judge"}), "source"),
        (json!({"id": "r", "score": 1, "source": "nps"}), "source"),
        (json!({"id": "r", "score": 1, "comment": long}), "comment"),
        (json!({"id": "r", "score": 1, "comment": 3}), "comment"),
        (json!({"id": "r", "score": 1, "nps": 3}), "nps"),
        (
            json!({"id": "r", "score": 1, "session_id": "s"}),
            "session_id",
        ),
        (json!({"session_id": "s"}), "nps"),
        (json!({"session_id": "s", "nps": 11}), "nps"),
        (json!({"session_id": "s", "nps": -1}), "nps"),
        (json!({"session_id": "s", "nps": 7.5}), "nps"),
        (json!({"session_id": "s", "nps": 7, "score": 1}), "score"),
        (
            json!({"session_id": "s", "nps": 7, "source": "user"}),
            "source",
        ),
        (json!({"session_id": "", "nps": 7}), "session_id"),
    ];
    for (body, param) in cases {
        let error = refused(body.clone(), true);
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error.param.as_deref(), Some(param), "{body}: {error:?}");
    }
    let not_an_object = refused(json!([1, 2]), true);
    assert_eq!(not_an_object.status, StatusCode::BAD_REQUEST);
}

#[test]
fn the_admin_source_needs_an_admin_key() {
    let error = refused(json!({"id": "r", "score": 1, "source": "admin"}), false);
    assert_eq!(error.status, StatusCode::FORBIDDEN);
    assert_eq!(error.param.as_deref(), Some("source"));
    assert_eq!(error.code, Some("insufficient_permissions"));
}

#[test]
fn feedback_ids_are_per_org_target_source_and_key() {
    let org = OrgId::new("acme");
    let key = ApiKeyId::new("key-1");
    let request = Target::Request {
        request_id: RequestId::new("chatcmpl-1"),
    };
    let id = feedback_id(&org, &request, FeedbackSource::User, &key);
    assert_eq!(id, feedback_id(&org, &request, FeedbackSource::User, &key));
    assert!(
        id.as_str().starts_with("fb-") && id.as_str().len() == 35,
        "{id}"
    );
    let others = [
        feedback_id(&OrgId::new("globex"), &request, FeedbackSource::User, &key),
        feedback_id(&org, &request, FeedbackSource::Admin, &key),
        feedback_id(
            &org,
            &request,
            FeedbackSource::User,
            &ApiKeyId::new("key-2"),
        ),
        feedback_id(
            &org,
            &Target::Request {
                request_id: RequestId::new("chatcmpl-2"),
            },
            FeedbackSource::User,
            &key,
        ),
        // A session named like the request is another target.
        feedback_id(
            &org,
            &Target::Session {
                session_id: SessionId::new("chatcmpl-1"),
            },
            FeedbackSource::User,
            &key,
        ),
    ];
    for other in others {
        assert_ne!(id, other);
    }
}

#[test]
fn session_ratings_are_keyed_like_the_sessions_decisions() {
    let session = SessionId::new("sess-9");
    // The gateway keys a session's decisions with `session_or_request(Some(session), request)`.
    let decision_key =
        PartitionKey::session_or_request(Some(&session), &RequestId::new("chatcmpl-1"));
    let rating = Target::Session {
        session_id: session.clone(),
    };
    assert_eq!(partition_key(&rating, None), decision_key);
    let request = Target::Request {
        request_id: RequestId::new("chatcmpl-1"),
    };
    assert_eq!(partition_key(&request, Some(&session)), decision_key);
    assert_eq!(partition_key(&request, None).as_str(), "chatcmpl-1");
}

fn session_rating() -> FeedbackSubmitted {
    FeedbackSubmitted {
        envelope: Envelope {
            event_id: EventId::now_v7(),
            org: OrgId::new("acme"),
            event_time: Timestamp::from_micros(1_764_000_000_000_000),
            trace_id: TraceId::new("t"),
            partition_key: PartitionKey::new("s-1"),
        },
        feedback_id: FeedbackId::new("fb-1"),
        target: Target::Session {
            session_id: SessionId::new("s-1"),
        },
        source: FeedbackSource::Nps,
        raw_score: 9.0,
        raw_scale: RawScale::Nps,
        normalized_score: UnitScore::saturating(0.9),
        idempotency_key: None,
        comment: None,
        derived_from: None,
        route: None,
        model: None,
        labels: BTreeMap::new(),
    }
}

#[tokio::test]
async fn an_unavailable_log_is_a_503_never_a_500() -> anyhow::Result<()> {
    use switchyard_log::EventLog;
    use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};

    let log = EmbeddedLog::temporary(EmbeddedOptions::default())?;
    let writer = ControlWriter::new(
        log.clone(),
        std::sync::Arc::new(switchyard_events::Codec::new()?),
    );
    append(Some(&writer), session_rating())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    log.close().await?;
    let closed = append(Some(&writer), session_rating()).await;
    let no_writer = append(None, session_rating()).await;
    for outcome in [closed, no_writer] {
        let Err(error) = outcome else {
            anyhow::bail!("accepted without a log");
        };
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE, "{error:?}");
        assert_eq!(error.code, Some("log_unavailable"));
        assert_eq!(error.kind, "server_error");
    }
    Ok(())
}
