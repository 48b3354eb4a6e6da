//! The audit: re-reads the log and proves that every decision in a time window is what the
//! router computes from its recorded inputs, signed by a known key, and that every route's
//! constraints hash chain is intact.
//!
//! For each `RouteDecided` in the window ([`audit`]):
//!
//! 1. **Signature.** The trace's Ed25519 signature verifies with the key it names (the keys of
//!    `<data_dir>/keys`, published at `GET /v1/keys`).
//! 2. **Inputs.** The inputs are rebuilt from the log, not taken from the trace: the route's
//!    policy from the configuration file and the org's `RouteConfigured` of the recorded
//!    `route_version` (topic `control`) and the constraints chain up to the recorded
//!    `constraints_hash` (topic `constraints`); the route statistics from the org's
//!    `RoutingTableUpdated` snapshot of the recorded `routing_table_version` (the version of
//!    the org's snapshot the decision read); the pin from the trace, checked against a
//!    `RoutePinned` of the route (topic `pins`); the seed and canary bucket from the decision id,
//!    org, route and session; the request's capability needs from the recorded `features`; the
//!    benchmark priors from the shipped ones, blended, for a decision that read the shared
//!    learning pool, with the pool's snapshot (org `*pool`, topic `routing-table`) of the
//!    recorded `pool_version` exactly as ingress blends it (`[learning_pool] prior_strength`). A
//!    `pool_version` recorded for an org that does not share is a finding.
//! 3. **Recompute.** [`switchyard_router::decide`] runs on those inputs and its trace is built
//!    exactly as ingress builds it; every top-level field that differs from the recorded trace
//!    is a [`Finding`] (`field`, `expected`, `recorded`). The shadow-mirror spend cap is the one
//!    input not rebuilt (it is a running sum of spend): the recompute is accepted when the
//!    recorded trace equals the recomputation with the cap open or with it exhausted.
//!
//! Compacted topics (`control`, `pins`, `routing-table`) keep every record younger than the
//! audit horizon (`log.compaction_min_lag`), so every input of a decision within the horizon is
//! in the log. An input missing for an older decision makes it *unverifiable* (listed apart, not
//! a failure); missing for a decision within the horizon, it is a finding.
//!
//! The constraints chains are verified from their first link, in log order, with the fold's own
//! rule (`sequence`, `prev_hash`, `hash`): a link that does not extend its chain is a finding.
//!
//! The audit is generic over [`EventLog`]: it runs on the embedded log and on Kafka alike.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use switchyard_config::LearningPoolConfig;
use switchyard_events::{
    Codec, ConstraintsChanged, Event, RouteConfigured, RouteDecided, RoutePinned,
    RoutingTableUpdated, Timestamp, Topic,
};
use switchyard_log::{EventLog, LogError, StoredRecord};
use switchyard_router::{
    Context, Lang, Models, POOL_ORG, Pin, Priors, PublicKey, Request, RouteStats, TraceIds,
    build_trace, needs_of, stats_of,
};

use crate::control::{RouteFacts, RouteKey, extend_chain};
use crate::routes::{RoutingDefaults, build_view};

/// Records read per call to the log.
const BATCH: usize = 1000;

/// Pool blends kept for reuse (the priors blended with one pool snapshot each).
const POOL_BLENDS: usize = 64;

/// What the audit checks decisions against.
pub struct Auditor<'a> {
    /// The configuration file's routes and `[routing]` (the server's configuration).
    pub defaults: &'a RoutingDefaults,
    /// Benchmark priors (shipped plus the operator's file).
    pub priors: &'a Priors,
    /// The shared learning pool's members and blend strength (`[orgs.*]`, `[learning_pool]`).
    pub pool: &'a LearningPoolConfig,
    /// The models the router may use (catalog rows whose provider is configured).
    pub models: &'a dyn Models,
    /// Keys that verify trace signatures.
    pub keys: Vec<PublicKey>,
    /// The current time, microseconds since the epoch.
    pub now_micros: i64,
    /// Decisions older than this (microseconds) whose inputs were compacted away are
    /// unverifiable rather than findings.
    pub horizon_micros: i64,
}

