//! Session-NPS propagation on the real embedded store (and log): the rules, order
//! independence, and the processor runtime with crashes.

mod support;

mod interleavings;
mod propagation;
mod runtime;
