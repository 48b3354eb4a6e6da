//! Provider configuration: one `[providers.<name>]` table per upstream, selected by `kind`.
//!
//! ```toml
//! [providers.openai]
//! kind = "openai"
//! api_key = "sk-..."
//!
//! [providers.azure]
//! kind = "azure"
//! api_key = "..."
//! endpoint = "https://my-resource.openai.azure.com"
//! deployments = { "gpt-4o" = "gpt4o-prod" }
//!
//! [providers.deepseek]
//! kind = "deepseek"
//! api_key = "..."
//! timeouts = { first_byte_ms = 20000 }
//!
//! [providers.demo]
//! kind = "demo"
//! ```
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a misspelt option fails at start-up
//! instead of being ignored. API keys are `SecretString`s: `Debug` prints them redacted.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::AnyProvider;
use crate::demo::DemoProvider;
use crate::http::Timeouts;
use crate::openai_compat::{
    AZURE_DEFAULT_API_VERSION, AzureOptions, OpenAiCompatConfig, OpenAiCompatProvider, ProviderKind,
};

/// Why a provider could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderConfigError {
    /// A required setting is missing or empty.
    #[error("provider `{provider}`: `{field}` is required")]
    Missing {
        /// The provider's name.
        provider: String,
        /// The setting.
        field: &'static str,
    },
    /// A URL does not parse as an absolute http(s) URL.
    #[error("provider `{provider}`: `{url}` is not an absolute http(s) URL")]
    InvalidUrl {
        /// The provider's name.
        provider: String,
        /// The URL as configured.
        url: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("provider `{provider}`: header `{header}` has an invalid name or value")]
    InvalidHeader {
        /// The provider's name.
        provider: String,
        /// The header (or `api_key` when the key holds characters a header cannot carry).
        header: String,
    },
    /// The HTTP client could not be built (TLS roots, for instance).
    #[error("provider `{provider}`: {reason}")]
    Client {
        /// The provider's name.
        provider: String,
        /// What failed.
        reason: String,
    },
}

/// One upstream provider, as configured. The `kind` key selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// OpenAI (`https://api.openai.com/v1`).
    #[serde(rename = "openai")]
    OpenAi(HostedConfig),
    /// Azure OpenAI (deployment URLs and the `api-key` header).
    Azure(AzureConfig),
    /// DeepSeek (`https://api.deepseek.com`).
    #[serde(rename = "deepseek")]
    DeepSeek(HostedConfig),
    /// Mistral AI (`https://api.mistral.ai/v1`).
    Mistral(HostedConfig),
    /// xAI (`https://api.x.ai/v1`).
    Xai(HostedConfig),
    /// Groq (`https://api.groq.com/openai/v1`).
    Groq(HostedConfig),
    /// Cerebras (`https://api.cerebras.ai/v1`).
    Cerebras(HostedConfig),
    /// SambaNova Cloud (`https://api.sambanova.ai/v1`).
    #[serde(rename = "sambanova")]
    SambaNova(HostedConfig),
    /// Together AI (`https://api.together.ai/v1`).
    Together(HostedConfig),
    /// Fireworks AI (`https://api.fireworks.ai/inference/v1`).
    Fireworks(HostedConfig),
    /// Perplexity (`https://api.perplexity.ai`).
    Perplexity(HostedConfig),
    /// AI21 Labs (`https://api.ai21.com/studio/v1`).
    Ai21(HostedConfig),
    /// DeepInfra (`https://api.deepinfra.com/v1/openai`).
    #[serde(rename = "deepinfra")]
    DeepInfra(HostedConfig),
    /// Nebius Token Factory (`https://api.tokenfactory.nebius.com/v1`).
    Nebius(HostedConfig),
    /// Novita AI (`https://api.novita.ai/openai/v1`).
    Novita(HostedConfig),
    /// Anthropic's Messages API (`https://api.anthropic.com`).
    Anthropic(crate::anthropic::AnthropicConfig),
    /// Cohere's v2 Chat and Embed APIs (`https://api.cohere.com`).
    Cohere(crate::cohere::CohereConfig),
    /// Google's Gemini API (`https://generativelanguage.googleapis.com`).
    Gemini(crate::gemini::GeminiConfig),
    /// Gemini on Google Cloud Vertex AI (`https://{location}-aiplatform.googleapis.com`).
    Vertex(crate::vertex::VertexConfig),
    /// AWS Bedrock's Converse API (`https://bedrock-runtime.{region}.amazonaws.com`).
    Bedrock(crate::bedrock::BedrockConfig),
    /// The built-in simulated provider (no key, no network).
    Demo(DemoConfig),
}

