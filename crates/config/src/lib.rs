//! switchyard-config
