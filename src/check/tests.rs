//! Probe selection on every example and on hand-written stacks, and the truth table's
//! renderings, snapshot-tested with outcomes made by hand.

use std::fmt::Write;

use super::*;
use crate::graph::StackGraph;
use crate::model::validate_file;
use crate::spec::SourceFile;
use crate::state::{HostFacts, Key, lower};

const EXAMPLES: [(&str, &str); 6] = [
    ("hot-connect", include_str!("../../examples/hot-connect.yaml")),
    ("pets-tenants", include_str!("../../examples/pets-tenants.yaml")),
    ("port-publishing", include_str!("../../examples/port-publishing.yaml")),
    ("reverse-proxy", include_str!("../../examples/reverse-proxy.yaml")),
    ("web-app-db-v2", include_str!("../../examples/web-app-db-v2.yaml")),
    ("web-app-db", include_str!("../../examples/web-app-db.yaml")),
];

fn stack(text: &str) -> Stack {
    let validated = validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() });
    validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}\n{text}", validated.diagnostics))
}

/// The state an apply of `stack` on an empty host makes: every container with its links.
fn applied(stack: &Stack) -> KernelState {
    lower(stack, &KernelState::default(), &HostFacts::default()).expect("lowers").state
}

fn example(name: &str) -> (Stack, KernelState) {
    let text = EXAMPLES.iter().find(|(example, _)| *example == name).expect("an example").1;
    let stack = stack(text);
    let state = applied(&stack);
    (stack, state)
}

fn address(state: &KernelState, container: &str, network: &str) -> Ipv4Addr {
    match state.get(&Key::Link { container: container.to_owned(), network: network.to_owned() }) {
        Some(Resource::Link(link)) => link.address.addr(),
        other => panic!("no link of {container} on {network}: {other:?}"),
    }
}

/// A probe without its address: `nginx -> flaskapp web_nw tcp/5000 allowed`.
fn line(probe: &Probe) -> String {
    let expected = match probe.expected {
        Expected::Allowed => "allowed",
        Expected::Blocked => "blocked",
    };
    format!("{} -> {} {} {}/{} {expected}", probe.source, probe.destination, probe.network, probe.protocol, probe.port)
}

fn lines(survey: &Survey) -> Vec<String> {
    survey.probes.iter().map(line).collect()
}

/// What a stack that does exactly what it declares answers.
fn as_expected(probe: &Probe) -> Outcome {
    match (probe.expected, probe.protocol) {
        (Expected::Allowed, Protocol::Tcp) => Outcome::Connected,
        (Expected::Allowed, Protocol::Udp) => Outcome::Answered,
        (Expected::Blocked, Protocol::Tcp) => Outcome::TimedOut,
        (Expected::Blocked, Protocol::Udp) => Outcome::NoAnswer,
    }
}

fn outcomes(survey: &Survey, overrides: &[(&str, Outcome)]) -> Vec<Outcome> {
    survey
        .probes
        .iter()
        .map(|probe| {
            overrides.iter().find(|(line_of, _)| *line_of == line(probe)).map_or(as_expected(probe), |(_, o)| *o)
        })
        .collect()
}

