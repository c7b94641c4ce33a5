//! The JSON Schema that editors use: it must be the one the Rust types generate today,
//! accept every example, and reject what the reader rejects for the same reasons.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stackctl::spec::stack_schema;

const SCHEMA_PATH: &str = "schemas/stack.schema.json";

/// The comment that points yaml-language-server at the schema, relative to `examples/`.
const SCHEMA_COMMENT: &str = "# yaml-language-server: $schema=../schemas/stack.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The schema as the file holds it: pretty JSON with a final newline, so that it reads
/// well in a diff.
fn rendered_schema() -> String {
    let mut text = serde_json::to_string_pretty(&stack_schema()).expect("the schema serializes");
    text.push('\n');
    text
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&stack_schema()).expect("the schema is a valid draft 2020-12 schema")
}

/// A stack file read as plain data, the way an editor sees it.
fn yaml_to_json(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).expect("the file is YAML")
}

/// Why the schema rejects a document, one line per violation; empty when it accepts it.
fn violations(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator.iter_errors(document).map(|error| format!("{}: {error}", error.instance_path())).collect()
}

fn examples() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn the_committed_schema_is_current() {
    let path = root().join(SCHEMA_PATH);
    let generated = rendered_schema();
    if std::env::var_os("STACKCTL_UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().expect("schemas directory")).expect("create schemas directory");
        std::fs::write(&path, &generated).expect("write the schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_PATH} is not the schema the Rust types generate; \
         run `STACKCTL_UPDATE_SCHEMA=1 cargo test --test schema` to update it, then review and commit it"
    );
}

#[test]
fn the_schema_describes_itself() {
    let schema = stack_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    for key in ["$id", "title", "description"] {
        assert!(schema[key].as_str().is_some_and(|text| !text.is_empty()), "the schema has no `{key}`");
    }
}

#[test]
fn every_example_points_at_the_schema_and_follows_it() {
    let validator = validator();
    let examples = examples();
    assert!(!examples.is_empty(), "no examples found");
    for path in examples {
        let text = std::fs::read_to_string(&path).expect("read example");
        let name = path.display();
        assert!(text.lines().any(|line| line == SCHEMA_COMMENT), "{name} does not start with `{SCHEMA_COMMENT}`");
        let problems = violations(&validator, &yaml_to_json(&text));
        assert!(problems.is_empty(), "{name} breaks the schema:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_schema_comment_in_examples_reaches_the_schema() {
    // yaml-language-server resolves the path against the stack file's own directory.
    let target = root().join("examples").join(SCHEMA_COMMENT.rsplit_once('=').expect("a path").1);
    assert!(target.is_file(), "{} does not exist", target.display());
}

#[test]
fn the_schema_rejects_what_the_reader_rejects() {
    let validator = validator();
    // Each file breaks the schema at the named place.
    let cases = [
        ("unknown key", "name: shop\nnetworks:\n  web_nw:\n    subnt: 10.20.0.0/24\n", "/networks/web_nw"),
        ("unknown top-level key", "name: shop\nnetwork: {}\n", ""),
        ("unknown container key", "name: shop\ncontainers:\n  web:\n    network: [web_nw]\n", "/containers/web"),
        (
            "unknown membership key",
            "name: shop\ncontainers:\n  web:\n    networks:\n      web_nw: { alias: [app] }\n",
            "/containers/web/networks",
        ),
        ("bad stack name", "name: my/shop\n", "/name"),
        ("stack name too long", &format!("name: {}\n", "a".repeat(64)), "/name"),
        ("bad network name", "name: shop\nnetworks:\n  \"web nw\": {}\n", "/networks"),
        ("bad container name", "name: shop\ncontainers:\n  -web: { network_mode: none }\n", "/containers"),
        (
            "bad network name in a membership list",
            "name: shop\ncontainers:\n  web:\n    networks: [\"web nw\"]\n",
            "/containers/web/networks",
        ),
        (
            "wrong isolation value",
            "name: shop\nnetworks:\n  web_nw:\n    isolation: closed\n",
            "/networks/web_nw/isolation",
        ),
        (
            "wrong network mode",
            "name: shop\ncontainers:\n  web:\n    network_mode: bridge\n",
            "/containers/web/network_mode",
        ),
        (
            "boolean written as a word",
            "name: shop\nnetworks:\n  web_nw:\n    internal: maybe\n",
            "/networks/web_nw/internal",
        ),
        (
            "a mapping for a list",
            "name: shop\ncontainers:\n  web:\n    talks_to: {db: 5432}\n",
            "/containers/web/talks_to",
        ),
        ("a fraction for a port", "name: shop\ncontainers:\n  web:\n    ports: [1.5]\n", "/containers/web/ports/0"),
        ("no name", "networks: {}\n", ""),
    ];
    for (what, text, place) in cases {
        let problems: Vec<String> =
            validator.iter_errors(&yaml_to_json(text)).map(|error| error.instance_path().to_string()).collect();
        assert!(!problems.is_empty(), "the schema accepts a file with a {what}");
        assert!(
            problems.iter().any(|path| path == place),
            "{what}: the schema objects at {problems:?}, not at `{place}`"
        );
    }
}

#[test]
fn the_schema_accepts_both_forms_of_memberships_and_ports() {
    let validator = validator();
    let text = "name: shop\nnetworks:\n  a: {}\n  b: {}\ncontainers:\n  web:\n    networks: [a, b]\n    ports: [443, \"127.0.0.1:8080:80/udp\"]\n  db:\n    networks:\n      a:\n      b: { aliases: [database], ipv4: 10.20.0.5 }\n";
    let problems = violations(&validator, &yaml_to_json(text));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What the reader takes as empty, the schema accepts: an empty section, a network or a
/// container written with nothing after it, and an empty list.
#[test]
fn the_schema_accepts_empty_sections_and_lists() {
    let validator = validator();
    for text in [
        "name: shop\nnetworks:\ncontainers:\n",
        "name: shop\nnetworks:\n  a:\ncontainers:\n  web:\n    networks: [a]\n    talks_to:\n    ports:\n",
        "name: shop\nnetworks:\n  a: {}\ncontainers:\n  web:\n    networks:\n      a: { aliases: }\n",
    ] {
        let problems = violations(&validator, &yaml_to_json(text));
        assert!(problems.is_empty(), "{text}\n{}", problems.join("\n"));
        stackctl::model::validate(
            &stackctl::spec::load(&stackctl::spec::SourceFile { name: "empty.yaml".to_owned(), text: text.to_owned() })
                .expect("the reader accepts it"),
        )
        .stack
        .expect("valid");
    }
}
