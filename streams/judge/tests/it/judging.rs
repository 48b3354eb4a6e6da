//! The judge against a stand-in judge model, driven event by event over a real store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use switchyard_config::SelfPreference;
use switchyard_events::{
    Event, JudgeOutcome, OrgId, RequestId, ResponseCompleted, ResponseStatus, Timestamp,
};
use switchyard_judge::sample::utc_day;
use switchyard_judge::{DEFAULT_ROUTE, day_usage, judgement_id, sampled};

use crate::support::{
    Answer, DAY, Driver, MINUTE, StandIn, T0, config, mirror, ok, request, response,
};

const PROMPT: &str = "user: What is the capital of France?";

fn score_of(outcome: &JudgeOutcome) -> Option<f64> {
    match outcome {
        JudgeOutcome::Scored { score } => Some(score.get()),
        JudgeOutcome::Failed { .. } => None,
    }
}

#[tokio::test]
async fn a_sampled_response_gets_the_parsed_score() -> Result<()> {
    let standin = StandIn::start(|_, _| {
        Answer::Text("```json\n{\"score\": 7, \"reason\": \"correct and brief\"}\n```".into())
    })
    .await?;
    // $10 per 1M input tokens: 1000 tokens cost $0.01.
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), true)?)?;
    let judged = driver
        .run(&[
            request("acme", "r1", "support", Some(PROMPT), T0),
            ok("acme", "r1", "demo/small", T0 + 1_000),
        ])
        .await?;
    assert_eq!(judged.len(), 1);
    let j = &judged[0];
    assert_eq!(score_of(&j.outcome), Some(6.0 / 9.0));
    assert_eq!(j.attempts, 1);
    assert_eq!(j.request_id.as_str(), "r1");
    assert_eq!(j.decision_id.as_str(), "dec-r1");
    assert_eq!(j.route.as_str(), "support");
    assert_eq!(j.model.as_str(), "demo/small");
    assert_eq!(j.judge_model.as_str(), "standin/grader-1");
    assert_eq!(j.rubric_version, "v1");
    assert_eq!(
        j.judgement_id,
        judgement_id(&OrgId::new("acme"), &RequestId::new("r1"), "v1")
    );
    assert!((j.cost_usd.map(|c| c.get()).unwrap_or(-1.0) - 0.01).abs() < 1e-12);
    // The judgement happened when the response did.
    assert_eq!(j.envelope.event_time, Timestamp::from_micros(T0 + 1_000));
    assert_eq!(j.envelope.partition_key.as_str(), "r1");

    // What the judge model was asked.
    let sent = standin.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "grader-1");
    assert_eq!(sent[0]["temperature"], 0.0);
    assert_eq!(sent[0]["response_format"]["type"], "json_schema");
    let system = sent[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(system.starts_with("switchyard-judge-rubric v1"), "{system}");
    let user = sent[0]["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        user.contains(PROMPT) && user.contains("Paris is the capital"),
        "{user}"
    );

    let usage = day_usage(
        driver.inline.store(),
        &OrgId::new("acme"),
        utc_day(Timestamp::from_micros(T0)),
    )
    .await?
    .unwrap_or_default();
    assert_eq!((usage.scored, usage.calls), (1, 1));
    assert!((usage.spent_usd - 0.01).abs() < 1e-12);
    Ok(())
}

#[tokio::test]
async fn a_response_read_before_its_request_is_judged_when_the_request_arrives() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(9)).await?;
    let mut driver = Driver::new(config(1.0), standin.judge(None, false)?)?;
    assert!(
        driver
            .step(&ok("acme", "r1", "demo/small", T0 + 1_000))
            .await?
            .is_empty()
    );
    let judged = driver
        .step(&request("acme", "r1", "support", Some(PROMPT), T0))
        .await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(score_of(&judged[0].outcome), Some(8.0 / 9.0));
    // No price known: no cost, never a made-up zero.
    assert_eq!(judged[0].cost_usd, None);
    // Without json_schema in the catalog, the rubric's instructions alone ask for the shape.
    assert!(standin.requests()[0].get("response_format").is_none());
    assert_eq!(driver.dump().await?["judge.waiting"], 0);
    Ok(())
}