#[test]
fn scenario_one_probes_its_flow_the_pairs_on_a_network_and_across_networks() {
    let (stack, state) = example("web-app-db");
    let survey = survey(&stack, &state);
    assert_eq!(survey.containers, ["db", "flaskapp", "nginx"]);
    assert_eq!(
        lines(&survey),
        [
            // db is on db_nw with flaskapp; nginx reaches flaskapp on port 5000 there is
            // none of db's business, so that is the port tried.
            "db -> flaskapp db_nw tcp/5000 blocked",
            "db -> flaskapp web_nw tcp/5000 blocked",
            "db -> nginx web_nw tcp/9 blocked",
            "flaskapp -> db db_nw tcp/5432 allowed",
            "flaskapp -> db db_nw tcp/9 blocked",
            "flaskapp -> nginx web_nw tcp/9 blocked",
            // nginx is not on db_nw: the database's port must not be reached across.
            "nginx -> db db_nw tcp/5432 blocked",
            "nginx -> flaskapp web_nw tcp/5000 allowed",
            "nginx -> flaskapp db_nw tcp/5000 blocked",
            "nginx -> flaskapp web_nw tcp/9 blocked",
        ]
    );
    let flow = survey.probes.iter().find(|probe| line(probe) == "nginx -> flaskapp web_nw tcp/5000 allowed");
    let flow = flow.expect("the declared flow");
    // web_nw isolates its members: they reach each other through the gateway.
    assert_eq!((flow.address, flow.direct), (address(&state, "flaskapp", "web_nw"), false));
    let across = survey.probes.iter().find(|probe| line(probe) == "nginx -> flaskapp db_nw tcp/5000 blocked");
    assert!(!across.expect("the probe across networks").direct);
    let expected: Vec<(&str, &str, Expected)> =
        survey.pairs.iter().map(|pair| (pair.source.as_str(), pair.destination.as_str(), pair.expected)).collect();
    assert_eq!(
        expected,
        [
            ("db", "flaskapp", Expected::Blocked),
            ("db", "nginx", Expected::Blocked),
            ("flaskapp", "db", Expected::Allowed),
            ("flaskapp", "nginx", Expected::Blocked),
            ("nginx", "db", Expected::Blocked),
            ("nginx", "flaskapp", Expected::Allowed),
        ]
    );
}

/// Hand-written stacks and the probes of one of their pairs.
#[test]
fn a_blocked_probe_takes_a_port_the_pair_is_not_allowed() {
    let cases = [
        (
            "another container's declared port is preferred",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n], talks_to: ['c:80'] }
  b: { networks: [n], talks_to: ['c:443'] }
  c: { networks: [n] }
",
            ("a", "c"),
            &["a -> c n tcp/80 allowed", "a -> c n tcp/443 blocked"][..],
        ),
        (
            "a port allowed to the source is never the blocked one",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n], talks_to: ['c:443', 'c:9'] }
  b: { networks: [n], talks_to: ['c:443'] }
  c: { networks: [n] }
",
            ("a", "c"),
            &["a -> c n tcp/9 allowed", "a -> c n tcp/443 allowed", "a -> c n tcp/1 blocked"][..],
        ),
        (
            "a UDP flow leaves TCP to probe",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n], talks_to: ['dns:53/udp'] }
  dns: { networks: [n] }
",
            ("a", "dns"),
            &["a -> dns n udp/53 allowed", "a -> dns n tcp/9 blocked"][..],
        ),
        (
            "every TCP port allowed leaves UDP to probe",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n], talks_to: ['b/tcp'] }
  b: { networks: [n] }
",
            ("a", "b"),
            &["a -> b n tcp/1 allowed", "a -> b n udp/9 blocked"][..],
        ),
        (
            "all traffic allowed leaves nothing to block on that network",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n], talks_to: [b] }
  b: { networks: [n] }
",
            ("a", "b"),
            &["a -> b n tcp/9 allowed"][..],
        ),
        (
            "an open network allows every pair all traffic",
            "name: s
networks: { flat: { isolation: open }, other: {} }
containers:
  a: { networks: [flat] }
  b: { networks: [flat, other] }
",
            ("a", "b"),
            &["a -> b flat tcp/9 allowed", "a -> b other tcp/9 blocked"][..],
        ),
        (
            "a loopback-only container probes every address of the others",
            "name: s
networks: { n: {}, m: {} }
containers:
  a: { networks: [n, m] }
  lo: { network_mode: none }
",
            ("lo", "a"),
            &["lo -> a m tcp/9 blocked", "lo -> a n tcp/9 blocked"][..],
        ),
        (
            "a loopback-only container has nothing to reach",
            "name: s
networks: { n: {} }
containers:
  a: { networks: [n] }
  lo: { network_mode: none }
",
            ("a", "lo"),
            &[][..],
        ),
    ];
    for (case, text, (source, destination), expected) in cases {
        let stack = stack(text);
        let survey = survey(&stack, &applied(&stack));
        let pair = survey
            .pairs
            .iter()
            .find(|pair| pair.source == source && pair.destination == destination)
            .unwrap_or_else(|| panic!("{case}: no pair {source} -> {destination}"));
        let probes: Vec<String> = survey.probes[pair.probes.clone()].iter().map(line).collect();
        assert_eq!(probes, expected, "{case}");
    }
}

