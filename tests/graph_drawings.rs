//! Every example drawn in each format and laid out afresh by `suggest`, through the
//! library: snapshots for review, the properties a suggested layout must have, and
//! `stackctl validate` accepting each layout as a stack file.

use std::collections::BTreeSet;
use std::path::Path;

use stackctl::graph::{Drawing, StackGraph, draw, suggest};
use stackctl::model::{Stack, validate};
use stackctl::spec::{SourceFile, load};

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .map(|path| {
            let name = path.file_stem().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("readable example"))
        })
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "no examples in {}", dir.display());
    examples
}

/// Stacks that only the layout tests take, beside the examples: each is a case that
/// `suggest` once got wrong, kept out of the examples since it shows nothing to a reader.
const LAYOUT_CASES: &[(&str, &str)] = &[
    // `app` talks to `db`, which means `db` on n1 and `newdb`, under its alias `db`, on n2.
    (
        "alias-of-a-name",
        "name: alias-of-a-name\nnetworks: {n1: {}, n2: {}}\ncontainers:\n  \
         db: {networks: [n1]}\n  newdb: {networks: {n2: {aliases: [db]}}}\n  \
         app: {networks: [n1, n2], talks_to: [db]}\n",
    ),
    // As above, with `newdb` talking to `db` too: the alias `db` may not stand beside `db`,
    // so `app`, `db` and `newdb` cannot share one network.
    (
        "alias-of-a-name-beside-it",
        "name: alias-of-a-name-beside-it\nnetworks: {n1: {}, n2: {}}\ncontainers:\n  \
         db: {networks: [n1]}\n  newdb: {networks: {n1: {}, n2: {aliases: [db]}}, talks_to: [db]}\n  \
         app: {networks: [n1, n2], talks_to: [db]}\n",
    ),
];

/// The examples and the layout cases, each by name.
fn layout_inputs() -> Vec<(String, String)> {
    let cases = LAYOUT_CASES.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned()));
    examples().into_iter().chain(cases).collect()
}

fn stack(name: &str, text: &str) -> Stack {
    let spec = load(&SourceFile { name: name.to_owned(), text: text.to_owned() })
        .unwrap_or_else(|diagnostic| panic!("{name}: {}", diagnostic.message));
    let validated = validate(&spec);
    let errors: Vec<&str> = validated
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .map(|diagnostic| diagnostic.message.as_str())
        .collect();
    validated.stack.unwrap_or_else(|| panic!("{name} is invalid: {errors:?}\n{text}"))
}

#[test]
fn every_example_is_drawn_in_every_format() {
    for (name, text) in examples() {
        let stack = stack(&name, &text);
        let graph = StackGraph::build(&stack);
        insta::assert_snapshot!(format!("{name}.mermaid"), draw(&graph, Drawing::Mermaid));
        insta::assert_snapshot!(format!("{name}.dot"), draw(&graph, Drawing::Dot));
        let json = draw(&graph, Drawing::Json);
        let document: serde_json::Value = serde_json::from_str(&json).expect("the drawing is JSON");
        assert_eq!(document["format_version"], 1, "{name}");
        insta::assert_snapshot!(format!("{name}.json"), json);
    }
}

#[test]
fn every_example_gets_a_valid_least_privilege_layout() {
    for (name, text) in layout_inputs() {
        let original = stack(&name, &text);
        let layout = suggest(&original);
        insta::assert_snapshot!(format!("{name}.suggest"), layout);
        let suggested = stack(&format!("suggested {name}"), &layout);

        // Every declared flow resolves to the same containers, so it has a shared network.
        let declared = |stack: &Stack| -> BTreeSet<(String, String)> {
            StackGraph::build(stack).declared_flows().map(|flow| (flow.source, flow.destination)).collect()
        };
        assert_eq!(declared(&suggested), declared(&original), "{name}: the declared flows differ");

        // No two members of a suggested network lack a declared flow between them.
        let graph = StackGraph::build(&suggested);
        for network in suggested.networks.keys() {
            assert_eq!(graph.unflowed_pairs(network), Vec::<(String, String)>::new(), "{name}: {network}");
        }

        // The containers keep what the layout does not decide.
        for (container, before) in &original.containers {
            let after = &suggested.containers[container];
            assert_eq!(
                (&after.talks_to, &after.ports, &after.netns),
                (&before.talks_to, &before.ports, &before.netns),
                "{name}: {container}"
            );
        }
    }
}

#[test]
fn stackctl_validate_accepts_every_suggested_layout() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, text) in layout_inputs() {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, suggest(&stack(&name, &text))).expect("write the suggested layout");
        let output = assert_cmd::Command::cargo_bin("stackctl")
            .expect("the binary is built")
            .args(["validate", "-f"])
            .arg(&path)
            .output()
            .expect("validate runs");
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    }
}
