//! switchyard-registry: Switchyard's event schemas in a Confluent-compatible schema registry.
//!
//! With `schema_registry.url` set, every role builds its [`Codec`] with [`codec_for`]:
//!
//! 1. every compiled-in schema version (`schemas/avro/`, in manifest order, oldest version of
//!    each event first) is registered with `POST /subjects/{subject}/versions`; the registry
//!    answers the id it already holds for an identical schema, so every process of a
//!    deployment frames with the same ids;
//! 2. the codec frames what it writes with those ids, and still reads the `schemas/` manifest
//!    ids, so records written before the registry was configured stay readable;
//! 3. a record framed with any other id (a version registered by a newer producer) is decoded
//!    with the writer schema of `GET /schemas/ids/{id}`, fetched once per id and cached.
//!
//! **Subjects: `RecordNameStrategy`.** The subject of every version of an event is the record's
//! full name, `io.switchyard.events.<Event>` (the `subject` of `schemas/manifest.json`). Some
//! topics carry several event types (`control`: API keys and route configurations; `pins`:
//! pinned and unpinned), so Confluent's default `TopicNameStrategy` (one schema lineage per
//! topic) cannot hold them. `TopicRecordNameStrategy` (`<topic>-<record>`) would work too but
//! ties the subjects to `log.topic_prefix` while every event type lives on exactly one topic, so
//! it would say nothing more. A registry's compatibility check applies per subject, that is per
//! event type, which is the unit `schemas/README.md` evolves with FULL compatibility.
//!
//! **Client.** The REST calls go through `schema_registry_converter`'s
//! `async_impl::schema_registry` (`post_schema`, `get_schema_by_id`) on the workspace's reqwest
//! (rustls on `ring`, the platform verifier, as every other HTTP client here), handed over with
//! `SrSettingsBuilder::build_with`: no second TLS stack. Its Avro encoder and decoder are not
//! used: they need a registry for every first use and cannot frame with the manifest ids, so
//! [`Codec`] does the framing in both modes (byte-identical to Confluent's).
//!
//! **Failure.** A registry that cannot be reached or refuses a schema at startup is a startup
//! error naming the URL and the subject. Later, an unknown id the registry cannot be asked about
//! is a decode error ([`switchyard_events::CodecError::Resolve`]) for that record, asked again
//! for the next one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RawError, SchemaType, SuppliedSchema};
use switchyard_events::{Codec, CodecError, EventKind, SchemaResolver, schema_set};

/// How long one registry call may take (connect and answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Confluent's `error_code` for "no schema with this id".
const SCHEMA_NOT_FOUND: u32 = 40403;

/// What can go wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The URL is not usable or the HTTP client cannot be built.
    #[error("schema registry {url}: {message}")]
    Client {
        /// The registry URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The registry refused a schema or could not be reached while registering it.
    #[error("schema registry {url}: cannot register {subject} v{version}: {message}")]
    Register {
        /// The registry URL.
        url: String,
        /// The subject (the record's full name).
        subject: String,
        /// The schema version in `schemas/`.
        version: u32,
        /// The registry's or the transport's error.
        message: String,
    },
    /// Looking a schema id up failed.
    #[error("schema registry {url}: cannot look up schema id {id}: {message}")]
    Lookup {
        /// The registry URL.
        url: String,
        /// The id asked for.
        id: u32,
        /// The registry's or the transport's error.
        message: String,
    },
    /// The ids the registry assigned cannot build a codec (e.g. one collides with a manifest id
    /// of another schema).
    #[error("schema registry {url}: {source}")]
    Codec {
        /// The registry URL (empty without a registry).
        url: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
}

/// Returns the codec every role uses: framed with the registry's ids and resolving unknown ids
/// through it when `url` is set (non-empty), with the `schemas/` manifest ids otherwise.
///
/// # Errors
/// When the registry is unreachable, refuses a schema, or assigns ids that conflict.
pub async fn codec_for(url: Option<&str>) -> Result<Codec, RegistryError> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Codec::new().map_err(|source| RegistryError::Codec {
            url: String::new(),
            source,
        });
    };
    let registry = Registry::new(url)?;
    let ids = registry.register_all().await?;
    tracing::info!(
        url = registry.url(),
        schemas = ids.len(),
        "registered the event schemas with the schema registry"
    );
    let resolver = registry.resolver()?;
    Codec::with_resolver(ids, resolver).map_err(|source| RegistryError::Codec {
        url: registry.url().to_owned(),
        source,
    })
}

/// A client of one Confluent-compatible schema registry.
#[derive(Debug, Clone)]
pub struct Registry {
    url: String,
    settings: Arc<SrSettings>,
}

