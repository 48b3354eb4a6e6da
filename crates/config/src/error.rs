//! [`ConfigError`]: one line naming the key, what is wrong with it, and where the value came from.

use std::fmt;
use std::path::PathBuf;

use figment::error::{Actual, Kind};
use figment::{Figment, Metadata, Profile, Source};

use crate::env::ENV_METADATA_NAME;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The compiled-in `default.toml`.
    Default,
    /// A `--config` file.
    File(PathBuf),
    /// An environment variable, by name (`SWITCHYARD__SERVER__LISTEN`).
    EnvVar(String),
    /// A command-line flag, by name (`--data-dir`).
    Flag(&'static str),
}

impl Origin {
    /// Returns the origin figment recorded for the value at `keys`.
    pub(crate) fn from_metadata(metadata: &Metadata, keys: &[&str]) -> Origin {
        match &metadata.source {
            Some(Source::File(path)) => Origin::File(path.clone()),
            _ if metadata.name == ENV_METADATA_NAME => {
                Origin::EnvVar(metadata.interpolate(&Profile::Default, keys))
            }
            _ => Origin::Default,
        }
    }

    /// Returns the origin of the value at `key` (dotted) in the merged `figment`, if any.
    pub(crate) fn of_key(figment: &Figment, key: &str) -> Option<Origin> {
        let keys: Vec<&str> = key.split('.').collect();
        figment
            .find_metadata(key)
            .map(|md| Origin::from_metadata(md, &keys))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("in the compiled-in default.toml"),
            Origin::File(path) => write!(f, "in {}", path.display()),
            Origin::EnvVar(name) => write!(f, "from {name}"),
            Origin::Flag(flag) => write!(f, "from {flag}"),
        }
    }
}

/// Renders ` (in /x.toml)`, or nothing when the origin is unknown.
struct OriginSuffix<'a>(&'a Option<Origin>);

impl fmt::Display for OriginSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => write!(f, " ({origin})"),
            None => Ok(()),
        }
    }
}

/// Renders `[server]`-style section names for the unknown-key message.
struct Section<'a>(&'a str);

impl fmt::Display for Section<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.rsplit_once('.') {
            Some((parent, _)) => write!(f, "[{parent}]"),
            None => f.write_str("the top level"),
        }
    }
}

/// A configuration that cannot be loaded. Every variant renders as one line starting with
/// `config error:` that names the key (when there is one) and where its value came from.
///
/// A configuration error is never worth retrying: the operator has to change a file, a variable
/// or a flag. The process should print it and exit non-zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key that no section declares (usually a typo).
    #[error(
        "config error: unknown key `{key}`{origin}; known keys in {section}: {known}",
        origin = OriginSuffix(origin),
        section = Section(key),
        known = known.join(", ")
    )]
    UnknownKey {
        /// Dotted path of the unknown key (`server.lisen`).
        key: String,
        /// Where it was set.
        origin: Option<Origin>,
        /// The keys its section does accept.
        known: Vec<String>,
    },
    /// A key whose value has the wrong type or is out of range.
    #[error("config error: `{key}`{origin}: {problem}", origin = OriginSuffix(origin))]
    InvalidValue {
        /// Dotted path of the key (`log.partitions`).
        key: String,
        /// What is wrong, e.g. `must be between 1 and 1024, got 0`.
        problem: String,
        /// Where the value was set.
        origin: Option<Origin>,
    },
    /// A required key that no layer sets (only possible if `default.toml` lost it).
    #[error("config error: missing key `{key}`")]
    MissingKey {
        /// Dotted path of the missing key.
        key: String,
    },
    /// A `--config` file that cannot be read or is not valid TOML.
    #[error("config error: cannot load {}: {reason}", path.display())]
    File {
        /// The file as given.
        path: PathBuf,
        /// The I/O or TOML error, on one line.
        reason: String,
    },
    /// Anything figment reports that fits none of the above (kept on one line).
    #[error("config error: {message}")]
    Other {
        /// figment's message.
        message: String,
    },
}

