//! The environment layer: `SWITCHYARD__SECTION__KEY=value` variables as a figment provider.
//!
//! figment's own `Env` provider reads the process environment only; this one is built from any
//! list of variables, so tests pass variables in without touching the process (and without
//! serialising on a global lock), and it remembers each variable's exact name, so an error can
//! say "from SWITCHYARD__SERVER__LISTEN" rather than the key path.

use std::sync::Arc;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// Prefix of every Switchyard environment variable.
pub const ENV_PREFIX: &str = "SWITCHYARD__";

/// Separator between nesting levels in a variable name (`SWITCHYARD__LOG__URL` → `log.url`).
pub const ENV_SEPARATOR: &str = "__";

/// The metadata name figment reports for values from this layer; `Origin` matches on it.
pub(crate) const ENV_METADATA_NAME: &str = "environment variable";

/// One `SWITCHYARD__*` variable: its name as written and the key path it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvVar {
    name: String,
    key_path: Vec<String>,
    value: String,
}

/// The `SWITCHYARD__*` variables to layer over the configuration files.
///
/// Names are case-insensitive and map to lowercase keys: `SWITCHYARD__SERVER__LISTEN` sets
/// `server.listen`, `SWITCHYARD__DATA_DIR` sets `data_dir`. Values are parsed as TOML scalars, as
/// figment's `Env` does: `8` is an integer, `true` a boolean, anything else a string. Variables
/// without the prefix are ignored.
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    vars: Arc<Vec<EnvVar>>,
}

impl EnvVars {
    /// Returns no variables: the configuration is the files alone.
    pub fn none() -> Self {
        Self::default()
    }

    /// Returns the `SWITCHYARD__*` variables of the current process. Variables whose name or
    /// value is not valid UTF-8 are skipped (they cannot name a key).
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// Returns the `SWITCHYARD__*` variables among `vars` (name, value), in order; a later
    /// duplicate wins.
    pub fn from_vars<N, V>(vars: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let name: String = name.into();
                let rest = strip_prefix_ignore_case(&name, ENV_PREFIX)?;
                let key_path: Vec<String> = rest
                    .split(ENV_SEPARATOR)
                    .map(str::to_ascii_lowercase)
                    .collect();
                Some(EnvVar {
                    key_path,
                    value: value.into(),
                    name,
                })
            })
            .collect();
        Self {
            vars: Arc::new(vars),
        }
    }

    /// Returns true when no `SWITCHYARD__*` variable is set.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        name.get(prefix.len()..)
    } else {
        None
    }
}

/// Returns the variable that set `keys` (or a key below it), for error messages.
fn variable_for(vars: &[EnvVar], keys: &[&str]) -> Option<String> {
    let below = |var: &&EnvVar| {
        var.key_path.len() >= keys.len() && var.key_path.iter().zip(keys).all(|(a, b)| a == b)
    };
    // The last match is the one figment kept (later duplicates win).
    vars.iter().rev().find(below).map(|var| var.name.clone())
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        let vars = Arc::clone(&self.vars);
        Metadata::named(ENV_METADATA_NAME).interpolater(move |_: &Profile, keys: &[&str]| {
            variable_for(&vars, keys).unwrap_or_else(|| {
                let upper: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{ENV_PREFIX}{}", upper.join(ENV_SEPARATOR))
            })
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for var in self.vars.iter() {
            if var.key_path.iter().any(String::is_empty) {
                return Err(Error::from(format!(
                    "environment variable {} does not name a key (empty level between `{ENV_SEPARATOR}`)",
                    var.name
                )));
            }
            let value = match var.value.parse::<Value>() {
                Ok(value) => value,
                Err(never) => match never {},
            };
            insert(&mut root, &var.key_path, value);
        }
        let mut map = Map::new();
        map.insert(Profile::Default, root);
        Ok(map)
    }
}

/// Inserts `value` at `path` below `dict`, creating (or replacing non-dict values with) dicts
/// on the way.
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_prefixed_variables_and_lowercases_keys() {
        let env = EnvVars::from_vars([
            ("SWITCHYARD__SERVER__LISTEN", "0.0.0.0:1"),
            ("PATH", "/bin"),
            ("switchyard__log__URL", "memory://"),
        ]);
        let paths: Vec<_> = env.vars.iter().map(|v| v.key_path.join(".")).collect();
        assert_eq!(paths, ["server.listen", "log.url"]);
    }

    #[test]
    fn interpolates_the_variable_name_that_set_a_key() {
        let env = EnvVars::from_vars([("SWITCHYARD__SERVR__LISTEN", "x")]);
        let md = env.metadata();
        assert_eq!(
            md.interpolate(&Profile::Default, &["servr"]),
            "SWITCHYARD__SERVR__LISTEN"
        );
        assert_eq!(
            md.interpolate(&Profile::Default, &["log", "url"]),
            "SWITCHYARD__LOG__URL"
        );
    }

    #[test]
    fn rejects_an_empty_level() {
        let env = EnvVars::from_vars([("SWITCHYARD__SERVER____LISTEN", "x")]);
        assert!(env.data().is_err());
    }
}
