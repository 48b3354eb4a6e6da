//! switchyard-providers: the `Provider` port.
//!
//! Place in the pipeline: ingress → router decision → **provider adapter** → upstream LLM API →
//! back through the adapter as OpenAI-shaped responses or chunks. The crate holds:
//! - [`types`]: OpenAI's Chat Completions wire format, the lingua franca every adapter
//!   translates from and to;
//! - [`catalog`]: prices (input, cached input, output per 1M tokens, each row with a source and
//!   a date) and capabilities (tools, json_schema, vision, context window, max output);
//! - the adapters, behind one trait and one closed enum ([`AnyProvider`]), built from a
//!   [`ProviderConfig`] (`[providers.<name>] kind = "..."`):
//!   - [`openai_compat::OpenAiCompatProvider`]: the OpenAI-compatible family (OpenAI, Azure
//!     OpenAI, DeepSeek, Mistral, xAI, Groq, Cerebras, SambaNova, Together, Fireworks,
//!     Perplexity, AI21, DeepInfra, Nebius, Novita), one adapter driven by a quirks table;
//!   - [`anthropic::AnthropicProvider`] (Messages API) and [`cohere::CohereProvider`] (v2 Chat
//!     and Embed): native APIs translated from and to the OpenAI shapes, streams included;
//!   - [`gemini::GeminiProvider`] (Gemini API), [`vertex::VertexProvider`] (Gemini on Vertex
//!     AI, service-account tokens included) and [`bedrock::BedrockProvider`] (AWS Bedrock
//!     Converse, SigV4-signed, event-stream framing): translated from and to the OpenAI shapes,
//!     streams included;
//!   - [`demo::DemoProvider`]: three simulated models (`demo/small`, `demo/medium`,
//!     `demo/large`) and an embedding model, always compiled, so a fresh `make run` answers
//!     without API keys; its answers say they are simulated.
//! - [`sse`]: the server-sent-events parser the streaming adapters share.
//!
//! Delivery: a call is made once; retries and failover belong to the caller, guided by
//! [`ProviderError::is_retryable`] and `retry_after`. A stream either ends after its usage chunk
//! or with an `Err` item, never silently short.

pub mod anthropic;
pub mod bedrock;
pub mod catalog;
pub mod cohere;
mod config;
pub mod demo;
mod error;
pub mod gemini;
mod http;
mod native;
pub mod openai_compat;
pub mod sse;
mod translated;
pub mod types;
pub mod vertex;

use std::future::Future;
use std::pin::Pin;

use futures::Stream;

pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use bedrock::{BedrockConfig, BedrockProvider};
pub use catalog::{Catalog, CatalogError, ModelInfo, Needs, estimate_input_tokens};
pub use cohere::{CohereConfig, CohereProvider};
pub use config::{
    AzureConfig, DemoConfig, HostedConfig, ProviderConfig, ProviderConfigError, TimeoutsConfig,
};
pub use error::{ProviderError, ProviderErrorKind};
pub use gemini::{GeminiConfig, GeminiProvider};
pub use http::Timeouts;
pub use openai_compat::{OpenAiCompatConfig, OpenAiCompatProvider, ProviderKind};
pub use types::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};
pub use vertex::{VertexConfig, VertexProvider};

/// A stream of chunks from a provider. The provider always reports usage on a final chunk
/// (ingress forwards it only when the client asked for it).
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// An LLM provider: one upstream API, many models.
pub trait Provider: Send + Sync + 'static {
    /// Returns the provider's name (the part before `/` in model ids).
    fn name(&self) -> &str;

    /// Completes a chat, non-streaming. `model` is the provider's own model name.
    fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, ProviderError>> + Send;

    /// Completes a chat as a stream of chunks.
    fn stream(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> impl Future<Output = Result<ChunkStream, ProviderError>> + Send;

    /// Embeds inputs.
    fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> impl Future<Output = Result<EmbeddingResponse, ProviderError>> + Send;
}

/// Every provider adapter, selected at run time from configuration.
#[derive(Debug, Clone)]
pub enum AnyProvider {
    /// The built-in simulated provider.
    Demo(demo::DemoProvider),
    /// A provider of the OpenAI-compatible family.
    OpenAiCompat(OpenAiCompatProvider),
    /// Anthropic's Messages API.
    Anthropic(AnthropicProvider),
    /// Cohere's v2 API.
    Cohere(CohereProvider),
    /// The Gemini API.
    Gemini(GeminiProvider),
    /// Gemini on Vertex AI.
    Vertex(VertexProvider),
    /// AWS Bedrock (Converse).
    Bedrock(BedrockProvider),
}

impl Provider for AnyProvider {
    fn name(&self) -> &str {
        match self {
            AnyProvider::Demo(p) => p.name(),
            AnyProvider::OpenAiCompat(p) => p.name(),
            AnyProvider::Anthropic(p) => p.name(),
            AnyProvider::Cohere(p) => p.name(),
            AnyProvider::Gemini(p) => p.name(),
            AnyProvider::Vertex(p) => p.name(),
            AnyProvider::Bedrock(p) => p.name(),
        }
    }

    async fn complete(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        match self {
            AnyProvider::Demo(p) => p.complete(model, req).await,
            AnyProvider::OpenAiCompat(p) => p.complete(model, req).await,
            AnyProvider::Anthropic(p) => p.complete(model, req).await,
            AnyProvider::Cohere(p) => p.complete(model, req).await,
            AnyProvider::Gemini(p) => p.complete(model, req).await,
            AnyProvider::Vertex(p) => p.complete(model, req).await,
            AnyProvider::Bedrock(p) => p.complete(model, req).await,
        }
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<ChunkStream, ProviderError> {
        match self {
            AnyProvider::Demo(p) => p.stream(model, req).await,
            AnyProvider::OpenAiCompat(p) => p.stream(model, req).await,
            AnyProvider::Anthropic(p) => p.stream(model, req).await,
            AnyProvider::Cohere(p) => p.stream(model, req).await,
            AnyProvider::Gemini(p) => p.stream(model, req).await,
            AnyProvider::Vertex(p) => p.stream(model, req).await,
            AnyProvider::Bedrock(p) => p.stream(model, req).await,
        }
    }

    async fn embed(
        &self,
        model: &str,
        req: &EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ProviderError> {
        match self {
            AnyProvider::Demo(p) => p.embed(model, req).await,
            AnyProvider::OpenAiCompat(p) => p.embed(model, req).await,
            AnyProvider::Anthropic(p) => p.embed(model, req).await,
            AnyProvider::Cohere(p) => p.embed(model, req).await,
            AnyProvider::Gemini(p) => p.embed(model, req).await,
            AnyProvider::Vertex(p) => p.embed(model, req).await,
            AnyProvider::Bedrock(p) => p.embed(model, req).await,
        }
    }
}
