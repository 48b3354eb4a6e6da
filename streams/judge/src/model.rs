//! The judge model: a provider of the provider layer, the model's name there, and its
//! catalog row (price and whether it accepts `json_schema`).

use std::collections::HashMap;

use switchyard_events::ModelName;
use switchyard_providers::types::Usage;
use switchyard_providers::{AnyProvider, Catalog, ChatRequest, ChatResponse, ModelInfo, Provider};

/// Why the judge cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// `judge.model` is not `provider/model`.
    #[error("judge model `{0}` must be written provider/model")]
    InvalidModel(String),
    /// `judge.model` names a provider that is not configured.
    #[error("judge model `{model}` needs provider `{provider}`, which is not configured")]
    UnknownProvider {
        /// The judge model.
        model: String,
        /// Its provider.
        provider: String,
    },
    /// `judge.rubric_version` names no built-in rubric.
    #[error("unknown judge rubric `{0}` (known: {known})", known = crate::rubric::RUBRICS.iter().map(|r| r.version).collect::<Vec<_>>().join(", "))]
    UnknownRubric(String),
}

/// The model the judge asks, ready to call.
#[derive(Debug, Clone)]
pub struct JudgeModel {
    id: ModelName,
    upstream: String,
    provider: AnyProvider,
    info: Option<ModelInfo>,
}

impl JudgeModel {
    /// Returns the judge model `id` (`provider/model`) served by `provider`, priced by `info`
    /// (`None`: unknown price, which reaches the spend cap with the first call).
    pub fn new(
        id: &str,
        provider: AnyProvider,
        info: Option<ModelInfo>,
    ) -> Result<Self, JudgeError> {
        let Some((_, upstream)) = id
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        else {
            return Err(JudgeError::InvalidModel(id.to_owned()));
        };
        Ok(Self {
            id: ModelName::new(id),
            upstream: info
                .as_ref()
                .map_or(upstream, |info| info.upstream_name())
                .to_owned(),
            provider,
            info,
        })
    }

    /// Returns the judge model `id` from the gateway's providers (by `[providers.<name>]`
    /// name) and model catalog: what `switchyard serve` builds for ingress.
    pub fn resolve(
        id: &str,
        providers: &HashMap<String, AnyProvider>,
        catalog: &Catalog,
    ) -> Result<Self, JudgeError> {
        let Some((provider, _)) = id.split_once('/') else {
            return Err(JudgeError::InvalidModel(id.to_owned()));
        };
        let Some(built) = providers.get(provider) else {
            return Err(JudgeError::UnknownProvider {
                model: id.to_owned(),
                provider: provider.to_owned(),
            });
        };
        Self::new(id, built.clone(), catalog.get(id).cloned())
    }

    /// Returns the model's id (`provider/model`).
    pub fn id(&self) -> &ModelName {
        &self.id
    }

    /// Returns whether the model accepts `response_format: json_schema` (per the catalog).
    pub fn accepts_json_schema(&self) -> bool {
        self.info.as_ref().is_some_and(|info| info.json_schema)
    }

    /// Returns the cost of one call, `None` when the price or the usage is unknown.
    pub fn cost_usd(&self, usage: Option<&Usage>) -> Option<f64> {
        let cost = self.info.as_ref()?.cost_usd(usage?)?;
        (cost.is_finite() && cost >= 0.0).then_some(cost)
    }

    /// Calls the model once, non-streaming.
    pub async fn complete(
        &self,
        req: &ChatRequest,
    ) -> Result<ChatResponse, switchyard_providers::ProviderError> {
        self.provider.complete(&self.upstream, req).await
    }
}
