//! Routes: the effective policy of each (org, route), and the admin API that changes it.
//!
//! # Effective policy
//!
//! A route's policy is built in layers, later ones winning:
//!
//! 1. the configuration file: `[routes.<name>]` (baseline, candidates, mode, canary, mirror,
//!    category, constraints, else `[routing.default_constraints]`), the same for every org;
//! 2. the org's newest `RouteConfigured` (control topic): replaces baseline, candidates, mode,
//!    canary percent, mirror fraction and cap, and category; `version` becomes its
//!    `sequence + 1` (0 = the file). A deleted route does not exist for that org. A route the
//!    file does not know exists for an org once the org configures it;
//! 3. the head of the org's constraints chain (constraints topic): replaces the constraints
//!    and sets `constraints_hash` (`""` = the file's constraints);
//! 4. `[routing]`: score weights and learning settings, for every route.
//!
//! The pin in force (pins topic) travels next to the policy, with its expiry; readers pass
//! their clock. The control plane ([`crate::control`]) folds the events and keeps one prebuilt
//! [`RouteView`] per (org, route), rebuilt when an event touches it; the request path calls
//! [`ControlPlane::route`](crate::control::ControlPlane::route) (or
//! [`effective_policy`](crate::control::ControlPlane::effective_policy) and
//! [`pin`](crate::control::ControlPlane::pin)): a lock-free load and an `Arc` clone.
//!
//! # Admin API
//!
//! Admin keys only (`switchyard keys create --admin`), always scoped to the caller's org.
//! With `auth.required = false` (the loopback default) a request without a Switchyard key is
//! the anonymous caller of org `default`, and is treated as an admin: whoever can reach a
//! loopback listener already owns the data directory. A Switchyard key that is not an admin
//! key gets 403 either way.
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /v1/routes` | every route of the org: effective policy, pin, mode |
//! | `GET /v1/routes/{route}` | one route |
//! | `PUT /v1/routes/{route}` | configure (or create) the route: `RouteConfigured` |
//! | `GET /v1/routes/{route}/constraints` | constraints in force, the whole chain, `verified` |
//! | `PUT /v1/routes/{route}/constraints` | replace the whole set: `ConstraintsChanged`; `If-Match` |
//! | `POST /v1/routes/{route}/pin` | pin: `RoutePinned` |
//! | `DELETE /v1/routes/{route}/pin` | unpin: `RouteUnpinned`; 404 when not pinned |
//!
//! Every write appends its event straight to the log, waits until it is durable and until this
//! node has folded it, then answers with the new state (read-your-writes). Writes to one route
//! are serialised on a node; across replicas a route's constraints are one partition, so their
//! order is total, and a change that lost a race (same sequence) is refused by every node's
//! fold and answered 409 to its writer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path as UrlPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_config::{
    ConstraintsConfig, RouteConfig, RoutingConfig, valid_category, valid_route_name,
};
use switchyard_events::{
    Constraints, ConstraintsChanged, Envelope, Event, EventId, ModelName, OrgId, PartitionKey,
    Percent, PinReason, RouteConfigured, RouteMode, RouteName, RoutePinned, RouteUnpinned,
    Timestamp, TraceId, UnitScore, Usd,
};
use switchyard_router::{Learning, Pin, RoutePolicy, ScoreWeights};

use crate::auth::{Caller, authenticate};
use crate::chat::{body_error, gateway_of, parse_json};
use crate::control::{ControlError, ResolvedRoute, RouteFacts, RouteKey};
use crate::gateway::Gateway;
use crate::{ApiError, AppState};

/// How long an admin write waits for this node to fold its own event before answering 503.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration-file side of every route: `[routes.*]` and `[routing]`, converted to the
/// router's types once.
#[derive(Debug, Clone, Default)]
pub struct RoutingDefaults {
    routes: BTreeMap<String, RouteConfig>,
    /// `[routing.score_weights]`.
    pub weights: ScoreWeights,
    /// `[routing.learning]` over the router's other learning defaults.
    pub learning: Learning,
    /// `[routing.default_constraints]`: routes created through the admin API start with them.
    pub default_constraints: Constraints,
}

impl RoutingDefaults {
    /// Converts the configuration.
    pub fn new(routes: &[RouteConfig], routing: &RoutingConfig) -> Self {
        let w = routing.score_weights;
        let l = routing.learning;
        RoutingDefaults {
            routes: routes.iter().map(|r| (r.name.clone(), r.clone())).collect(),
            weights: ScoreWeights {
                success: w.success,
                feedback: w.feedback,
                cost: w.cost,
            },
            learning: Learning {
                phase1_min_samples: l.phase1_min_samples,
                phase2_min_samples: l.phase2_min_samples,
                half_weight_samples: l.half_weight_samples,
                prior_sd: l.prior_sd,
                calibrate_judge: l.calibrate_judge,
                ..Learning::default()
            },
            default_constraints: Constraints::from(&routing.default_constraints),
        }
    }

    /// Returns the configured route `name`.
    pub fn config_route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.get(name)
    }

    /// Returns every configured route, in name order.
    pub fn config_routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes.values()
    }
}

/// Where a route's models and rollout come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// The configuration file.
    Config,
    /// The org's newest `RouteConfigured`.
    Events,
}

impl RouteSource {
    fn as_str(self) -> &'static str {
        match self {
            RouteSource::Config => "config",
            RouteSource::Events => "api",
        }
    }
}

/// Where a route's constraints come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintsSource {
    /// The route's own table in the configuration file.
    Route,
    /// `[routing.default_constraints]`.
    Default,
    /// The head of the org's constraints chain, with its sequence.
    Chain(i64),
}

impl ConstraintsSource {
    fn as_str(self) -> &'static str {
        match self {
            ConstraintsSource::Route => "config",
            ConstraintsSource::Default => "default",
            ConstraintsSource::Chain(_) => "chain",
        }
    }
}

/// The pin of a route, with what the router's [`Pin`] leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinInForce {
    /// The pin as the router takes it.
    pub pin: Pin,
    /// The note given with it.
    pub note: Option<String>,
    /// When it was pinned.
    pub pinned_at: Timestamp,
    /// When it lapses; `None` = until unpinned.
    pub expires_at: Option<Timestamp>,
}

impl PinInForce {
    /// Returns whether the pin is in force at `now`.
    pub fn in_force_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// One route of one org, as the request path and the admin API read it. Prebuilt by the
/// control plane whenever an event touches the route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteView {
    /// The effective policy.
    pub policy: Arc<RoutePolicy>,
    /// Most spent on shadow mirroring per UTC day; `None` = no cap.
    pub mirror_daily_cap_usd: Option<f64>,
    /// Where the models and rollout come from.
    pub source: RouteSource,
    /// Where the constraints come from.
    pub constraints_source: ConstraintsSource,
    /// The newest pin, whether or not it has expired (see [`RouteView::pin_at`]).
    pub pin: Option<PinInForce>,
}

impl RouteView {
    /// Returns the pin in force at `now`.
    pub fn pin_at(&self, now: Timestamp) -> Option<&PinInForce> {
        self.pin.as_ref().filter(|p| p.in_force_at(now))
    }
}

/// Builds the effective view of a route from the configuration file's route (if any) and the
/// org's events (if any); see the module documentation for the layers. `Ok(None)` = the route
/// does not exist for this org; `Err` = the result is not a valid policy.
pub fn build_view(
    config: Option<&RouteConfig>,
    facts: Option<&RouteFacts>,
    defaults: &RoutingDefaults,
) -> Result<Option<RouteView>, switchyard_router::PolicyError> {
    let configured = facts.and_then(|f| f.configured.as_ref());
    let (mut policy, mirror_daily_cap_usd, source) = match (configured, config) {
        (Some(c), _) if c.deleted => return Ok(None),
        (Some(c), _) => {
            let mut policy = RoutePolicy::new(
                c.route.as_str(),
                c.baseline_model.as_str(),
                c.candidates.iter().map(|m| m.as_str().to_owned()).collect(),
            );
            policy.mode = c.mode;
            policy.canary_percent = c.canary_percent.map_or(0, Percent::get);
            policy.mirror_fraction = c.mirror_fraction.map_or(0.0, UnitScore::get);
            if let Some(category) = &c.category {
                policy.category.clone_from(category);
            }
            // Exploration is a file setting; routes changed at run time keep the file's.
            if let Some(r) = config {
                policy.explore_fraction = r.explore_fraction;
                policy.explore_until_samples = r.explore_until_samples;
            }
            policy.version = c.sequence.saturating_add(1);
            policy.constraints = config.map_or(defaults.default_constraints, |r| {
                Constraints::from(&r.constraints)
            });
            (
                policy,
                c.mirror_spend_cap_usd.map(Usd::get),
                RouteSource::Events,
            )
        }
        (None, Some(r)) => {
            let mut policy =
                RoutePolicy::new(r.name.as_str(), r.baseline.as_str(), r.candidates.clone());
            policy.mode = r.mode.into();
            policy.canary_percent = r.canary_percent;
            policy.mirror_fraction = r.mirror_fraction;
            policy.explore_fraction = r.explore_fraction;
            policy.explore_until_samples = r.explore_until_samples;
            policy.category.clone_from(&r.category);
            policy.constraints = Constraints::from(&r.constraints);
            (policy, r.mirror_daily_cap_usd, RouteSource::Config)
        }
        (None, None) => return Ok(None),
    };
    let mut constraints_source = match config {
        Some(r) if r.own_constraints => ConstraintsSource::Route,
        _ => ConstraintsSource::Default,
    };
    if let Some(head) = facts.and_then(RouteFacts::head) {
        policy.constraints = head.constraints;
        policy.constraints_hash.clone_from(&head.hash);
        constraints_source = ConstraintsSource::Chain(head.sequence);
    }
    policy.weights = defaults.weights;
    policy.learning = defaults.learning.clone();
    policy.validate()?;
    let pin = facts.and_then(|f| f.pin.as_ref()).map(|p| PinInForce {
        pin: Pin {
            model: p.model.as_str().to_owned(),
            reason: p.reason,
            pinned_by: p.pinned_by.clone(),
        },
        note: p.note.clone(),
        pinned_at: p.envelope.event_time,
        expires_at: p.expires_at,
    });
    Ok(Some(RouteView {
        policy: Arc::new(policy),
        mirror_daily_cap_usd,
        source,
        constraints_source,
        pin,
    }))
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// An authenticated admin caller of the routes API.
#[derive(Debug)]
pub(crate) struct Admin {
    gateway: Arc<Gateway>,
    caller: Caller,
    max_body_bytes: usize,
}

/// Whether `caller` may use the admin API: an admin key, or the anonymous caller when keys are
/// not required (`auth.required = false`: the loopback single-node default, where reaching the
/// listener already means owning the machine).
fn may_administer(caller: &Caller, auth_required: bool) -> bool {
    caller.admin || (!auth_required && caller.key_id.as_str() == "anonymous")
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let gateway = gateway_of(state)?;
        let caller = authenticate(&parts.headers, &gateway.plane, gateway.auth_required)?;
        if !may_administer(&caller, gateway.auth_required) {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: "The routes API needs an admin key (`switchyard keys create --org ORG --admin`).".into(),
                kind: "invalid_request_error",
                param: None,
                code: Some("insufficient_permissions"),
            });
        }
        Ok(Admin {
            gateway,
            caller,
            max_body_bytes: state.max_body_bytes,
        })
    }
}

impl Admin {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.gateway.clock.now_micros())
    }

    fn key(&self, route: &str) -> RouteKey {
        RouteKey::new(&self.caller.org, &RouteName::new(route))
    }

    fn resolve(&self, route: &str) -> Result<ResolvedRoute, ApiError> {
        self.gateway
            .plane
            .route(&self.caller.org, route, self.now())
            .ok_or_else(|| route_not_found(route))
    }

    fn envelope(&self, route: &str) -> Envelope {
        let event_id = EventId::now_v7();
        Envelope {
            event_id,
            org: self.caller.org.clone(),
            event_time: self.now(),
            trace_id: TraceId::new(event_id.to_string()),
            partition_key: PartitionKey::route(&self.caller.org, &RouteName::new(route)),
        }
    }

    fn who(&self) -> String {
        self.caller.key_id.as_str().to_owned()
    }

    async fn commit(&self, event: Event) -> Result<(), ApiError> {
        self.gateway
            .plane
            .commit(&event, APPLY_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|e| write_failed(&e))
    }

    /// The route as JSON, from a fresh read of the index.
    fn route_json(&self, route: &str) -> Result<Value, ApiError> {
        Ok(route_json(&self.caller.org, &self.resolve(route)?))
    }
}

fn route_not_found(route: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "No route `{route}` in your organization. GET /v1/routes lists them; PUT /v1/routes/{route} creates it."
        ),
        kind: "invalid_request_error",
        param: Some("route".into()),
        code: Some("route_not_found"),
    }
}

fn write_failed(e: &ControlError) -> ApiError {
    tracing::warn!(error = %e, label = e.metric_label(), "admin write failed");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "The change could not be completed: {e}. Retry; a recorded change is not applied twice."
        ),
        kind: "server_error",
        param: None,
        code: Some("control_plane_unavailable"),
    }
}

fn route_param(path: Result<UrlPath<String>, PathRejection>) -> Result<String, ApiError> {
    let UrlPath(route) =
        path.map_err(|e| ApiError::invalid(format!("Bad route in the URL: {e}."), Some("route")))?;
    if !valid_route_name(&route) {
        return Err(ApiError::invalid(
            format!("Invalid route name `{route}`: 1 to 128 letters, digits, `-`, `_` or `.`."),
            Some("route"),
        ));
    }
    Ok(route)
}

impl Admin {
    /// The request body, or the OpenAI-shaped error (413 names `server.max_body_bytes`).
    fn body(&self, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
        body.map_err(|r| body_error(&r, self.max_body_bytes))
    }
}

fn secs(t: Timestamp) -> i64 {
    t.as_micros().div_euclid(1_000_000)
}

fn pin_json(pin: &PinInForce) -> Value {
    json!({
        "object": "route.pin",
        "model": pin.pin.model,
        "reason": pin.pin.reason.as_str(),
        "pinned_by": pin.pin.pinned_by,
        "note": pin.note,
        "pinned_at": secs(pin.pinned_at),
        "expires_at": pin.expires_at.map(secs),
    })
}

fn route_json(org: &OrgId, resolved: &ResolvedRoute) -> Value {
    let view = &resolved.view;
    let p = &view.policy;
    json!({
        "object": "route",
        "name": p.name,
        "org": org.as_str(),
        "source": view.source.as_str(),
        "version": p.version,
        "baseline": p.baseline,
        "candidates": p.candidates,
        "mode": p.mode.as_str(),
        "canary_percent": p.canary_percent,
        "mirror_fraction": p.mirror_fraction,
        "mirror_daily_cap_usd": view.mirror_daily_cap_usd,
        "category": p.category,
        "constraints": p.constraints,
        "constraints_hash": p.constraints_hash,
        "constraints_source": view.constraints_source.as_str(),
        "score_weights": {
            "success": p.weights.success,
            "feedback": p.weights.feedback,
            "cost": p.weights.cost,
        },
        "pinned": resolved.pin.is_some(),
        "pin": resolved.pin.as_ref().map(pin_json),
    })
}

/// `GET /v1/routes`.
pub(crate) async fn list(admin: Admin) -> Json<Value> {
    let plane = &admin.gateway.plane;
    let now = admin.now();
    let data: Vec<Value> = plane
        .route_names(&admin.caller.org)
        .iter()
        .filter_map(|name| plane.route(&admin.caller.org, name, now))
        .map(|resolved| route_json(&admin.caller.org, &resolved))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /v1/routes/{route}`.
