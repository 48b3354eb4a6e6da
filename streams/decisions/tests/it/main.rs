//! The decisions read model on the real embedded store (and log): order independence,
//! queries, and the processor runtime end to end.

mod support;

mod expiry;
mod interleavings;
mod queries;
mod runtime;
