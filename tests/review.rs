//! `stackctl diff`: reviewing the change between two stack files, in the library and through
//! the binary.

use std::collections::BTreeSet;

use assert_cmd::Command;
use stackctl::graph::{AllowedFlow, Grant};
use stackctl::model::{PortRange, Protocol, Stack, Traffic, validate_file};
use stackctl::review::{Format, Review};
use stackctl::spec::SourceFile;

const OLD: &str = "examples/web-app-db.yaml";
const NEW: &str = "examples/web-app-db-v2.yaml";

fn stack(path: &str) -> Stack {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    let file = SourceFile { name: path.to_owned(), text: std::fs::read_to_string(full).expect("readable example") };
    validate_file(&file).stack.expect("the example is valid")
}

fn scenario_one() -> Review {
    Review::between(&stack(OLD), &stack(NEW)).expect("both stacks lower")
}

fn stackctl() -> Command {
    let mut command = Command::cargo_bin("stackctl").expect("the binary is built");
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn the_alias_app_moves_to_the_new_app() {
    let review = scenario_one();
    let moves = &review.reachability().alias_moves;
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!((moves[0].network.as_str(), moves[0].alias.as_str()), ("web_nw", "app"));
    assert_eq!(moves[0].before, names(&["flaskapp"]));
    assert_eq!(moves[0].after, names(&["flaskapp-v2"]));
}

#[test]
fn nginx_loses_the_old_app_and_reaches_the_new_one() {
    let review = scenario_one();
    let delta = review.reachability();
    let app = Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::single(5000) };
    let is = |flow: &&AllowedFlow, destination: &str| {
        flow.source == "nginx" && flow.destination == destination && flow.network == "web_nw" && flow.traffic == app
    };
    assert!(delta.flows_forbidden.iter().any(|flow| is(&flow, "flaskapp")), "{:?}", delta.flows_forbidden);
    assert!(delta.flows_allowed.iter().any(|flow| is(&flow, "flaskapp-v2")), "{:?}", delta.flows_allowed);
    assert!(!delta.flows_allowed.iter().any(|flow| flow.destination == "flaskapp"));
    // Nothing is published anew: nginx keeps its loopback-only port.
    assert!(delta.ports_published.is_empty() && delta.exposed_on_all_interfaces.is_empty());
    assert!(review.has_changes());
}

#[test]
fn scenario_one_as_text() {
    insta::assert_snapshot!(scenario_one().render(Format::Text, OLD, NEW, false));
}

/// Scenario 1 with flaskapp-v2 beside flaskapp, `app` on the container `holder`.
fn both_running(holder: &str) -> Stack {
    let mut text = std::fs::read_to_string(format!("{}/{OLD}", env!("CARGO_MANIFEST_DIR"))).expect("readable example");
    text.push_str("  flaskapp-v2:\n    networks:\n      web_nw: {}\n      db_nw: {}\n    talks_to: [db:5432]\n");
    if holder == "flaskapp-v2" {
        text = text.replace("      web_nw: { aliases: [app] }\n", "      web_nw: {}\n").replace(
            "  flaskapp-v2:\n    networks:\n      web_nw: {}\n",
            "  flaskapp-v2:\n    networks:\n      web_nw: { aliases: [app] }\n",
        );
    }
    let file = SourceFile { name: format!("{holder}.yaml"), text };
    validate_file(&file).stack.expect("the stack is valid")
}

/// Moving an alias away from a container that stays is a swap too: the flow that reached
/// the old container through the alias goes only once its connections have drained.
#[test]
fn an_alias_leaving_a_container_that_stays_is_a_swap() {
    let review = Review::between(&both_running("flaskapp"), &both_running("flaskapp-v2")).expect("both lower");
    let text = review.render(Format::Text, "flaskapp.yaml", "flaskapp-v2.yaml", false);
    insta::assert_snapshot!(text);
    let remove_flow = text.find("- flow    nginx -> flaskapp tcp/5000").expect("the old flow goes");
    assert!(text.find("drain  established connections through app to flaskapp").expect("drained") < remove_flow);
}

