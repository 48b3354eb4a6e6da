//! `switchyard`: one binary, every role. This file only wires: it parses the command line,
//! loads the configuration and hands over to the command's module.

mod audit;
mod backends;
mod cli;
mod control_socket;
mod export;
mod keys;
mod replay;
mod serve;
mod signing;
mod sim;
mod sql;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: glibc malloc was a quarter of a routing decision's time (see the workspace
/// Cargo.toml and `make bench-router`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, outermost first.
            match error.downcast_ref::<switchyard_config::ConfigError>() {
                Some(config) => eprintln!("config error: {config}"),
                None => eprintln!("error: {}", chain(&error)),
            }
            ExitCode::FAILURE
        }
    }
}

fn chain(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