#[test]
fn every_example_is_probed_by_the_rules() {
    for (name, text) in EXAMPLES {
        let stack = stack(text);
        let state = applied(&stack);
        let survey = survey(&stack, &state);
        let flows = StackGraph::build(&stack).allowed_flows();
        let namespaced: Vec<&Container> =
            stack.containers.values().filter(|container| container.attachment != Attachment::Host).collect();
        assert_eq!(survey.pairs.len(), namespaced.len() * (namespaced.len() - 1), "{name}: one pair per ordered pair");

        for flow in &flows {
            let (protocol, port) = match flow.traffic {
                Traffic::All => (Protocol::Tcp, ANY_PORT),
                Traffic::Ports { protocol, ports } => (protocol, ports.first),
            };
            let probed = survey.probes.iter().any(|probe| {
                probe.source == flow.source
                    && probe.destination == flow.destination
                    && probe.network == flow.network
                    && (probe.protocol, probe.port) == (protocol, port)
                    && probe.expected == Expected::Allowed
                    && probe.address == address(&state, &flow.destination, &flow.network)
            });
            assert!(probed, "{name}: flow {flow:?} is not probed");
        }
        for probe in survey.probes.iter().filter(|probe| probe.expected == Expected::Blocked) {
            let allowed = flows.iter().any(|flow| {
                flow.source == probe.source
                    && flow.destination == probe.destination
                    && flow.network == probe.network
                    && match flow.traffic {
                        Traffic::All => true,
                        Traffic::Ports { protocol, ports } => {
                            protocol == probe.protocol && ports.overlaps(&PortRange::single(probe.port))
                        }
                    }
            });
            assert!(!allowed, "{name}: {} must be blocked, but a flow allows it", line(probe));
            assert_eq!(probe.address, address(&state, &probe.destination, &probe.network), "{name}");
        }
        for pair in &survey.pairs {
            let destination = &stack.containers[&pair.destination];
            let flows = flows.iter().filter(|flow| flow.source == pair.source && flow.destination == pair.destination);
            assert!(pair.probes.len() <= flows.count() + destination.memberships().len(), "{name}: {pair:?}");
            assert!(pair.missing.is_empty(), "{name}: {pair:?}");
            if destination.memberships().is_empty() {
                assert_eq!((pair.probes.len(), pair.expected), (0, Expected::Blocked), "{name}: {pair:?}");
            }
        }

        let table = survey.table(&outcomes(&survey, &[]));
        assert!(table.correct, "{name}: a stack that does what it declares is correct");
        assert!(table.cells.iter().all(|cell| matches!(cell.mark, Mark::Allowed | Mark::Blocked)), "{name}");
        insta::assert_snapshot!(format!("survey-{name}"), survey_text(&survey));
    }
}

/// The survey with addresses, one probe per line, for its snapshot.
fn survey_text(survey: &Survey) -> String {
    let mut out = String::new();
    for pair in &survey.pairs {
        let _ = writeln!(out, "{} -> {}: {:?}", pair.source, pair.destination, pair.expected);
        for probe in &survey.probes[pair.probes.clone()] {
            let _ = writeln!(
                out,
                "  {} {}:{}/{} {:?}",
                probe.network, probe.address, probe.port, probe.protocol, probe.expected
            );
        }
    }
    out
}

#[test]
fn host_network_containers_are_neither_rows_nor_columns() {
    let (stack, state) = example("reverse-proxy");
    let survey = survey(&stack, &state);
    assert!(stack.containers.contains_key("node-exporter"));
    assert!(!survey.containers.contains(&"node-exporter".to_owned()));
    assert!(survey.probes.iter().all(|probe| probe.source != "node-exporter" && probe.destination != "node-exporter"));
}