pub(crate) async fn get(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let route = route_param(path)?;
    Ok(Json(admin.route_json(&route)?))
}

/// The body of `PUT /v1/routes/{route}`: the route's whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    baseline: String,
    #[serde(default)]
    candidates: Vec<String>,
    mode: RouteMode,
    #[serde(default)]
    canary_percent: Option<u8>,
    #[serde(default)]
    mirror_fraction: Option<f64>,
    #[serde(default)]
    mirror_daily_cap_usd: Option<f64>,
    #[serde(default)]
    category: Option<String>,
}

impl RouteBody {
    /// Checks the body against the catalog and the providers; returns the event's values.
    fn check(&self, gateway: &Gateway) -> Result<(), ApiError> {
        let servable = |id: &str| {
            gateway
                .catalog
                .get(id)
                .is_some_and(|m| gateway.providers.contains_key(m.provider()))
        };
        for (param, model) in std::iter::once(("baseline", &self.baseline))
            .chain(self.candidates.iter().map(|c| ("candidates", c)))
        {
            if !servable(model) {
                return Err(ApiError {
                    code: Some("model_not_found"),
                    ..ApiError::invalid(
                        format!(
                            "The model `{model}` is not in the model catalog or its provider is not configured. GET /v1/models lists the models."
                        ),
                        Some(param),
                    )
                });
            }
        }
        if self.candidates.contains(&self.baseline) {
            return Err(ApiError::invalid(
                format!(
                    "`candidates` lists the baseline `{}`; candidates are the models the router may pick instead of it.",
                    self.baseline
                ),
                Some("candidates"),
            ));
        }
        for (i, model) in self.candidates.iter().enumerate() {
            if self.candidates[..i].contains(model) {
                return Err(ApiError::invalid(
                    format!("`candidates` lists `{model}` twice."),
                    Some("candidates"),
                ));
            }
        }
        if let Some(p) = self.canary_percent
            && p > Percent::MAX
        {
            return Err(ApiError::invalid(
                format!("`canary_percent` must be between 0 and 100, got {p}."),
                Some("canary_percent"),
            ));
        }
        if let Some(f) = self.mirror_fraction
            && !(f.is_finite() && (0.0..=1.0).contains(&f))
        {
            return Err(ApiError::invalid(
                format!("`mirror_fraction` must be between 0 and 1, got {f}."),
                Some("mirror_fraction"),
            ));
        }
        if let Some(cap) = self.mirror_daily_cap_usd
            && !(cap.is_finite() && cap >= 0.0)
        {
            return Err(ApiError::invalid(
                format!("`mirror_daily_cap_usd` must be a non-negative number of USD, got {cap}."),
                Some("mirror_daily_cap_usd"),
            ));
        }
        if let Some(category) = &self.category
            && !valid_category(category)
        {
            return Err(ApiError::invalid(
                format!(
                    "Invalid `category` `{category}`: 1 to 64 lowercase letters, digits, `-` or `_`."
                ),
                Some("category"),
            ));
        }
        Ok(())
    }
}

