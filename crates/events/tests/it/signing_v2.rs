//! Signing payload v2 (binary): the fast writer against its definition
//! (`signing_payload_v2_reference`: the decision's JSON text parsed back, reduced to the signed
//! members as for v1, encoded with the type the JSON text gives each number), and what it
//! covers: any change to a signed member changes it, a change to the signature does not.

use anyhow::Result;
use proptest::prelude::*;
use switchyard_events::*;

use crate::arbitrary;
use crate::fixtures::sample;

fn v2(decision: &RouteDecided) -> Vec<u8> {
    decision.signing_payload_as(PayloadFormat::V2)
}

fn check_v2(decision: &RouteDecided) -> Result<Vec<u8>, TestCaseError> {
    let fast = v2(decision);
    let reference = decision
        .signing_payload_v2_reference()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&fast, &reference, "v2 payload differs from its reference");
    // Into a reused buffer (as a signer writes a batch): the same bytes, nothing left over.
    let mut reused = vec![0xff; 40];
    decision.write_signing_payload_as(PayloadFormat::V2, &mut reused);
    prop_assert_eq!(&reused, &fast, "reused buffer");
    Ok(fast)
}

fn the_sample() -> Result<RouteDecided> {
    let Event::RouteDecided(decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    Ok(decision)
}

/// Finds `name` as an object key (u32 BE length + bytes) and returns the value after it.
fn value_after<'a>(payload: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut key = (name.len() as u32).to_be_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = payload
        .windows(key.len())
        .position(|w| w == key.as_slice())?;
    payload.get(at + key.len()..)
}

#[test]
fn the_sample_encodes_as_specified() -> Result<()> {
    let decision = the_sample()?;
    let payload = check_v2(&decision).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The top level: an object (0x07) with a u32 member count.
    let expected_members =
        match serde_json::from_slice::<serde_json::Value>(&decision.signing_payload()?)? {
            serde_json::Value::Object(map) => map.len() as u32,
            _ => anyhow::bail!("the v1 payload is an object"),
        };
    assert_eq!(payload[0], 0x07);
    assert_eq!(payload[1..5], expected_members.to_be_bytes());
    // The first member is the first key in byte order, with a tagged string (0x05).
    let mut first = vec![0, 0, 0, 14];
    first.extend_from_slice(b"baseline_model");
    first.push(0x05);
    first.extend_from_slice(&13u32.to_be_bytes());
    first.extend_from_slice(b"large-careful");
    assert_eq!(&payload[5..5 + first.len()], first.as_slice());
    // A float is 0x04 and its IEEE-754 bits big-endian; an integer 0x03 and 8 bytes BE.
    let mut confidence = vec![0x04];
    confidence.extend_from_slice(&decision.confidence.get().to_bits().to_be_bytes());
    assert_eq!(
        value_after(&payload, "confidence").map(|v| &v[..9]),
        Some(confidence.as_slice())
    );
    let mut seed = vec![0x03];
    seed.extend_from_slice(&decision.seed.to_be_bytes());
    assert_eq!(
        value_after(&payload, "seed").map(|v| &v[..9]),
        Some(seed.as_slice())
    );
    // true is 0x02; an array is 0x06 and its u32 count.
    assert_eq!(
        value_after(&payload, "reversible").map(|v| v[0]),
        Some(0x02)
    );
    let mut candidates = vec![0x06];
    candidates.extend_from_slice(&(decision.candidates.len() as u32).to_be_bytes());
    assert_eq!(
        value_after(&payload, "candidates").map(|v| &v[..5]),
        Some(candidates.as_slice())
    );
    // Nothing the signature carries is in it, nor anything pruned.
    assert!(value_after(&payload, "signature").is_none());
    assert!(value_after(&payload, "signature_proof").is_none());
    assert!(
        value_after(&payload, "pin").is_none(),
        "null members are pruned"
    );
    // And it is not the v1 payload.
    assert_ne!(payload, decision.signing_payload()?);
    Ok(())
}

