//! Windows against a brute-force reference: random requests (responses, fallbacks, feedback
//! replaced by newer ratings, judge scores and failures), delivered in random order with
//! duplicates, in random batches; plus expiry over event time and latest-wins feedback.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use switchyard_events::{
    Constraints, Event, FeedbackSource, ModelStats, ResponseStatus, RoutingTableUpdated,
};
use switchyard_projector::state::REQUESTS;
use switchyard_projector::stats::{latency_bin, latency_bin_upper, regression_bucket};
use switchyard_store::StateStore;

use crate::support::{
    BASE, CHEAP, HOUR, Harness, MID, Req, SECOND, T0, dump, model, source, test_config,
};

const ORGS: [&str; 2] = ["acme", "beta"];
/// `r1` is configured; `r2` is known only from its decisions (baseline from their hint).
const ROUTES: [&str; 2] = ["r1", "r2"];
const MODELS: [&str; 3] = [BASE, CHEAP, MID];
const MARGIN: f64 = 0.05;
const MIN_BASELINE: u64 = 3;
const WINDOW: i64 = 6 * HOUR;
const BUCKET: i64 = HOUR;

#[derive(Debug, Clone)]
struct ResponseSpec {
    status: ResponseStatus,
    /// Whether the gateway fell back to the baseline.
    fell_back: bool,
    cost_micro_usd: Option<u32>,
    latency_ms: u16,
    delay: i64,
}

#[derive(Debug, Clone)]
struct FeedbackSpec {
    source: FeedbackSource,
    /// (score in tenths, delay); later versions replace earlier ones.
    versions: Vec<(u8, i64)>,
}

#[derive(Debug, Clone)]
struct JudgeSpec {
    model: usize,
    /// Score in hundredths; `None`: the judge failed.
    score: Option<u8>,
    delay: i64,
}

#[derive(Debug, Clone)]
struct RequestSpec {
    org: usize,
    route: usize,
    served: usize,
    session: Option<u8>,
    decided_at: i64,
    has_decision: bool,
    response: Option<ResponseSpec>,
    feedback: Vec<FeedbackSpec>,
    judge: Vec<JudgeSpec>,
}

fn arb_status() -> impl Strategy<Value = ResponseStatus> {
    prop_oneof![
        6 => Just(ResponseStatus::Ok),
        1 => Just(ResponseStatus::Error),
        1 => Just(ResponseStatus::Timeout),
        1 => Just(ResponseStatus::Truncated),
        1 => Just(ResponseStatus::Refused),
        1 => Just(ResponseStatus::Cancelled),
    ]
}

fn arb_source() -> impl Strategy<Value = FeedbackSource> {
    prop_oneof![
        4 => Just(FeedbackSource::User),
        1 => Just(FeedbackSource::Admin),
        2 => Just(FeedbackSource::Nps),
        1 => Just(FeedbackSource::Judge),
    ]
}