/// `PUT /v1/routes/{route}`: 201 when the route is new to the org, else 200.
pub(crate) async fn put(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let route = route_param(path)?;
    let body: RouteBody = parse_json(&admin.body(body)?)?;
    body.check(&admin.gateway)?;
    let key = admin.key(&route);
    let lock = admin.gateway.plane.write_lock(&key);
    let _serialised = lock.lock().await;
    let existed = admin
        .gateway
        .plane
        .route(&admin.caller.org, &route, admin.now())
        .is_some();
    let sequence = admin
        .gateway
        .plane
        .facts(&key)
        .configured
        .map_or(0, |c| c.sequence.saturating_add(1));
    let invalid = |param: &str, e: switchyard_events::ScoreError| {
        ApiError::invalid(format!("`{param}`: {e}."), Some(param))
    };
    let event = RouteConfigured {
        envelope: admin.envelope(&route),
        route: RouteName::new(route.as_str()),
        baseline_model: ModelName::new(body.baseline.as_str()),
        candidates: body
            .candidates
            .iter()
            .map(|c| ModelName::new(c.as_str()))
            .collect(),
        mode: body.mode,
        canary_percent: body
            .canary_percent
            .map(Percent::new)
            .transpose()
            .map_err(|e| invalid("canary_percent", e))?,
        mirror_fraction: body
            .mirror_fraction
            .map(UnitScore::new)
            .transpose()
            .map_err(|e| invalid("mirror_fraction", e))?,
        mirror_spend_cap_usd: body
            .mirror_daily_cap_usd
            .map(Usd::new)
            .transpose()
            .map_err(|e| invalid("mirror_daily_cap_usd", e))?,
        category: body.category.clone(),
        changed_by: admin.who(),
        deleted: false,
        sequence,
    };
    admin.commit(event.into()).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(admin.route_json(&route)?)).into_response())
}

