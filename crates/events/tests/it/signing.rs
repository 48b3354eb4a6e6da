//! The fast signing payload (written straight from the fields) against its definition
//! (`signing_payload_reference`: serde JSON value, defaults removed, pruned, JCS): byte for byte,
//! on the frozen samples, on arbitrary decisions, and on the corners of JCS.

use anyhow::Result;
use proptest::collection::vec;
use proptest::prelude::*;
use switchyard_events::*;

use crate::arbitrary;
use crate::fixtures::sample;

fn both(decision: &RouteDecided) -> Result<(String, String)> {
    Ok((
        String::from_utf8(decision.signing_payload()?)?,
        String::from_utf8(decision.signing_payload_reference()?)?,
    ))
}

fn assert_same(decision: &RouteDecided) -> Result<String> {
    let (fast, reference) = both(decision)?;
    assert_eq!(
        fast, reference,
        "fast payload differs from the reference for {decision:#?}"
    );
    // Into a reused buffer (as a signer writes a batch): the same bytes, nothing left over.
    let mut reused = b"{\"an earlier payload\":1}".to_vec();
    decision.write_signing_payload(&mut reused);
    assert_eq!(String::from_utf8(reused)?, fast, "reused buffer");
    Ok(fast)
}

#[test]
fn the_frozen_samples_sign_the_same_bytes() -> Result<()> {
    let codec = Codec::new()?;
    for version in [1, 2] {
        let hex_text = std::fs::read_to_string(
            crate::schemas_dir().join(format!("samples/route_decided/v{version}.bin.hex")),
        )?;
        let Event::RouteDecided(decision) = codec.decode(&hex::decode(hex_text.trim())?)? else {
            anyhow::bail!("the v{version} sample is not a decision");
        };
        assert_same(&decision)?;
    }
    let Event::RouteDecided(decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    assert_same(&decision)?;
    Ok(())
}

/// A decision with every optional member set and nothing at its default, so every member of
/// the payload is written.
fn full() -> Result<RouteDecided> {
    let Event::RouteDecided(mut decision) = sample(EventKind::RouteDecided)? else {
        anyhow::bail!("sample is not a decision");
    };
    decision.pin = Some(PinInfo {
        model: ModelName::new("large-careful"),
        reason: PinReason::AutoRollback,
        pinned_by: "ops".into(),
    });
    decision.shadow_model = Some(ModelName::new("tiny"));
    decision.mirrored = true;
    decision.features.vision = true;
    decision.constraints[0].detail = Some("within".into());
    decision.candidates[1].score = Some(0.1);
    Ok(decision)
}

#[test]
fn every_member_is_written_in_jcs_order() -> Result<()> {
    let decision = full()?;
    let text = assert_same(&decision)?;
    // The top-level keys as written, in order, are the serde field names minus `signature`
    // and `signature_proof`, sorted: nothing dropped, nothing out of place.
    let TopLevelKeys(written) = serde_json::from_str(&text)?;
    let mut expected: Vec<String> = match serde_json::to_value(&decision)? {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        _ => anyhow::bail!("a decision is a JSON object"),
    };
    expected.retain(|k| k != "signature" && k != "signature_proof");
    expected.sort();
    assert_eq!(written, expected);
    Ok(())
}

/// The keys of a JSON object, in the order they are written.
struct TopLevelKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopLevelKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(TopLevelKeys(keys))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[test]
fn jcs_corners_match_the_reference() -> Result<()> {
    let mut decision = full()?;
    // Numbers: exact ties between two shortest forms, -0, subnormals, the plain/exponent edges.
    decision.candidates[0].score = Some(2f64.powi(-25));
    decision.candidates[0].success = Some(-(167_581_363_823_776.0 + 0.125));
    decision.candidates[0].feedback = Some(-0.0);
    decision.candidates[0].cost = Some(5e-324);
    decision.signals[0].weight = 1e21;
    decision.signals[0].contribution = 1e-7;
    decision.evidence.score_gap = Some(123_456_789_012_345_680_000.0);
    decision.evidence.variance = Some(0.000_001);
    // Non-finite numbers serialise as null and are pruned.
    decision.signals[0].value = Some(f64::NAN);
    decision.constraints[0].limit = Some(f64::INFINITY);
    // Strings: every escape, U+007F and U+2028 as is, and map keys whose UTF-16 order differs
    // from their byte order (U+FFFD sorts after 😀 in UTF-16, before it in UTF-8).
    decision.explanation = "\"q\" \\ \u{1}\u{8}\t\n\u{c}\r\u{1f}\u{7f}\u{2028}é😀".into();
    decision.evidence.regressions.insert("\u{fffd}".into(), 1);
    decision.evidence.regressions.insert("😀".into(), 2);
    decision.evidence.regressions.insert("\u{e000}".into(), -3);
    decision.evidence.regressions.insert(String::new(), 0);
    let text = assert_same(&decision)?;
    assert!(text.contains("\"score\":2.9802322387695313e-8"), "{text}");
    assert!(text.contains("\"feedback\":0,"), "{text}");
    assert!(!text.contains("\"value\""), "{text}");

    // A score_weights whose every weight is non-finite prunes to {} and is left out entirely.
    decision.score_weights = ScoreWeights {
        success: f64::NAN,
        feedback: f64::INFINITY,
        cost: f64::NEG_INFINITY,
    };
    let text = assert_same(&decision)?;
    assert!(!text.contains("score_weights"), "{text}");
    decision.score_weights.cost = 0.2;
    let text = assert_same(&decision)?;
    assert!(text.contains("\"score_weights\":{\"cost\":0.2}"), "{text}");
    Ok(())
}

/// Text with everything JCS treats specially: control characters, quotes, backslashes,
/// U+007F, U+2028, characters either side of the UTF-16 surrogate range, and any character.
fn wild_text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            any::<char>(),
            (0_u8..0x20).prop_map(char::from),
            proptest::sample::select(vec![
                '"', '\\', '\u{7f}', '\u{2028}', '\u{e000}', '\u{fffd}', '😀', 'é'
            ]),
        ],
        0..6,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Any double, including the non-finite, -0, the schema's default weights, and exact ties
