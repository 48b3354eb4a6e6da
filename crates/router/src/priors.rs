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
    /// The version of the learning pool's snapshot blended in ([`Priors::with_pool`]); `None`
    /// for priors without the pool. It travels with the rows so that a decision records the
    /// pool snapshot of exactly the priors it read.
    pool_version: Option<i64>,
}

/// The org the shared learning pool's snapshots are published as on the `routing-table` topic
/// (the projector's `POOL_ORG`): not a valid org id, so never an org's own table.
pub const POOL_ORG: &str = "*pool";

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

    /// Returns the version of the learning pool's snapshot these priors blend in, `None` when
    /// they do not (the shipped priors, plus operator rows). Decisions record it
    /// (`RouteDecided.pool_version`) and an audit rebuilds the same priors from that snapshot.
    pub fn pool_version(&self) -> Option<i64> {
        self.pool_version
    }

    /// Returns these priors with the shared learning pool blended in: for each (category,
    /// model) of the pool's snapshot (one route entry per category, the pool's observations as
    /// each model's `benchmark` source), a row scoring
    /// `(strength · shipped + n · pool_mean) / (strength + n)`, where `shipped` is this table's
    /// prior of the model for the category (falling back to `general`, else the router's
    /// uninformative 0.5) and `n` the pool's observations. Rows the pool does not cover stay
    /// as they are. The result's [`Priors::pool_version`] is the snapshot's `version`. Pure: the
    /// same priors, pool and strength give the same table.
    pub fn with_pool(&self, pool: &switchyard_events::RoutingTableUpdated, strength: f64) -> Self {
        let strength = if strength.is_finite() {
            strength.max(0.0)
        } else {
            0.0
        };
        let mut out = self.clone();
        out.pool_version = Some(pool.version);
        let as_of = pool_date(pool.generated_at.as_micros());
        for entry in &pool.routes {
            let category = entry.route.as_str();
            for stats in &entry.models {
                let Some(observed) = stats
                    .sources
                    .iter()
                    .find(|s| s.source == switchyard_events::FeedbackSource::Benchmark)
                    .filter(|s| s.samples > 0 && s.mean.is_finite())
                else {
                    continue;
                };
                let model = stats.model.as_str();
                let shipped = self.get(model, category);
                let base = shipped.map_or(0.5, |p| p.score);
                let n = observed.samples as f64;
                let score = ((strength * base + n * observed.mean.clamp(0.0, 1.0))
                    / (strength + n))
                    .clamp(0.0, 1.0);
                let orgs = stats.signals.get("orgs").copied().unwrap_or(0.0);
                out.rows.entry(model.to_owned()).or_default().insert(
                    category.to_owned(),
                    Prior {
                        model: model.to_owned(),
                        category: category.to_owned(),
                        score,
                        source: format!(
                            "learning pool: {} observations from {orgs} orgs (mean {:.3}), blended with {} as {strength} observations",
                            observed.samples,
                            observed.mean,
                            shipped.map_or_else(
                                || "the uninformative prior 0.5".to_owned(),
                                |p| format!("the prior {} ({})", p.score, p.source)
                            ),
                        ),
                        as_of: as_of.clone(),
                    },
                );
            }
        }
        out
    }
}

/// Returns the UTC date (`YYYY-MM-DD`) of a time in microseconds since the epoch.
fn pool_date(micros: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let days = micros.div_euclid(86_400_000_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(pool_date(0), "1970-01-01");
        assert_eq!(pool_date(1_763_942_400_000_000), "2025-11-24");
        assert_eq!(pool_date(951_782_400_000_000), "2000-02-29");
    }
}
