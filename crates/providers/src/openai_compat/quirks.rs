//! What differs between the providers of the OpenAI-compatible family, as data.
//!
//! Each row was read from the provider's documentation (the `source` of the row) and from the
//! public issue trackers of OpenAI-compatible clients where the documentation is silent (for
//! example Mistral's 422 `extra_forbidden` on `stream_options` and `max_completion_tokens`).
//! Where neither says, the row takes the choice that cannot make a valid request fail: it asks
//! for streamed usage only where the option is known to be accepted, renames
//! `max_completion_tokens` to the universally understood `max_tokens` outside OpenAI and Azure,
//! and refuses `n > 1` up front where support is not documented.
//!
//! Usage is normalised for every provider regardless of the row (see `wire.rs`): DeepSeek's
//! `prompt_cache_hit_tokens`, a top-level `reasoning_tokens`, Groq's `x_groq.usage`, usage on
//! every chunk (Perplexity) and usage on the finishing chunk all end up as one OpenAI-shaped
//! usage chunk at the end of the stream.

use serde::{Deserialize, Serialize};

/// A provider of the OpenAI-compatible family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI.
    #[serde(rename = "openai")]
    OpenAi,
    /// Azure OpenAI (deployment URLs, `api-key` header).
    Azure,
    /// DeepSeek.
    #[serde(rename = "deepseek")]
    DeepSeek,
    /// Mistral AI.
    Mistral,
    /// xAI (Grok).
    Xai,
    /// Groq.
    Groq,
    /// Cerebras.
    Cerebras,
    /// SambaNova Cloud.
    #[serde(rename = "sambanova")]
    SambaNova,
    /// Together AI.
    Together,
    /// Fireworks AI.
    Fireworks,
    /// Perplexity (Sonar).
    Perplexity,
    /// AI21 Labs (Jamba).
    Ai21,
    /// DeepInfra.
    #[serde(rename = "deepinfra")]
    DeepInfra,
    /// Nebius Token Factory (formerly AI Studio).
    Nebius,
    /// Novita AI.
    Novita,
}

/// How the provider authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `api-key: <key>` (Azure).
    ApiKeyHeader,
}

/// How a stream gets its usage chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// Send `stream_options.include_usage = true` (OpenAI's way; the provider accepts it).
    IncludeUsageOption,
    /// The provider reports usage unasked (on the last chunk, or on every chunk) and may reject
    /// `stream_options`, which is therefore removed.
    Unasked,
}

/// Which output-limit field the provider understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// Send `max_completion_tokens` (OpenAI's reasoning models reject `max_tokens`).
    MaxCompletionTokens,
    /// Send `max_tokens` (the provider rejects or ignores `max_completion_tokens`).
    MaxTokens,
    /// Both are accepted: pass the request's fields through.
    Either,
}

/// One provider's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// The provider's name (the default name of its config entry, and of its model ids).
    pub name: &'static str,
    /// The base URL that `chat/completions` and `embeddings` are appended to; empty for Azure,
    /// whose endpoint is per resource.
    pub default_base_url: &'static str,
    /// How the key is sent.
    pub auth: Auth,
    /// How streams get usage.
    pub stream_usage: StreamUsage,
    /// The output-limit field sent.
    pub max_tokens_field: MaxTokensField,
    /// Whether `n > 1` is accepted; when not, such a request fails fast as `Unsupported`.
    pub multiple_choices: bool,
    /// Whether tools are accepted; when not, a request with tools fails fast as `Unsupported`
    /// (Perplexity silently ignores them, which would be worse than failing over).
    pub tools: bool,
    /// Whether the provider serves `/embeddings`.
    pub embeddings: bool,
    /// Request fields the provider spells differently: (OpenAI name, provider name).
    pub renamed_fields: &'static [(&'static str, &'static str)],
    /// Hints without effect on the output that the provider rejects: removed before sending.
    pub dropped_fields: &'static [&'static str],
    /// Fields that change the output and that the provider rejects: a request using one fails
    /// fast as `Unsupported`, so the router can pick another provider.
    pub rejected_fields: &'static [&'static str],
    /// Whether `messages[].name` must be removed (rejected with a 400 otherwise).
    pub strip_message_names: bool,
    /// Whether the response carries top-level `citations` / `search_results` to turn into
    /// OpenAI `url_citation` annotations.
    pub citations: bool,
    /// Where the row comes from.
    pub source: &'static str,
}

