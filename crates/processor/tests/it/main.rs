//! The processor runtime on the real embedded log and store, in a temporary data directory:
//! exactly-once effect on state across crashes, deterministic output ids, dead letters,
//! transient retries, partitions split between members, graceful shutdown.

mod support;

mod inline;
mod runtime;
mod staged_state;
