//! `nodewatch-export`: command-line entry point. Parses the arguments, runs
//! the export and maps failures to exit codes (2 for usage, 1 otherwise).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use nodewatch_export::cli::{more::rewrite_args, run, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(rewrite_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The library's errors already carry their causes in their message.
            eprintln!("Error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