fn change_json(c: &ConstraintsChanged) -> Value {
    json!({
        "sequence": c.sequence,
        "constraints": c.constraints,
        "changed_by": c.changed_by,
        "changed_at": secs(c.envelope.event_time),
        "prev_hash": c.prev_hash,
        "hash": c.hash,
    })
}

fn etag(hash: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn constraints_response(admin: &Admin, route: &str) -> Result<Response, ApiError> {
    let resolved = admin.resolve(route)?;
    let facts = admin.gateway.plane.facts(&admin.key(route));
    let policy = resolved.policy();
    let body = json!({
        "object": "route.constraints",
        "route": route,
        "constraints": policy.constraints,
        "source": resolved.view.constraints_source.as_str(),
        "sequence": facts.head().map(|h| h.sequence),
        "hash": policy.constraints_hash,
        "verified": facts.verified(),
        "chain": facts.chain.iter().map(change_json).collect::<Vec<_>>(),
        "refused": facts.refused,
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(&policy.constraints_hash));
    Ok(response)
}

/// `GET /v1/routes/{route}/constraints`.
pub(crate) async fn get_constraints(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let route = route_param(path)?;
    constraints_response(&admin, &route)
}

/// The body of `PUT /v1/routes/{route}/constraints`: the whole set; a key left out is not
/// enforced.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConstraintsBody {
    #[serde(default)]
    max_regression: Option<f64>,
    #[serde(default)]
    min_quality: Option<f64>,
    #[serde(default)]
    max_error_rate: Option<f64>,
    #[serde(default)]
    max_cost_increase: Option<f64>,
    #[serde(default)]
    max_cost_per_request: Option<f64>,
    #[serde(default)]
    max_p95_latency_ms: Option<i64>,
    #[serde(default)]
    min_confidence: Option<f64>,
    #[serde(default)]
    min_samples: Option<i64>,
    #[serde(default)]
    rollback_threshold: Option<i64>,
}

/// Whether an `If-Match` header admits the current `hash` (RFC 9110 §13.1.1: `*` or a list of
/// entity tags, compared strongly; `""` is the tag of a route with no chain yet).
fn if_match_admits(header: &str, hash: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == hash)
}