impl ConfigError {
    /// Returns the dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::InvalidValue { key, .. }
            | ConfigError::MissingKey { key } => Some(key),
            ConfigError::File { .. } | ConfigError::Other { .. } => None,
        }
    }

    /// Returns where the offending value came from, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ConfigError::UnknownKey { origin, .. } | ConfigError::InvalidValue { origin, .. } => {
                origin.as_ref()
            }
            _ => None,
        }
    }

    /// Returns a low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ConfigError::UnknownKey { .. } => "unknown_key",
            ConfigError::InvalidValue { .. } => "invalid_value",
            ConfigError::MissingKey { .. } => "missing_key",
            ConfigError::File { .. } => "file",
            ConfigError::Other { .. } => "other",
        }
    }

    /// Returns an [`InvalidValue`](ConfigError::InvalidValue) with no origin yet; the loader
    /// fills it in from figment's metadata.
    pub(crate) fn invalid(key: &str, problem: impl Into<String>) -> Self {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            problem: problem.into(),
            origin: None,
        }
    }

    /// Fills in the origin of an error raised by validation, which sees values but not layers.
    pub(crate) fn with_origin_from(mut self, figment: &Figment) -> Self {
        if let ConfigError::InvalidValue { key, origin, .. } = &mut self
            && origin.is_none()
        {
            *origin = Origin::of_key(figment, key);
        }
        self
    }

    /// Converts figment's extraction error (the first of its chain) into one line.
    pub(crate) fn from_figment(error: figment::Error, figment: &Figment) -> Self {
        let path = error.path.join(".");
        let origin_of = |key: &str| {
            Origin::of_key(figment, key).or_else(|| {
                let keys: Vec<&str> = key.split('.').collect();
                error
                    .metadata
                    .as_ref()
                    .map(|md| Origin::from_metadata(md, &keys))
            })
        };
        match &error.kind {
            Kind::UnknownField(field, known) => {
                // figment's path already ends with the unknown field; be robust to it not.
                let key = if error.path.last() == Some(field) {
                    path
                } else {
                    join_key(&path, field)
                };
                ConfigError::UnknownKey {
                    origin: origin_of(&key),
                    known: known.iter().map(|k| (*k).to_owned()).collect(),
                    key,
                }
            }
            Kind::MissingField(field) => ConfigError::MissingKey {
                key: join_key(&path, field),
            },
            Kind::InvalidType(actual, expected) => ConfigError::InvalidValue {
                problem: format!(
                    "expected {}, found {}",
                    expected_name(expected),
                    describe(actual)
                ),
                origin: origin_of(&path),
                key: path,
            },
            Kind::InvalidValue(actual, expected) => ConfigError::InvalidValue {
                problem: format!("expected {expected}, found {}", describe(actual)),
                origin: origin_of(&path),
                key: path,
            },
            Kind::UnknownVariant(variant, known) => ConfigError::InvalidValue {
                problem: format!(
                    "unknown value {variant:?}, expected one of: {}",
                    known.join(", ")
                ),
                origin: origin_of(&path),
                key: path,
            },
            Kind::USizeOutOfRange(_) | Kind::ISizeOutOfRange(_) => ConfigError::InvalidValue {
                problem: format!("{}", error.kind),
                origin: origin_of(&path),
                key: path,
            },
            Kind::Message(message) => {
                match error.metadata.as_ref().and_then(|md| md.source.as_ref()) {
                    Some(Source::File(file)) => ConfigError::File {
                        path: file.clone(),
                        reason: one_line(message),
                    },
                    _ if path.is_empty() => ConfigError::Other {
                        message: one_line(message),
                    },
                    _ => ConfigError::InvalidValue {
                        problem: one_line(message),
                        origin: origin_of(&path),
                        key: path,
                    },
                }
            }
            other => ConfigError::Other {
                message: one_line(&other.to_string()),
            },
        }
    }
}

fn join_key(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// Describes a found value the way the messages want it: `string "abc"`, `integer 3`.
fn describe(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("string {s:?}"),
        other => other.to_string(),
    }
}

/// Names what serde expected in operator terms: a `Raw*` struct is a TOML table.
fn expected_name(expected: &str) -> &str {
    if expected.starts_with("struct ") {
        "a table"
    } else {
        expected
    }
}

/// Collapses a multi-line message onto one line. TOML parse errors draw a source diagram
/// (`1 | [server` / `  |  ^`) between the position and the explanation: the diagram is dropped
/// and the remaining lines are joined with `: `.
pub(crate) fn one_line(message: &str) -> String {
    let is_diagram = |line: &str| {
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        rest.starts_with('|')
    };
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_diagram(line))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(": ")
}