impl Registry {
    /// Returns a client of the registry at `url` (`http://` or `https://`, no trailing path).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no platform certificate verifier).
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let url = url.trim().trim_end_matches('/').to_owned();
        let client_error = |message: String| RegistryError::Client {
            url: url.clone(),
            message,
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(client_error(
                "the URL must start with http:// or https://".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| {
            client_error(format!(
                "cannot load the platform certificate verifier: {e}"
            ))
        })?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| client_error(format!("cannot configure TLS: {e}")))?
            .dangerous() // not dangerous: the platform verifier checks certificates and names
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CALL_TIMEOUT)
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")));
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(CALL_TIMEOUT)
            .build_with(builder)
            .map_err(|e| client_error(describe(&e)))?;
        Ok(Self {
            url,
            settings: Arc::new(settings),
        })
    }

    /// Returns the registry URL (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers every compiled-in schema version under its subject (oldest version first) and
    /// returns the id the registry holds for each.
    ///
    /// # Errors
    /// On the first schema the registry refuses or cannot be asked about.
    pub async fn register_all(&self) -> Result<HashMap<(EventKind, u32), u32>, RegistryError> {
        let set = schema_set().map_err(|e| RegistryError::Codec {
            url: self.url.clone(),
            source: CodecError::Schemas(e),
        })?;
        let mut ids = HashMap::with_capacity(set.entries().len());
        for entry in set.entries() {
            let subject = entry.subject();
            let schema = SuppliedSchema::new(
                Some(subject.clone()),
                SchemaType::Avro,
                entry.source().to_owned(),
            );
            let registered = post_schema(&self.settings, subject.clone(), schema)
                .await
                .map_err(|e| RegistryError::Register {
                    url: self.url.clone(),
                    subject: subject.clone(),
                    version: entry.version(),
                    message: describe(&e),
                })?;
            tracing::debug!(
                subject,
                version = entry.version(),
                id = registered.id,
                "schema registered"
            );
            ids.insert((entry.kind(), entry.version()), registered.id);
        }
        Ok(ids)
    }

    /// Returns the schema text registered under `id` (`GET /schemas/ids/{id}`), `None` when the
    /// registry has no such id.
    ///
    /// # Errors
    /// When the registry cannot be reached or answers another error.
    pub async fn schema_text(&self, id: u32) -> Result<Option<String>, RegistryError> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(registered) => Ok(Some(registered.schema)),
            Err(e) if error_code(&e) == Some(SCHEMA_NOT_FOUND) => Ok(None),
            Err(e) => Err(RegistryError::Lookup {
                url: self.url.clone(),
                id,
                message: describe(&e),
            }),
        }
    }

    /// Returns a [`SchemaResolver`] for [`Codec::with_resolver`]: a thread of its own with its
    /// own client and runtime, so the codec's synchronous decode can wait for one lookup from
    /// any thread (a Tokio worker included) without blocking a runtime the lookup needs.
    ///
    /// # Errors
    /// When the thread, its runtime or its client cannot be created.
    pub fn resolver(&self) -> Result<Arc<dyn SchemaResolver>, RegistryError> {
        let thread_error = |message: String| RegistryError::Client {
            url: self.url.clone(),
            message,
        };
        let registry = Registry::new(&self.url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| thread_error(format!("cannot start the lookup runtime: {e}")))?;
        let (requests, incoming) = mpsc::channel::<Lookup>();
        std::thread::Builder::new()
            .name("schema-registry".into())
            .spawn(move || {
                // Ends when the resolver (the sender) is dropped with its codec.
                for (id, reply) in incoming {
                    let answer = runtime
                        .block_on(registry.schema_text(id))
                        .map_err(|e| e.to_string());
                    let _ = reply.send(answer);
                }
            })
            .map_err(|e| thread_error(format!("cannot start the lookup thread: {e}")))?;
        Ok(Arc::new(ThreadResolver {
            url: self.url.clone(),
            requests,
        }))
    }
}

/// One lookup: the id and where to send the answer.
type Lookup = (u32, mpsc::Sender<Result<Option<String>, String>>);

/// The [`SchemaResolver`] of [`Registry::resolver`].
#[derive(Debug)]
struct ThreadResolver {
    url: String,
    requests: mpsc::Sender<Lookup>,
}

impl SchemaResolver for ThreadResolver {
    fn schema_text(&self, id: u32) -> Result<Option<String>, String> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .send((id, reply))
            .map_err(|_| format!("schema registry {}: the lookup thread stopped", self.url))?;
        // The call itself times out after CALL_TIMEOUT; the margin covers the queue.
        answer
            .recv_timeout(CALL_TIMEOUT * 2)
            .map_err(|e| format!("schema registry {}: no answer for id {id}: {e}", self.url))?
    }
}

/// Returns the registry's `error_code` of a failed call, if it answered one.
fn error_code(error: &SRCError) -> Option<u32> {
    std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
}

/// Returns a one-line description of a registry client error, with its cause.
fn describe(error: &SRCError) -> String {
    match &error.cause {
        Some(cause) if !error.error.contains(cause.as_str()) => {
            format!("{} ({cause})", error.error)
        }
        _ => error.error.clone(),
    }
}