const OPENAI_LIKE: Quirks = Quirks {
    name: "",
    default_base_url: "",
    auth: Auth::Bearer,
    stream_usage: StreamUsage::IncludeUsageOption,
    max_tokens_field: MaxTokensField::MaxTokens,
    multiple_choices: true,
    tools: true,
    embeddings: false,
    renamed_fields: &[],
    dropped_fields: &[],
    rejected_fields: &[],
    strip_message_names: false,
    citations: false,
    source: "",
};

static OPENAI: Quirks = Quirks {
    name: "openai",
    default_base_url: "https://api.openai.com/v1",
    max_tokens_field: MaxTokensField::MaxCompletionTokens,
    embeddings: true,
    source: "https://platform.openai.com/docs/api-reference/chat/create",
    ..OPENAI_LIKE
};

static AZURE: Quirks = Quirks {
    name: "azure",
    default_base_url: "",
    auth: Auth::ApiKeyHeader,
    max_tokens_field: MaxTokensField::MaxCompletionTokens,
    embeddings: true,
    source: "https://learn.microsoft.com/azure/ai-services/openai/reference (api-version 2024-10-21)",
    ..OPENAI_LIKE
};

static DEEPSEEK: Quirks = Quirks {
    name: "deepseek",
    default_base_url: "https://api.deepseek.com",
    multiple_choices: false,
    source: "https://api-docs.deepseek.com/ (usage: prompt_cache_hit_tokens / prompt_cache_miss_tokens)",
    ..OPENAI_LIKE
};

static MISTRAL: Quirks = Quirks {
    name: "mistral",
    default_base_url: "https://api.mistral.ai/v1",
    // 422 extra_forbidden on stream_options and max_completion_tokens; usage comes unasked.
    stream_usage: StreamUsage::Unasked,
    embeddings: true,
    renamed_fields: &[("seed", "random_seed")],
    dropped_fields: &["service_tier", "store", "metadata"],
    source: "https://docs.mistral.ai/api/ ; 422 extra_forbidden reports (openai-agents-python#442, avante.nvim#2347, eca#231)",
    ..OPENAI_LIKE
};

static XAI: Quirks = Quirks {
    name: "xai",
    default_base_url: "https://api.x.ai/v1",
    max_tokens_field: MaxTokensField::Either,
    source: "https://docs.x.ai/docs/api-reference",
    ..OPENAI_LIKE
};

static GROQ: Quirks = Quirks {
    name: "groq",
    default_base_url: "https://api.groq.com/openai/v1",
    max_tokens_field: MaxTokensField::Either,
    multiple_choices: false,
    rejected_fields: &["logprobs", "logit_bias", "top_logprobs"],
    strip_message_names: true,
    source: "https://console.groq.com/docs/openai (400 on logprobs, logit_bias, top_logprobs, messages[].name; n must be 1)",
    ..OPENAI_LIKE
};

static CEREBRAS: Quirks = Quirks {
    name: "cerebras",
    default_base_url: "https://api.cerebras.ai/v1",
    stream_usage: StreamUsage::Unasked,
    max_tokens_field: MaxTokensField::Either,
    multiple_choices: false,
    dropped_fields: &["parallel_tool_calls"],
    rejected_fields: &["frequency_penalty", "presence_penalty", "logit_bias"],
    source: "https://inference-docs.cerebras.ai/resources/openai (400 on frequency_penalty, logit_bias, presence_penalty, parallel_tool_calls)",
    ..OPENAI_LIKE
};

static SAMBANOVA: Quirks = Quirks {
    name: "sambanova",
    default_base_url: "https://api.sambanova.ai/v1",
    multiple_choices: false,
    embeddings: true,
    source: "https://docs.sambanova.ai/docs/en/features/openai-compatibility",
    ..OPENAI_LIKE
};

static TOGETHER: Quirks = Quirks {
    name: "together",
    default_base_url: "https://api.together.ai/v1",
    stream_usage: StreamUsage::Unasked,
    embeddings: true,
    source: "https://docs.together.ai/docs/inference/openai-compatibility",
    ..OPENAI_LIKE
};