#[test]
fn scenario_one_as_json() {
    let json = scenario_one().render(Format::Json, OLD, NEW, false);
    let document: serde_json::Value = serde_json::from_str(&json).expect("the review is JSON");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["old"], OLD);
    assert_eq!(document["has_changes"], true);
    let moves = document["reachability"]["alias_moves"].as_array().expect("alias moves");
    assert_eq!(moves[0]["before"], serde_json::json!(["flaskapp"]));
    assert_eq!(moves[0]["after"], serde_json::json!(["flaskapp-v2"]));
    insta::assert_snapshot!(json);
}

#[test]
fn scenario_one_as_markdown() {
    let markdown = scenario_one().render(Format::Markdown, OLD, NEW, false);
    assert!(markdown.contains("```diff\n"), "{markdown}");
    assert!(markdown.contains("```mermaid\n"), "{markdown}");
    insta::assert_snapshot!(markdown);
}

#[test]
fn colour_is_added_only_when_asked_for() {
    let review = scenario_one();
    assert!(!review.render(Format::Text, OLD, NEW, false).contains('\u{1b}'));
    assert!(review.render(Format::Text, OLD, NEW, true).contains('\u{1b}'));
    // Colour is a terminal's business: machines and comments never get escape codes.
    assert!(!review.render(Format::Json, OLD, NEW, true).contains('\u{1b}'));
    assert!(!review.render(Format::Markdown, OLD, NEW, true).contains('\u{1b}'));
}

#[test]
fn a_file_against_itself_has_no_changes() {
    let old = stack(OLD);
    let review = Review::between(&old, &old).expect("the stack lowers");
    assert!(!review.has_changes());
    assert!(review.plan().is_empty() && review.reachability().is_empty());
    let text = review.render(Format::Text, OLD, OLD, false);
    assert!(text.contains("No changes to kernel objects.") && text.contains("No reachability changes."), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&review.render(Format::Json, OLD, OLD, false)).expect("the review is JSON");
    assert_eq!(json["has_changes"], false);
    assert_eq!(json["summary"], serde_json::json!({"add": 0, "change": 0, "destroy": 0}));
}

#[test]
fn publishing_on_every_interface_is_flagged() {
    let published = |ports: &str| {
        let text = format!(
            "name: shop\nnetworks: {{ web_nw: {{}} }}\ncontainers:\n  web:\n    networks: [web_nw]\n    ports: [{ports}]\n"
        );
        validate_file(&SourceFile { name: "stack.yaml".to_owned(), text }).stack.expect("the stack is valid")
    };
    let review = Review::between(&published("\"127.0.0.1:8080:80\""), &published("\"8080:80\"")).expect("lowers");
    let delta = review.reachability();
    assert_eq!(delta.exposed_on_all_interfaces.len(), 1, "{delta:?}");
    assert_eq!(delta.exposed_on_all_interfaces[0].publication.host_ip, None);
    assert_eq!(delta.ports_unpublished.len(), 1);
    let text = review.render(Format::Text, "old.yaml", "new.yaml", false);
    assert!(text.contains("EXPOSED"), "{text}");
    let markdown = review.render(Format::Markdown, "old.yaml", "new.yaml", false);
    assert!(markdown.contains("[!CAUTION]"), "{markdown}");
    insta::assert_snapshot!(markdown);
}

#[test]
fn opening_a_network_allows_every_pair_once() {
    let isolated = |isolation: &str| {
        let text = format!(
            "name: shop\nnetworks: {{ web_nw: {{ isolation: {isolation} }} }}\ncontainers:\n  web:\n    \
             networks: [web_nw]\n    talks_to: [api]\n  api:\n    networks: [web_nw]\n"
        );
        validate_file(&SourceFile { name: "stack.yaml".to_owned(), text }).stack.expect("the stack is valid")
    };
    let review = Review::between(&isolated("flows"), &isolated("open")).expect("lowers");
    let allowed: Vec<(&str, &str, Grant)> = review
        .reachability()
        .flows_allowed
        .iter()
        .map(|flow| (flow.source.as_str(), flow.destination.as_str(), flow.grant))
        .collect();
    // web -> api with all traffic was declared already: only the way back is new.
    assert_eq!(allowed, [("api", "web", Grant::OpenNetwork)]);
    assert!(review.reachability().flows_forbidden.is_empty());
}

