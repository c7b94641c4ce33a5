//! Every example drawn in each format and laid out afresh by `suggest`, through the
//! library: snapshots for review, the properties a suggested layout must have, and
//! `stackctl validate` accepting each layout as a stack file, from `stackctl suggest`. Files
//! whose networks are missing or do not carry their flows, which `suggest` is for, are laid
//! out too.

use std::collections::BTreeSet;
use std::path::Path;

use stackctl::graph::{Drawing, StackGraph, draw, suggest};
use stackctl::model::{Draft, Stack, validate, validate_draft_file};
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
    // Flows to the host: it is reached through any network, so they ask for none; `agent`,
    // whose one flow is to the host, still needs a network.
    (
        "flows-to-the-host",
        "name: flows-to-the-host\nnetworks: {front: {}, back: {internal: true}}\ncontainers:\n  \
         app: {networks: [front, back], talks_to: ['host:22', 'db:5432']}\n  \
         db: {networks: [back], talks_to: [host/udp]}\n  \
         agent: {networks: [front], talks_to: ['host:9100']}\n",
    ),
];

/// The examples and the layout cases, each by name.
fn layout_inputs() -> Vec<(String, String)> {
    let cases = LAYOUT_CASES.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned()));
    examples().into_iter().chain(cases).collect()
}

/// A file whose networks do not carry its flows, which `validate` rejects and `suggest`
/// reads, with the pairs (source, destination) its flows mean.
struct GapCase {
    name: &'static str,
    text: &'static str,
    flows: &'static [(&'static str, &'static str)],
}

const GAP_CASES: &[GapCase] = &[
    // The file a layout is first asked for: containers, their flows and ports, no networks.
    GapCase {
        name: "flows-only",
        text: "name: shop\ncontainers:\n  \
               nginx:\n    talks_to: [\"flaskapp:5000\"]\n    ports: [\"127.0.0.1:8080:80\"]\n  \
               flaskapp:\n    talks_to: [\"db:5432\", \"cache:6379\"]\n  \
               worker:\n    talks_to: [\"db:5432\", \"cache:6379\"]\n  \
               cache:\n    talks_to: [\"db:5432\"]\n  \
               db: {}\n  \
               metrics:\n    ports: [\"127.0.0.1:9100:9100\"]\n  \
               scratch: {}\n",
        flows: &[
            ("cache", "db"),
            ("flaskapp", "cache"),
            ("flaskapp", "db"),
            ("nginx", "flaskapp"),
            ("worker", "cache"),
            ("worker", "db"),
        ],
    },
    // Networks that carry some flows: an alias on a network its talker does not join, a
    // container that joins none, and published ports on internal networks only.
    GapCase {
        name: "insufficient-networks",
        text: "name: shop\nnetworks:\n  web_nw: {}\n  db_nw: { internal: true }\ncontainers:\n  \
               nginx:\n    networks: [web_nw]\n    talks_to: [\"app:5000\"]\n    ports: [\"127.0.0.1:8080:80\"]\n  \
               flaskapp:\n    networks:\n      db_nw: { aliases: [app] }\n    talks_to: [\"db:5432\"]\n  \
               db:\n    networks: [db_nw]\n  \
               backup:\n    talks_to: [\"db:5432\"]\n  \
               admin:\n    networks: [db_nw]\n    talks_to: [\"db:5432\"]\n    ports: [\"127.0.0.1:8081:80\"]\n",
        flows: &[("admin", "db"), ("backup", "db"), ("flaskapp", "db"), ("nginx", "flaskapp")],
    },
];

/// What `suggest` reads of a file, as `stackctl suggest` reads it.
fn draft(name: &str, text: &str) -> Draft {
    let drafted = validate_draft_file(&SourceFile { name: name.to_owned(), text: text.to_owned() });
    let messages: Vec<&str> = drafted.diagnostics.iter().map(|diagnostic| diagnostic.message.as_str()).collect();
    drafted.draft.unwrap_or_else(|| panic!("{name} gives no draft: {messages:?}\n{text}"))
}

/// The pairs (source, destination) of a stack's declared flows.
fn declared(stack: &Stack) -> BTreeSet<(String, String)> {
    StackGraph::build(stack).declared_flows().map(|flow| (flow.source, flow.destination)).collect()
}

