//! Plans from fixtures, one case per directory under `tests/plans`: a stack file
//! (`stack.yaml`, whose first line says what the case proves) and the state a host was
//! observed in (`observed.json`, the stack's kernel state as the apply record keeps it).
//! The plan from one to the other, lowered with the default host facts, is snapshotted per
//! case: adding a case is adding a directory.

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use stackctl::firewall::objects;
use stackctl::model::validate_file;
use stackctl::plan::{Operation, Plan, Program, plan, render_steps, render_text};
use stackctl::spec::SourceFile;
use stackctl::state::{HostFacts, KernelState, lower};

/// The directories of the cases, in name order.
fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/plans is readable")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// What the case proves: the first line of its stack file, a comment.
fn purpose(stack_file: &str) -> String {
    let first = stack_file.lines().next().unwrap_or_default();
    let purpose = first.strip_prefix('#').unwrap_or_else(|| panic!("the first line is no comment: {first}"));
    purpose.trim().to_owned()
}

/// The plan of one case.
fn plan_of(case: &Path) -> (Plan, Program) {
    let path = case.join("stack.yaml");
    let file = SourceFile { name: path.display().to_string(), text: read(&path) };
    let validated = validate_file(&file);
    let stack = validated.stack.unwrap_or_else(|| panic!("{} is refused: {:#?}", file.name, validated.diagnostics));
    let observed: KernelState =
        serde_json::from_str(&read(&case.join("observed.json"))).expect("observed.json is a kernel state");
    let desired = lower(&stack, &observed, &HostFacts::default()).expect("the stack lowers");
    let plan = plan(&desired, &observed);
    let program = Program::of(&stack.name, &plan, &observed, &objects(&observed));
    (plan, program)
}

/// The plan as `stackctl plan` shows it with the steps apply takes, then every operation in
/// the order it runs, the delete halves of replacements and a swap's phases included, which
/// the first part folds.
fn shown((plan, program): &(Plan, Program)) -> String {
    let mut out = render_text(plan, false);
    let steps = render_steps(program, plan);
    if !steps.is_empty() {
        let _ = write!(out, "\n{steps}");
    }
    out.push_str("\noperations, in order:\n");
    for (number, phase) in plan.phases().into_iter().enumerate() {
        if plan.swap.is_some() {
            let _ = writeln!(out, "phase {}:", number + 1);
        }
        for operation in phase {
            let action = match operation {
                Operation::Create { .. } => "create",
                Operation::Update { .. } => "update",
                Operation::Delete { .. } => "delete",
            };
            let key = operation.key();
            let _ = writeln!(out, "  {action} {} {}", key.kind().name(), key.label());
        }
    }
    out
}

#[test]
fn every_case_plans_as_snapshotted() {
    let cases = cases();
    assert!(!cases.is_empty(), "no case under tests/plans");
    // Every case is checked before failing, so that one change shows all the plans it moves.
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let name = case.file_name().expect("a directory name").to_string_lossy().into_owned();
            let checked = catch_unwind(AssertUnwindSafe(|| {
                let description = purpose(&read(&case.join("stack.yaml")));
                insta::with_settings!({ description => description, omit_expression => true }, {
                    insta::assert_snapshot!(name.as_str(), shown(&plan_of(case)));
                });
            }));
            checked.is_err().then_some(name)
        })
        .collect();
    assert!(failed.is_empty(), "the plans of these cases differ from their snapshots: {failed:?}");
}
