//! The model catalog: price and capabilities per model, shipped in `catalog.toml` and
//! extended or overridden by operators.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::types::{ChatRequest, Content, ResponseFormat, Usage};

const SHIPPED: &str = include_str!("../catalog.toml");

/// One model's row.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// `provider/model`.
    pub id: String,
    /// USD per 1M input tokens.
    pub input_per_mtok: Option<f64>,
    /// USD per 1M cached input tokens.
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M output tokens.
    pub output_per_mtok: Option<f64>,
    /// Where the prices come from.
    pub source: String,
    /// When they were read.
    pub as_of: String,
    /// Context window in tokens.
    pub context_window: u64,
    /// Most output tokens.
    pub max_output: u64,
    /// Accepts tools.
    #[serde(default)]
    pub tools: bool,
    /// Accepts `response_format: json_schema`.
    #[serde(default)]
    pub json_schema: bool,
    /// Accepts images.
    #[serde(default)]
    pub vision: bool,
    /// Serves embeddings.
    #[serde(default)]
    pub embeddings: bool,
}

impl ModelInfo {
    /// Returns the provider part of the id.
    pub fn provider(&self) -> &str {
        self.id.split_once('/').map_or("", |(p, _)| p)
    }

    /// Returns the model name the provider knows.
    pub fn upstream_name(&self) -> &str {
        self.id.split_once('/').map_or(self.id.as_str(), |(_, m)| m)
    }

    /// Returns whether input and output prices are known.
    pub fn price_known(&self) -> bool {
        self.input_per_mtok.is_some() && self.output_per_mtok.is_some()
    }

    /// Returns the cost of a usage in USD, `None` when the price is unknown (never 0 by default).
    pub fn cost_usd(&self, usage: &Usage) -> Option<f64> {
        let input = self.input_per_mtok?;
        let output = self.output_per_mtok?;
        let cached_price = self.cached_input_per_mtok.unwrap_or(input);
        let cached = usage.cached_tokens().min(usage.prompt_tokens);
        let uncached = usage.prompt_tokens - cached;
        Some(
            (uncached as f64 * input
                + cached as f64 * cached_price
                + usage.completion_tokens as f64 * output)
                / 1e6,
        )
    }

    /// Returns why this model cannot serve `req`, or `None` when it can.
    pub fn cannot_serve(&self, req: &ChatRequest, estimated_input_tokens: u64) -> Option<String> {
        self.cannot_meet(&Needs::of(req, estimated_input_tokens))
            .map(Cow::into_owned)
    }

    /// Returns why this model cannot meet a request's [`Needs`], or `None` when it can.
    ///
    /// This is the capability filter the router applies before cost; it works on the recorded
    /// needs alone, so an audit can recompute it without the request body. The reasons without
    /// numbers are fixed texts (the router checks every model of a route per request).
    pub fn cannot_meet(&self, needs: &Needs) -> Option<Cow<'static, str>> {
        if self.embeddings && self.max_output == 0 {
            return Some(Cow::Borrowed("an embeddings model cannot chat"));
        }
        if needs.tools && !self.tools {
            return Some(Cow::Borrowed(
                "the request uses tools; the model does not support them",
            ));
        }
        if needs.json_schema && !self.json_schema {
            return Some(Cow::Borrowed(
                "the request asks for json_schema output; the model does not support it",
            ));
        }
        if needs.vision && !self.vision {
            return Some(Cow::Borrowed(
                "the request has images; the model has no vision",
            ));
        }
        let wanted_output = needs.max_output_tokens;
        if wanted_output > self.max_output {
            return Some(Cow::Owned(format!(
                "max tokens {wanted_output} exceeds the model's {} output tokens",
                self.max_output
            )));
        }
        if needs.input_tokens + wanted_output > self.context_window {
            return Some(Cow::Owned(format!(
                "about {} input tokens (+{wanted_output} output) exceed the {} token context window",
                needs.input_tokens, self.context_window
            )));
        }
        None
    }
}