impl std::fmt::Debug for Auditor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("keys", &self.keys)
            .field("horizon_micros", &self.horizon_micros)
            .finish_non_exhaustive()
    }
}

/// One problem the audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The decision, when the finding is about one.
    pub decision_id: Option<String>,
    /// The organisation.
    pub org: String,
    /// The route.
    pub route: String,
    /// The field (a top-level trace field, `signature`, `constraints_chain`, or an input such
    /// as `route_version`).
    pub field: String,
    /// What the audit expected.
    pub expected: serde_json::Value,
    /// What the log records.
    pub recorded: serde_json::Value,
    /// Where the record is: `topic/partition@offset`.
    pub position: String,
}

/// A decision whose inputs are no longer in the log (older than the horizon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unverifiable {
    /// The decision.
    pub decision_id: String,
    /// The organisation.
    pub org: String,
    /// Why.
    pub reason: String,
}

/// The result of an audit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    /// Window start (inclusive), microseconds since the epoch.
    pub from: Option<i64>,
    /// Window end (exclusive).
    pub to: Option<i64>,
    /// Decisions in the window.
    pub decisions: u64,
    /// Signatures that verified.
    pub signatures_verified: u64,
    /// Decisions recomputed to exactly their recorded trace.
    pub recomputed: u64,
    /// Decisions of requests that named their model (routing bypassed: signature only).
    pub named_model: u64,
    /// Constraints chains verified (one per org and route) and their links.
    pub chains: u64,
    /// Links of those chains.
    pub chain_links: u64,
    /// Decisions whose inputs were compacted away (older than the horizon).
    pub unverifiable: Vec<Unverifiable>,
    /// Everything that did not verify.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Returns whether nothing failed (unverifiable decisions are not failures).
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Progress of a long audit: records read so far of the decisions to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Decision-topic records read.
    pub read: u64,
    /// Decision-topic records in the partitions' ranges.
    pub total: u64,
    /// Decisions in the window so far.
    pub decisions: u64,
    /// Findings so far.
    pub findings: u64,
}

/// Why an audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log failed.
    #[error("reading topic {topic}: {source}")]
    Log {
        /// The topic.
        topic: Topic,
        /// The failure.
        source: LogError,
    },
}

/// The inputs folded from the control-plane and routing-table topics.
#[derive(Debug, Default)]
struct History {
    /// `RouteConfigured` by (org, route), by sequence.
    configs: HashMap<RouteKey, BTreeMap<i64, RouteConfigured>>,
    /// The verified constraints chain of each route.
    chains: HashMap<RouteKey, RouteFacts>,
    /// Every `RoutePinned` by (org, route).
    pins: HashMap<RouteKey, Vec<RoutePinned>>,
    /// Routing-table snapshots by org, by version (the learning pool's under [`POOL_ORG`]).
    tables: HashMap<String, BTreeMap<i64, RoutingTableUpdated>>,
}

/// The priors blended with each pool snapshot decisions recorded, by pool version: built once
/// per version rather than once per decision.
#[derive(Debug, Default)]
struct PoolBlends(HashMap<i64, Priors>);

fn position(r: &StoredRecord) -> String {
    format!("{}/{}@{}", r.topic, r.partition, r.offset)
}

/// Reads every record of `topic` from `start` (by partition; `None` = the log start) to the
/// current end, calling `f` on each.
async fn read_topic<L: EventLog>(
    log: &L,
    topic: Topic,
    starts: &HashMap<u32, u64>,
    mut f: impl FnMut(StoredRecord),
) -> Result<(), AuditError> {
    let err = |source| AuditError::Log { topic, source };
    for p in 0..log.partitions(topic) {
        let wm = log.watermarks(topic, p).await.map_err(err)?;
        let mut offset = starts.get(&p).copied().unwrap_or(wm.start).max(wm.start);
        while offset < wm.end {
            let batch = log.read(topic, p, offset, BATCH).await.map_err(err)?;
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            for r in batch {
                f(r);
            }
        }
    }
    Ok(())
}

