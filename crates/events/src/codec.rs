//! The Confluent-framed Avro codec.
//!
//! Wire format of every record payload: byte 0 is the magic byte `0`, bytes 1..5 the big-endian
//! schema id of the writer schema, then the Avro binary datum. [`Codec::encode`] always writes the
//! latest version of the event's schema; [`Codec::decode`] accepts any known version and resolves
//! it to the latest (Avro schema resolution), so old records stay readable.
//!
//! Schemas are parsed once per process (the compiled-in [`SchemaSet`]) and every reader and writer
//! is prepared when the codec is built, so encoding and decoding never parse or resolve schemas.
//!
//! With a schema registry, a codec built by [`Codec::with_resolver`] also reads records whose id
//! it was not given (a version registered by a newer producer, or one registered under an id
//! this process did not learn at startup): the first record with such an id asks the
//! [`SchemaResolver`] for the writer schema, and the answer (or its absence) is cached for the
//! life of the codec.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::event::{Event, EventKind};
use crate::schema::{SchemaSet, schema_set};
use crate::wire::WireError;

/// The first byte of every framed payload.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the frame header: the magic byte and the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// The errors of encoding and decoding. None is worth retrying: the same bytes fail the same way,
/// so a consumer sends the record to the dead-letter topic.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The payload is shorter than the frame header.
    #[error("payload too short for the frame header: {len} bytes, need {HEADER_LEN}")]
    Truncated {
        /// The payload length.
        len: usize,
    },
    /// The first byte is not [`MAGIC_BYTE`].
    #[error("bad magic byte {found:#04x}, expected 0x00")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The schema id is neither in the manifest nor among the configured ids.
    #[error("unknown schema id {id}")]
    UnknownSchemaId {
        /// The id found.
        id: u32,
    },
    /// The Avro body does not decode with the writer schema the id names.
    #[error("failed to decode the avro body of {kind} v{version}: {source}")]
    Decode {
        /// The writer's event kind.
        kind: EventKind,
        /// The writer's schema version.
        version: u32,
        /// The Avro error.
        #[source]
        source: apache_avro::Error,
    },
    /// The Avro body ends before the datum does.
    #[error("the avro body of {kind} v{version} is truncated")]
    TruncatedBody {
        /// The writer's event kind.
        kind: EventKind,
        /// The writer's schema version.
        version: u32,
    },
    /// Bytes are left after the Avro datum.
    #[error("{count} trailing bytes after the {kind} v{version} datum")]
    TrailingBytes {
        /// The writer's event kind.
        kind: EventKind,
        /// The writer's schema version.
        version: u32,
        /// How many bytes are left.
        count: usize,
    },
    /// The datum decoded but violates today's type (e.g. a score outside `0..=1`).
    #[error("{kind} v{version} datum does not fit today's type: {source}")]
    Invalid {
        /// The writer's event kind.
        kind: EventKind,
        /// The writer's schema version.
        version: u32,
        /// What is wrong.
        #[source]
        source: WireError,
    },
    /// Avro refused to encode or resolve the value.
    #[error("failed to encode {kind} v{version}: {source}")]
    Encode {
        /// The event kind.
        kind: EventKind,
        /// The schema version written.
        version: u32,
        /// The Avro error.
        #[source]
        source: apache_avro::Error,
    },
    /// The requested schema version does not exist.
    #[error("{kind} has no schema version {version}")]
    UnknownVersion {
        /// The event kind.
        kind: EventKind,
        /// The requested version.
        version: u32,
    },
    /// Two schema versions were given the same id.
    #[error("schema id {id} is assigned to both {first} and {second}")]
    IdConflict {
        /// The id.
        id: u32,
        /// One holder (`Kind vN`).
        first: String,
        /// The other holder.
        second: String,
    },
    /// The compiled-in schemas or manifest are invalid.
    #[error("compiled-in schemas are invalid: {0}")]
    Schemas(String),
    /// The schema registry could not be asked what an unknown schema id stands for (unreachable,
    /// or it answered an error). The one transient codec error: the same bytes may decode once
    /// the registry answers ([`CodecError::is_transient`]).
    #[error("cannot resolve schema id {id} through the schema registry: {message}")]
    Resolve {
        /// The id found in the frame.
        id: u32,
        /// What went wrong.
        message: String,
    },
    /// The registry's schema for an id is not a version of a Switchyard event this build can
    /// resolve to today's type.
    #[error("schema id {id} from the schema registry is unusable: {message}")]
    UnusableSchema {
        /// The id found in the frame.
        id: u32,
        /// Why.
        message: String,
    },
}