/// What a chat request needs from a model: the inputs of the capability filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    /// Estimated input tokens (see [`estimate_input_tokens`]).
    pub input_tokens: u64,
    /// Requested output tokens (`max_completion_tokens`, else `max_tokens`; 0 when unset).
    pub max_output_tokens: u64,
    /// The request carries tools.
    pub tools: bool,
    /// The request asks for `response_format: json_schema`.
    pub json_schema: bool,
    /// The request has image parts.
    pub vision: bool,
    /// The request streams.
    pub stream: bool,
}

impl Needs {
    /// Reads the needs of a request.
    pub fn of(req: &ChatRequest, estimated_input_tokens: u64) -> Self {
        Needs {
            input_tokens: estimated_input_tokens,
            max_output_tokens: req.max_completion_tokens.or(req.max_tokens).unwrap_or(0),
            tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            json_schema: matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. })),
            vision: req
                .messages
                .iter()
                .any(|m| m.content.as_ref().is_some_and(Content::has_image)),
            stream: req.stream,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    model: Vec<ModelInfo>,
}

/// The error for a catalog that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("model catalog: {0}")]
pub struct CatalogError(String);

/// Every known model, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: BTreeMap<String, ModelInfo>,
}

impl Catalog {
    /// Returns the shipped catalog.
    pub fn shipped() -> Result<Self, CatalogError> {
        Self::parse(SHIPPED)
    }

    /// Parses a catalog in the shipped format.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
        let mut models = BTreeMap::new();
        for m in file.model {
            if !m.id.contains('/') {
                return Err(CatalogError(format!(
                    "model id `{}` must be provider/model",
                    m.id
                )));
            }
            if models.insert(m.id.clone(), m).is_some() {
                return Err(CatalogError("duplicate model id".into()));
            }
        }
        Ok(Catalog { models })
    }

    /// Adds or replaces rows (operator overrides).
    pub fn extend(&mut self, rows: impl IntoIterator<Item = ModelInfo>) {
        for m in rows {
            self.models.insert(m.id.clone(), m);
        }
    }

    /// Returns a model's row.
    pub fn get(&self, id: &str) -> Option<&ModelInfo> {
        self.models.get(id)
    }

    /// Returns every model, in id order.
    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.values()
    }
}

/// Estimates the input tokens of a request (about four characters a token, plus framing).
pub fn estimate_input_tokens(req: &ChatRequest) -> u64 {
    let chars: usize = req
        .messages
        .iter()
        .map(|m| m.content.as_ref().map_or(0, |c| c.text().len()) + 8)
        .sum::<usize>()
        + req
            .tools
            .as_ref()
            .map_or(0, |t| serde_json::to_string(t).map_or(0, |s| s.len()));
    (chars as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalog_parses_and_has_the_demo_models() {
        let c = Catalog::shipped().unwrap();
        for id in ["demo/small", "demo/medium", "demo/large", "demo/embedding"] {
            let m = c.get(id).unwrap();
            assert!(
                !m.source.is_empty() && !m.as_of.is_empty(),
                "{id} has a source and a date"
            );
        }
        assert_eq!(c.get("demo/large").unwrap().provider(), "demo");
        assert_eq!(c.get("demo/large").unwrap().upstream_name(), "large");
    }

    #[test]
    fn cost_uses_cached_price_and_unknown_price_is_none() {
        let c = Catalog::shipped().unwrap();
        let m = c.get("demo/large").unwrap();
        let usage = Usage::new(1_000_000, 1_000_000, 500_000, 0);
        let cost = m.cost_usd(&usage).unwrap();
        assert!(
            (cost - (0.5 * 2.5 + 0.5 * 1.25 + 10.0)).abs() < 1e-9,
            "{cost}"
        );
        let mut unknown = m.clone();
        unknown.output_per_mtok = None;
        assert_eq!(unknown.cost_usd(&usage), None);
    }

    #[test]
    fn capability_filter_names_the_reason() {
        let c = Catalog::shipped().unwrap();
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "auto",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}]
        }))
        .unwrap();
        assert!(
            c.get("demo/small")
                .unwrap()
                .cannot_serve(&req, 10)
                .unwrap()
                .contains("vision")
        );
        assert!(
            c.get("demo/large")
                .unwrap()
                .cannot_serve(&req, 10)
                .is_none()
        );
        assert!(
            c.get("demo/large")
                .unwrap()
                .cannot_serve(&req, 300_000)
                .unwrap()
                .contains("context window")
        );
    }
}