/// Runs the audit of the decisions whose event time is in `[from, to)` (unbounded when
/// `None`), calling `progress` now and then.
pub async fn audit<L: EventLog>(
    log: &L,
    codec: &Codec,
    auditor: &Auditor<'_>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<AuditReport, AuditError> {
    let mut report = AuditReport {
        from: from.map(Timestamp::as_micros),
        to: to.map(Timestamp::as_micros),
        ..AuditReport::default()
    };
    let mut history = History::default();
    let mut undecodable: Vec<(String, String)> = Vec::new();

    // 1. The constraints chains, in log order (one route's changes share a partition).
    let mut links: Vec<(ConstraintsChanged, String)> = Vec::new();
    read_topic(log, Topic::Constraints, &HashMap::new(), |r| {
        match codec.decode(&r.value) {
            Ok(Event::ConstraintsChanged(e)) => links.push((e, position(&r))),
            Ok(_) => {}
            Err(e) => undecodable.push((position(&r), e.to_string())),
        }
    })
    .await?;
    for (change, at) in links {
        let key = RouteKey::new(&change.envelope.org, &change.route);
        let facts = history.chains.entry(key.clone()).or_default();
        if let Err(problem) = extend_chain(facts, &change) {
            report.findings.push(Finding {
                decision_id: None,
                org: key.org.as_str().to_owned(),
                route: key.route.as_str().to_owned(),
                field: "constraints_chain".into(),
                expected: serde_json::Value::String(problem),
                recorded: serde_json::json!({
                    "sequence": change.sequence,
                    "prev_hash": change.prev_hash,
                    "hash": change.hash,
                    "changed_by": change.changed_by,
                }),
                position: at,
            });
        }
    }
    report.chains = history.chains.len() as u64;
    report.chain_links = history.chains.values().map(|f| f.chain.len() as u64).sum();

    // 2. Route configurations and pins (every version the log still has).
    for topic in [Topic::Control, Topic::Pins] {
        read_topic(log, topic, &HashMap::new(), |r| {
            match codec.decode(&r.value) {
                Ok(Event::RouteConfigured(e)) => {
                    let key = RouteKey::new(&e.envelope.org, &e.route);
                    history
                        .configs
                        .entry(key)
                        .or_default()
                        .insert(e.sequence, e);
                }
                Ok(Event::RoutePinned(e)) => {
                    let key = RouteKey::new(&e.envelope.org, &e.route);
                    history.pins.entry(key).or_default().push(e);
                }
                Ok(_) => {}
                Err(e) => undecodable.push((position(&r), e.to_string())),
            }
        })
        .await?;
    }

    // 3. Routing-table snapshots, by org and version.
    read_topic(log, Topic::RoutingTable, &HashMap::new(), |r| {
        match codec.decode(&r.value) {
            Ok(Event::RoutingTableUpdated(e)) => {
                history
                    .tables
                    .entry(e.envelope.org.as_str().to_owned())
                    .or_default()
                    .insert(e.version, e);
            }
            Ok(_) => {}
            Err(e) => undecodable.push((position(&r), e.to_string())),
        }
    })
    .await?;

    // 4. The decisions in the window.
    let topic = Topic::Decisions;
    let mut starts = HashMap::new();
    let mut total = 0u64;
    for p in 0..log.partitions(topic) {
        let wm = log
            .watermarks(topic, p)
            .await
            .map_err(|source| AuditError::Log { topic, source })?;
        let start = match from {
            Some(from) => log
                .offset_for_time(topic, p, from.as_micros().div_euclid(1000))
                .await
                .map_err(|source| AuditError::Log { topic, source })?
                .unwrap_or(wm.end),
            None => wm.start,
        };
        total += wm.end.saturating_sub(start);
        starts.insert(p, start);
    }
    let mut read = 0u64;
    let mut seen: HashSet<(String, [u8; 32])> = HashSet::new();
    let mut blends = PoolBlends::default();
    read_topic(log, topic, &starts, |r| {
        read += 1;
        match codec.decode(&r.value) {
            Ok(Event::RouteDecided(d)) => {
                let t = d.envelope.event_time;
                if from.is_none_or(|f| t >= f) && to.is_none_or(|to| t < to) {
                    // A redelivered copy (the same bytes) is the same decision.
                    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&r.value).into();
                    if seen.insert((d.decision_id.as_str().to_owned(), digest)) {
                        report.decisions += 1;
                        auditor.check(&history, &mut blends, &d, &position(&r), &mut report);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => undecodable.push((position(&r), e.to_string())),
        }
        if read.is_multiple_of(5000) {
            progress(Progress {
                read,
                total,
                decisions: report.decisions,
                findings: report.findings.len() as u64,
            });
        }
    })
    .await?;
    progress(Progress {
        read,
        total,
        decisions: report.decisions,
        findings: report.findings.len() as u64,
    });
    for (at, error) in undecodable {
        report.findings.push(Finding {
            decision_id: None,
            org: String::new(),
            route: String::new(),
            field: "record".into(),
            expected: serde_json::Value::String("a decodable event".into()),
            recorded: serde_json::Value::String(error),
            position: at,
        });
    }
    Ok(report)
}

/// A rebuilt input, or why it could not be rebuilt.
enum Input<T> {
    Found(T),
    /// Not in the log; the text says what is missing.
    Missing(String),
}

impl Auditor<'_> {
    /// Checks one decision; appends findings (or an unverifiable entry) to the report.
    fn check(
        &self,
        history: &History,
        blends: &mut PoolBlends,
        d: &RouteDecided,
        at: &str,
        report: &mut AuditReport,
    ) {
        let org = d.envelope.org.as_str();
        let finding =
            |field: &str, expected: serde_json::Value, recorded: serde_json::Value| Finding {
                decision_id: Some(d.decision_id.as_str().to_owned()),
                org: org.to_owned(),
                route: d.route.as_str().to_owned(),
                field: field.to_owned(),
                expected,
                recorded,
                position: at.to_owned(),
            };

        // 1. The signature.
        match self.keys.iter().find(|k| k.key_id == d.signing_key_id) {
            Some(key) => match key.verify(d) {
                Ok(()) => report.signatures_verified += 1,
                Err(e) => report.findings.push(finding(
                    "signature",
                    serde_json::Value::String(format!(
                        "a valid Ed25519 signature by {}",
                        key.key_id
                    )),
                    serde_json::Value::String(format!("{} ({e})", d.signature)),
                )),
            },
            None => report.findings.push(finding(
                "signing_key_id",
                serde_json::json!(
                    self.keys
                        .iter()
                        .map(|k| k.key_id.clone())
                        .collect::<Vec<_>>()
                ),
                serde_json::Value::String(d.signing_key_id.clone()),
            )),
        }
        if d.reason == "named_model" {
            report.named_model += 1;
            return;
        }

        // 2. The inputs, from the log.
        let missing = |report: &mut AuditReport, field: &str, what: String| {
            let old = d.envelope.event_time.as_micros() < self.now_micros - self.horizon_micros;
            if old {
                report.unverifiable.push(Unverifiable {
                    decision_id: d.decision_id.as_str().to_owned(),
                    org: org.to_owned(),
                    reason: what,
                });
            } else {
                report.findings.push(finding(
                    field,
                    serde_json::Value::String(what),
                    serde_json::Value::Null,
                ));
            }
        };
        let key = RouteKey::new(&d.envelope.org, &d.route);
        let configured = if d.route_version > 0 {
            match history
                .configs
                .get(&key)
                .and_then(|c| c.get(&(d.route_version - 1)))
            {
                Some(c) => Input::Found(Some(c.clone())),
                None => Input::Missing(format!(
                    "route configuration version {} is not in the log (control topic compacted)",
                    d.route_version
                )),
            }
        } else {
            Input::Found(None)
        };
        let Input::Found(configured) = configured else {
            if let Input::Missing(what) = configured {
                missing(report, "route_version", what);
            }
            return;
        };
        let chain = if d.constraints_hash.is_empty() {
            Vec::new()
        } else {
            let chain = history
                .chains
                .get(&key)
                .map(|f| f.chain.as_slice())
                .unwrap_or(&[]);
            match chain.iter().position(|c| c.hash == d.constraints_hash) {
                Some(i) => chain[..=i].to_vec(),
                None => {
                    // The constraints topic keeps everything: a hash not in the chain is never
                    // a matter of compaction.
                    report.findings.push(finding(
                        "constraints_hash",
                        serde_json::json!(chain.iter().map(|c| c.hash.clone()).collect::<Vec<_>>()),
                        serde_json::Value::String(d.constraints_hash.clone()),
                    ));
                    return;
                }
            }
        };
        let facts = RouteFacts {
            configured,
            pin: None,
            chain,
            refused: Vec::new(),
        };
        let policy = match build_view(
            self.defaults.config_route(d.route.as_str()),
            Some(&facts),
            self.defaults,
        ) {
            Ok(Some(view)) => view.policy,
            Ok(None) => {
                report.findings.push(finding(
                    "route",
                    serde_json::Value::String(
                        "a route in the configuration file or the org's RouteConfigured".into(),
                    ),
                    serde_json::Value::String(d.route.as_str().to_owned()),
                ));
                return;
            }
            Err(e) => {
                report.findings.push(finding(
                    "route",
                    serde_json::Value::String(format!("a valid policy ({e})")),
                    serde_json::Value::String(d.route.as_str().to_owned()),
                ));
                return;
            }
        };
        let pin = match &d.pin {
            None => None,
            Some(p) => {
                let real = history.pins.get(&key).is_some_and(|pins| {
                    pins.iter().any(|e| {
                        e.model == p.model
                            && e.reason == p.reason
                            && e.pinned_by == p.pinned_by
                            && e.envelope.event_time <= d.envelope.event_time
                    })
                });
                if !real {
                    missing(
                        report,
                        "pin",
                        format!(
                            "a RoutePinned of {} to {} ({:?} by {}) before the decision",
                            d.route, p.model, p.reason, p.pinned_by
                        ),
                    );
                    return;
                }
                Some(Pin {
                    model: p.model.as_str().to_owned(),
                    reason: p.reason,
                    pinned_by: p.pinned_by.clone(),
                })
            }
        };
        let version = d.routing_table_version;
        let stats: Option<RouteStats> = if version == 0 {
            None
        } else {
            match history.tables.get(org).and_then(|t| t.get(&version)) {
                Some(snapshot) => stats_of(snapshot).remove(d.route.as_str()),
                None => {
                    missing(
                        report,
                        "routing_table_version",
                        format!(
                            "routing-table version {version} of org {org} is not in the log (table version compacted)"
                        ),
                    );
                    return;
                }
            }
        };

        // The priors: the shipped ones, or the blend with the pool snapshot the decision read.
        let priors: &Priors = match d.pool_version {
            None => self.priors,
            Some(pool_version) if !self.pool.is_member(org) => {
                report.findings.push(finding(
                    "pool_version",
                    serde_json::Value::Null,
                    serde_json::json!(pool_version),
                ));
                return;
            }
            Some(pool_version) => {
                if !blends.0.contains_key(&pool_version) {
                    let Some(snapshot) = history
                        .tables
                        .get(POOL_ORG)
                        .and_then(|t| t.get(&pool_version))
                    else {
                        missing(
                            report,
                            "pool_version",
                            format!(
                                "learning-pool snapshot version {pool_version} is not in the log (table version compacted)"
                            ),
                        );
                        return;
                    };
                    if blends.0.len() >= POOL_BLENDS {
                        blends.0.clear();
                    }
                    blends.0.insert(
                        pool_version,
                        self.priors.with_pool(snapshot, self.pool.prior_strength),
                    );
                }
                let Some(priors) = blends.0.get(&pool_version) else {
                    return;
                };
                priors
            }
        };

        // 3. Recompute and compare.
        let session = d.session_id.as_ref().map(|s| s.as_str());
        let request = Request {
            org,
            needs: needs_of(&d.features),
            seed: Request::seed_of(d.decision_id.as_str()),
            canary_bucket: Request::bucket_of(
                org,
                &policy.name,
                session.unwrap_or(d.decision_id.as_str()),
            ),
        };
        let lang = Lang::parse(&d.explanation_language).unwrap_or_default();
        let recorded = match serde_json::to_value(d) {
            Ok(v) => v,
            Err(_) => return,
        };
        let mut best: Option<Vec<(String, serde_json::Value, serde_json::Value)>> = None;
        // The mirror spend cap: open first, then exhausted (see the module documentation).
        for budget_left in [true, false] {
            let ctx = Context {
                policy: &policy,
                stats: stats.as_ref(),
                table_version: version,
                priors,
                models: self.models,
                pin: pin.as_ref(),
                mirror_budget_left: policy.mirror_fraction > 0.0 && budget_left,
            };
            let diffs = match switchyard_router::decide(&ctx, &request) {
                Ok(outcome) => {
                    let mut expected = build_trace(
                        TraceIds {
                            envelope: d.envelope.clone(),
                            decision_id: d.decision_id.clone(),
                            request_id: d.request_id.clone(),
                            session_id: d.session_id.clone(),
                        },
                        &policy,
                        stats.as_ref(),
                        &request.needs,
                        &outcome,
                        lang,
                    );
                    expected.signature.clone_from(&d.signature);
                    expected.signing_key_id.clone_from(&d.signing_key_id);
                    diff(
                        &serde_json::to_value(&expected).unwrap_or_default(),
                        &recorded,
                    )
                }
                Err(e) => vec![(
                    "served_model".to_owned(),
                    serde_json::Value::String(format!("no capable model ({e})")),
                    recorded["served_model"].clone(),
                )],
            };
            if diffs.is_empty() {
                report.recomputed += 1;
                return;
            }
            if best.is_none() {
                best = Some(diffs);
            }
        }
        for (field, expected, recorded) in best.unwrap_or_default() {
            report.findings.push(finding(&field, expected, recorded));
        }
    }
}

/// Trace fields that carry the signature (checked on their own), not the decision.
const SIGNATURE_FIELDS: [&str; 3] = ["signature", "signing_key_id", "signature_proof"];

/// The top-level fields whose values differ: `(field, expected, recorded)`.
fn diff(
    expected: &serde_json::Value,
    recorded: &serde_json::Value,
) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    let (Some(e), Some(r)) = (expected.as_object(), recorded.as_object()) else {
        return vec![("trace".into(), expected.clone(), recorded.clone())];
    };
    let mut fields: Vec<&String> = e.keys().chain(r.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        // Signature fields sign the trace; they are not outputs of the decision.
        .filter(|k| !SIGNATURE_FIELDS.contains(&k.as_str()))
        .filter_map(|k| {
            let (a, b) = (
                e.get(k).cloned().unwrap_or_default(),
                r.get(k).cloned().unwrap_or_default(),
            );
            (a != b).then(|| (k.clone(), a, b))
        })
        .collect()
}

/// The models the router may use: catalog rows whose provider is configured (what ingress
/// serves from).
#[derive(Debug)]
pub struct ConfiguredModels {
    /// The catalog.
    pub catalog: switchyard_providers::Catalog,
    /// Names of the configured providers.
    pub providers: HashSet<String>,
}

impl Models for ConfiguredModels {
    fn model(&self, id: &str) -> Option<&switchyard_providers::ModelInfo> {
        self.catalog
            .get(id)
            .filter(|m| self.providers.contains(m.provider()))
    }
}