fn arb_request() -> impl Strategy<Value = RequestSpec> {
    let response = (
        arb_status(),
        proptest::bool::weighted(0.1),
        proptest::option::weighted(0.8, 1u32..50_000),
        1u16..3000,
        0i64..30 * SECOND,
    )
        .prop_map(
            |(status, fell_back, cost_micro_usd, latency_ms, delay)| ResponseSpec {
                status,
                fell_back,
                cost_micro_usd,
                latency_ms,
                delay,
            },
        );
    let feedback = (
        arb_source(),
        proptest::collection::vec((0u8..=10, 1i64..3 * HOUR), 1..3),
    )
        .prop_map(|(source, mut versions)| {
            // Strictly later versions: the newest replaces the others.
            versions.sort_by_key(|(_, delay)| *delay);
            versions.dedup_by_key(|(_, delay)| *delay);
            FeedbackSpec { source, versions }
        });
    // The baseline is judged well (0.60..=1.00), the others anywhere: regressions happen.
    let judge = (
        0usize..3,
        proptest::option::weighted(0.85, 0u8..=100),
        1i64..HOUR,
    )
        .prop_map(|(model, score, delay)| JudgeSpec {
            model,
            score: score.map(|s| if model == 0 { 60 + s % 41 } else { s }),
            delay,
        });
    (
        prop_oneof![3 => Just(0usize), 1 => Just(1usize)],
        prop_oneof![3 => Just(0usize), 1 => Just(1usize)],
        0usize..3,
        proptest::option::of(0u8..4),
        0i64..10 * HOUR,
        proptest::bool::weighted(0.9),
        proptest::option::weighted(0.85, response),
        proptest::collection::vec(feedback, 0..3),
        proptest::collection::vec(judge, 0..3),
    )
        .prop_map(
            |(org, route, served, session, decided_at, has_decision, response, feedback, judge)| {
                RequestSpec {
                    org,
                    route,
                    served,
                    session,
                    decided_at: T0 + decided_at,
                    has_decision,
                    response,
                    feedback,
                    judge,
                }
            },
        )
}

fn req(i: usize, spec: &RequestSpec) -> Req {
    let mut req = Req::new(ORGS[spec.org], ROUTES[spec.route], &format!("req-{i}"));
    if let Some(session) = spec.session {
        req = req.in_session(&format!("sess-{}-{session}", spec.org));
    }
    req
}

fn events_of(specs: &[RequestSpec]) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let req = req(i, spec);
        let served = MODELS[spec.served];
        if spec.has_decision {
            events.push(req.decision(served, BASE, spec.decided_at));
        }
        if let Some(r) = &spec.response {
            let by = if r.fell_back { BASE } else { served };
            events.push(req.response(
                by,
                r.status,
                r.cost_micro_usd.map(|c| f64::from(c) / 1e6),
                i64::from(r.latency_ms),
                spec.decided_at + r.delay,
            ));
        }
        for (f, fb) in spec.feedback.iter().enumerate() {
            for (v, (tenths, delay)) in fb.versions.iter().enumerate() {
                events.push(req.feedback(
                    &format!("fb-{i}-{f}"),
                    v as u32,
                    fb.source,
                    f64::from(*tenths) / 10.0,
                    spec.decided_at + delay,
                ));
            }
        }
        for (j, judge) in spec.judge.iter().enumerate() {
            events.push(req.judged(
                &format!("j-{i}-{j}"),
                MODELS[judge.model],
                judge.score.map(|s| f64::from(s) / 100.0),
                spec.decided_at + judge.delay,
            ));
        }
    }
    events
}

/// What the reference expects of one (org, route, model).
#[derive(Debug, Default)]
struct Expected {
    requests: u64,
    successes: u64,
    errors: u64,
    priced: u64,
    cost_nano: u128,
    latencies: Vec<u64>,
    /// Quality observations per source: (time bucket, value).
    scores: BTreeMap<FeedbackSource, Vec<(i64, f64)>>,
}