/// A hosted provider of the OpenAI-compatible family.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostedConfig {
    /// The API key, sent as `Authorization: Bearer <key>`. Never logged.
    pub api_key: SecretString,
    /// Replaces the provider's documented base URL (a proxy, a regional endpoint, a test
    /// server); `chat/completions` and `embeddings` are appended to it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers added to every request (for example `OpenAI-Organization`).
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

/// Azure OpenAI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// The resource's key, sent as the `api-key` header. Never logged.
    pub api_key: SecretString,
    /// The resource endpoint, `https://<resource>.openai.azure.com`.
    pub endpoint: String,
    /// The `api-version` query parameter (default `2024-10-21`, the GA version that accepts
    /// `stream_options` and `max_completion_tokens`).
    #[serde(default = "default_azure_api_version")]
    pub api_version: String,
    /// Model name → deployment name. A model absent from the map is used as the deployment
    /// name, so `azure/my-deployment` works without an entry.
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Headers added to every request.
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Timeouts; each defaults as documented on [`TimeoutsConfig`].
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
}

fn default_azure_api_version() -> String {
    AZURE_DEFAULT_API_VERSION.into()
}

/// The demo provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Answer without the simulated latencies (tests and benchmarks). Default false.
    #[serde(default)]
    pub instant: bool,
}

/// Timeouts of a provider, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Connection establishment, TCP and TLS (default 10 000).
    pub connect_ms: u64,
    /// A whole non-streaming call, `complete` or `embed` (default 600 000: long generations).
    pub request_ms: u64,
    /// A stream's first event, from sending the request (default 60 000). A stream that fails
    /// before it can still fail over to another provider.
    pub first_byte_ms: u64,
    /// The longest silence inside a started stream (default 120 000).
    pub idle_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        let t = Timeouts::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        TimeoutsConfig {
            connect_ms: ms(t.connect),
            request_ms: ms(t.request),
            first_byte_ms: ms(t.first_byte),
            idle_ms: ms(t.idle),
        }
    }
}

impl From<TimeoutsConfig> for Timeouts {
    fn from(t: TimeoutsConfig) -> Self {
        Timeouts {
            connect: Duration::from_millis(t.connect_ms),
            request: Duration::from_millis(t.request_ms),
            first_byte: Duration::from_millis(t.first_byte_ms),
            idle: Duration::from_millis(t.idle_ms),
        }
    }
}