/// `PUT /v1/routes/{route}/constraints`.
pub(crate) async fn put_constraints(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let route = route_param(path)?;
    let body: ConstraintsBody = parse_json(&admin.body(body)?)?;
    let constraints = Constraints {
        max_regression: body.max_regression,
        min_quality: body.min_quality,
        max_error_rate: body.max_error_rate,
        max_cost_increase: body.max_cost_increase,
        max_cost_per_request: body.max_cost_per_request,
        max_p95_latency_ms: body.max_p95_latency_ms,
        min_confidence: body.min_confidence,
        min_samples: body.min_samples,
        rollback_threshold: body.rollback_threshold,
    };
    ConstraintsConfig::from(&constraints)
        .check()
        .map_err(|(name, problem)| ApiError::invalid(format!("`{name}` {problem}."), Some(name)))?;
    admin.resolve(&route)?;
    let key = admin.key(&route);
    let lock = admin.gateway.plane.write_lock(&key);
    let _serialised = lock.lock().await;
    let facts = admin.gateway.plane.facts(&key);
    let (sequence, prev_hash) = match facts.head() {
        Some(head) => (head.sequence.saturating_add(1), head.hash.clone()),
        None => (0, String::new()),
    };
    if let Some(wanted) = headers.get(header::IF_MATCH) {
        let wanted = wanted.to_str().unwrap_or("");
        if !if_match_admits(wanted, &prev_hash) {
            let mut response = ApiError {
                status: StatusCode::PRECONDITION_FAILED,
                message: format!(
                    "The constraints changed since you read them: If-Match {wanted} does not match the current hash \"{prev_hash}\". GET them again and retry."
                ),
                kind: "invalid_request_error",
                param: Some("If-Match".into()),
                code: Some("precondition_failed"),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::ETAG, etag(&prev_hash));
            return Ok(response);
        }
    }
    let route_name = RouteName::new(route.as_str());
    let hash = ConstraintsChanged::compute_hash(&prev_hash, &constraints, &route_name, sequence);
    let event = ConstraintsChanged {
        envelope: admin.envelope(&route),
        route: route_name,
        sequence,
        constraints,
        changed_by: admin.who(),
        prev_hash,
        hash: hash.clone(),
    };
    admin.commit(event.into()).await?;
    if admin
        .gateway
        .plane
        .facts(&key)
        .head()
        .map(|h| h.hash.as_str())
        != Some(hash.as_str())
    {
        // Another replica's change took this sequence first; every node refused ours.
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "Another change took sequence {sequence} of this route's constraints first. GET them again and retry."
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("conflict"),
        });
    }
    constraints_response(&admin, &route)
}