#[tokio::test]
async fn malformed_output_is_retried_then_recorded_as_a_failure() -> Result<()> {
    let standin = StandIn::start(|call, _| match call {
        // r1: prose three times.
        0..=2 => Answer::prose(),
        // r2: out of range, then conflicting, then a grade.
        3 => Answer::score(11),
        4 => Answer::Text("{\"score\": 8} or maybe {\"score\": 3}".into()),
        _ => Answer::score(8),
    })
    .await?;
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), false)?)?;
    let judged = driver
        .run(&[
            request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("acme", "r1", "demo/small", T0 + 1),
        ])
        .await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].attempts, 3);
    let JudgeOutcome::Failed {
        reason: Some(reason),
    } = &judged[0].outcome
    else {
        anyhow::bail!("expected a failure, got {:?}", judged[0].outcome);
    };
    assert!(reason.contains("3 attempts"), "{reason}");
    // Every attempt is paid for.
    assert!((judged[0].cost_usd.map(|c| c.get()).unwrap_or(0.0) - 0.03).abs() < 1e-12);
    // A retry quotes the bad answer and says why.
    let sent = standin.requests();
    assert_eq!(sent.len(), 3);
    let second = sent[1]["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(second.len(), 4);
    assert_eq!(second[2]["role"], "assistant");
    assert!(
        second[3]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("could not be used")
    );

    let judged = driver
        .run(&[
            request("acme", "r2", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("acme", "r2", "demo/small", T0 + 1),
        ])
        .await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].attempts, 3);
    assert_eq!(score_of(&judged[0].outcome), Some(7.0 / 9.0));
    let usage = day_usage(
        driver.inline.store(),
        &OrgId::new("acme"),
        utc_day(Timestamp::from_micros(T0)),
    )
    .await?
    .unwrap_or_default();
    assert_eq!((usage.scored, usage.failed, usage.calls), (1, 1, 6));
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_transient_and_retried_without_skipping() -> Result<()> {
    let standin = StandIn::start(|call, _| match call {
        0 => Answer::Status(500),
        1 => Answer::Status(503),
        2 => Answer::Status(429),
        _ => Answer::score(6),
    })
    .await?;
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), false)?)?;
    driver
        .step(&request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0))
        .await?;
    let response = ok("acme", "r1", "demo/small", T0 + 1);
    for _ in 0..3 {
        driver.step_transient(&response).await?;
        // Nothing was applied: not marked, no spend.
        assert_eq!(driver.dump().await?["judge.judged"], 0);
    }
    let judged = driver.step(&response).await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(score_of(&judged[0].outcome), Some(5.0 / 9.0));
    // Outages are not attempts.
    assert_eq!(judged[0].attempts, 1);
    assert_eq!(standin.requests().len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_rejected_request_is_a_failure_at_once() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::Status(400)).await?;
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), false)?)?;
    let judged = driver
        .run(&[
            request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("acme", "r1", "demo/small", T0 + 1),
        ])
        .await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].attempts, 1);
    assert!(matches!(
        &judged[0].outcome,
        JudgeOutcome::Failed { reason: Some(r) } if r.contains("rejected")
    ));
    Ok(())
}

#[tokio::test]
async fn the_spend_cap_stops_judging_for_the_rest_of_the_event_time_day() -> Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let standin = StandIn::start(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        Answer::score(5)
    })
    .await?;
    let mut settings = config(1.0);
    // $0.01 per call: the second call reaches the cap.
    settings.daily_cap_usd = 0.015;
    let mut driver = Driver::new(settings, standin.judge(Some(10.0), false)?)?;
    let mut judged = Vec::new();
    for i in 0..4 {
        let id = format!("r{i}");
        let at = T0 + i64::from(i) * MINUTE;
        judged.extend(
            driver
                .run(&[
                    request("acme", &id, DEFAULT_ROUTE, Some(PROMPT), at),
                    ok("acme", &id, "demo/small", at + 1),
                ])
                .await?,
        );
    }
    assert_eq!(judged.len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Another org has its own cap.
    let other = driver
        .run(&[
            request("globex", "g1", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("globex", "g1", "demo/small", T0 + 1),
        ])
        .await?;
    assert_eq!(other.len(), 1);
    let day = utc_day(Timestamp::from_micros(T0));
    let usage = day_usage(driver.inline.store(), &OrgId::new("acme"), day)
        .await?
        .unwrap_or_default();
    assert_eq!((usage.scored, usage.skipped_over_cap), (2, 2));
    assert!((usage.spent_usd - 0.02).abs() < 1e-12);

    // The next UTC day of event time starts from zero, whatever the wall clock says.
    let tomorrow = (day + 1) * DAY + MINUTE;
    let next = driver
        .run(&[
            request("acme", "r9", DEFAULT_ROUTE, Some(PROMPT), tomorrow),
            ok("acme", "r9", "demo/small", tomorrow + 1),
        ])
        .await?;
    assert_eq!(next.len(), 1);
    // A late response of the capped day is still skipped.
    let late = driver
        .run(&[
            request("acme", "r5", DEFAULT_ROUTE, Some(PROMPT), T0 + 10 * MINUTE),
            ok("acme", "r5", "demo/small", T0 + 10 * MINUTE + 1),
        ])
        .await?;
    assert!(late.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_judge_without_a_price_reaches_the_cap_with_its_first_call() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(5)).await?;
    let mut driver = Driver::new(config(1.0), standin.judge(None, false)?)?;
    let mut judged = Vec::new();
    for id in ["r1", "r2"] {
        judged.extend(
            driver
                .run(&[
                    request("acme", id, DEFAULT_ROUTE, Some(PROMPT), T0),
                    ok("acme", id, "demo/small", T0 + 1),
                ])
                .await?,
        );
    }
    assert_eq!(judged.len(), 1);
    Ok(())
}

#[tokio::test]
async fn redelivery_does_not_judge_twice() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(4)).await?;
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), false)?)?;
    let events = [
        request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0),
        ok("acme", "r1", "demo/small", T0 + 1),
    ];
    assert_eq!(driver.run(&events).await?.len(), 1);
    // Both inputs again, in either order.
    assert!(driver.run(&events).await?.is_empty());
    assert!(
        driver
            .run(&[events[1].clone(), events[0].clone()])
            .await?
            .is_empty()
    );
    assert_eq!(standin.requests().len(), 1);
    // Also when the response was read first and is redelivered after its request joined it.
    let events = [
        ok("acme", "r2", "demo/small", T0 + 1),
        request("acme", "r2", DEFAULT_ROUTE, Some(PROMPT), T0),
    ];
    assert_eq!(driver.run(&events).await?.len(), 1);
    assert!(driver.run(&events).await?.is_empty());
    assert_eq!(standin.requests().len(), 2);
    let usage = day_usage(
        driver.inline.store(),
        &OrgId::new("acme"),
        utc_day(Timestamp::from_micros(T0)),
    )
    .await?
    .unwrap_or_default();
    assert_eq!((usage.scored, usage.calls), (2, 2));
    Ok(())
}

