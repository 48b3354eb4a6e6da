//! The shipped benchmark priors: they parse, they name chat models of the shipped catalog, and
//! each real row is the figure its source quotes, from the benchmark its category is read from.

use anyhow::{Context as _, Result, bail, ensure};
use switchyard_providers::Catalog;
use switchyard_router::Priors;

/// The benchmark each category is read from (see the comment at the top of `priors.toml`).
fn benchmark(category: &str) -> Option<&'static str> {
    match category {
        "general" => Some("GPQA Diamond"),
        "code" => Some("SWE-bench Verified"),
        "math" => Some("AIME 2025"),
        _ => None,
    }
}

#[test]
fn the_shipped_priors_parse() -> Result<()> {
    let priors = Priors::shipped()?;
    ensure!(priors.rows().count() > 3, "only the demo rows");
    for demo in ["demo/small", "demo/medium", "demo/large"] {
        ensure!(priors.get(demo, "general").is_some(), "{demo} lost its row");
    }
    Ok(())
}

#[test]
fn every_prior_names_a_chat_model_of_the_shipped_catalog() -> Result<()> {
    let priors = Priors::shipped()?;
    let catalog = Catalog::shipped()?;
    for p in priors.rows() {
        let model = catalog
            .get(&p.model)
            .with_context(|| format!("{} is not in the shipped catalog", p.model))?;
        ensure!(!model.embeddings, "{} is an embedding model", p.model);
    }
    Ok(())
}

#[test]
fn every_real_prior_is_the_figure_its_source_quotes() -> Result<()> {
    let priors = Priors::shipped()?;
    for p in priors.rows() {
        if p.source.starts_with("simulated:") {
            continue;
        }
        let Some(bench) = benchmark(&p.category) else {
            bail!(
                "{} / {}: no benchmark for this category",
                p.model,
                p.category
            );
        };
        let quoted = p.source.strip_prefix(bench).with_context(|| {
            format!(
                "{} / {}: source must start with {bench}",
                p.model, p.category
            )
        })?;
        let percent: f64 = quoted
            .trim_start()
            .split_once('%')
            .map(|(n, _)| n)
            .with_context(|| format!("{} / {}: no percentage after {bench}", p.model, p.category))?
            .parse()
            .with_context(|| format!("{} / {}: unreadable percentage", p.model, p.category))?;
        ensure!(
            (percent / 100.0 - p.score).abs() < 1e-9,
            "{} / {}: score {} but the source quotes {percent}%",
            p.model,
            p.category,
            p.score
        );
        ensure!(
            ["OpenAI, ", "Anthropic, ", "Google, ", "Google DeepMind, "]
                .iter()
                .any(|publisher| p.source.contains(publisher)),
            "{} / {}: the source must name its publisher",
            p.model,
            p.category
        );
    }
    Ok(())
}