static FIREWORKS: Quirks = Quirks {
    name: "fireworks",
    default_base_url: "https://api.fireworks.ai/inference/v1",
    // "Usage stats are returned on streaming responses too, in the final chunk."
    stream_usage: StreamUsage::Unasked,
    embeddings: true,
    source: "https://fireworks.ai/docs/tools-sdks/openai-compatibility",
    ..OPENAI_LIKE
};

static PERPLEXITY: Quirks = Quirks {
    name: "perplexity",
    default_base_url: "https://api.perplexity.ai",
    // Usage arrives on every chunk (cumulative); the adapter keeps the last one.
    stream_usage: StreamUsage::Unasked,
    multiple_choices: false,
    tools: false,
    dropped_fields: &["seed", "parallel_tool_calls", "service_tier"],
    rejected_fields: &["logit_bias", "logprobs", "top_logprobs"],
    citations: true,
    source: "https://docs.perplexity.ai/docs/sonar/openai-compatibility (citations, search_results; no function calling)",
    ..OPENAI_LIKE
};

static AI21: Quirks = Quirks {
    name: "ai21",
    default_base_url: "https://api.ai21.com/studio/v1",
    stream_usage: StreamUsage::Unasked,
    source: "https://docs.ai21.com/reference/jamba-1-6-api-ref",
    ..OPENAI_LIKE
};

static DEEPINFRA: Quirks = Quirks {
    name: "deepinfra",
    default_base_url: "https://api.deepinfra.com/v1/openai",
    embeddings: true,
    source: "https://deepinfra.com/docs/advanced/openai_api",
    ..OPENAI_LIKE
};

static NEBIUS: Quirks = Quirks {
    name: "nebius",
    default_base_url: "https://api.tokenfactory.nebius.com/v1",
    embeddings: true,
    source: "https://docs.tokenfactory.nebius.com/api-reference/introduction",
    ..OPENAI_LIKE
};

static NOVITA: Quirks = Quirks {
    name: "novita",
    default_base_url: "https://api.novita.ai/openai/v1",
    embeddings: true,
    source: "https://novita.ai/docs/guides/llm-api",
    ..OPENAI_LIKE
};

impl ProviderKind {
    /// Every provider of the family.
    pub const ALL: [ProviderKind; 15] = [
        ProviderKind::OpenAi,
        ProviderKind::Azure,
        ProviderKind::DeepSeek,
        ProviderKind::Mistral,
        ProviderKind::Xai,
        ProviderKind::Groq,
        ProviderKind::Cerebras,
        ProviderKind::SambaNova,
        ProviderKind::Together,
        ProviderKind::Fireworks,
        ProviderKind::Perplexity,
        ProviderKind::Ai21,
        ProviderKind::DeepInfra,
        ProviderKind::Nebius,
        ProviderKind::Novita,
    ];

    /// Returns the provider's row of the quirks table.
    pub fn quirks(self) -> &'static Quirks {
        match self {
            ProviderKind::OpenAi => &OPENAI,
            ProviderKind::Azure => &AZURE,
            ProviderKind::DeepSeek => &DEEPSEEK,
            ProviderKind::Mistral => &MISTRAL,
            ProviderKind::Xai => &XAI,
            ProviderKind::Groq => &GROQ,
            ProviderKind::Cerebras => &CEREBRAS,
            ProviderKind::SambaNova => &SAMBANOVA,
            ProviderKind::Together => &TOGETHER,
            ProviderKind::Fireworks => &FIREWORKS,
            ProviderKind::Perplexity => &PERPLEXITY,
            ProviderKind::Ai21 => &AI21,
            ProviderKind::DeepInfra => &DEEPINFRA,
            ProviderKind::Nebius => &NEBIUS,
            ProviderKind::Novita => &NOVITA,
        }
    }

    /// Returns the provider's name (`openai`, `deepseek`, ...).
    pub fn name(self) -> &'static str {
        self.quirks().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_complete_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for kind in ProviderKind::ALL {
            let q = kind.quirks();
            assert!(!q.name.is_empty() && !q.source.is_empty(), "{kind:?}");
            assert!(names.insert(q.name), "duplicate name {}", q.name);
            // The serde name (config `kind`) is the provider name.
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(q.name.into())
            );
            if kind == ProviderKind::Azure {
                assert!(q.default_base_url.is_empty());
            } else {
                assert!(q.default_base_url.starts_with("https://"), "{kind:?}");
                assert!(!q.default_base_url.ends_with('/'), "{kind:?}");
            }
        }
    }
}