#[tokio::test]
async fn shadow_responses_are_judged_and_attributed_to_the_shadow_model() -> Result<()> {
    let standin = StandIn::start(|_, body| {
        // Grade by the answer, so the two answers of a pair get different grades.
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        if user.contains("mirror answer") {
            Answer::score(3)
        } else {
            Answer::score(9)
        }
    })
    .await?;
    let mut driver = Driver::new(config(1.0), standin.judge(Some(10.0), false)?)?;
    // The mirror is read first, then the request, then the primary response.
    let judged = driver
        .run(&[
            mirror("acme", "r1", "demo/small", Some("mirror answer"), T0 + 5),
            request("acme", "r1", "support", Some(PROMPT), T0),
            ok("acme", "r1", "demo/large", T0 + 2),
        ])
        .await?;
    assert_eq!(judged.len(), 2);
    let shadow = judged
        .iter()
        .find(|j| j.request_id.as_str() == "r1#mirror")
        .ok_or_else(|| anyhow::anyhow!("no judgement of the mirror"))?;
    let primary = judged
        .iter()
        .find(|j| j.request_id.as_str() == "r1")
        .ok_or_else(|| anyhow::anyhow!("no judgement of the primary"))?;
    assert_eq!(shadow.model.as_str(), "demo/small");
    assert_eq!(primary.model.as_str(), "demo/large");
    assert_eq!(score_of(&shadow.outcome), Some(2.0 / 9.0));
    assert_eq!(score_of(&primary.outcome), Some(8.0 / 9.0));
    // One decision, two judgements.
    assert_eq!(shadow.decision_id, primary.decision_id);
    assert_ne!(shadow.judgement_id, primary.judgement_id);
    assert_eq!(shadow.route.as_str(), "support");
    assert_ne!(shadow.envelope.event_id, primary.envelope.event_id);

    // A mirror is sampled with its request: at 30%, a pair is judged whole or not at all.
    let mut driver = Driver::new(config(0.3), standin.judge(Some(10.0), false)?)?;
    for i in 0..60 {
        let id = format!("p{i}");
        let judged = driver
            .run(&[
                request("acme", &id, "support", Some(PROMPT), T0),
                ok("acme", &id, "demo/large", T0 + 1),
                mirror("acme", &id, "demo/small", Some("mirror answer"), T0 + 2),
            ])
            .await?;
        let expected = if sampled(&RequestId::new(&id), 0.3) {
            2
        } else {
            0
        };
        assert_eq!(judged.len(), expected, "{id}");
    }
    Ok(())
}

