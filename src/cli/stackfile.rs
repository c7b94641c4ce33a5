//! The commands that read stack files: each reads, calls the core, and prints.

use std::path::Path;

use super::output::{Style, render_diagnostics};
use super::{DiagnosticFormat, Exit};
use crate::diagnostic::{Diagnostic, json_report};
use crate::graph::{Drawing, StackGraph, draw, suggest as suggest_layout};
use crate::model::{Stack, validate_draft_file, validate_file};
use crate::plan::{plan as plan_operations, render_text};
use crate::review::{Format, Review};
use crate::spec::SourceFile;
use crate::state::{HostFacts, HostNamespace, KernelState, lower};

/// A stack file read and validated, with its warnings.
struct Loaded {
    file: SourceFile,
    stack: Option<Stack>,
    diagnostics: Vec<Diagnostic>,
}

fn read(path: &Path) -> Result<SourceFile, Exit> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SourceFile { name, text }),
        Err(error) => {
            eprintln!("error: cannot read stack file `{name}`: {error}");
            Err(Exit::Error)
        }
    }
}

fn check(file: SourceFile) -> Loaded {
    let validated = validate_file(&file);
    Loaded { file, stack: validated.stack, diagnostics: validated.diagnostics }
}

/// Which findings of a valid stack file a command prints: its errors always stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Findings {
    /// Errors and warnings: the commands that review the file (`validate`, `plan`, `apply`,
    /// `diff`), each once.
    All,
    /// Errors only: the commands that use a file already reviewed, whose output (a
    /// program's, under `exec`) warnings would clutter.
    ErrorsOnly,
}

/// Reads and validates a stack file, printing its findings; an invalid file ends the
/// command with exit 65 before anything is planned.
pub(super) fn load_stack(path: &Path, findings: Findings, style: Style) -> Result<(SourceFile, Stack), Exit> {
    let loaded = check(read(path)?);
    let shown: Vec<Diagnostic> = match (findings, &loaded.stack) {
        (Findings::ErrorsOnly, Some(_)) => Vec::new(),
        _ => loaded.diagnostics.clone(),
    };
    eprint!("{}", render_diagnostics(&loaded.file, &shown, style.color_err));
    match loaded.stack {
        Some(stack) => Ok((loaded.file, stack)),
        None => {
            eprintln!("{}", tally(&loaded.file.name, &loaded.diagnostics));
            Err(Exit::InvalidInput)
        }
    }
}

/// Prints an error found in a valid stack file once the host was read (a declared subnet
/// that the host uses), as validation prints its own.
pub(super) fn print_in_file(file: &SourceFile, diagnostic: Diagnostic, style: Style) {
    let diagnostics = [diagnostic];
    eprint!("{}", render_diagnostics(file, &diagnostics, style.color_err));
    eprintln!("{}", tally(&file.name, &diagnostics));
}

/// "stack.yaml: 2 errors, 1 warning".
fn tally(name: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors == 0 {
        format!("{name} is valid ({})", plural(warnings, "warning"))
    } else {
        format!("{name} is invalid: {}, {}", plural(errors, "error"), plural(warnings, "warning"))
    }
}

/// "1 error", "2 errors".
fn plural(count: usize, word: &str) -> String {
    format!("{count} {word}{}", if count == 1 { "" } else { "s" })
}

pub fn validate(path: &Path, format: DiagnosticFormat, style: Style) -> Exit {
    let loaded = match read(path) {
        Ok(file) => check(file),
        Err(exit) => return exit,
    };
    match format {
        DiagnosticFormat::Text => {
            eprint!("{}", render_diagnostics(&loaded.file, &loaded.diagnostics, style.color_err));
            println!("{}", tally(&loaded.file.name, &loaded.diagnostics));
        }
        DiagnosticFormat::Json => {
            println!("{}", json_report(&loaded.file, &loaded.diagnostics, loaded.stack.is_some()));
        }
    }
    if loaded.stack.is_some() { Exit::Ok } else { Exit::InvalidInput }
}

/// `plan --offline`: the plan against an empty `host`, whose name the namespaces carry.
pub fn plan(path: &Path, host: &HostNamespace, detailed_exitcode: bool, style: Style) -> Exit {
    let (_, stack) = match load_stack(path, Findings::All, style) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    // Until the kernel is observed, a plan is made against an empty host.
    let observed = KernelState::default();
    let facts = HostFacts { host: host.clone(), ..HostFacts::default() };
    let desired = match lower(&stack, &observed, &facts) {
        Ok(desired) => desired,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Error;
        }
    };
    let plan = plan_operations(&desired, &observed);
    print!("{}", render_text(&plan, style.color_out));
    if detailed_exitcode && !plan.is_empty() { Exit::Changes } else { Exit::Ok }
}

pub fn diff(old: &Path, new: &Path, format: Format, detailed_exitcode: bool, style: Style) -> Exit {
    let (old_file, old_stack) = match load_stack(old, Findings::All, style) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let (new_file, new_stack) = match load_stack(new, Findings::All, style) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let review = match Review::between(&old_stack, &new_stack) {
        Ok(review) => review,
        Err(error) => {
            eprintln!("error: {error}");
            return Exit::Error;
        }
    };
    print!("{}", review.render(format, &old_file.name, &new_file.name, style.color_out));
    if detailed_exitcode && review.has_changes() { Exit::Changes } else { Exit::Ok }
}

pub fn graph(path: &Path, format: Drawing, style: Style) -> Exit {
    match load_stack(path, Findings::ErrorsOnly, style) {
        Ok((_, stack)) => {
            print!("{}", draw(&StackGraph::build(&stack), format));
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

/// Derives a layout from a file whose networks may be missing or insufficient, which is
/// what `suggest` is for: those errors are told in one line, every other stops it as it
/// stops every command.
pub fn suggest(path: &Path, style: Style) -> Exit {
    let file = match read(path) {
        Ok(file) => file,
        Err(exit) => return exit,
    };
    let drafted = validate_draft_file(&file);
    // A draft's remaining findings are warnings, which `suggest` does not repeat.
    let Some(draft) = drafted.draft else {
        eprint!("{}", render_diagnostics(&file, &drafted.diagnostics, style.color_err));
        eprintln!("{}", tally(&file.name, &drafted.diagnostics));
        return Exit::InvalidInput;
    };
    if !drafted.gaps.is_empty() {
        eprintln!(
            "note: ignored {} of {} about missing or insufficient networks: the suggested layout replaces its networks",
            plural(drafted.gaps.len(), "error"),
            file.name
        );
    }
    print!("{}", suggest_layout(&draft));
    Exit::Ok
}