#[test]
fn an_object_whose_members_are_all_pruned_is_left_out_or_null() -> Result<()> {
    let mut decision = the_sample()?;
    decision.score_weights = ScoreWeights {
        success: f64::NAN,
        feedback: f64::INFINITY,
        cost: f64::NEG_INFINITY,
    };
    let payload = check_v2(&decision).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(value_after(&payload, "score_weights").is_none());
    // An array item whose members all prune away is null (0x00), as in v1.
    decision.signals[0].weight = f64::NAN;
    decision.signals[0].contribution = f64::NAN;
    decision.signals[0].value = None;
    // `samples` and `source` are never pruned, so the item stays an object.
    let payload = check_v2(&decision).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(value_after(&payload, "signals").is_some());
    Ok(())
}

type Edit = fn(&mut RouteDecided);

/// One edit of every signed member, at every depth: each must change the payload unless it
/// leaves the decision's signed JSON members as they were (a value already pruned or at its
/// default, an addition that overflows back to the same double).
const SIGNED_EDITS: &[(&str, Edit)] = &[
    ("envelope.event_id", |d| {
        let id = uuid::Uuid::from_u128(d.envelope.event_id.as_uuid().as_u128() ^ (1 << 70));
        d.envelope.event_id = EventId::from_uuid(id).unwrap_or(d.envelope.event_id);
    }),
    ("envelope.org", |d| {
        d.envelope.org = OrgId::new(format!("{}x", d.envelope.org.as_str()))
    }),
    ("envelope.event_time", |d| {
        d.envelope.event_time = Timestamp::from_micros(d.envelope.event_time.as_micros() ^ 1)
    }),
    ("envelope.trace_id", |d| {
        d.envelope.trace_id = TraceId::new(format!("{}x", d.envelope.trace_id.as_str()))
    }),
    ("envelope.partition_key", |d| {
        d.envelope.partition_key =
            PartitionKey::new(format!("{}x", d.envelope.partition_key.as_str()))
    }),
    ("decision_id", |d| {
        d.decision_id = DecisionId::new(format!("{}x", d.decision_id.as_str()))
    }),
    ("request_id", |d| {
        d.request_id = RequestId::new(format!("{}x", d.request_id.as_str()))
    }),
    ("session_id", |d| {
        d.session_id = match &d.session_id {
            Some(_) => None,
            None => Some(SessionId::new("s")),
        }
    }),
    ("route", |d| {
        d.route = RouteName::new(format!("{}x", d.route.as_str()))
    }),
    ("mode", |d| d.mode = next(RouteMode::ALL, d.mode)),
    ("chosen_model", |d| {
        d.chosen_model = ModelName::new(format!("{}x", d.chosen_model.as_str()))
    }),
    ("baseline_model", |d| {
        d.baseline_model = ModelName::new(format!("{}x", d.baseline_model.as_str()))
    }),
    ("served_model", |d| {
        d.served_model = ModelName::new(format!("{}x", d.served_model.as_str()))
    }),
    ("reason", |d| d.reason.push('x')),
    ("phase", |d| {
        d.phase = Phase::new((d.phase.get() + 1) % 3).unwrap_or(d.phase)
    }),
    ("confidence", |d| {
        d.confidence = UnitScore::new(if d.confidence.get() > 0.5 { 0.25 } else { 0.75 })
            .unwrap_or(d.confidence)
    }),
    ("routing_table_version", |d| d.routing_table_version ^= 1),
    ("seed", |d| d.seed ^= 1),
    ("candidates (one more)", |d| {
        d.candidates.push(Candidate {
            model: ModelName::new("extra"),
            score: None,
            success: None,
            feedback: None,
            cost: None,
            filtered_reason: None,
            estimated_cost_usd: None,
        })
    }),
    ("candidates[0].model", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.model = ModelName::new(format!("{}x", c.model.as_str()));
        }
    }),
    ("candidates[0].score", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.score = c.score.map_or(Some(0.5), |s| Some(s + 0.5));
        }
    }),
    ("candidates[0].success", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.success = c.success.map_or(Some(0.5), |s| Some(s + 0.5));
        }
    }),
    ("candidates[0].feedback", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.feedback = c.feedback.map_or(Some(0.5), |s| Some(s + 0.5));
        }
    }),
    ("candidates[0].cost", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.cost = c.cost.map_or(Some(0.5), |s| Some(s + 0.5));
        }
    }),
    ("candidates[0].filtered_reason", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.filtered_reason = match &c.filtered_reason {
                Some(r) => Some(format!("{r}x")),
                None => Some("x".into()),
            };
        }
    }),
    ("candidates[0].estimated_cost_usd", |d| {
        if let Some(c) = d.candidates.first_mut() {
            c.estimated_cost_usd = match c.estimated_cost_usd {
                Some(_) => None,
                None => Usd::new(0.25).ok(),
            };
        }
    }),
    ("signals[0].weight", |d| {
        if let Some(s) = d.signals.first_mut() {
            s.weight += 0.5;
        }
    }),
    ("signals[0].value", |d| {
        if let Some(s) = d.signals.first_mut() {
            s.value = s.value.map_or(Some(0.5), |v| Some(v + 0.5));
        }
    }),
    ("signals[0].contribution", |d| {
        if let Some(s) = d.signals.first_mut() {
            s.contribution += 0.5;
        }
    }),
    ("signals[0].samples", |d| {
        if let Some(s) = d.signals.first_mut() {
            s.samples ^= 1;
        }
    }),
    ("signals[0].source", |d| {
        if let Some(s) = d.signals.first_mut() {
            s.source = next(FeedbackSource::ALL, s.source);
        }
    }),
    ("constraints[0].name", |d| {
        if let Some(c) = d.constraints.first_mut() {
            c.name.push('x');
        }
    }),
    ("constraints[0].passed", |d| {
        if let Some(c) = d.constraints.first_mut() {
            c.passed = !c.passed;
        }
    }),
    ("constraints[0].limit", |d| {
        if let Some(c) = d.constraints.first_mut() {
            c.limit = c.limit.map_or(Some(0.5), |v| Some(v + 0.5));
        }
    }),
    ("constraints[0].observed", |d| {
        if let Some(c) = d.constraints.first_mut() {
            c.observed = c.observed.map_or(Some(0.5), |v| Some(v + 0.5));
        }
    }),
    ("constraints[0].detail", |d| {
        if let Some(c) = d.constraints.first_mut() {
            c.detail = match &c.detail {
                Some(_) => None,
                None => Some("x".into()),
            };
        }
    }),
    ("evidence.samples", |d| d.evidence.samples ^= 1),
    ("evidence.score_gap", |d| {
        d.evidence.score_gap = d.evidence.score_gap.map_or(Some(0.5), |v| Some(v + 0.5))
    }),
    ("evidence.variance", |d| {
        d.evidence.variance = d.evidence.variance.map_or(Some(0.5), |v| Some(v + 0.5))
    }),
    ("evidence.regressions", |d| {
        let n = d.evidence.regressions.len();
        d.evidence.regressions.insert(format!("bucket {n}"), 1);
    }),
    ("evidence.regressions value", |d| {
        if let Some(v) = d.evidence.regressions.values_mut().next() {
            *v ^= 1;
        }
    }),
    ("pin", |d| {
        d.pin = match &d.pin {
            Some(_) => None,
            None => Some(PinInfo {
                model: ModelName::new("m"),
                reason: PinReason::ALL[0],
                pinned_by: "ops".into(),
            }),
        }
    }),
    ("pin.pinned_by", |d| {
        if let Some(p) = d.pin.as_mut() {
            p.pinned_by.push('x');
        }
    }),
    ("reversible", |d| d.reversible = !d.reversible),
    ("explanation", |d| d.explanation.push('x')),
    ("explanation_language", |d| d.explanation_language.push('x')),
    ("shadow_model", |d| {
        d.shadow_model = match &d.shadow_model {
            Some(_) => None,
            None => Some(ModelName::new("shadow")),
        }
    }),
    ("canary_percent", |d| {
        d.canary_percent = match d.canary_percent {
            Some(_) => None,
            None => Percent::new(5).ok(),
        }
    }),
    ("signing_key_id", |d| d.signing_key_id.push('x')),
    ("features.input_tokens", |d| d.features.input_tokens ^= 1),
    ("features.max_output_tokens", |d| {
        d.features.max_output_tokens ^= 1
    }),
    ("features.tools", |d| d.features.tools = !d.features.tools),
    ("features.json_schema", |d| {
        d.features.json_schema = !d.features.json_schema
    }),
    ("features.vision", |d| {
        d.features.vision = !d.features.vision
    }),
    ("features.stream", |d| {
        d.features.stream = !d.features.stream
    }),
    ("score_weights.success", |d| d.score_weights.success += 0.5),
    ("score_weights.feedback", |d| {
        d.score_weights.feedback += 0.5
    }),
    ("score_weights.cost", |d| d.score_weights.cost += 0.5),
    ("constraints_hash", |d| d.constraints_hash.push('x')),
    ("route_version", |d| d.route_version ^= 1),
    ("unpriced_models", |d| {
        d.unpriced_models.push(ModelName::new("unpriced"))
    }),
    ("mirrored", |d| d.mirrored = !d.mirrored),
    ("canary_bucket", |d| {
        d.canary_bucket = match d.canary_bucket {
            Some(_) => None,
            None => Some(7),
        }
    }),
    ("pool_version", |d| {
        d.pool_version = match d.pool_version {
            Some(v) => Some(v ^ 1),
            None => Some(1),
        }
    }),
];