#[tokio::test]
async fn sampling_is_deterministic_per_route() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(5)).await?;
    let mut settings = config(0.2);
    settings.routes.insert(
        "hot".into(),
        switchyard_config::JudgeRouteConfig {
            sample_rate: Some(1.0),
            capture_text: None,
        },
    );
    let events: Vec<Event> = (0..100)
        .flat_map(|i| {
            let id = format!("chatcmpl-{i:04}");
            let route = if i % 4 == 0 { "hot" } else { DEFAULT_ROUTE };
            // Responses first for half of them: the route is only known from the request.
            let pair = [
                request("acme", &id, route, Some(PROMPT), T0 + i),
                ok("acme", &id, "demo/small", T0 + i + 1),
            ];
            if i % 2 == 0 {
                pair.to_vec()
            } else {
                vec![pair[1].clone(), pair[0].clone()]
            }
        })
        .collect();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut driver = Driver::new(settings.clone(), standin.judge(Some(0.0), false)?)?;
        let judged: BTreeSet<String> = driver
            .run(&events)
            .await?
            .into_iter()
            .map(|j| j.request_id.into_string())
            .collect();
        runs.push(judged);
    }
    assert_eq!(runs[0], runs[1], "the same requests are judged on a replay");
    let expected: BTreeSet<String> = (0..100)
        .filter(|i| i % 4 == 0 || sampled(&RequestId::new(format!("chatcmpl-{i:04}")), 0.2))
        .map(|i| format!("chatcmpl-{i:04}"))
        .collect();
    assert_eq!(runs[0], expected);
    assert!((25..60).contains(&runs[0].len()), "{}", runs[0].len());
    Ok(())
}

#[tokio::test]
async fn errors_missing_texts_and_self_preference_are_not_judged() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(5)).await?;
    let mut settings = config(1.0);
    settings.self_preference = SelfPreference::Skip;
    let mut driver = Driver::new(settings, standin.judge(Some(10.0), false)?)?;
    let failed = Event::ResponseCompleted(response(
        "acme",
        "r1",
        "demo/small",
        ResponseStatus::Error,
        None,
        T0 + 1,
    ));
    let truncated = Event::ResponseCompleted(response(
        "acme",
        "r4",
        "demo/small",
        ResponseStatus::Truncated,
        Some("Paris is"),
        T0 + 1,
    ));
    let judged = driver
        .run(&[
            request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0),
            failed,
            // No prompt recorded (a route that does not capture).
            request("acme", "r2", DEFAULT_ROUTE, None, T0),
            ok("acme", "r2", "demo/small", T0 + 1),
            // The judge's own family.
            request("acme", "r3", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("acme", "r3", "standin/grader-2", T0 + 1),
            // Truncated answers are samples.
            request("acme", "r4", DEFAULT_ROUTE, Some(PROMPT), T0),
            truncated,
        ])
        .await?;
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].request_id.as_str(), "r4");
    let sent = standin.requests();
    assert!(
        sent[0]["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("cut short")
    );
    let usage = day_usage(
        driver.inline.store(),
        &OrgId::new("acme"),
        utc_day(Timestamp::from_micros(T0)),
    )
    .await?
    .unwrap_or_default();
    assert_eq!(
        (usage.skipped_no_text, usage.skipped_self, usage.scored),
        (1, 1, 1)
    );
    Ok(())
}

#[tokio::test]
async fn pending_state_expires_by_event_time() -> Result<()> {
    let standin = StandIn::start(|_, _| Answer::score(5)).await?;
    let settings = config(1.0);
    let ttl = i64::try_from(settings.pending_ttl.as_micros())?;
    let mut driver = Driver::new(settings, standin.judge(Some(10.0), false)?)?;
    // A response later than the TTL after its request is not judged.
    let judged = driver
        .run(&[
            request("acme", "r1", DEFAULT_ROUTE, Some(PROMPT), T0),
            ok("acme", "r1", "demo/small", T0 + ttl + 1),
        ])
        .await?;
    assert!(judged.is_empty());
    // A judged pair and an orphan response; then time moves on (by event time only).
    driver
        .run(&[
            request("acme", "r2", DEFAULT_ROUTE, Some(PROMPT), T0 + ttl + 2),
            ok("acme", "r2", "demo/small", T0 + ttl + 3),
            ok("acme", "orphan", "demo/small", T0 + ttl + 4),
        ])
        .await?;
    let later = T0 + 10 * ttl;
    for i in 0..8 {
        driver
            .step(&request("acme", &format!("x{i}"), "cold", None, later + i))
            .await?;
    }
    let tables = driver.dump().await?;
    assert_eq!(tables["judge.prompts"], 8, "{tables:?}");
    assert_eq!(tables["judge.waiting"], 0, "{tables:?}");
    assert_eq!(tables["judge.judged"], 0, "{tables:?}");
    assert_eq!(tables["judge.expiry"], 8, "{tables:?}");
    // The mirror id helper is what ingress uses.
    assert_eq!(
        ResponseCompleted::mirror_request_id(&RequestId::new("a")).as_str(),
        "a#mirror"
    );
    Ok(())
}
