//! The documented base URL of every provider of the family, and the URLs built from them.

use switchyard_providers::{
    OpenAiCompatConfig, OpenAiCompatProvider, Provider, ProviderConfig, ProviderKind,
};

/// (kind, chat completions URL for model `m`, embeddings URL for model `m`). Written out by
/// hand from each provider's documentation, independently of the quirks table.
const EXPECTED: [(ProviderKind, &str, &str); 15] = [
    (
        ProviderKind::OpenAi,
        "https://api.openai.com/v1/chat/completions",
        "https://api.openai.com/v1/embeddings",
    ),
    (
        ProviderKind::Azure,
        "https://res.openai.azure.com/openai/deployments/m/chat/completions?api-version=2024-10-21",
        "https://res.openai.azure.com/openai/deployments/m/embeddings?api-version=2024-10-21",
    ),
    (
        ProviderKind::DeepSeek,
        "https://api.deepseek.com/chat/completions",
        "https://api.deepseek.com/embeddings",
    ),
    (
        ProviderKind::Mistral,
        "https://api.mistral.ai/v1/chat/completions",
        "https://api.mistral.ai/v1/embeddings",
    ),
    (
        ProviderKind::Xai,
        "https://api.x.ai/v1/chat/completions",
        "https://api.x.ai/v1/embeddings",
    ),
    (
        ProviderKind::Groq,
        "https://api.groq.com/openai/v1/chat/completions",
        "https://api.groq.com/openai/v1/embeddings",
    ),
    (
        ProviderKind::Cerebras,
        "https://api.cerebras.ai/v1/chat/completions",
        "https://api.cerebras.ai/v1/embeddings",
    ),
    (
        ProviderKind::SambaNova,
        "https://api.sambanova.ai/v1/chat/completions",
        "https://api.sambanova.ai/v1/embeddings",
    ),
    (
        ProviderKind::Together,
        "https://api.together.ai/v1/chat/completions",
        "https://api.together.ai/v1/embeddings",
    ),
    (
        ProviderKind::Fireworks,
        "https://api.fireworks.ai/inference/v1/chat/completions",
        "https://api.fireworks.ai/inference/v1/embeddings",
    ),
    (
        ProviderKind::Perplexity,
        "https://api.perplexity.ai/chat/completions",
        "https://api.perplexity.ai/embeddings",
    ),
    (
        ProviderKind::Ai21,
        "https://api.ai21.com/studio/v1/chat/completions",
        "https://api.ai21.com/studio/v1/embeddings",
    ),
    (
        ProviderKind::DeepInfra,
        "https://api.deepinfra.com/v1/openai/chat/completions",
        "https://api.deepinfra.com/v1/openai/embeddings",
    ),
    (
        ProviderKind::Nebius,
        "https://api.tokenfactory.nebius.com/v1/chat/completions",
        "https://api.tokenfactory.nebius.com/v1/embeddings",
    ),
    (
        ProviderKind::Novita,
        "https://api.novita.ai/openai/v1/chat/completions",
        "https://api.novita.ai/openai/v1/embeddings",
    ),
];

#[test]
fn every_provider_has_its_documented_urls() {
    let kinds: Vec<ProviderKind> = EXPECTED.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(
        kinds,
        ProviderKind::ALL,
        "the table covers the whole family"
    );
    for (kind, chat, embeddings) in EXPECTED {
        let mut config = OpenAiCompatConfig::new(kind, "key");
        if kind == ProviderKind::Azure {
            config.base_url = Some("https://res.openai.azure.com/".into());
        }
        let p = OpenAiCompatProvider::new(config).unwrap();
        assert_eq!(p.chat_url("m").as_str(), chat, "{kind:?}");
        assert_eq!(p.embeddings_url("m").as_str(), embeddings, "{kind:?}");
        assert_eq!(p.name(), kind.name());
    }
}

#[test]
fn base_url_overrides_keep_their_path_and_azure_maps_deployments() {
    let mut config = OpenAiCompatConfig::new(ProviderKind::OpenAi, "key");
    config.base_url = Some("http://proxy.internal:8080/openai/v1/".into());
    let p = OpenAiCompatProvider::new(config).unwrap();
    assert_eq!(
        p.chat_url("gpt-4o").as_str(),
        "http://proxy.internal:8080/openai/v1/chat/completions"
    );

    let toml = r#"
        kind = "azure"
        api_key = "k"
        endpoint = "https://res.openai.azure.com"
        api_version = "2025-01-01-preview"
        deployments = { "gpt-4o" = "prod 4o" }
    "#;
    let config: ProviderConfig = toml::from_str(toml).unwrap();
    let Ok(switchyard_providers::AnyProvider::OpenAiCompat(p)) = config.build() else {
        panic!("azure builds an OpenAI-compatible provider");
    };
    assert_eq!(
        p.chat_url("gpt-4o").as_str(),
        "https://res.openai.azure.com/openai/deployments/prod%204o/chat/completions?api-version=2025-01-01-preview"
    );
    assert_eq!(
        p.chat_url("other").as_str(),
        "https://res.openai.azure.com/openai/deployments/other/chat/completions?api-version=2025-01-01-preview"
    );
}

#[test]
fn azure_without_an_endpoint_is_a_config_error() {
    let err =
        OpenAiCompatProvider::new(OpenAiCompatConfig::new(ProviderKind::Azure, "k")).unwrap_err();
    assert!(err.to_string().contains("endpoint"), "{err}");
}