#[test]
fn an_allowed_flow_to_a_missing_address_is_broken() {
    let (stack, mut state) = example("web-app-db");
    state.resources.remove(&Key::Link { container: "flaskapp".to_owned(), network: "web_nw".to_owned() });
    let survey = survey(&stack, &state);
    let pair = survey.pairs.iter().find(|pair| pair.source == "nginx" && pair.destination == "flaskapp");
    let pair = pair.expect("a pair");
    assert_eq!(pair.missing, ["web_nw"]);
    let probes: Vec<String> = survey.probes[pair.probes.clone()].iter().map(line).collect();
    assert_eq!(probes, ["nginx -> flaskapp db_nw tcp/5000 blocked"]);
    let table = survey.table(&outcomes(&survey, &[]));
    let cell = table.cells.iter().find(|cell| cell.source == "nginx" && cell.destination == "flaskapp");
    assert_eq!(cell.expect("a cell").mark, Mark::Broken);
    assert!(!table.correct);
    assert!(
        render_text(&table, false)
            .contains("nginx -> flaskapp on web_nw: must be reached, flaskapp has no address there")
    );
}

#[test]
fn outcomes_count_as_reached_when_the_destination_answered_anything() {
    let reached = [Outcome::Connected, Outcome::Refused, Outcome::Answered];
    let blocked = [Outcome::TimedOut, Outcome::Unreachable, Outcome::NoAnswer];
    assert!(reached.iter().all(|outcome| outcome.reached()));
    assert!(blocked.iter().all(|outcome| !outcome.reached()));
}

#[test]
fn a_leak_wins_over_a_broken_flow_in_one_cell() {
    let (stack, state) = example("web-app-db");
    let survey = survey(&stack, &state);
    let table = survey.table(&outcomes(
        &survey,
        &[
            ("nginx -> flaskapp web_nw tcp/5000 allowed", Outcome::TimedOut),
            ("nginx -> flaskapp web_nw tcp/9 blocked", Outcome::Refused),
        ],
    ));
    let cell = table.cells.iter().find(|cell| cell.source == "nginx" && cell.destination == "flaskapp");
    assert_eq!(cell.expect("a cell").mark, Mark::Leak);
    assert_eq!(table.summary.wrong, 2);
}

/// Scenario one as the live kernel runs it before flows are enforced: undeclared pairs on
/// a network reach each other; and nginx's one flow timed out.
fn scenario_one_gone_wrong() -> TruthTable {
    let (stack, state) = example("web-app-db");
    let survey = survey(&stack, &state);
    survey.table(&outcomes(
        &survey,
        &[
            ("db -> flaskapp db_nw tcp/5000 blocked", Outcome::Refused),
            ("db -> flaskapp web_nw tcp/5000 blocked", Outcome::Unreachable),
            ("db -> nginx web_nw tcp/9 blocked", Outcome::Unreachable),
            ("flaskapp -> db db_nw tcp/9 blocked", Outcome::Refused),
            ("flaskapp -> nginx web_nw tcp/9 blocked", Outcome::Refused),
            ("nginx -> db db_nw tcp/5432 blocked", Outcome::Unreachable),
            ("nginx -> flaskapp web_nw tcp/5000 allowed", Outcome::TimedOut),
        ],
    ))
}

#[test]
fn scenario_one_gone_wrong_as_text() {
    let table = scenario_one_gone_wrong();
    assert!(!table.correct);
    insta::assert_snapshot!(render_text(&table, false));
}

#[test]
fn scenario_one_gone_wrong_as_json() {
    insta::assert_snapshot!(scenario_one_gone_wrong().to_json());
}

#[test]
fn a_correct_stack_with_a_loopback_only_container_as_text() {
    let (stack, state) = example("hot-connect");
    let survey = survey(&stack, &state);
    let table = survey.table(&outcomes(&survey, &[]));
    assert!(table.correct);
    insta::assert_snapshot!(render_text(&table, false));
}

#[test]
fn columns_stay_aligned_past_nine_containers() {
    let mut text = "name: many\nnetworks: { flat: { isolation: open }, lone: {} }\ncontainers:\n".to_owned();
    for index in 1..=11 {
        let _ = writeln!(text, "  container-with-a-long-name-{index:02}: {{ networks: [flat] }}");
    }
    text.push_str("  alone: { networks: [lone] }\n");
    let stack = stack(&text);
    let survey = survey(&stack, &applied(&stack));
    let table = survey.table(&outcomes(&survey, &[]));
    insta::assert_snapshot!(render_text(&table, false));
}
