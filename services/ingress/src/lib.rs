//! switchyard-ingress
