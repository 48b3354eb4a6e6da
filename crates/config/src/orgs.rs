//! `[orgs.<org>]` (per-org settings) and `[learning_pool]`: which orgs share their feedback
//! statistics in the shared learning pool, and how pool priors are blended.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::ConfigError;

/// `[orgs.<org>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrg {
    /// `share` (feed the shared learning pool and read its priors) or `private` (the default).
    #[serde(default = "private")]
    pub learning_pool: String,
    /// Most the org may spend per UTC day, in USD, across its keys and every ingress replica.
    #[serde(default)]
    pub daily_budget_usd: Option<f64>,
}

fn private() -> String {
    "private".into()
}

/// `[learning_pool]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLearningPool {
    /// Pseudo-observations a shipped benchmark prior counts as against the pool's observations.
    pub prior_strength: f64,
    /// Orgs a (category, model) needs observations from before the pool says anything about it.
    pub min_orgs: u64,
}

/// Whether an org takes part in the shared learning pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMembership {
    /// Feeds the pool with its feedback statistics and reads the pool's priors.
    Share,
    /// Neither feeds the pool nor reads from it: shipped priors and its own feedback only.
    Private,
}

/// One org's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    /// Learning-pool membership.
    pub learning_pool: PoolMembership,
    /// Most the org may spend per UTC day, in micro-USD; `None` = no budget.
    pub daily_budget_micro_usd: Option<u64>,
}

/// The shared learning pool: its members and how its priors blend with the shipped ones.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningPoolConfig {
    /// Orgs with `learning_pool = "share"` (every other org is private).
    pub members: BTreeSet<String>,
    /// Pseudo-observations of the shipped prior in the blend (default 20).
    pub prior_strength: f64,
    /// Orgs a (category, model) needs observations from before it is in the pool (default 2).
    pub min_orgs: u64,
}

impl LearningPoolConfig {
    /// Returns whether `org` shares in the pool.
    pub fn is_member(&self, org: &str) -> bool {
        self.members.contains(org)
    }
}

impl Default for LearningPoolConfig {
    /// No member: the pool is off.
    fn default() -> Self {
        Self {
            members: BTreeSet::new(),
            prior_strength: 20.0,
            min_orgs: 2,
        }
    }
}

/// Validates `[orgs.*]` and `[learning_pool]`.
pub(crate) fn validate(
    orgs: BTreeMap<String, RawOrg>,
    pool: RawLearningPool,
) -> Result<(BTreeMap<String, OrgConfig>, LearningPoolConfig), ConfigError> {
    let mut out = BTreeMap::new();
    let mut members = BTreeSet::new();
    for (name, raw) in orgs {
        let key = format!("orgs.{name}.learning_pool");
        let learning_pool = match raw.learning_pool.as_str() {
            "share" => PoolMembership::Share,
            "private" => PoolMembership::Private,
            other => {
                return Err(ConfigError::invalid(
                    &key,
                    format!("must be \"share\" or \"private\", got {other:?}"),
                ));
            }
        };
        if learning_pool == PoolMembership::Share {
            members.insert(name.clone());
        }
        let daily_budget_micro_usd = match raw.daily_budget_usd {
            None => None,
            Some(usd) if (0.0..=1e9).contains(&usd) => Some((usd * 1e6).round() as u64),
            Some(usd) => {
                return Err(ConfigError::invalid(
                    &format!("orgs.{name}.daily_budget_usd"),
                    format!("must be a number of USD between 0 and 1e9, got {usd}"),
                ));
            }
        };
        out.insert(
            name,
            OrgConfig {
                learning_pool,
                daily_budget_micro_usd,
            },
        );
    }
    if !(pool.prior_strength.is_finite() && pool.prior_strength >= 0.0) {
        return Err(ConfigError::invalid(
            "learning_pool.prior_strength",
            format!("must be a non-negative number, got {}", pool.prior_strength),
        ));
    }
    if pool.min_orgs < 1 {
        return Err(ConfigError::invalid(
            "learning_pool.min_orgs",
            "must be at least 1",
        ));
    }
    Ok((
        out,
        LearningPoolConfig {
            members,
            prior_strength: pool.prior_strength,
            min_orgs: pool.min_orgs,
        },
    ))
}

#[cfg(test)]
mod tests {
    use crate::{EnvVars, Overrides, PoolMembership, load_with};

    fn load(vars: &[(&str, &str)]) -> Result<crate::Config, crate::ConfigError> {
        load_with(
            &[],
            EnvVars::from_vars(vars.iter().copied()),
            &Overrides::default().with_data_dir("/nonexistent/switchyard-orgs"),
        )
    }

    #[test]
    fn orgs_are_private_unless_they_share() {
        let config = load(&[]).expect("defaults");
        assert!(config.learning_pool.members.is_empty());
        assert_eq!(config.learning_pool.min_orgs, 2);
        let config = load(&[
            ("SWITCHYARD__ORGS__ACME__LEARNING_POOL", "share"),
            ("SWITCHYARD__ORGS__GLOBEX__LEARNING_POOL", "private"),
            ("SWITCHYARD__LEARNING_POOL__MIN_ORGS", "3"),
        ])
        .expect("valid");
        assert!(config.learning_pool.is_member("acme"));
        assert!(!config.learning_pool.is_member("globex"));
        assert!(!config.learning_pool.is_member("initech"));
        assert_eq!(
            config.orgs.get("globex").map(|o| o.learning_pool),
            Some(PoolMembership::Private)
        );
        assert_eq!(config.learning_pool.min_orgs, 3);
    }

    #[test]
    fn a_bad_membership_names_its_key() {
        let error = load(&[("SWITCHYARD__ORGS__ACME__LEARNING_POOL", "public")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("orgs.acme.learning_pool"), "{error}");
        let error = load(&[("SWITCHYARD__LEARNING_POOL__MIN_ORGS", "0")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("learning_pool.min_orgs"), "{error}");
    }
}