/// What every suggested layout must be: a valid stack in which every flow the original means
/// resolves, to the same containers, and no two members of a network lack a flow between
/// them; the containers keep what the layout does not decide.
fn assert_least_privilege(name: &str, original: &Draft, flows: &BTreeSet<(String, String)>, layout: &str) {
    let suggested = stack(&format!("suggested {name}"), layout);
    assert_eq!(&declared(&suggested), flows, "{name}: the declared flows differ");
    for network in suggested.networks.keys() {
        assert_eq!(suggested.unflowed_pairs(network), Vec::<(String, String)>::new(), "{name}: {network}");
    }
    assert_eq!(suggested.name, original.name(), "{name}");
    for (container, before) in original.containers() {
        let after = &suggested.containers[container];
        assert_eq!(
            (&after.talks_to, &after.ports, &after.netns),
            (&before.talks_to, &before.ports, &before.netns),
            "{name}: {container}"
        );
    }
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

/// A flow to the host ends at one node of its own, `host`, like any flow, in every format.
#[test]
fn flows_to_the_host_are_drawn_to_the_host() {
    let (name, text) = LAYOUT_CASES.iter().find(|(name, _)| *name == "flows-to-the-host").expect("the case");
    let stack = stack(name, text);
    let graph = StackGraph::build(&stack);
    let mermaid = draw(&graph, Drawing::Mermaid);
    assert!(mermaid.contains("c_app ==>|\"tcp/22\"| h_host"), "{mermaid}");
    insta::assert_snapshot!(format!("{name}.mermaid"), mermaid);
    insta::assert_snapshot!(format!("{name}.dot"), draw(&graph, Drawing::Dot));
    let json = draw(&graph, Drawing::Json);
    let document: serde_json::Value = serde_json::from_str(&json).expect("the drawing is JSON");
    let to_host = document["flows"].as_array().expect("flows").iter().filter(|flow| flow["destination"] == "host");
    assert_eq!(to_host.count(), 4, "one flow per network of its source:\n{json}");
    insta::assert_snapshot!(format!("{name}.json"), json);
}

#[test]
fn every_example_gets_a_valid_least_privilege_layout() {
    for (name, text) in layout_inputs() {
        let layout = suggest(&draft(&name, &text));
        insta::assert_snapshot!(format!("{name}.suggest"), layout);
        assert_least_privilege(&name, &draft(&name, &text), &declared(&stack(&name, &text)), &layout);
    }
}

#[test]
fn files_whose_networks_do_not_carry_their_flows_get_a_layout() {
    for case in GAP_CASES {
        let spec = load(&SourceFile { name: case.name.to_owned(), text: case.text.to_owned() }).expect("YAML");
        assert!(validate(&spec).stack.is_none(), "{}: validate accepts it, so it tests nothing here", case.name);
        let original = draft(case.name, case.text);
        let layout = suggest(&original);
        insta::assert_snapshot!(format!("{}.suggest", case.name), layout);
        let flows = case.flows.iter().map(|(source, destination)| ((*source).to_owned(), (*destination).to_owned()));
        assert_least_privilege(case.name, &original, &flows.collect(), &layout);
    }
}

#[test]
fn stackctl_validate_accepts_every_suggested_layout() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let gap_cases = GAP_CASES.iter().map(|case| (case.name.to_owned(), case.text.to_owned()));
    for (name, text) in layout_inputs().into_iter().chain(gap_cases) {
        let stackctl = |args: &[&str], path: &Path| {
            assert_cmd::Command::cargo_bin("stackctl")
                .expect("the binary is built")
                .args(args)
                .arg(path)
                .output()
                .expect("stackctl runs")
        };
        let input = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&input, &text).expect("write the stack file");
        let suggested = stackctl(&["suggest", "-f"], &input);
        assert!(suggested.status.success(), "{name}: {}", String::from_utf8_lossy(&suggested.stderr));
        assert_eq!(String::from_utf8_lossy(&suggested.stdout), suggest(&draft(&name, &text)), "{name}");
        let layout = dir.path().join(format!("{name}.suggested.yaml"));
        std::fs::write(&layout, &suggested.stdout).expect("write the suggested layout");
        let validated = stackctl(&["validate", "-f"], &layout);
        assert!(validated.status.success(), "{name}: {}", String::from_utf8_lossy(&validated.stderr));
    }
}