impl CodecError {
    /// Returns whether decoding the same bytes again may succeed (the schema registry could not
    /// be asked about their id): a consumer retries rather than dead-letters.
    pub const fn is_transient(&self) -> bool {
        matches!(self, CodecError::Resolve { .. })
    }

    /// Returns a low-cardinality label for error metrics.
    pub const fn metric_label(&self) -> &'static str {
        match self {
            CodecError::Truncated { .. } => "truncated",
            CodecError::BadMagic { .. } => "bad_magic",
            CodecError::UnknownSchemaId { .. } => "unknown_schema_id",
            CodecError::Decode { .. } => "avro_decode",
            CodecError::TruncatedBody { .. } => "truncated",
            CodecError::TrailingBytes { .. } => "trailing_bytes",
            CodecError::Invalid { .. } => "invalid_payload",
            CodecError::Encode { .. } => "encode",
            CodecError::UnknownVersion { .. } => "unknown_version",
            CodecError::IdConflict { .. } => "id_conflict",
            CodecError::Schemas(_) => "schemas",
            CodecError::Resolve { .. } => "schema_resolve",
            CodecError::UnusableSchema { .. } => "unusable_schema",
        }
    }
}

/// One version of one event: its wire id, reader (resolving to the latest) and writer.
struct Slot {
    kind: EventKind,
    version: u32,
    id: u32,
    reader: GenericDatumReader<'static>,
    writer: GenericDatumWriter<'static>,
    schema: &'static apache_avro::Schema,
}

struct Inner {
    /// `(kind, version)` → slot, in [`SchemaSet`] order.
    slots: Vec<Slot>,
    /// Index into `slots` of each kind's latest version, by position in [`EventKind::ALL`].
    latest: Vec<usize>,
    /// Every accepted schema id → index into `slots`.
    by_id: HashMap<u32, usize>,
    /// Asked for the writer schema of an id missing from `by_id` (a schema registry).
    resolver: Option<Arc<dyn SchemaResolver>>,
    /// What the resolver said about each id it was asked for; `None` = no usable schema.
    learned: RwLock<HashMap<u32, Option<Learned>>>,
}

/// Looks up the writer schema of a schema id the codec does not know: a schema registry's
/// `GET /schemas/ids/{id}`. Called synchronously from [`Codec::decode`], once per unknown id (the
/// codec caches the answer), so an implementation may block for one round trip.
pub trait SchemaResolver: Send + Sync + fmt::Debug {
    /// Returns the schema text registered under `id`, or `Ok(None)` when no schema has that id.
    ///
    /// # Errors
    /// A message when the lookup itself failed (the registry is unreachable or answered an
    /// error other than "not found"); the codec does not cache it, the next record asks again.
    fn schema_text(&self, id: u32) -> Result<Option<String>, String>;
}

/// A schema id learned through the resolver.
#[derive(Clone)]
enum Learned {
    /// The registry's schema is one of the compiled-in versions (index into `slots`).
    Known(usize),
    /// A version this build does not have (a newer producer's), resolved to the latest.
    Foreign(Arc<Foreign>),
}

struct Foreign {
    kind: EventKind,
    reader: GenericDatumReader<'static>,
}

/// The version reported in errors about a record written with a schema version this build does
/// not know (learned from the registry, which does not say which version it is).
pub const FOREIGN_VERSION: u32 = 0;

/// Encodes [`Event`]s to Confluent-framed Avro and back. Cheap to clone (shared, immutable).
#[derive(Clone)]
pub struct Codec {
    inner: Arc<Inner>,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<(EventKind, u32, u32)> = self
            .inner
            .slots
            .iter()
            .map(|s| (s.kind, s.version, s.id))
            .collect();
        f.debug_struct("Codec").field("ids", &ids).finish()
    }
}

