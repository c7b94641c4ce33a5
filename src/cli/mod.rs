//! The command line: parses arguments, reads files, calls the core, prints. Decides nothing.

mod check;
mod exit;
mod live;
mod output;
mod stackfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use exit::Exit;

/// Declarative network topology for Linux containers: plan and apply networks, addresses,
/// firewall rules and names from a reviewed stack file.
#[derive(Debug, Parser)]
#[command(name = "stackctl", version, propagate_version = true)]
pub struct Cli {
    /// The stack file [default: stack.yaml]; may also follow the command.
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Let a named network namespace play the host; may also follow the command (see the
    /// commands on the live kernel).
    #[arg(long, value_name = "NAME", value_parser = host_name)]
    host_netns: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The stack file of a command that reads one.
#[derive(Debug, Args)]
struct FileArg {
    /// The stack file [default: stack.yaml].
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// The stack file and the host of a command on the live kernel.
#[derive(Debug, Args)]
struct HostArgs {
    /// The stack file [default: stack.yaml].
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Let a named network namespace (under /run/netns) play the host, so that a stack can
    /// be tried without touching the machine's own network; apply creates it, with its
    /// loopback up, once you agree to the changes.
    #[arg(long, env = "STACKCTL_HOST_NETNS", value_name = "NAME", value_parser = host_name)]
    host_netns: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the stack file and report every mistake.
    Validate {
        #[command(flatten)]
        target: FileArg,
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Show the changes that would make the live kernel match the stack file, and what
    /// changed outside stackctl since the last apply. Changes nothing.
    Plan {
        #[command(flatten)]
        target: HostArgs,
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
        #[command(flatten)]
        target: HostArgs,
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
        /// How long a swap waits, once it has wired the containers that take an alias, for
        /// them to accept connections (you start them meanwhile) [default: 5m on a
        /// terminal; otherwise a swap to containers that do not accept yet is refused].
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        wait: Option<std::time::Duration>,
        /// End the processes still running in the namespaces that apply deletes (SIGTERM,
        /// then SIGKILL), instead of leaving them running there, cut off.
        #[arg(long)]
        kill_processes: bool,
    },
    /// Remove everything the stack owns on this host, and nothing else.
    Destroy {
        #[command(flatten)]
        target: HostArgs,
        /// Destroy without asking; required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How long to wait for another apply of the same stack to finish.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        lock_timeout: std::time::Duration,
        /// End the processes still running in the stack's namespaces (SIGTERM, then
        /// SIGKILL), instead of leaving them running there, cut off.
        #[arg(long)]
        kill_processes: bool,
    },
    /// Show the live topology: each network's subnet, gateway and members.
    Show {
        #[command(flatten)]
        target: HostArgs,
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
    },
    /// Run a command in a container's namespace, where the names it may reach resolve.
    Exec {
        #[command(flatten)]
        target: HostArgs,
        /// The container, by its name in the stack file.
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
        #[command(flatten)]
        target: FileArg,
        #[arg(long, value_enum, default_value_t = crate::graph::Drawing::Mermaid)]
        format: crate::graph::Drawing,
    },
    /// Derive a layout of few networks that carries every declared flow and nothing else.
    Suggest {
        #[command(flatten)]
        target: FileArg,
    },
    /// Probe the live stack from inside each container: every declared flow must connect
    /// and a sample of the undeclared ones must not. Prints the truth table; exits 1 when
    /// a pair is wrong.
    Check {
        #[command(flatten)]
        target: HostArgs,
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
        /// The named network namespace that plays the host.
        #[arg(long, value_name = "NAME", value_parser = host_name)]
        host_netns: Option<String>,
        /// The directory of the zone files (the default is the host's, under /run/stackctl).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// A `--host-netns` name: a file name under `/run/netns`, and part of the names of the
/// stack's namespaces and files, so it follows the rule of stack names.
fn host_name(name: &str) -> Result<String, String> {
    match crate::model::name_problem(name) {
        None => Ok(name.to_owned()),
        Some(problem) => Err(problem),
    }
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

/// The stack file and host of a command: given after the command, else before it.
struct Resolved {
    file: PathBuf,
    live: live::Live,
}

impl Cli {
    fn resolve(&self, file: Option<&PathBuf>, host_netns: Option<&String>, style: output::Style) -> Resolved {
        let file = file.or(self.file.as_ref()).cloned().unwrap_or_else(|| PathBuf::from("stack.yaml"));
        let host = host_netns
            .or(self.host_netns.as_ref())
            .map_or(crate::kernel::HostNamespace::Current, |name| crate::kernel::HostNamespace::Named(name.clone()));
        Resolved { file, live: live::Live { host, style } }
    }

    /// `-f` and `--host-netns` before a command that takes neither are a mistake, not
    /// something to ignore.
    fn refuse_misplaced(&self, command: &str) -> Result<(), Exit> {
        let given: Vec<&str> = [("-f/--file", self.file.is_some()), ("--host-netns", self.host_netns.is_some())]
            .into_iter()
            .filter_map(|(flag, given)| given.then_some(flag))
            .collect();
        if given.is_empty() {
            return Ok(());
        }
        eprintln!("error: `{}` does not apply to `stackctl {command}`", given.join("` and `"));
        Err(Exit::Usage)
    }
}

fn run(cli: Cli) -> Exit {
    let style = output::Style::detect();
    let consent = |yes: bool| if yes { live::Consent::Given } else { live::Consent::Ask };
    let fate = |kill: bool| if kill { crate::plan::Fate::Ended } else { crate::plan::Fate::LeftRunning };
    match &cli.command {
        Command::Validate { target, format } => {
            stackfile::validate(&cli.resolve(target.file.as_ref(), None, style).file, *format, style)
        }
        Command::Plan { target, detailed_exitcode, offline: true, .. } => {
            let file = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style).file;
            stackfile::plan(&file, *detailed_exitcode, style)
        }
        Command::Plan { target, detailed_exitcode, out, offline: false } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            live.plan_command(&file, *detailed_exitcode, out.as_deref())
        }
        Command::Apply { target, plan, yes, verify, lock_timeout, wait, kill_processes } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            let swap = live::SwapOptions { wait: *wait };
            let fate = fate(*kill_processes);
            live.apply_command(&file, plan.as_deref(), consent(*yes), *verify, *lock_timeout, swap, fate)
        }
        Command::Destroy { target, yes, lock_timeout, kill_processes } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            live.destroy_command(&file, consent(*yes), *lock_timeout, fate(*kill_processes))
        }
        Command::Show { target, format } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            live.show_command(&file, *format)
        }
        Command::Exec { target, container, command } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            live.exec_command(&file, container, command)
        }
        Command::Diff { old, new, format, detailed_exitcode } => match cli.refuse_misplaced("diff") {
            Ok(()) => stackfile::diff(old, new, *format, *detailed_exitcode, style),
            Err(exit) => exit,
        },
        Command::Graph { target, format } => {
            stackfile::graph(&cli.resolve(target.file.as_ref(), None, style).file, *format, style)
        }
        Command::Suggest { target } => stackfile::suggest(&cli.resolve(target.file.as_ref(), None, style).file, style),
        Command::Check { target, format, timeout } => {
            let Resolved { file, live } = cli.resolve(target.file.as_ref(), target.host_netns.as_ref(), style);
            check::check_command(&live, &file, *format, *timeout)
        }
        Command::Resolver { host_netns, dir } => {
            let Resolved { live, .. } = cli.resolve(None, host_netns.as_ref(), style);
            live::resolver_command(&live.host, dir.as_deref())
        }
        Command::Completions { shell } => match cli.refuse_misplaced("completions") {
            Ok(()) => {
                clap_complete::generate(*shell, &mut Cli::command(), "stackctl", &mut std::io::stdout());
                Exit::Ok
            }
            Err(exit) => exit,
        },
    }
}
