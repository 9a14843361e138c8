use std::process::ExitCode;

use clap::Parser;
use mae_explorer::cli::{Cli, Command};
use mae_explorer::commands;

fn main() -> ExitCode {
    mae_explorer::allocator::keep_freed_memory_for_reuse();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Dump(args)) => commands::dump::run(&args),
        Some(Command::Bench(args)) => commands::bench::run(&args),
        Some(Command::Export(args)) => commands::export::run(&args),
        Some(Command::LossCurve(args)) => commands::loss_curve::run(&args),
        Some(Command::Heads(args)) => commands::heads::run(&args),
        None => mae_explorer::window::run(&cli.window),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the whole context chain, so scripts and people see file and problem together.
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