/// The body of `POST /v1/routes/{route}/pin`; every field is optional (an empty body pins the
/// baseline manually, until unpinned).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    reason: Option<PinReason>,
    #[serde(default)]
    note: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `POST /v1/routes/{route}/pin`.
pub(crate) async fn pin(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let route = route_param(path)?;
    let bytes = admin.body(body)?;
    let body: PinBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        PinBody::default()
    } else {
        parse_json(&bytes)?
    };
    let resolved = admin.resolve(&route)?;
    let model = body
        .model
        .unwrap_or_else(|| resolved.policy().baseline.clone());
    let servable = admin
        .gateway
        .catalog
        .get(&model)
        .is_some_and(|m| admin.gateway.providers.contains_key(m.provider()));
    if !servable {
        return Err(ApiError {
            code: Some("model_not_found"),
            ..ApiError::invalid(
                format!(
                    "The model `{model}` is not in the model catalog or its provider is not configured."
                ),
                Some("model"),
            )
        });
    }
    let reason = body.reason.unwrap_or(PinReason::Manual);
    if reason == PinReason::AutoRollback {
        return Err(ApiError::invalid(
            "`reason` `auto_rollback` is reserved for Switchyard's automatic rollbacks; use `manual` or `incident`.".into(),
            Some("reason"),
        ));
    }
    let now = admin.now();
    let expires_at = match body.expires_at {
        None => None,
        Some(at) if at > secs(now) => Some(Timestamp::from_micros(at.saturating_mul(1_000_000))),
        Some(at) => {
            return Err(ApiError::invalid(
                format!(
                    "`expires_at` {at} (Unix seconds) is not in the future (now: {}).",
                    secs(now)
                ),
                Some("expires_at"),
            ));
        }
    };
    let event = RoutePinned {
        envelope: admin.envelope(&route),
        route: RouteName::new(route.as_str()),
        model: ModelName::new(model),
        reason,
        pinned_by: admin.who(),
        expires_at,
        note: body.note,
    };
    let key = admin.key(&route);
    let lock = admin.gateway.plane.write_lock(&key);
    let _serialised = lock.lock().await;
    admin.commit(event.into()).await?;
    Ok(Json(admin.route_json(&route)?))
}

/// `DELETE /v1/routes/{route}/pin`: 404 when no pin is in force.
pub(crate) async fn unpin(
    admin: Admin,
    path: Result<UrlPath<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let route = route_param(path)?;
    let key = admin.key(&route);
    let lock = admin.gateway.plane.write_lock(&key);
    let _serialised = lock.lock().await;
    let resolved = admin.resolve(&route)?;
    if resolved.pin.is_none() {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("Route `{route}` is not pinned."),
            kind: "invalid_request_error",
            param: Some("route".into()),
            code: Some("not_pinned"),
        });
    }
    let event = RouteUnpinned {
        envelope: admin.envelope(&route),
        route: RouteName::new(route.as_str()),
        unpinned_by: admin.who(),
        reason: None,
    };
    admin.commit(event.into()).await?;
    Ok(Json(admin.route_json(&route)?))
}

#[cfg(test)]
mod tests;