/// The brute-force reference: each request's facts (newest version of each), what they
/// contribute, and whether that is in the window at `now`.
fn reference(specs: &[RequestSpec], org: usize, now: i64) -> BTreeMap<(String, String), Expected> {
    let bucket = |at: i64| at.div_euclid(BUCKET) * BUCKET;
    let in_window = |at: i64| bucket(at) + BUCKET > now - WINDOW;
    let mut out: BTreeMap<(String, String), Expected> = BTreeMap::new();
    for spec in specs.iter().filter(|s| s.org == org) {
        let route = ROUTES[spec.route].to_owned();
        let served = MODELS[spec.served];
        if spec.has_decision {
            let answered_by = match &spec.response {
                Some(r) if r.fell_back => BASE,
                _ => served,
            };
            if let Some(r) = &spec.response
                && r.status != ResponseStatus::Cancelled
                && in_window(spec.decided_at + r.delay)
            {
                let e = out.entry((route.clone(), served.to_owned())).or_default();
                e.requests += 1;
                let fell_back = r.fell_back && served != BASE;
                if fell_back {
                    e.errors += 1;
                } else {
                    match r.status {
                        ResponseStatus::Ok => e.successes += 1,
                        ResponseStatus::Error | ResponseStatus::Timeout => e.errors += 1,
                        _ => {}
                    }
                    if let Some(c) = r.cost_micro_usd {
                        e.priced += 1;
                        e.cost_nano += u128::from(c) * 1000;
                    }
                    e.latencies.push(u64::from(r.latency_ms));
                }
            }
            for fb in &spec.feedback {
                let Some((tenths, delay)) = fb.versions.last() else {
                    continue;
                };
                let at = spec.decided_at + delay;
                if in_window(at) {
                    out.entry((route.clone(), answered_by.to_owned()))
                        .or_default()
                        .scores
                        .entry(fb.source)
                        .or_default()
                        .push((bucket(at), f64::from(*tenths) / 10.0));
                }
            }
        }
        for judge in &spec.judge {
            let at = spec.decided_at + judge.delay;
            if let Some(score) = judge.score
                && in_window(at)
            {
                out.entry((route.clone(), MODELS[judge.model].to_owned()))
                    .or_default()
                    .scores
                    .entry(FeedbackSource::Judge)
                    .or_default()
                    .push((bucket(at), f64::from(score) / 100.0));
            }
        }
    }
    out
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() < 2 {
        0.0
    } else {
        values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    };
    (mean, var)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9
}

