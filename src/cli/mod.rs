//! The command line: parses arguments, reads files, calls the core and `reconcile`, prints and
//! asks. Decides nothing.

mod check;
mod exit;
mod live;
mod output;
mod stackfile;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub use exit::Exit;

use crate::kernel::HostNamespace;

/// Declarative network topology for Linux containers: plan and apply networks, addresses,
/// firewall rules and names from a reviewed stack file.
#[derive(Debug, Parser)]
#[command(name = "stackctl", version, propagate_version = true)]
pub struct Cli {
    /// The stack file [default: stack.yaml]; may also follow the command.
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Let a named network namespace play the host; may also follow the command, which then
    /// wins (see the commands on the live kernel). Without either, the environment variable
    /// STACKCTL_HOST_NETNS names it, unless empty.
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
    /// loopback up, once you agree to the changes. Without this flag, before or after the
    /// command, the environment variable STACKCTL_HOST_NETNS names it, unless empty.
    #[arg(long, value_name = "NAME", value_parser = host_name)]
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
        /// A plan saved by `stackctl plan --out`, applied only if planning again from its stack
        /// file and the host gives the same plan (exit 75: stale; 65: tampered with).
        plan: Option<PathBuf>,
        /// Apply without asking; required when standard input is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Run `check` once the changes are made: exit 1 if any cell of its truth table is wrong.
        #[arg(long)]
        verify: bool,
        /// How long to wait for another apply of the same stack to finish (and, when this one
        /// makes networks, for another stack's apply to make its own).
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
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        /// Exit 2 when there are changes, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Draw the least-privilege graph.
    Graph {
        #[command(flatten)]
        target: FileArg,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
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

/// How `diff` prints a review: the core's [`crate::review::Format`], as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    /// Terraform-style text for a terminal.
    Text,
    /// Versioned JSON for machines: see docs/diff-json.md.
    Json,
    /// Markdown to post as a pull request comment.
    Markdown,
}

impl From<DiffFormat> for crate::review::Format {
    fn from(format: DiffFormat) -> Self {
        match format {
            DiffFormat::Text => crate::review::Format::Text,
            DiffFormat::Json => crate::review::Format::Json,
            DiffFormat::Markdown => crate::review::Format::Markdown,
        }
    }
}

/// What `graph` draws: the core's [`crate::graph::Drawing`], as a flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    /// A Mermaid flowchart, which GitHub and GitLab render in Markdown.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
    /// Version 1 of the graph's JSON form.
    Json,
}

impl From<GraphFormat> for crate::graph::Drawing {
    fn from(format: GraphFormat) -> Self {
        match format {
            GraphFormat::Mermaid => crate::graph::Drawing::Mermaid,
            GraphFormat::Dot => crate::graph::Drawing::Dot,
            GraphFormat::Json => crate::graph::Drawing::Json,
        }
    }
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

/// The variable that names the host namespace of the commands on the live kernel when no
/// `--host-netns` does. It is read here, not by clap, so that a flag given before the
/// command beats it as surely as one given after.
const HOST_NETNS_VARIABLE: &str = "STACKCTL_HOST_NETNS";

/// The stack file and host of a command: given after the command, else before it.
struct Resolved {
    file: PathBuf,
    live: live::Live,
}

/// A flag given before the command, which only some commands take.
#[derive(Debug, Clone, Copy)]
enum Before {
    File,
    HostNetns,
}

impl Cli {
    fn file(&self, after: Option<&PathBuf>) -> PathBuf {
        after.or(self.file.as_ref()).cloned().unwrap_or_else(|| PathBuf::from("stack.yaml"))
    }

    /// The host that `--host-netns` names, given after the command, else before it.
    fn flagged_host(&self, after: Option<&String>) -> HostNamespace {
        after.or(self.host_netns.as_ref()).map_or(HostNamespace::Current, |name| HostNamespace::Named(name.clone()))
    }

