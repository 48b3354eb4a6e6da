//! Deterministic sampling, judgement ids and model families: pure functions of ids.

use sha2::{Digest, Sha256};
use switchyard_events::{JudgementId, ModelName, OrgId, RequestId, ResponseCompleted, Timestamp};

/// Microseconds in a UTC day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Returns SHA-256 over a version tag and length-prefixed parts (no part runs into the next).
fn digest(tag: &str, parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in std::iter::once(tag).chain(parts.iter().copied()) {
        let len = u64::try_from(part.len()).unwrap_or(u64::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Returns the sampling point of a request in `0..1`: uniform over request ids, and a pure
/// function of the id, so a redelivered or replayed response is sampled exactly when it was
/// the first time. A response is sampled when its point is below its route's rate, so raising
/// a rate keeps every request sampled before.
pub fn sample_point(request: &RequestId) -> f64 {
    let hash = digest("switchyard/judge/sample/v1", &[request.as_str()]);
    let mut first = [0u8; 8];
    first.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
    // The top 53 bits: every value is an exact f64 in 0..1.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Returns whether a request is sampled at `rate` (0 never, 1 always).
pub fn sampled(request: &RequestId, rate: f64) -> bool {
    sample_point(request) < rate
}

/// Returns the request a response answers: the original request for a shadow mirror (whose
/// request id is the original's with `#mirror` appended), else the response's own request.
pub fn original_request(response: &ResponseCompleted) -> RequestId {
    match response
        .request_id
        .as_str()
        .strip_suffix(ResponseCompleted::MIRROR_SUFFIX)
    {
        Some(original) if response.shadow => RequestId::new(original),
        _ => response.request_id.clone(),
    }
}

/// Returns the judgement id of the judgement of response `request` (a mirror's id for a
/// mirror) of `org` with rubric `rubric_version`: `jdg-` and 32 hex digits. Every judgement of
/// one response under one rubric has this id, however often it is re-emitted.
pub fn judgement_id(org: &OrgId, request: &RequestId, rubric_version: &str) -> JudgementId {
    let hash = digest(
        "switchyard/judge/judgement/v1",
        &[org.as_str(), request.as_str(), rubric_version],
    );
    JudgementId::new(format!(
        "jdg-{}",
        hex::encode(hash.get(..16).unwrap_or_default())
    ))
}

/// Returns the UTC day (days since the Unix epoch) of an event time: the spend cap's period.
pub fn utc_day(time: Timestamp) -> i64 {
    time.as_micros().div_euclid(DAY_MICROS)
}

/// Returns the first event time of the UTC day after `day`.
pub fn next_day_start(day: i64) -> i64 {
    day.saturating_add(1).saturating_mul(DAY_MICROS)
}

/// Returns the family of a model (`provider/model` or a bare name): who trained it, as far as
/// the name tells. Known prefixes map to their vendor (`gpt-4o`, `o3-mini` → `openai`;
/// `claude-…` → `anthropic`; `gemini-…`, `gemma-…` → `google`; `llama-…` → `meta`; …); any
/// other name's family is its first run of letters (`small` for `demo/small`), so two models of
/// an unknown vendor share a family only when their names start alike. Provider prefixes are
/// ignored: `together/meta-llama/Llama-3.3-70B` is `meta`.
pub fn model_family(model: &ModelName) -> String {
    let name = model.as_str().to_ascii_lowercase();
    // The first segment of `provider/model` is the provider's table name, which says nothing
    // about the model; the last names the model, and vendor-namespaced ids
    // (`meta-llama/...`) keep a hint in the segment before it.
    let mut segments: Vec<&str> = name.split('/').collect();
    if segments.len() > 1 {
        segments.remove(0);
    }
    let last = segments.last().copied().unwrap_or_default();
    const VENDORS: &[(&str, &str)] = &[
        ("gpt", "openai"),
        ("chatgpt", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("claude", "anthropic"),
        ("gemini", "google"),
        ("gemma", "google"),
        ("llama", "meta"),
        ("meta-llama", "meta"),
        ("mistral", "mistral"),
        ("mixtral", "mistral"),
        ("codestral", "mistral"),
        ("ministral", "mistral"),
        ("magistral", "mistral"),
        ("devstral", "mistral"),
        ("pixtral", "mistral"),
        ("qwen", "qwen"),
        ("qwq", "qwen"),
        ("deepseek", "deepseek"),
        ("grok", "xai"),
        ("command", "cohere"),
        ("jamba", "ai21"),
        ("nova", "amazon"),
        ("amazon.nova", "amazon"),
        ("anthropic.claude", "anthropic"),
        ("meta.llama", "meta"),
    ];
    for segment in segments.iter().rev().take(2) {
        if let Some((_, vendor)) = VENDORS
            .iter()
            .filter(|(prefix, _)| segment.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
        {
            return (*vendor).to_owned();
        }
    }
    let letters: String = last
        .chars()
        .skip_while(|c| !c.is_ascii_alphabetic())
        .take_while(char::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() {
        last.to_owned()
    } else {
        letters
    }
}

/// Returns whether a judge model would grade a model of its own family.
pub fn same_family(judge: &ModelName, judged: &ModelName) -> bool {
    model_family(judge) == model_family(judged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_a_stable_uniform_function_of_the_request_id() {
        let ids: Vec<RequestId> = (0..20_000)
            .map(|i| RequestId::new(format!("chatcmpl-{i:08}")))
            .collect();
        let hits = ids.iter().filter(|id| sampled(id, 0.1)).count();
        assert!((1_700..=2_300).contains(&hits), "{hits} of 20000 at 10%");
        assert!(ids.iter().all(|id| !sampled(id, 0.0)));
        assert!(ids.iter().all(|id| sampled(id, 1.0)));
        // A higher rate samples a superset.
        assert!(
            ids.iter()
                .filter(|id| sampled(id, 0.1))
                .all(|id| sampled(id, 0.3))
        );
        // Stable across calls (and builds: a fixed vector).
        let point = sample_point(&RequestId::new("chatcmpl-fixed"));
        assert_eq!(point, sample_point(&RequestId::new("chatcmpl-fixed")));
        assert!((0.0..1.0).contains(&point));
    }

    #[test]
    fn a_mirror_answers_its_original_request() {
        let mut response = ResponseCompleted {
            envelope: switchyard_events::Envelope {
                event_id: switchyard_events::EventId::now_v7(),
                org: OrgId::new("o"),
                event_time: Timestamp::from_micros(0),
                trace_id: switchyard_events::TraceId::new("t"),
                partition_key: switchyard_events::PartitionKey::new("k"),
            },
            request_id: RequestId::new("req-1#mirror"),
            decision_id: switchyard_events::DecisionId::new("d"),
            session_id: None,
            served_model: ModelName::new("demo/small"),
            provider: switchyard_events::ProviderName::new("demo"),
            status: switchyard_events::ResponseStatus::Ok,
            finish_reason: None,
            usage: switchyard_events::Usage::default(),
            cost_usd: None,
            latency_ms: 1,
            ttft_ms: None,
            attempts: Vec::new(),
            error_code: None,
            completion_text: None,
            shadow: true,
        };
        assert_eq!(original_request(&response).as_str(), "req-1");
        response.shadow = false;
        assert_eq!(original_request(&response).as_str(), "req-1#mirror");
    }

    #[test]
    fn judgement_ids_name_one_response_under_one_rubric() {
        let id = |o: &str, r: &str, v: &str| {
            judgement_id(&OrgId::new(o), &RequestId::new(r), v).into_string()
        };
        assert_eq!(id("o", "r", "v1"), id("o", "r", "v1"));
        assert_ne!(id("o", "r", "v1"), id("o", "r#mirror", "v1"));
        assert_ne!(id("o", "r", "v1"), id("o2", "r", "v1"));
        assert_ne!(id("o", "r", "v1"), id("o", "r", "v2"));
        assert!(id("o", "r", "v1").starts_with("jdg-") && id("o", "r", "v1").len() == 36);
    }

    #[test]
    fn days_are_utc_days_of_event_time() {
        assert_eq!(utc_day(Timestamp::from_micros(0)), 0);
        assert_eq!(utc_day(Timestamp::from_micros(DAY_MICROS - 1)), 0);
        assert_eq!(utc_day(Timestamp::from_micros(DAY_MICROS)), 1);
        assert_eq!(utc_day(Timestamp::from_micros(-1)), -1);
        assert_eq!(next_day_start(0), DAY_MICROS);
    }

    #[test]
    fn families_group_models_by_vendor() {
        let f = |m: &str| model_family(&ModelName::new(m));
        assert_eq!(f("openai/gpt-4o"), "openai");
        assert_eq!(f("azure/gpt-4o-mini"), "openai");
        assert_eq!(f("openai/o3-mini"), "openai");
        assert_eq!(f("anthropic/claude-sonnet-4"), "anthropic");
        assert_eq!(f("bedrock/anthropic.claude-3-5-haiku"), "anthropic");
        assert_eq!(
            f("together/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            "meta"
        );
        assert_eq!(f("groq/llama-3.1-8b-instant"), "meta");
        assert_eq!(f("mistral/mistral-large-latest"), "mistral");
        assert_eq!(f("gemini/gemini-2.0-flash"), "google");
        assert_eq!(f("demo/small"), "small");
        assert!(same_family(
            &ModelName::new("demo/large"),
            &ModelName::new("demo/large")
        ));
        assert!(!same_family(
            &ModelName::new("demo/large"),
            &ModelName::new("demo/small")
        ));
        assert!(same_family(
            &ModelName::new("openai/gpt-4o"),
            &ModelName::new("azure/gpt-4.1-mini")
        ));
    }
}
