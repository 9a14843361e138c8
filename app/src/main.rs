use std::process::ExitCode;

use clap::Parser;
use mae_explorer::cli::{Cli, Command};
use mae_explorer::commands;

fn main() -> ExitCode {
    mae_explorer::allocator::keep_freed_memory_for_reuse();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            eprintln!("{}", one_line(&error.render().to_string()));
            return ExitCode::from(2);
        }
        // --help and --version.
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Some(Command::Dump(args)) => commands::dump::run(&args),
        Some(Command::Bench(args)) => commands::bench::run(&args),
        Some(Command::Export(args)) => commands::export::run(&args),
        Some(Command::Animate(args)) => commands::animate::run(&args),
        Some(Command::LossCurve(args)) => commands::loss_curve::run(&args),
        Some(Command::Heads(args)) => commands::heads::run(&args),
        Some(Command::Eval(args)) => commands::eval::run(&args),
        Some(Command::Compare(args)) => commands::compare::run(&args),
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

/// A clap error as the one line every other bad input gets: its first paragraph (the problem and, for a bad value,
/// the possible values) and any tip, without the usage block.
fn one_line(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n");
    let problem = paragraphs.next().unwrap_or_default();
    let tips = paragraphs.filter(|paragraph| paragraph.trim_start().starts_with("tip:"));
    let joined_lines = |paragraph: &str| paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    std::iter::once(problem).chain(tips).map(joined_lines).collect::<Vec<_>>().join("; ")
}
