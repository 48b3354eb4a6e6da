//! switchyard-e2e
