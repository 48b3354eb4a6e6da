//! Benchmark priors: public benchmark scores per (model, category), shipped with the binary
//! (`priors.toml`, a source and a date on every row) and overridable by operators. They are the
//! feedback signal of phase 0, before the org has any of its own.

use std::collections::BTreeMap;

use serde::Deserialize;

const SHIPPED: &str = include_str!("../priors.toml");

/// One prior.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prior {
    /// `provider/model`, as in the model catalog.
    pub model: String,
    /// Route category (`general`, `code`, `math`, `reasoning`, ...).
    pub category: String,
    /// The score, normalised to 0..=1.
    pub score: f64,
    /// The benchmark and where the number was published.
    pub source: String,
    /// When it was read.
    pub as_of: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorsFile {
    prior: Vec<Prior>,
}

/// The error for a priors table that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("benchmark priors: {0}")]
pub struct PriorsError(String);

/// Priors by (model, category).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Priors {
    /// model → category → prior.
    rows: BTreeMap<String, BTreeMap<String, Prior>>,
}

/// The category every model should have a prior in; others fall back to it.
pub const GENERAL: &str = "general";

impl Priors {
    /// Returns the shipped table.
    pub fn shipped() -> Result<Self, PriorsError> {
        Self::parse(SHIPPED)
    }

    /// Parses a table in the shipped format.
    pub fn parse(text: &str) -> Result<Self, PriorsError> {
        let file: PriorsFile = toml::from_str(text).map_err(|e| PriorsError(e.to_string()))?;
        let mut priors = Priors::default();
        for p in file.prior {
            if !(p.score.is_finite() && (0.0..=1.0).contains(&p.score)) {
                return Err(PriorsError(format!(
                    "{} / {}: score {} is outside 0..=1",
                    p.model, p.category, p.score
                )));
            }
            if p.source.trim().is_empty() || p.as_of.trim().is_empty() {
                return Err(PriorsError(format!(
                    "{} / {}: every prior needs a source and a date",
                    p.model, p.category
                )));
            }
            let by_category = priors.rows.entry(p.model.clone()).or_default();
            if by_category.insert(p.category.clone(), p).is_some() {
                return Err(PriorsError("duplicate (model, category) row".into()));
            }
        }
        Ok(priors)
    }

    /// Adds or replaces rows.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Prior>) {
        for p in rows {
            self.rows
                .entry(p.model.clone())
                .or_default()
                .insert(p.category.clone(), p);
        }
    }

    /// Returns the prior of a model for a category, falling back to its `general` prior.
    pub fn get(&self, model: &str, category: &str) -> Option<&Prior> {
        let by_category = self.rows.get(model)?;
        by_category
            .get(category)
            .or_else(|| by_category.get(GENERAL))
    }

    /// Returns every row.
    pub fn rows(&self) -> impl Iterator<Item = &Prior> {
        self.rows.values().flat_map(BTreeMap::values)
    }
}