    /// The host of a command on the live kernel: as flagged, else as the environment
    /// names it (empty is unset); a name that is no name is a usage error.
    fn host(&self, after: Option<&String>) -> Result<HostNamespace, Exit> {
        if after.is_some() || self.host_netns.is_some() {
            return Ok(self.flagged_host(after));
        }
        let Some(value) = std::env::var_os(HOST_NETNS_VARIABLE).filter(|value| !value.is_empty()) else {
            return Ok(HostNamespace::Current);
        };
        let problem = match value.to_str() {
            Some(name) => match host_name(name) {
                Ok(name) => return Ok(HostNamespace::Named(name)),
                Err(problem) => problem,
            },
            None => "a name is UTF-8".to_owned(),
        };
        eprintln!("error: invalid value '{}' in {HOST_NETNS_VARIABLE}: {problem}", value.to_string_lossy());
        Err(Exit::Usage)
    }

    fn resolve(&self, target: &HostArgs, style: output::Style) -> Result<Resolved, Exit> {
        let host = self.host(target.host_netns.as_ref())?;
        Ok(Resolved { file: self.file(target.file.as_ref()), live: live::Live { host, style } })
    }

    /// Flags given before a command that does not take them are a mistake, not something
    /// to ignore.
    fn refuse_misplaced(&self, command: &str, refused: &[Before]) -> Result<(), Exit> {
        let given: Vec<&str> = refused
            .iter()
            .filter_map(|before| match before {
                Before::File => self.file.is_some().then_some("-f/--file"),
                Before::HostNetns => self.host_netns.is_some().then_some("--host-netns"),
            })
            .collect();
        if given.is_empty() {
            return Ok(());
        }
        eprintln!("error: `{}` does not apply to `stackctl {command}`", given.join("` and `"));
        Err(Exit::Usage)
    }
}

fn run(cli: Cli) -> Exit {
    dispatch(&cli).unwrap_or_else(|exit| exit)
}

fn dispatch(cli: &Cli) -> Result<Exit, Exit> {
    let style = output::Style::detect();
    let consent = |yes: bool| if yes { live::Consent::Given } else { live::Consent::Ask };
    let fate = |kill: bool| if kill { crate::plan::Fate::Ended } else { crate::plan::Fate::LeftRunning };
    Ok(match &cli.command {
        Command::Validate { target, format } => {
            cli.refuse_misplaced("validate", &[Before::HostNetns])?;
            stackfile::validate(&cli.file(target.file.as_ref()), *format, style)
        }
        Command::Plan { target, detailed_exitcode, offline: true, .. } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            stackfile::plan(&file, &live.host, *detailed_exitcode, style)
        }
        Command::Plan { target, detailed_exitcode, out, offline: false } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            live.plan_command(&file, *detailed_exitcode, out.as_deref())
        }
        Command::Apply { target, plan, yes, verify, lock_timeout, wait, kill_processes } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            let swap = live::SwapOptions { wait: *wait };
            let fate = fate(*kill_processes);
            live.apply_command(&file, plan.as_deref(), consent(*yes), *verify, *lock_timeout, swap, fate)
        }
        Command::Destroy { target, yes, lock_timeout, kill_processes } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            live.destroy_command(&file, consent(*yes), *lock_timeout, fate(*kill_processes))
        }
        Command::Show { target, format } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            live.show_command(&file, *format)
        }
        Command::Exec { target, container, command } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            live.exec_command(&file, container, command)
        }
        Command::Diff { old, new, format, detailed_exitcode } => {
            cli.refuse_misplaced("diff", &[Before::File, Before::HostNetns])?;
            stackfile::diff(old, new, (*format).into(), *detailed_exitcode, style)
        }
        Command::Graph { target, format } => {
            cli.refuse_misplaced("graph", &[Before::HostNetns])?;
            stackfile::graph(&cli.file(target.file.as_ref()), (*format).into(), style)
        }
        Command::Suggest { target } => {
            cli.refuse_misplaced("suggest", &[Before::HostNetns])?;
            stackfile::suggest(&cli.file(target.file.as_ref()), style)
        }
        Command::Check { target, format, timeout } => {
            let Resolved { file, live } = cli.resolve(target, style)?;
            check::check_command(&live, &file, *format, *timeout)
        }
        // Started by apply, with its host flagged: never from the environment.
        Command::Resolver { host_netns, dir } => {
            live::resolver_command(&cli.flagged_host(host_netns.as_ref()), dir.as_deref())
        }
        Command::Completions { shell } => {
            cli.refuse_misplaced("completions", &[Before::File, Before::HostNetns])?;
            clap_complete::generate(*shell, &mut Cli::command(), "stackctl", &mut std::io::stdout());
            Exit::Ok
        }
    })
}