/// A flow to the host is a flow like any other: allowed in the delta, with its network, in
/// every report, and a change of the plan's firewall.
#[test]
fn a_flow_to_the_host_is_reviewed_like_any_flow() {
    let talking = |talks_to: &str| {
        let text = format!(
            "name: shop\nnetworks: {{ web_nw: {{}} }}\ncontainers:\n  web:\n    networks: [web_nw]\n    \
             talks_to: [{talks_to}]\n  api:\n    networks: [web_nw]\n"
        );
        validate_file(&SourceFile { name: "stack.yaml".to_owned(), text }).stack.expect("the stack is valid")
    };
    let review = Review::between(&talking("'api:80'"), &talking("'api:80', 'host:22'")).expect("lowers");
    let tcp_22 = Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::single(22) };
    let expected = AllowedFlow {
        source: "web".to_owned(),
        destination: "host".to_owned(),
        network: "web_nw".to_owned(),
        traffic: tcp_22,
        grant: Grant::Declared,
    };
    assert_eq!(review.reachability().flows_allowed, [expected]);
    assert!(review.reachability().flows_forbidden.is_empty());
    let text = review.render(Format::Text, "old.yaml", "new.yaml", false);
    assert!(text.contains("web -> host tcp/22 on web_nw"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&review.render(Format::Json, "old.yaml", "new.yaml", false)).expect("JSON");
    assert_eq!(json["reachability"]["flows_allowed"][0]["destination"], "host", "{json}");
    insta::assert_snapshot!(review.render(Format::Markdown, "old.yaml", "new.yaml", false));
}

#[test]
fn a_replacement_is_one_json_operation_with_both_sides() {
    let adopting = |netns: &str| {
        let text =
            format!("name: shop\nnetworks: {{ web_nw: {{}} }}\ncontainers:\n  web:\n    networks: [web_nw]\n{netns}");
        validate_file(&SourceFile { name: "stack.yaml".to_owned(), text }).stack.expect("the stack is valid")
    };
    let review = Review::between(&adopting(""), &adopting("    netns: /run/netns/legacy\n")).expect("lowers");
    let json: serde_json::Value =
        serde_json::from_str(&review.render(Format::Json, "old.yaml", "new.yaml", false)).expect("JSON");
    let operations = json["plan"]["operations"].as_array().expect("operations");
    let namespace = operations.iter().find(|operation| operation["kind"] == "netns").expect("the netns changes");
    assert_eq!(namespace["action"], "replace");
    assert_eq!(namespace["before"]["name"], "shop:web");
    assert_eq!(namespace["after"]["adopted"], "/run/netns/legacy");
    let namespaces = operations.iter().filter(|operation| operation["kind"] == "netns").count();
    assert_eq!(namespaces, 1, "a replacement is not also listed as a deletion");
}

#[test]
fn detailed_exitcode_tells_changes_from_none() {
    stackctl().args(["diff", OLD, NEW, "--detailed-exitcode"]).assert().code(2);
    stackctl().args(["diff", OLD, OLD, "--detailed-exitcode"]).assert().code(0);
    // Without the flag, changes are no failure.
    stackctl().args(["diff", OLD, NEW]).assert().code(0);
}

#[test]
fn markdown_through_the_binary() {
    let output = stackctl().args(["diff", OLD, NEW, "--format", "markdown"]).output().expect("diff runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let markdown = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(markdown.starts_with("## stackctl diff: "), "{markdown}");
    assert!(markdown.contains("```diff\n"), "{markdown}");
}

#[test]
fn json_through_the_binary() {
    let output = stackctl().args(["diff", OLD, NEW, "--format", "json"]).output().expect("diff runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the review is JSON");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["new"], NEW);
}

#[test]
fn an_invalid_new_file_exits_65() {
    let invalid = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(invalid.path(), "name: shop\ncontainers:\n  web:\n    networks: [missing_nw]\n").expect("write");
    let output = stackctl().args(["diff", OLD]).arg(invalid.path()).output().expect("diff runs");
    assert_eq!(output.status.code(), Some(65), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "nothing is reviewed from an invalid file");
}