fn check_model(
    route: &str,
    name: &str,
    got: &ModelStats,
    want: &Expected,
    baseline: Option<&Expected>,
    z: f64,
) -> Result<(), TestCaseError> {
    let at = format!("{route}/{name}");
    prop_assert_eq!(got.samples, want.requests as i64, "requests of {}", at);
    prop_assert_eq!(got.successes, want.successes as i64, "successes of {}", at);
    prop_assert_eq!(got.errors, want.errors as i64, "errors of {}", at);
    prop_assert_eq!(
        got.latency_samples,
        want.latencies.len() as i64,
        "latencies of {}",
        at
    );
    let mut sorted = want.latencies.clone();
    sorted.sort_unstable();
    let p95 = if sorted.is_empty() {
        0
    } else {
        let rank = (sorted.len() * 95).div_ceil(100).max(1);
        latency_bin_upper(latency_bin(sorted[rank - 1])) as i64
    };
    prop_assert_eq!(got.p95_latency_ms, p95, "p95 of {}", at);
    if want.priced > 0 {
        let cost = want.cost_nano as f64 / 1e9 / want.priced as f64;
        prop_assert!(
            close(got.cost_mean_usd, cost),
            "cost of {}: {} vs {}",
            at,
            got.cost_mean_usd,
            cost
        );
    } else if want.requests > 0 {
        prop_assert!(
            got.cost_mean_usd.is_nan(),
            "unknown cost of {} is {}",
            at,
            got.cost_mean_usd
        );
    }
    for src in [
        FeedbackSource::Nps,
        FeedbackSource::Judge,
        FeedbackSource::Admin,
        FeedbackSource::User,
    ] {
        let values: Vec<f64> = want
            .scores
            .get(&src)
            .map(|v| v.iter().map(|(_, x)| *x).collect())
            .unwrap_or_default();
        let stats = got.sources.iter().find(|s| s.source == src);
        match stats {
            None => prop_assert!(values.is_empty(), "{} of {} missing", src, at),
            Some(stats) => {
                let (mean, var) = mean_var(&values);
                prop_assert_eq!(
                    stats.samples,
                    values.len() as i64,
                    "{} samples of {}",
                    src,
                    at
                );
                prop_assert!(
                    close(stats.mean, mean),
                    "{} mean of {}: {} vs {}",
                    src,
                    at,
                    stats.mean,
                    mean
                );
                prop_assert!(
                    close(stats.variance, var),
                    "{} variance of {}: {} vs {}",
                    src,
                    at,
                    stats.variance,
                    var
                );
            }
        }
    }
    // Regressions: in each time bucket whose mean is more than `z` standard errors below the
    // baseline's mean minus the margin, and in every bucket from the change point on (the
    // start of the run of recent buckets, pooled, that falls the most standard errors below,
    // when that is more than `z`), the values more than the margin below the baseline's mean.
    // A comparison within 1e-9 of its limit may fall either way.
    let mut low = 0u64;
    let mut high = 0u64;
    let mut possible: BTreeMap<&str, u64> = BTreeMap::new();
    if name != BASE
        && let Some(baseline) = baseline
    {
        for (src, observations) in &want.scores {
            // Session NPS never counts regressions (its scores are not independent).
            if *src == switchyard_events::FeedbackSource::Nps {
                continue;
            }
            let Some(reference) = baseline
                .scores
                .get(src)
                .map(|v| v.iter().map(|(_, x)| *x).collect::<Vec<f64>>())
                .filter(|v| v.len() as u64 >= MIN_BASELINE)
            else {
                continue;
            };
            let (mean_b, var_b) = mean_var(&reference);
            let mut by_bucket: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (bucket, value) in observations {
                by_bucket.entry(*bucket).or_default().push(*value);
            }
            let statistic = |values: &[f64]| {
                let (mean_k, var_k) = mean_var(values);
                let n_k = values.len() as f64;
                let error = (var_k.max(var_b) / n_k + var_b / reference.len() as f64).sqrt();
                let gap = mean_b - MARGIN - mean_k;
                (gap, error)
            };
            let buckets: Vec<&Vec<f64>> = by_bucket.values().collect();
            // Every suffix's statistic; the change point is the largest above z.
            let suffix: Vec<(f64, f64)> = (0..buckets.len())
                .map(|j| {
                    let pooled: Vec<f64> = buckets[j..]
                        .iter()
                        .flat_map(|v| v.iter().copied())
                        .collect();
                    statistic(&pooled)
                })
                .collect();
            let t = |(gap, error): (f64, f64)| {
                if error > 0.0 {
                    gap / error
                } else if gap > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            };
            let best = suffix
                .iter()
                .map(|s| t(*s))
                .fold(f64::NEG_INFINITY, f64::max);
            // Starts that may be the change point (ties within rounding), and whether one
            // surely is.
            let starts: Vec<usize> = (0..buckets.len())
                .filter(|j| {
                    let (gap, error) = suffix[*j];
                    gap > z * error - 1e-9 && t(suffix[*j]) >= best - 1e-6
                })
                .collect();
            let sure_start = match starts.as_slice() {
                [only] if suffix[*only].0 > z * suffix[*only].1 + 1e-9 => Some(*only),
                _ => None,
            };
            let maybe_start = starts.iter().min().copied();
            for (k, values) in buckets.iter().enumerate() {
                let (gap, error) = statistic(values);
                let (gate_sure, gate_maybe) = (
                    gap > z * error + 1e-9 || sure_start.is_some_and(|j| k >= j),
                    gap > z * error - 1e-9 || maybe_start.is_some_and(|j| k >= j),
                );
                for value in values.iter() {
                    let drop = mean_b - value;
                    if gate_sure && drop > MARGIN + 1e-9 {
                        low += 1;
                    }
                    if gate_maybe && drop > MARGIN - 1e-9 {
                        high += 1;
                        for d in [drop - 1e-9, drop + 1e-9] {
                            *possible.entry(regression_bucket(d)).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    let total: i64 = got.regressions.values().sum();
    prop_assert!(
        (low as i64..=high as i64).contains(&total),
        "regressions of {}: {} not in {}..={}",
        at,
        total,
        low,
        high
    );
    for (label, n) in &got.regressions {
        prop_assert!(
            *n as u64 <= possible.get(label.as_str()).copied().unwrap_or(0),
            "{} regressions of {} in {}",
            n,
            at,
            label
        );
    }
    Ok(())
}

fn check_snapshot(
    specs: &[RequestSpec],
    org: usize,
    snapshot: Option<&RoutingTableUpdated>,
    z: f64,
) -> Result<(), TestCaseError> {
    let Some(snapshot) = snapshot else {
        // No input of the org changed a window: nothing to show either.
        let expected = reference(specs, org, i64::MIN / 2);
        prop_assert!(
            expected
                .values()
                .all(|e| e.requests == 0 && e.scores.is_empty()),
            "{} has data but no snapshot",
            ORGS[org]
        );
        return Ok(());
    };
    let now = snapshot.generated_at.as_micros();
    let expected = reference(specs, org, now);
    for ((route, name), want) in &expected {
        let got = model(snapshot, route, name);
        prop_assert!(
            got.is_some(),
            "{}/{} missing from the snapshot",
            route,
            name
        );
        // A route known only from judge scores has no baseline: no regressions.
        let baseline_known = snapshot
            .routes
            .iter()
            .any(|r| r.route.as_str() == route && r.baseline_model.as_str() == BASE);
        let baseline = expected
            .get(&(route.clone(), BASE.to_owned()))
            .filter(|_| baseline_known);
        if let Some(got) = got {
            check_model(route, name, got, want, baseline, z)?;
        }
    }
    for entry in &snapshot.routes {
        for m in &entry.models {
            if !expected
                .contains_key(&(entry.route.as_str().to_owned(), m.model.as_str().to_owned()))
            {
                prop_assert_eq!(m.samples, 0, "{}/{} has requests", entry.route, m.model);
                prop_assert!(
                    m.sources.is_empty(),
                    "{}/{} has feedback",
                    entry.route,
                    m.model
                );
            }
        }
        // The configured baseline, or the one the route's decisions name; none without either.
        let has_decision = specs
            .iter()
            .any(|s| s.org == org && s.has_decision && ROUTES[s.route] == entry.route.as_str());
        let want = if entry.route.as_str() == "r1" || has_decision {
            BASE
        } else {
            ""
        };
        prop_assert_eq!(entry.baseline_model.as_str(), want);
    }
    Ok(())
}

/// Runs one case: folds the events in the given order, in the given batches, and compares
/// each org's newest snapshot with the reference.
async fn run_case(
    specs: Vec<RequestSpec>,
    order: Vec<usize>,
    duplicates: Vec<usize>,
    batches: Vec<usize>,
    partitions: u32,
    z: f64,
) -> Result<(), TestCaseError> {
    let events = events_of(&specs);
    let mut delivered: Vec<Event> = order
        .iter()
        .filter_map(|i| events.get(i % events.len().max(1)).cloned())
        .collect();
    // Redelivery: some events appended a second time, later.
    for (k, d) in duplicates.iter().enumerate() {
        if let Some(event) = events.get(d % events.len().max(1)) {
            let at = (k * 7 + d) % (delivered.len() + 1);
            delivered.insert(at, event.clone());
        }
    }
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let constraints = Constraints {
        max_regression: Some(MARGIN),
        ..Constraints::default()
    };
    let mut config = test_config(constraints);
    config.default_max_regression = MARGIN;
    config.min_baseline_samples = MIN_BASELINE;
    config.regression_z = z;
    let mut harness = Harness::open(dir.path(), config, partitions)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    harness
        .fold(&delivered, &batches)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    for (org, name) in ORGS.iter().enumerate() {
        check_snapshot(&specs, org, harness.last_snapshot(name), z)?;
    }
    Ok(())
}

#[test]
fn windows_fold_like_the_brute_force_reference() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let strategy = proptest::collection::vec(arb_request(), 1..40).prop_flat_map(|specs| {
        let n = events_of(&specs).len();
        (
            Just(specs),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            proptest::collection::vec(0usize..1000, 0..6),
            proptest::collection::vec(1usize..12, 1..5),
            1u32..5,
            prop_oneof![Just(0.0), Just(1.0), Just(2.33)],
        )
    });
    runner
        .run(
            &strategy,
            |(specs, order, duplicates, batches, partitions, z)| {
                rt.block_on(run_case(specs, order, duplicates, batches, partitions, z))
            },
        )
        .expect("windows agree with the reference");
}

#[tokio::test]
async fn buckets_leave_the_window_with_event_time_and_join_state_is_dropped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = test_config(Constraints::default());
    config.join_grace = Duration::from_secs(3600);
    let mut harness = Harness::open(dir.path(), config, 2)?;
    // Hour 0: two requests on p/cheap; hour 3: one more.
    let mut events = Vec::new();
    for (i, hour) in [(0, 0), (1, 0), (2, 3)] {
        let req = Req::new("acme", "r1", &format!("req-{i}"));
        let at = T0 + hour * HOUR + 10 * SECOND;
        events.push(req.decision(CHEAP, BASE, at));
        events.push(req.response(CHEAP, ResponseStatus::Ok, Some(0.001), 100, at + SECOND));
        events.push(req.judged(&format!("j-{i}"), CHEAP, Some(0.8), at + 2 * SECOND));
    }
    harness.fold(&events, &[4]).await?;
    let stats = |h: &Harness| {
        let snapshot = h.last_snapshot("acme").expect("a snapshot");
        let m = model(snapshot, "r1", CHEAP).expect("p/cheap");
        (m.samples, source(m, FeedbackSource::Judge).0)
    };
    assert_eq!(stats(&harness), (3, 3));

    // At 6h59m the hour-0 bucket (ending at 1h) is still in the 6 h window...
    let late = Req::new("acme", "r1", "req-late");
    harness
        .fold(
            &[late.decision(MID, BASE, T0 + 6 * HOUR + 59 * 60 * SECOND)],
            &[1],
        )
        .await?;
    let probe = late.response(
        MID,
        ResponseStatus::Ok,
        None,
        80,
        T0 + 6 * HOUR + 59 * 60 * SECOND,
    );
    harness.fold(&[probe], &[1]).await?;
    assert_eq!(stats(&harness), (3, 3));
    // ...and at 7h it has left, on event time alone.
    let later = Req::new("acme", "r1", "req-later");
    harness
        .fold(
            &[
                later.decision(MID, BASE, T0 + 7 * HOUR),
                later.response(MID, ResponseStatus::Ok, None, 80, T0 + 7 * HOUR),
            ],
            &[2],
        )
        .await?;
    assert_eq!(stats(&harness), (1, 1));
    // At 10h the hour-3 bucket has left too.
    let last = Req::new("acme", "r1", "req-last");
    harness
        .fold(
            &[
                last.decision(MID, BASE, T0 + 10 * HOUR),
                last.response(MID, ResponseStatus::Ok, None, 80, T0 + 10 * HOUR),
            ],
            &[2],
        )
        .await?;
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    let cheap = model(snapshot, "r1", CHEAP).expect("p/cheap listed");
    assert_eq!((cheap.samples, cheap.latency_samples), (0, 0));
    assert!(cheap.sources.is_empty());
    // p/mid's requests at 6h59m, 7h and 10h are all in the window.
    assert_eq!(model(snapshot, "r1", MID).map(|m| m.samples), Some(3));

    // Join state: request records live `window + bucket + join_grace` (8 h) past their last
    // fact; a late input on the same partition drops the old ones (each partition drops its
    // own).
    let records = harness
        .store
        .scan_prefix(REQUESTS, b"", None, usize::MAX)
        .await?;
    ensure!(records.len() <= 6, "{} records", records.len());
    let far = T0 + 40 * HOUR;
    for p in 0..32 {
        let req = Req::new("acme", "r1", &format!("req-far-{p}"));
        harness.fold(&[req.decision(MID, BASE, far)], &[1]).await?;
    }
    let records = harness
        .store
        .scan_prefix(REQUESTS, b"", None, usize::MAX)
        .await?;
    let names: Vec<String> = records
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    ensure!(
        names.iter().all(|n| n.contains("req-far-")),
        "stale join state kept: {names:?}"
    );
    // The cells of expired buckets are gone from every partition that saw new traffic.
    let tables = dump(&harness.store).await?;
    ensure!(tables.values().map(Vec::len).sum::<usize>() > 0);
    Ok(())
}

#[tokio::test]
async fn a_replaced_rating_counts_once_with_its_newest_value() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(Constraints::default()), 3)?;
    let req = Req::new("acme", "r1", "req-1").in_session("s1");
    let at = T0 + HOUR;
    let events = vec![
        // The rating and its replacement arrive before the decision they are about.
        req.feedback("fb-1", 1, FeedbackSource::User, 0.2, at + 20 * SECOND),
        req.feedback("fb-1", 2, FeedbackSource::User, 1.0, at + 40 * SECOND),
        req.decision(CHEAP, BASE, at),
        // An older version delivered late, and the newest again: neither changes anything.
        req.feedback("fb-1", 1, FeedbackSource::User, 0.2, at + 20 * SECOND),
        req.feedback("fb-1", 2, FeedbackSource::User, 1.0, at + 40 * SECOND),
        req.response(CHEAP, ResponseStatus::Ok, Some(0.002), 250, at + 5 * SECOND),
        req.response(CHEAP, ResponseStatus::Ok, Some(0.002), 250, at + 5 * SECOND),
    ];
    harness.fold(&events, &[2, 1]).await?;
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    let cheap = model(snapshot, "r1", CHEAP).expect("p/cheap");
    assert_eq!(source(cheap, FeedbackSource::User), (1, 1.0));
    assert_eq!((cheap.samples, cheap.successes, cheap.errors), (1, 1, 0));
    assert!((cheap.cost_mean_usd - 0.002).abs() < 1e-12);
    assert_eq!(cheap.p95_latency_ms, 250);
    // The baseline is listed with empty statistics.
    let base = model(snapshot, "r1", BASE).expect("the baseline is listed");
    assert_eq!((base.samples, base.sources.len()), (0, 0));
    Ok(())
}

#[tokio::test]
async fn a_fallback_is_an_error_of_the_routed_model_and_a_mirror_counts_for_the_shadow_model()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut harness = Harness::open(dir.path(), test_config(Constraints::default()), 2)?;
    let at = T0 + HOUR;
    let fallback = Req::new("acme", "r1", "req-fb");
    let shadowed = Req::new("acme", "r1", "req-sh").in_session("s9");
    let events = vec![
        fallback.decision(CHEAP, BASE, at),
        fallback.response(BASE, ResponseStatus::Ok, Some(0.01), 900, at + SECOND),
        fallback.feedback("fb-x", 1, FeedbackSource::User, 0.9, at + 2 * SECOND),
        shadowed.mirror(MID, Some(0.0005), 120, at + 3 * SECOND),
        shadowed.decision(BASE, BASE, at),
        shadowed.response(BASE, ResponseStatus::Ok, Some(0.01), 300, at + SECOND),
    ];
    harness.fold(&events, &[6]).await?;
    let snapshot = harness.last_snapshot("acme").expect("a snapshot");
    let cheap = model(snapshot, "r1", CHEAP).expect("p/cheap");
    assert_eq!((cheap.samples, cheap.successes, cheap.errors), (1, 0, 1));
    assert_eq!(cheap.latency_samples, 0);
    assert!(
        cheap.cost_mean_usd.is_nan(),
        "the fallback's cost is not p/cheap's"
    );
    // The answer came from the baseline: the rating is the baseline's.
    let base = model(snapshot, "r1", BASE).expect("baseline");
    assert_eq!(source(base, FeedbackSource::User), (1, 0.9));
    assert_eq!((base.samples, base.successes), (1, 1));
    let mid = model(snapshot, "r1", MID).expect("the shadow model");
    assert_eq!(
        (mid.samples, mid.successes, mid.p95_latency_ms),
        (1, 1, 120)
    );
    assert!((mid.cost_mean_usd - 0.0005).abs() < 1e-12);
    Ok(())
}

/// The request ids that have join state (keys: length-prefixed org, then request id).
async fn joined(harness: &Harness) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (key, _) in harness
        .store
        .scan_prefix(REQUESTS, b"", None, usize::MAX)
        .await?
    {
        let org_len = u32::from_be_bytes(key[..4].try_into()?) as usize;
        names.push(String::from_utf8(key[4 + org_len + 4..].to_vec())?);
    }
    Ok(names)
}

