//! The command line: parses arguments, reads files, calls the core, prints. Decides nothing.

mod exit;
mod output;
mod stackfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub use exit::Exit;

/// Declarative network topology for Linux containers: plan and apply networks, addresses,
/// firewall rules and names from a reviewed stack file.
#[derive(Debug, Parser)]
#[command(name = "stackctl", version, propagate_version = true)]
pub struct Cli {
    /// The stack file.
    #[arg(short, long, global = true, default_value = "stack.yaml", value_name = "FILE")]
    file: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the stack file and report every mistake.
    Validate {
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Show the changes that would make the kernel match the stack file.
    #[command(after_help = "The plan is made against an empty host: stackctl does not read the live kernel yet.")]
    Plan {
        /// Exit 2 when there are changes, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Compare two stack files (two revisions) without root or kernel.
    Diff {
        /// The stack file before the change.
        old: PathBuf,
        /// The stack file after the change.
        new: PathBuf,
        #[arg(long, value_enum, default_value_t = crate::review::Format::Text)]
        format: crate::review::Format,
        /// Exit 2 when there are changes, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Draw the least-privilege graph.
    Graph {
        #[arg(long, value_enum, default_value_t = crate::graph::Drawing::Mermaid)]
        format: crate::graph::Drawing,
    },
    /// Derive a layout of few networks that carries every declared flow and nothing else.
    Suggest,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DiagnosticFormat {
    Text,
    Json,
}

/// Runs the command line and turns the outcome into the process's exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Exit::Ok.into(),
                _ => Exit::Usage.into(),
            };
        }
    };
    run(cli).into()
}

fn run(cli: Cli) -> Exit {
    let style = output::Style::detect();
    match cli.command {
        Command::Validate { format } => stackfile::validate(&cli.file, format, style),
        Command::Plan { detailed_exitcode } => stackfile::plan(&cli.file, detailed_exitcode, style),
        Command::Diff { old, new, format, detailed_exitcode } => {
            stackfile::diff(&old, &new, format, detailed_exitcode, style)
        }
        Command::Graph { format } => stackfile::graph(&cli.file, format, style),
        Command::Suggest => stackfile::suggest(&cli.file, style),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "stackctl", &mut std::io::stdout());
            Exit::Ok
        }
    }
}