/// between two shortest decimal forms.
fn wild_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (0.0..1.0_f64),
        proptest::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.4,
            0.2,
            2f64.powi(-25),
            167_581_363_823_776.0 + 0.125,
            1e21,
            1e-7,
            5e-324,
        ]),
    ]
}

/// Overwrites fields of an arbitrary decision with wild text and numbers, and resets some of
/// the fields that have a schema default to it.
fn wild(
    mut d: RouteDecided,
    texts: Vec<String>,
    numbers: Vec<f64>,
    flags: [bool; 10],
) -> RouteDecided {
    let text = |i: usize| texts.get(i).cloned().unwrap_or_default();
    let number = |i: usize| numbers.get(i).copied().unwrap_or_default();
    d.reason = text(0);
    d.explanation = text(1);
    d.envelope.org = OrgId::new(text(2));
    d.evidence.regressions.insert(text(3), -1);
    d.evidence.regressions.insert(text(4), i64::MIN);
    d.unpriced_models.push(ModelName::new(text(5)));
    d.evidence.score_gap = Some(number(0));
    d.evidence.variance = Some(number(1));
    d.score_weights.success = number(2);
    d.score_weights.feedback = number(3);
    if let Some(c) = d.candidates.first_mut() {
        c.model = ModelName::new(text(6));
        c.score = Some(number(4));
        c.cost = Some(number(5));
    }
    if let Some(s) = d.signals.first_mut() {
        s.weight = number(6);
        s.contribution = number(7);
    }
    if let Some(c) = d.constraints.first_mut() {
        c.detail = Some(text(7));
        c.limit = Some(number(8));
    }
    let defaults: [fn(&mut RouteDecided); 10] = [
        |d: &mut RouteDecided| d.features = RequestFeatures::default(),
        |d: &mut RouteDecided| d.score_weights = ScoreWeights::default(),
        |d: &mut RouteDecided| d.constraints_hash.clear(),
        |d: &mut RouteDecided| d.route_version = 0,
        |d: &mut RouteDecided| d.mirrored = false,
        |d: &mut RouteDecided| d.unpriced_models.clear(),
        |d: &mut RouteDecided| d.evidence.regressions.clear(),
        |d: &mut RouteDecided| {
            d.score_weights = ScoreWeights {
                success: f64::NAN,
                feedback: f64::NAN,
                cost: f64::NAN,
            }
        },
        |d: &mut RouteDecided| d.canary_bucket = None,
        |d: &mut RouteDecided| d.session_id = None,
    ];
    for (reset, on) in defaults.iter().zip(flags) {
        if on {
            reset(&mut d);
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_payload_is_the_reference_payload(decision in arbitrary::route_decided()) {
        let (fast, reference) = both(&decision).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(fast, reference);
    }

    #[test]
    fn fast_payload_is_the_reference_payload_on_wild_values(
        decision in arbitrary::route_decided(),
        texts in vec(wild_text(), 8),
        numbers in vec(wild_number(), 9),
        flags in any::<[bool; 10]>(),
    ) {
        let decision = wild(decision, texts, numbers, flags);
        let (fast, reference) = both(&decision).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(fast, reference);
    }
}