impl Codec {
    /// Returns a codec that frames with the ids of `schemas/manifest.json` (no schema registry).
    pub fn new() -> Result<Self, CodecError> {
        Self::with_ids(HashMap::new())
    }

    /// Returns a codec that frames with the given ids (e.g. assigned by a schema registry for
    /// each `(kind, version)`); versions missing from `ids` keep their manifest id.
    ///
    /// Decoding accepts the given ids *and* the manifest ids, so records written before a
    /// registry was configured stay readable.
    pub fn with_ids(ids: HashMap<(EventKind, u32), u32>) -> Result<Self, CodecError> {
        Self::build(ids, None)
    }

    /// Like [`Codec::with_ids`], and a record framed with an id neither given nor in the
    /// manifest is decoded with the writer schema `resolver` returns for it (then cached).
    pub fn with_resolver(
        ids: HashMap<(EventKind, u32), u32>,
        resolver: Arc<dyn SchemaResolver>,
    ) -> Result<Self, CodecError> {
        Self::build(ids, Some(resolver))
    }

    fn build(
        ids: HashMap<(EventKind, u32), u32>,
        resolver: Option<Arc<dyn SchemaResolver>>,
    ) -> Result<Self, CodecError> {
        let set: &'static SchemaSet = schema_set().map_err(CodecError::Schemas)?;
        for &(kind, version) in ids.keys() {
            if set.get(kind, version).is_none() {
                return Err(CodecError::UnknownVersion { kind, version });
            }
        }
        let mut slots = Vec::with_capacity(set.entries().len());
        let mut by_id: HashMap<u32, usize> = HashMap::new();
        let mut claim =
            |id: u32, index: usize, slots: &[Slot], kind: EventKind, version: u32| match by_id
                .get(&id)
            {
                Some(&other) if other != index => {
                    let first = slots
                        .get(other)
                        .map(|s| format!("{} v{}", s.kind, s.version))
                        .unwrap_or_default();
                    Err(CodecError::IdConflict {
                        id,
                        first,
                        second: format!("{kind} v{version}"),
                    })
                }
                _ => {
                    by_id.insert(id, index);
                    Ok(())
                }
            };
        for (index, entry) in set.entries().iter().enumerate() {
            let (kind, version) = (entry.kind(), entry.version());
            let latest = set
                .latest(kind)
                .ok_or_else(|| CodecError::Schemas(format!("{kind} has no latest schema")))?;
            let schema_error = |source| CodecError::Schemas(format!("{kind} v{version}: {source}"));
            let reader = if version == latest.version() {
                GenericDatumReader::builder(entry.schema())
                    .build()
                    .map_err(schema_error)?
            } else {
                GenericDatumReader::builder(entry.schema())
                    .reader_schema(latest.schema())
                    .build()
                    .map_err(schema_error)?
            };
            // Values come from typed Rust structs, so validation only guards our own mapping:
            // on in debug builds (every test), off in release where it would double the cost.
            let writer = GenericDatumWriter::builder(entry.schema())
                .validate(cfg!(debug_assertions))
                .build()
                .map_err(schema_error)?;
            let id = ids
                .get(&(kind, version))
                .copied()
                .unwrap_or(entry.default_id());
            claim(id, index, &slots, kind, version)?;
            claim(entry.default_id(), index, &slots, kind, version)?;
            slots.push(Slot {
                kind,
                version,
                id,
                reader,
                writer,
                schema: entry.schema(),
            });
        }
        let mut latest = Vec::with_capacity(EventKind::ALL.len());
        for kind in EventKind::ALL {
            let index = slots
                .iter()
                .position(|s| s.kind == *kind && s.version == kind.latest_version())
                .ok_or_else(|| CodecError::Schemas(format!("{kind} has no latest schema")))?;
            latest.push(index);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                slots,
                latest,
                by_id,
                resolver,
                learned: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// Returns the id this codec frames `(kind, version)` with.
    pub fn schema_id(&self, kind: EventKind, version: u32) -> Option<u32> {
        self.slot(kind, version).map(|s| s.id)
    }

    /// Returns the `(kind, version)` a schema id stands for, if this codec knows it (without
    /// asking the resolver).
    pub fn lookup_id(&self, id: u32) -> Option<(EventKind, u32)> {
        let slot = self
            .inner
            .by_id
            .get(&id)
            .and_then(|&i| self.inner.slots.get(i))?;
        Some((slot.kind, slot.version))
    }

    fn slot(&self, kind: EventKind, version: u32) -> Option<&Slot> {
        self.inner
            .slots
            .iter()
            .find(|s| s.kind == kind && s.version == version)
    }

    fn latest_slot(&self, kind: EventKind) -> Result<&Slot, CodecError> {
        let position = EventKind::ALL.iter().position(|k| *k == kind);
        position
            .and_then(|p| self.inner.latest.get(p))
            .and_then(|&i| self.inner.slots.get(i))
            .ok_or(CodecError::UnknownVersion {
                kind,
                version: kind.latest_version(),
            })
    }

    /// Returns the event framed with the latest schema of its kind.
    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, CodecError> {
        let mut buf = Vec::with_capacity(256);
        self.encode_into(event, &mut buf)?;
        Ok(buf)
    }

    /// Appends the framed event to `buf` (lets a producer reuse one buffer).
    ///
    /// The Avro body is written straight from the event's fields (no intermediate
    /// `apache_avro::types::Value`); the bytes are those of [`Codec::encode_reference`] except
    /// that map entries are in key order. Debug builds (every test) check the body against the
    /// schema by reading it back, as the generic writer's validation did.
    pub fn encode_into(&self, event: &Event, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        let slot = self.latest_slot(event.kind())?;
        let start = buf.len();
        buf.push(MAGIC_BYTE);
        buf.extend_from_slice(&slot.id.to_be_bytes());
        event.write_avro_body(buf);
        if cfg!(debug_assertions)
            && let Err(source) = check_body(slot, buf.get(start + HEADER_LEN..).unwrap_or_default())
        {
            buf.truncate(start);
            return Err(CodecError::Encode {
                kind: slot.kind,
                version: slot.version,
                source,
            });
        }
        Ok(())
    }

    /// Appends the framed event to `buf` the generic way: the event converted to an
    /// `apache_avro::types::Value`, written by apache-avro's `GenericDatumWriter`. Slower than
    /// [`Codec::encode_into`]; kept as the reference the direct writer is tested and benchmarked
    /// against (map entries come out in hash order, so only single-entry maps compare byte for
    /// byte).
    pub fn encode_reference(&self, event: &Event, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        let slot = self.latest_slot(event.kind())?;
        write_framed(slot, &event.to_avro_value(), buf)
    }

    /// Returns the event framed with an older schema version of its kind (fields that version
    /// lacks are dropped). For rollouts that must keep writing the previous version until every
    /// consumer is upgraded.
    pub fn encode_as_version(&self, event: &Event, version: u32) -> Result<Vec<u8>, CodecError> {
        let kind = event.kind();
        let slot = self
            .slot(kind, version)
            .ok_or(CodecError::UnknownVersion { kind, version })?;
        let mut value = event.to_avro_value();
        if version != kind.latest_version() {
            value = value
                .resolve(slot.schema)
                .map_err(|source| CodecError::Encode {
                    kind,
                    version,
                    source,
                })?;
        }
        let mut buf = Vec::with_capacity(256);
        write_framed(slot, &value, &mut buf)?;
        Ok(buf)
    }

    /// Returns the schema id in a framed payload's header, without decoding the body.
    pub fn peek_schema_id(bytes: &[u8]) -> Result<u32, CodecError> {
        match bytes {
            [MAGIC_BYTE, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            [found, ..] if bytes.len() >= HEADER_LEN => Err(CodecError::BadMagic { found: *found }),
            _ => Err(CodecError::Truncated { len: bytes.len() }),
        }
    }

    /// Returns the event in a framed payload, resolved from its writer's schema version to today's type.
    ///
    /// A record written with the latest version (nearly every record) is read straight into the
    /// event's types; anything that reader is not sure of (older versions, errors) goes the
    /// generic way ([`Codec::decode_reference`]), which gives the same result.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, CodecError> {
        if let Some(event) = self.decode_direct(bytes) {
            return Ok(event);
        }
        self.decode_reference(bytes)
    }

    /// Returns the event if the payload is framed with a latest-version id of this codec and the
    /// direct reader accepts its body; `None` leaves the payload to the generic path. Public for
    /// the equivalence tests and the benchmark.
    #[doc(hidden)]
    pub fn decode_direct(&self, bytes: &[u8]) -> Option<Event> {
        let id = Self::peek_schema_id(bytes).ok()?;
        let slot = self
            .inner
            .by_id
            .get(&id)
            .and_then(|&i| self.inner.slots.get(i))?;
        if slot.version != slot.kind.latest_version() {
            return None;
        }
        Event::read_avro_body(slot.kind, bytes.get(HEADER_LEN..)?).ok()
    }

    /// Returns the event in a framed payload the generic way: the body read into an
    /// `apache_avro::types::Value` by apache-avro (resolving older versions to the latest), then
    /// converted. [`Codec::decode`] uses it for whatever the direct reader leaves; kept public as
    /// the reference the direct reader is tested and benchmarked against.
    pub fn decode_reference(&self, bytes: &[u8]) -> Result<Event, CodecError> {
        let id = Self::peek_schema_id(bytes)?;
        if let Some(slot) = self
            .inner
            .by_id
            .get(&id)
            .and_then(|&i| self.inner.slots.get(i))
        {
            return decode_body(slot.kind, slot.version, &slot.reader, bytes);
        }
        match self.learn(id)? {
            Some(Learned::Known(i)) => {
                let slot = self
                    .inner
                    .slots
                    .get(i)
                    .ok_or(CodecError::UnknownSchemaId { id })?;
                decode_body(slot.kind, slot.version, &slot.reader, bytes)
            }
            Some(Learned::Foreign(foreign)) => {
                decode_body(foreign.kind, FOREIGN_VERSION, &foreign.reader, bytes)
            }
            None => Err(CodecError::UnknownSchemaId { id }),
        }
    }

    /// Returns what the resolver says about an id missing from the manifest and the given ids,
    /// asking it only the first time.
    fn learn(&self, id: u32) -> Result<Option<Learned>, CodecError> {
        let Some(resolver) = &self.inner.resolver else {
            return Ok(None);
        };
        if let Ok(learned) = self.inner.learned.read()
            && let Some(entry) = learned.get(&id)
        {
            return Ok(entry.clone());
        }
        let text = resolver
            .schema_text(id)
            .map_err(|message| CodecError::Resolve { id, message })?;
        let (entry, result) = match text {
            None => (None, Ok(None)),
            Some(text) => match self.interpret(&text) {
                Ok(learned) => (Some(learned.clone()), Ok(Some(learned))),
                // Cached as unusable: the same id always names the same schema.
                Err(message) => (None, Err(CodecError::UnusableSchema { id, message })),
            },
        };
        if let Ok(mut learned) = self.inner.learned.write() {
            learned.insert(id, entry);
        }
        result
    }

    /// Maps a writer schema from the registry to a compiled-in version, or prepares a reader
    /// that resolves it to the latest version of its event.
    fn interpret(&self, text: &str) -> Result<Learned, String> {
        let schema = apache_avro::Schema::parse_str(text)
            .map_err(|e| format!("the registry's schema does not parse: {e}"))?;
        let canonical = schema.canonical_form();
        if let Some(index) = self
            .inner
            .slots
            .iter()
            .position(|s| s.schema.canonical_form() == canonical)
        {
            return Ok(Learned::Known(index));
        }
        let full_name = schema
            .name()
            .map(|n| n.fullname(None))
            .ok_or_else(|| "the registry's schema is not a named record".to_owned())?;
        let kind = EventKind::ALL
            .iter()
            .copied()
            .find(|k| k.subject() == full_name)
            .ok_or_else(|| format!("`{full_name}` is not a Switchyard event"))?;
        let latest = self.latest_slot(kind).map_err(|e| e.to_string())?;
        // Leaked on purpose: the reader borrows its schemas for the codec's life, and there is
        // one per distinct unknown id (a handful of versions), cached, never per record.
        let schema: &'static apache_avro::Schema = Box::leak(Box::new(schema));
        let reader = GenericDatumReader::builder(schema)
            .reader_schema(latest.schema)
            .build()
            .map_err(|e| {
                format!(
                    "{kind} from the registry does not resolve to v{}: {e}",
                    latest.version
                )
            })?;
        Ok(Learned::Foreign(Arc::new(Foreign { kind, reader })))
    }
}

/// Decodes the body of a framed payload with a prepared reader.
fn decode_body(
    kind: EventKind,
    version: u32,
    reader: &GenericDatumReader<'static>,
    bytes: &[u8],
) -> Result<Event, CodecError> {
    let mut body = EofGuard {
        rest: bytes.get(HEADER_LEN..).unwrap_or_default(),
        hit_eof: false,
    };
    let result = reader.read_value(&mut body);
    if body.hit_eof {
        return Err(CodecError::TruncatedBody { kind, version });
    }
    let value = result.map_err(|source| CodecError::Decode {
        kind,
        version,
        source,
    })?;
    if !body.rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            kind,
            version,
            count: body.rest.len(),
        });
    }
    Event::from_avro_value(kind, value).map_err(|source| CodecError::Invalid {
        kind,
        version,
        source,
    })
}