#[tokio::test]
async fn the_expiry_sweep_drains_a_backlog_and_misses_no_late_or_renewed_request() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = test_config(Constraints::default());
    // Join state lives 6 h + 1 h + 1 h = 8 h past a request's last fact.
    config.join_grace = Duration::from_secs(3600);
    let mut harness = Harness::open(dir.path(), config, 1)?;
    let mut events = Vec::new();
    for i in 0..100 {
        let req = Req::new("acme", "r1", &format!("old-{i}"));
        events.push(req.decision(CHEAP, BASE, T0 + i * SECOND));
        events.push(req.response(CHEAP, ResponseStatus::Ok, None, 80, T0 + i * SECOND));
    }
    // Rated 5 h later: its join state lives until 13 h.
    let renewed = Req::new("acme", "r1", "renewed");
    events.push(renewed.decision(CHEAP, BASE, T0));
    events.push(renewed.feedback("fb-r", 1, FeedbackSource::User, 1.0, T0 + 5 * HOUR));
    harness.fold(&events, &[7]).await?;
    ensure!(joined(&harness).await?.len() == 101);

    // At 9 h the old requests are due: at most 16 per input, so a backlog drains over inputs.
    for i in 0..8 {
        let req = Req::new("acme", "r1", &format!("new-{i}"));
        harness
            .fold(&[req.decision(MID, BASE, T0 + 9 * HOUR + i * SECOND)], &[1])
            .await?;
    }
    let names = joined(&harness).await?;
    ensure!(
        names
            .iter()
            .all(|n| n.starts_with("new-") || n == "renewed")
            && names.len() == 9,
        "after the sweep: {names:?}"
    );
    // A request whose facts are already past retention when they arrive (expiring at 7 h,
    // behind the sweep's cursor) is dropped as well.
    let late = Req::new("acme", "r1", "late");
    harness
        .fold(&[late.decision(MID, BASE, T0 - HOUR)], &[1])
        .await?;
    let names = joined(&harness).await?;
    ensure!(!names.iter().any(|n| n == "late"), "late kept: {names:?}");
    // The renewed request goes at 13 h, the new ones at 17 h.
    let tick = Req::new("acme", "r1", "tick");
    harness
        .fold(&[tick.decision(MID, BASE, T0 + 13 * HOUR + SECOND)], &[1])
        .await?;
    let names = joined(&harness).await?;
    ensure!(
        !names.iter().any(|n| n == "renewed")
            && names.iter().filter(|n| n.starts_with("new-")).count() == 8,
        "at 13 h: {names:?}"
    );
    harness
        .fold(&[tick.decision(MID, BASE, T0 + 18 * HOUR)], &[1])
        .await?;
    let names = joined(&harness).await?;
    ensure!(names == ["tick"], "at 18 h: {names:?}");
    Ok(())
}
