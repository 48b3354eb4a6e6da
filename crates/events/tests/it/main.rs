//! Integration tests of the event contracts: schema files, compatibility, frozen samples, codec.

mod arbitrary;
mod avro_json;
mod chain;
mod codec;
mod compatibility;
mod direct_reader;
mod direct_writer;
mod fixtures;
mod samples;
mod schemas;
mod signing;
mod signing_v2;

use std::path::PathBuf;

/// Returns the repository's `schemas/` directory.
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// Returns this crate's test fixture directory.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
