//! The projector on the real embedded store (and log): windows against a brute-force
//! reference, expiry, regressions and automatic rollback, crashes and redelivery in the
//! processor runtime, determinism, and the loop into the router.

mod support;

mod pairs;
mod pool;
mod rollback;
mod router;
mod runtime;
mod windows;
