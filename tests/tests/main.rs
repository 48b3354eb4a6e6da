//! End-to-end tests (one binary, to keep link times down).

mod crash;