/// Edits of what the signature carries: none may change the payload.
const UNSIGNED_EDITS: &[(&str, Edit)] = &[
    ("signature", |d| d.signature.push('x')),
    ("signature_proof", |d| {
        d.signature_proof = match &d.signature_proof {
            Some(_) => None,
            None => Some(SignatureProof::default()),
        }
    }),
    ("signature_proof.path", |d| {
        if let Some(p) = d.signature_proof.as_mut() {
            p.path.push("00".repeat(32));
        }
    }),
    ("signature_proof.payload_format", |d| {
        if let Some(p) = d.signature_proof.as_mut() {
            p.payload_format = 3 - p.payload_format;
        }
    }),
];

/// Returns the item after `item` in `all`, cyclically.
fn next<T: Copy + PartialEq>(all: &[T], item: T) -> T {
    let i = all.iter().position(|x| *x == item).unwrap_or(0);
    all[(i + 1) % all.len()]
}

#[test]
fn every_signed_member_is_covered_on_the_sample() -> Result<()> {
    let decision = the_sample()?;
    let payload = v2(&decision);
    for (name, edit) in SIGNED_EDITS {
        let mut edited = decision.clone();
        edit(&mut edited);
        // Edits that find nothing to edit in the sample (no pin) are checked on `arbitrary`.
        if edited == decision {
            continue;
        }
        assert_ne!(v2(&edited), payload, "{name} is not covered by v2");
    }
    for (name, edit) in UNSIGNED_EDITS {
        let mut edited = decision.clone();
        edit(&mut edited);
        assert_eq!(v2(&edited), payload, "{name} changed the v2 payload");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_v2_payload_is_the_reference_payload(decision in arbitrary::route_decided()) {
        check_v2(&decision)?;
    }

    /// Any edit of a signed member changes the v2 payload exactly when it changes the signed
    /// JSON members (which the v1 reference payload spells out: equal payloads, equal members),
    /// and an edit of the signature never does.
    #[test]
    fn v2_changes_exactly_with_the_signed_members(
        decision in arbitrary::route_decided(),
        edit in 0..SIGNED_EDITS.len(),
        unsigned in 0..UNSIGNED_EDITS.len(),
    ) {
        let before = check_v2(&decision)?;
        let before_v1 = decision.signing_payload_reference()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (name, edit) = SIGNED_EDITS[edit];
        let mut edited = decision.clone();
        edit(&mut edited);
        let after = check_v2(&edited)?;
        let after_v1 = edited.signing_payload_reference()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(before == after, before_v1 == after_v1, "{}", name);

        let (name, edit) = UNSIGNED_EDITS[unsigned];
        let mut resigned = decision.clone();
        edit(&mut resigned);
        prop_assert_eq!(v2(&resigned), before, "{}", name);
    }
}
