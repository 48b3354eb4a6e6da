//! `cfg(scylla_uri)` when `SCYLLA_URI` is set at build time: the ScyllaDB contract tests
//! (`tests/it/scylla.rs`, feature `scylla`) then run; otherwise they are reported as ignored, so
//! a machine without ScyllaDB never counts them as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(scylla_uri)");
    println!("cargo::rerun-if-env-changed=SCYLLA_URI");
    if std::env::var_os("SCYLLA_URI").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=scylla_uri");
    }
}