impl ProviderConfig {
    /// Returns the value of the entry's `kind` key, which is also the provider's default name.
    pub fn kind_name(&self) -> &'static str {
        match (self, self.compat_kind()) {
            (ProviderConfig::Anthropic(_), _) => "anthropic",
            (ProviderConfig::Cohere(_), _) => "cohere",
            (ProviderConfig::Gemini(_), _) => "gemini",
            (ProviderConfig::Vertex(_), _) => "vertex",
            (ProviderConfig::Bedrock(_), _) => "bedrock",
            (_, Some(kind)) => kind.name(),
            (_, None) => "demo",
        }
    }

    /// Returns the OpenAI-compatible kind of the entry (`None` for the demo provider).
    pub fn compat_kind(&self) -> Option<ProviderKind> {
        Some(match self {
            ProviderConfig::OpenAi(_) => ProviderKind::OpenAi,
            ProviderConfig::Azure(_) => ProviderKind::Azure,
            ProviderConfig::DeepSeek(_) => ProviderKind::DeepSeek,
            ProviderConfig::Mistral(_) => ProviderKind::Mistral,
            ProviderConfig::Xai(_) => ProviderKind::Xai,
            ProviderConfig::Groq(_) => ProviderKind::Groq,
            ProviderConfig::Cerebras(_) => ProviderKind::Cerebras,
            ProviderConfig::SambaNova(_) => ProviderKind::SambaNova,
            ProviderConfig::Together(_) => ProviderKind::Together,
            ProviderConfig::Fireworks(_) => ProviderKind::Fireworks,
            ProviderConfig::Perplexity(_) => ProviderKind::Perplexity,
            ProviderConfig::Ai21(_) => ProviderKind::Ai21,
            ProviderConfig::DeepInfra(_) => ProviderKind::DeepInfra,
            ProviderConfig::Nebius(_) => ProviderKind::Nebius,
            ProviderConfig::Novita(_) => ProviderKind::Novita,
            ProviderConfig::Gemini(_) | ProviderConfig::Vertex(_) | ProviderConfig::Bedrock(_) => {
                return None;
            }
            ProviderConfig::Demo(_) | ProviderConfig::Anthropic(_) | ProviderConfig::Cohere(_) => {
                return None;
            }
        })
    }

    /// Builds the provider under its kind's name (`openai`, `deepseek`, ...).
    pub fn build(&self) -> Result<AnyProvider, ProviderConfigError> {
        self.build_named(self.kind_name())
    }

    /// Builds the provider under `name`, the key of its `[providers.<name>]` table (model ids
    /// are `<name>/<model>`). The demo provider is always named `demo`.
    pub fn build_named(&self, name: &str) -> Result<AnyProvider, ProviderConfigError> {
        let kind = match (self, self.compat_kind()) {
            (ProviderConfig::Anthropic(c), _) => {
                return crate::anthropic::AnthropicProvider::new(name, c)
                    .map(AnyProvider::Anthropic);
            }
            (ProviderConfig::Cohere(c), _) => {
                return crate::cohere::CohereProvider::new(name, c).map(AnyProvider::Cohere);
            }
            (ProviderConfig::Gemini(c), _) => {
                return crate::gemini::GeminiProvider::new(name, c).map(AnyProvider::Gemini);
            }
            (ProviderConfig::Vertex(c), _) => {
                return crate::vertex::VertexProvider::new(name, c).map(AnyProvider::Vertex);
            }
            (ProviderConfig::Bedrock(c), _) => {
                return crate::bedrock::BedrockProvider::new(name, c).map(AnyProvider::Bedrock);
            }
            (ProviderConfig::Demo(demo), _) => {
                return Ok(AnyProvider::Demo(if demo.instant {
                    DemoProvider::instant()
                } else {
                    DemoProvider::default()
                }));
            }
            (_, Some(kind)) => kind,
            (_, None) => {
                return Err(ProviderConfigError::Missing {
                    provider: name.into(),
                    field: "kind",
                });
            }
        };
        let config = match self {
            ProviderConfig::Azure(azure) => OpenAiCompatConfig {
                kind,
                name: Some(name.into()),
                base_url: Some(azure.endpoint.clone()),
                api_key: azure.api_key.clone(),
                extra_headers: azure.extra_headers.clone(),
                timeouts: azure.timeouts.into(),
                azure: AzureOptions {
                    api_version: azure.api_version.clone(),
                    deployments: azure.deployments.clone(),
                },
            },
            ProviderConfig::OpenAi(h)
            | ProviderConfig::DeepSeek(h)
            | ProviderConfig::Mistral(h)
            | ProviderConfig::Xai(h)
            | ProviderConfig::Groq(h)
            | ProviderConfig::Cerebras(h)
            | ProviderConfig::SambaNova(h)
            | ProviderConfig::Together(h)
            | ProviderConfig::Fireworks(h)
            | ProviderConfig::Perplexity(h)
            | ProviderConfig::Ai21(h)
            | ProviderConfig::DeepInfra(h)
            | ProviderConfig::Nebius(h)
            | ProviderConfig::Novita(h) => OpenAiCompatConfig {
                kind,
                name: Some(name.into()),
                base_url: h.base_url.clone(),
                api_key: h.api_key.clone(),
                extra_headers: h.extra_headers.clone(),
                timeouts: h.timeouts.into(),
                azure: AzureOptions::default(),
            },
            ProviderConfig::Gemini(_) | ProviderConfig::Vertex(_) | ProviderConfig::Bedrock(_) => {
                return Err(ProviderConfigError::Missing {
                    provider: name.into(),
                    field: "kind",
                });
            }
            ProviderConfig::Demo(_) | ProviderConfig::Anthropic(_) | ProviderConfig::Cohere(_) => {
                return Err(ProviderConfigError::Missing {
                    provider: name.into(),
                    field: "kind",
                });
            }
        };
        OpenAiCompatProvider::new(config).map(AnyProvider::OpenAiCompat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;

    fn parse(text: &str) -> Result<BTreeMap<String, ProviderConfig>, toml::de::Error> {
        #[derive(Deserialize)]
        struct File {
            providers: BTreeMap<String, ProviderConfig>,
        }
        toml::from_str::<File>(text).map(|f| f.providers)
    }

    #[test]
    fn every_kind_parses_and_builds() {
        let mut text = String::new();
        for kind in ProviderKind::ALL {
            let name = kind.name();
            if kind == ProviderKind::Azure {
                text.push_str(&format!(
                    "[providers.{name}]\nkind = \"{name}\"\napi_key = \"k\"\nendpoint = \"https://r.openai.azure.com\"\n"
                ));
            } else {
                text.push_str(&format!(
                    "[providers.{name}]\nkind = \"{name}\"\napi_key = \"k\"\n"
                ));
            }
        }
        text.push_str("[providers.demo]\nkind = \"demo\"\ninstant = true\n");
        let providers = parse(&text).unwrap();
        assert_eq!(providers.len(), 16);
        for (name, config) in &providers {
            assert_eq!(config.kind_name(), name);
            assert_eq!(config.build().unwrap().name(), name);
        }
        let renamed = providers["openai"].build_named("openai-eu").unwrap();
        assert_eq!(renamed.name(), "openai-eu");
    }

    #[test]
    fn unknown_keys_and_missing_settings_are_errors() {
        let err = parse("[providers.x]\nkind = \"openai\"\napi_key = \"k\"\nbase_ulr = \"x\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("base_ulr"), "{err}");
        assert!(parse("[providers.x]\nkind = \"openia\"\napi_key = \"k\"\n").is_err());
        assert!(parse("[providers.x]\nkind = \"azure\"\napi_key = \"k\"\n").is_err());
        let err =
            parse("[providers.x]\nkind = \"groq\"\napi_key = \"k\"\ntimeouts = { idle = 1 }\n")
                .unwrap_err();
        assert!(err.to_string().contains("idle"), "{err}");
        let bad_url =
            parse("[providers.x]\nkind = \"groq\"\napi_key = \"k\"\nbase_url = \"nope\"\n")
                .unwrap();
        assert!(matches!(
            bad_url["x"].build(),
            Err(ProviderConfigError::InvalidUrl { .. })
        ));
        let empty_key = parse("[providers.x]\nkind = \"groq\"\napi_key = \" \"\n").unwrap();
        assert!(matches!(
            empty_key["x"].build(),
            Err(ProviderConfigError::Missing {
                field: "api_key",
                ..
            })
        ));
    }

    #[test]
    fn keys_never_appear_in_debug_output() {
        let providers = parse(
            "[providers.openai]\nkind = \"openai\"\napi_key = \"sk-secret-123\"\nextra_headers = { \"OpenAI-Organization\" = \"org-secret\" }\n",
        )
        .unwrap();
        let config = format!("{:?}", providers["openai"]);
        let provider = format!("{:?}", providers["openai"].build().unwrap());
        for text in [config.as_str(), provider.as_str()] {
            assert!(!text.contains("sk-secret-123"), "{text}");
        }
        assert!(!provider.contains("org-secret"), "{provider}");
    }

    #[test]
    fn timeouts_have_defaults_and_overrides() {
        let providers = parse(
            "[providers.d]\nkind = \"deepseek\"\napi_key = \"k\"\ntimeouts = { first_byte_ms = 2000 }\n",
        )
        .unwrap();
        let ProviderConfig::DeepSeek(h) = &providers["d"] else {
            panic!("deepseek expected");
        };
        let t: Timeouts = h.timeouts.into();
        assert_eq!(t.first_byte, Duration::from_secs(2));
        assert_eq!(t.request, Timeouts::default().request);
    }
}
