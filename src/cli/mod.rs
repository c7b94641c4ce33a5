//! The command line: parses arguments, reads files, calls the core, prints. Decides nothing.

mod check;
mod exit;
mod live;
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

    /// Let a named network namespace (under /run/netns, created by apply when missing) play
    /// the host, so that a stack can be tried without touching the machine's own network.
    #[arg(long, global = true, env = "STACKCTL_HOST_NETNS", value_name = "NAME")]
    host_netns: Option<String>,

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
    /// Show the changes that would make the live kernel match the stack file, and what
    /// changed outside stackctl since the last apply.
    Plan {
        /// Exit 2 when there are changes, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan, for `stackctl apply FILE` to apply only if nothing changed since.
        #[arg(long, value_name = "PLAN_FILE", conflicts_with = "offline")]
        out: Option<PathBuf>,
        /// Plan against an empty host without reading the kernel (no root needed).
        #[arg(long)]
        offline: bool,
    },
    /// Make the changes that make the live kernel match the stack file (or a saved plan).
    Apply {
        /// A plan saved by `stackctl plan --out`, applied only if the host still matches it.
        plan: Option<PathBuf>,
        /// Apply without asking; required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Run `check` once the changes are made: exit 1 if any cell of its truth table is wrong.
        #[arg(long)]
        verify: bool,
        /// How long to wait for another apply of the same stack to finish.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        lock_timeout: std::time::Duration,
    },
    /// Remove everything the stack owns on this host, and nothing else.
    Destroy {
        /// Destroy without asking; required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long to wait for another apply of the same stack to finish.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        lock_timeout: std::time::Duration,
    },
    /// Show the live topology: each network's subnet, gateway and members.
    Show {
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// Run a command in a container's namespace, where the names it may reach resolve.
    Exec {
        container: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
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
    /// Probe the live stack from inside each container: every declared flow must connect
    /// and a sample of the undeclared ones must not. Prints the truth table; exits 1 when
    /// a pair is wrong.
    Check {
        #[arg(long, value_enum, default_value_t = check::CheckFormat::Text)]
        format: check::CheckFormat,
        /// How long a probe waits for an answer before it counts as blocked.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Run the host's name server in the foreground. apply starts it, and stops it when
    /// no stack is left: it is not meant to be run by hand.
    #[command(hide = true)]
    Resolver {
        /// The directory of the zone files (the default is the host's, under /run/stackctl).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShowFormat {
    Table,
    Json,
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
    let host = cli.host_netns.map_or(crate::kernel::HostNamespace::Current, crate::kernel::HostNamespace::Named);
    let live = live::Live { host, style };
    match cli.command {
        Command::Validate { format } => stackfile::validate(&cli.file, format, style),
        Command::Plan { detailed_exitcode, offline: true, .. } => stackfile::plan(&cli.file, detailed_exitcode, style),
        Command::Plan { detailed_exitcode, out, offline: false } => {
            live.plan_command(&cli.file, detailed_exitcode, out.as_deref())
        }
        Command::Apply { plan, yes, verify, lock_timeout } => {
            live.apply_command(&cli.file, plan.as_deref(), yes, verify, lock_timeout)
        }
        Command::Destroy { yes, lock_timeout } => live.destroy_command(&cli.file, yes, lock_timeout),
        Command::Show { format } => live.show_command(&cli.file, format),
        Command::Exec { container, command } => live::exec_command(&cli.file, &container, &command, style),
        Command::Diff { old, new, format, detailed_exitcode } => {
            stackfile::diff(&old, &new, format, detailed_exitcode, style)
        }
        Command::Graph { format } => stackfile::graph(&cli.file, format, style),
        Command::Suggest => stackfile::suggest(&cli.file, style),
        Command::Check { format, timeout } => check::check_command(&live, &cli.file, format, timeout),
        Command::Resolver { dir } => live::resolver_command(&live.host, dir.as_deref()),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "stackctl", &mut std::io::stdout());
            Exit::Ok
        }
    }
}
