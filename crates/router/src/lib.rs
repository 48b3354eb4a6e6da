//! switchyard-router: the decision for one request, as a pure function.
//!
//! Place in the pipeline: ingress calls [`decide`] for every `model: "auto"` request with the
//! route's [`RoutePolicy`] (configuration, constraints, pins, from the control plane), the
//! route's [`RouteStats`] from the newest [`RoutingTable`] the projector published, the
//! shipped benchmark [`Priors`], the model catalog and the request's capability [`Needs`].
//! The [`Outcome`] names the router's choice and the model that serves (they differ in
//! shadow, canary and off modes), every candidate's score or the reason it was filtered, the
//! signal contributions, the phase, the confidence and every constraint check. [`trace`] turns
//! it into the signed `RouteDecided` event.
//!
//! Nothing here does I/O or reads a clock: the same inputs, routing-table version and seed give
//! the same decision, which is what lets an audit recompute any decision from its trace.
//!
//! The arithmetic (scores, phases, confidence) is documented in `docs/routing.md` and on each
//! function; the defaults are the published ones (40% success, 40% feedback, 20% cost).

pub mod calibration;
mod constraints;
mod decide;
pub mod explain;
mod math;
mod policy;
mod priors;
mod score;
pub mod sign;
mod stats;
pub mod trace;

pub use constraints::{CONSTRAINT_NAMES, Check};
pub use decide::{
    CandidateEval, Context, Models, NoCapableModel, Outcome, Pin, ReasonCode, Request, decide,
};
pub use explain::{Explanation, Lang};
pub use policy::{Learning, PolicyError, RoutePolicy, ScoreWeights, SourceWeights};
pub use priors::{POOL_ORG, Prior, Priors, PriorsError};
pub use score::{ModelScore, Signal};
pub use sign::{DecisionSigner, PublicKey, SignError};
pub use stats::{ModelStats, RouteStats, RoutingTable, SourceStat, stats_of};
pub use switchyard_providers::Needs;
pub use trace::{TraceIds, build_trace, features_of, needs_of};