/// A reader over the Avro body that remembers running out of bytes.
///
/// apache-avro reads every datum with exact-size reads, so a short read only happens at the end
/// of a truncated body. It must be caught here: for a string cut short, apache-avro 0.22 returns
/// `Value::Null` instead of an error, which inside a nullable field would look like "absent".
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() > self.rest.len() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}

/// Checks that a directly written body is one datum of the slot's schema: it reads back with
/// the schema, to the last byte, as a value that validates against it.
fn check_body(slot: &Slot, body: &[u8]) -> Result<(), apache_avro::Error> {
    let invalid = || apache_avro::Error::from(apache_avro::error::Details::Validation);
    let mut rest = body;
    let value = slot.reader.read_value(&mut rest)?;
    if !rest.is_empty() || !value.validate(slot.schema) {
        return Err(invalid());
    }
    Ok(())
}

fn write_framed(
    slot: &Slot,
    value: &apache_avro::types::Value,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = buf.len();
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&slot.id.to_be_bytes());
    match slot.writer.write_value_ref(buf, value) {
        Ok(_) => Ok(()),
        Err(source) => {
            buf.truncate(start);
            Err(CodecError::Encode {
                kind: slot.kind,
                version: slot.version,
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_is_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Codec>();
        assert_send_sync::<CodecError>();
    }

    #[test]
    fn frame_errors() {
        assert!(matches!(
            Codec::peek_schema_id(&[]),
            Err(CodecError::Truncated { len: 0 })
        ));
        assert!(matches!(
            Codec::peek_schema_id(&[0, 0, 0]),
            Err(CodecError::Truncated { len: 3 })
        ));
        assert!(matches!(
            Codec::peek_schema_id(&[1, 0, 0, 0, 0]),
            Err(CodecError::BadMagic { found: 1 })
        ));
        assert!(matches!(Codec::peek_schema_id(&[0, 0, 0, 1, 2]), Ok(258)));
    }

    #[test]
    fn registry_ids_add_to_manifest_ids() -> Result<(), CodecError> {
        let ids = HashMap::from([((EventKind::RouteUnpinned, 1), 7u32)]);
        let codec = Codec::with_ids(ids)?;
        assert_eq!(codec.schema_id(EventKind::RouteUnpinned, 1), Some(7));
        assert_eq!(codec.lookup_id(7), Some((EventKind::RouteUnpinned, 1)));
        let manifest = Codec::new()?;
        let old_id = manifest.schema_id(EventKind::RouteUnpinned, 1);
        assert!(
            old_id.is_some_and(|id| codec.lookup_id(id) == Some((EventKind::RouteUnpinned, 1)))
        );
        Ok(())
    }

    /// A resolver answering from a fixed table, counting the questions.
    #[derive(Debug, Default)]
    struct TableResolver {
        schemas: HashMap<u32, Result<String, String>>,
        asked: std::sync::Mutex<Vec<u32>>,
    }

    impl SchemaResolver for TableResolver {
        fn schema_text(&self, id: u32) -> Result<Option<String>, String> {
            if let Ok(mut asked) = self.asked.lock() {
                asked.push(id);
            }
            self.schemas.get(&id).cloned().transpose()
        }
    }

    fn sample_route_unpinned() -> Vec<u8> {
        let hex_text = include_str!("../../../schemas/samples/route_unpinned/v1.bin.hex");
        hex::decode(hex_text.trim()).unwrap_or_default()
    }

    fn reframe(id: u32, framed: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut out = vec![MAGIC_BYTE];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(framed.get(HEADER_LEN..).unwrap_or_default());
        out.extend_from_slice(extra);
        out
    }

    #[test]
    fn unknown_ids_are_resolved_once_and_cached() -> Result<(), Box<dyn std::error::Error>> {
        let set = schema_set()?;
        let v1 = set
            .get(EventKind::RouteUnpinned, 1)
            .ok_or("no RouteUnpinned v1")?;
        // A newer producer's version: v1 plus a string field with a default, at the end.
        let mut newer: serde_json::Value = serde_json::from_str(v1.source())?;
        newer["fields"]
            .as_array_mut()
            .ok_or("fields")?
            .push(serde_json::json!({"name": "note", "type": "string", "default": ""}));
        let resolver = Arc::new(TableResolver {
            schemas: HashMap::from([
                (21, Ok(v1.source().to_owned())),
                (22, Ok(newer.to_string())),
                (
                    23,
                    Ok(r#"{"type": "record", "name": "x.Other", "fields": []}"#.to_owned()),
                ),
                (24, Err("registry unreachable".to_owned())),
            ]),
            asked: std::sync::Mutex::new(Vec::new()),
        });
        let codec = Codec::with_resolver(HashMap::new(), resolver.clone())?;
        let sample = sample_route_unpinned();
        let expected = Codec::new()?.decode(&sample)?;

        // An id the registry gave the same schema: decoded as the compiled-in v1.
        assert_eq!(codec.decode(&reframe(21, &sample, &[]))?, expected);
        assert_eq!(codec.decode(&reframe(21, &sample, &[]))?, expected);
        // A version this build lacks: resolved to the latest, the new field dropped.
        let with_note = reframe(22, &sample, &[4, b'h', b'i']);
        assert_eq!(codec.decode(&with_note)?, expected);
        // Without the resolver the same bytes are an unknown id.
        assert!(matches!(
            Codec::new()?.decode(&with_note),
            Err(CodecError::UnknownSchemaId { id: 22 })
        ));
        // Not a Switchyard event; no such id; the registry failing.
        assert!(matches!(
            codec.decode(&reframe(23, &sample, &[])),
            Err(CodecError::UnusableSchema { id: 23, .. })
        ));
        assert!(matches!(
            codec.decode(&reframe(23, &sample, &[])),
            Err(CodecError::UnknownSchemaId { id: 23 })
        ));
        assert!(matches!(
            codec.decode(&reframe(25, &sample, &[])),
            Err(CodecError::UnknownSchemaId { id: 25 })
        ));
        let failed = codec.decode(&reframe(24, &sample, &[]));
        assert!(matches!(failed, Err(CodecError::Resolve { id: 24, .. })));
        assert!(failed.is_err_and(|e| e.is_transient()));
        assert!(codec.decode(&reframe(24, &sample, &[])).is_err());
        // Manifest ids never reach the resolver; answers are cached, failures are not.
        assert_eq!(codec.decode(&sample)?, expected);
        let asked = resolver.asked.lock().map(|a| a.clone()).unwrap_or_default();
        assert_eq!(asked, vec![21, 22, 23, 25, 24, 24]);
        Ok(())
    }

    #[test]
    fn conflicting_ids_are_rejected() -> Result<(), CodecError> {
        let taken = Codec::new()?
            .schema_id(EventKind::RoutePinned, 1)
            .unwrap_or_default();
        let ids = HashMap::from([((EventKind::RouteUnpinned, 1), taken)]);
        assert!(matches!(
            Codec::with_ids(ids),
            Err(CodecError::IdConflict { .. })
        ));
        let unknown = HashMap::from([((EventKind::RouteUnpinned, 9), 1)]);
        assert!(matches!(
            Codec::with_ids(unknown),
            Err(CodecError::UnknownVersion { .. })
        ));
        Ok(())
    }
}
