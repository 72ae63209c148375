//! Command-line entry point: parse, set up logging, dispatch to a mode, and
//! turn the outcome into an exit code and an Actions `::error::` line.

mod actions;
mod aws;
mod cancel;
mod catalogue;
mod cli;
mod error;
mod error_chain;
mod github;
mod instance;
mod modes;
mod pricing;
mod settings;
mod summary;
mod tags;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::Error;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return cli::report_parse_error(&err),
    };
    actions::init_logging(cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return report(&Error::Runtime(err)),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Start(args) => modes::start::run(args).await,
        Command::Stop(args) => modes::stop::run(args).await,
        Command::Cleanup(args) => modes::cleanup::run(args).await,
        Command::Rerun(args) => modes::rerun::run(args).await,
        Command::Doctor(args) => modes::doctor::run(args).await,
        Command::Policy(args) => modes::policy::run(&args),
        Command::UserData(args) => modes::user_data::run(args),
        Command::Bake(args) => modes::bake::run(args).await,
    }
}

/// Prints the error the way a user reads it (an Actions annotation when
/// running in a workflow, a plain line otherwise) and picks the exit code:
/// 2 for input the user must fix, 1 for everything that went wrong at run time.
fn report(err: &Error) -> ExitCode {
    actions::error_line(&err.to_string());
    ExitCode::from(err.exit_code())
}
