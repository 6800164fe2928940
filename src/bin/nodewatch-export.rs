//! `nodewatch-export`: command-line entry point. Parses the arguments, runs
//! the export and maps failures to exit codes (2 for usage, 1 otherwise).

use clap::Parser;
use nodewatch::export::cli::{run, Cli};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("Error: {:#}", anyhow::Error::new(e));
            std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
