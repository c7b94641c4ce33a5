//! Probe selection on every example and on hand-written stacks, and the truth table's
//! renderings, snapshot-tested with outcomes made by hand.

use std::fmt::Write;

use ipnet::Ipv4Net;

use super::published::Missing;
use super::*;
use crate::graph::StackGraph;
use crate::model::{Publication, validate_file};
use crate::spec::SourceFile;
use crate::state::{HostFacts, Key, LocalPorts, lower};

const EXAMPLES: [(&str, &str); 6] = [
    ("hot-connect", include_str!("../../../../examples/hot-connect.yaml")),
    ("pets-tenants", include_str!("../../../../examples/pets-tenants.yaml")),
    ("port-publishing", include_str!("../../../../examples/port-publishing.yaml")),
    ("reverse-proxy", include_str!("../../../../examples/reverse-proxy.yaml")),
    ("web-app-db-v2", include_str!("../../../../examples/web-app-db-v2.yaml")),
    ("web-app-db", include_str!("../../../../examples/web-app-db.yaml")),
];

fn stack(text: &str) -> Stack {
    let validated = validate_file(&SourceFile { name: "test.yaml".to_owned(), text: text.to_owned() });
    validated.stack.unwrap_or_else(|| panic!("invalid: {:#?}\n{text}", validated.diagnostics))
}

/// The ports of the host of these tests: Linux's ephemeral range, and nothing held.
fn local_ports() -> LocalPorts {
    LocalPorts { ephemeral: PortRange { first: 32768, last: 60999 }, busy: Default::default() }
}

/// The state an apply of `stack` on an empty host makes: every container with its links,
/// and its random host ports picked.
fn applied(stack: &Stack) -> KernelState {
    let host = HostFacts { local_ports: Some(local_ports()), ..HostFacts::default() };
    lower(stack, &KernelState::default(), &host).expect("lowers").state
}

/// The host of these tests once `state` is applied: loopback, an uplink on a subnet that
/// holds a second, single address too (as `tests/firewall.rs` has it), and the stack's
/// bridges with their gateways and their aliases' virtual addresses.
fn host(state: &KernelState) -> HostFacts {
    let mut addresses: Vec<Ipv4Net> =
        ["127.0.0.1/8", "192.0.2.1/24", "10.20.3.4/32"].iter().map(|net| net.parse().expect("a net")).collect();
    for resource in state.of_kind(Kind::Bridge) {
        if let Resource::Bridge(bridge) = resource {
            addresses.push(bridge.address);
            addresses.extend(bridge.virtual_addresses.iter().map(|address| Ipv4Net::from(*address)));
        }
    }
    HostFacts { addresses, local_ports: Some(local_ports()), ..HostFacts::default() }
}

fn example(name: &str) -> (Stack, KernelState) {
    let text = EXAMPLES.iter().find(|(example, _)| *example == name).expect("an example").1;
    let stack = stack(text);
    let state = applied(&stack);
    (stack, state)
}

/// The survey of `stack` applied as `state` on the tests' host.
fn surveyed(stack: &Stack, state: &KernelState) -> Survey {
    survey(stack, state, &host(state))
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

/// A probe from the host: `host -> nginx 127.0.0.1:8080/tcp allowed`.
fn host_line(probe: &HostProbe) -> String {
    let expected = match probe.expected {
        Expected::Allowed => "allowed",
        Expected::Blocked => "blocked",
    };
    format!("host -> {} {}:{}/{} {expected}", probe.container, probe.address, probe.port, probe.protocol)
}

/// What the host of a stack that does exactly what it declares answers: the witness's
/// token where a publication forwards, the host's refusal elsewhere.
fn deliveries(survey: &Survey, overrides: &[(&str, Delivery)]) -> Vec<Delivery> {
    survey
        .published
        .probes
        .iter()
        .map(|probe| {
            let expected = match probe.expected {
                Expected::Allowed => Delivery::Token,
                Expected::Blocked => Delivery::Refused,
            };
            overrides.iter().find(|(line_of, _)| *line_of == host_line(probe)).map_or(expected, |(_, d)| *d)
        })
        .collect()
}

/// The table of a stack that does exactly what it declares.
fn as_declared(survey: &Survey) -> TruthTable {
    survey.table(&outcomes(survey, &[]), &deliveries(survey, &[]))
}

#[test]
fn scenario_one_probes_its_flow_the_pairs_on_a_network_and_across_networks() {
    let (stack, state) = example("web-app-db");
    let survey = surveyed(&stack, &state);
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
        let survey = surveyed(&stack, &applied(&stack));
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
        let survey = surveyed(&stack, &state);
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

        published_by_the_rules(name, &stack, &state, &survey.published);

        let table = as_declared(&survey);
        assert!(table.correct, "{name}: a stack that does what it declares is correct");
        assert!(table.cells.iter().all(|cell| matches!(cell.mark, Mark::Allowed | Mark::Blocked)), "{name}");
        assert!(table.published.iter().all(|cell| matches!(cell.mark, Mark::Allowed | Mark::Blocked)), "{name}");
        insta::assert_snapshot!(format!("survey-{name}"), survey_text(&survey));
    }
}

/// Every port `stack` publishes is probed from the host on each of the host's addresses:
/// arriving on those it names (all, when it names none), and on no other; both ends of a
/// range; a random port where it was picked; each to the container's address on its first
/// network that is not internal.
fn published_by_the_rules(name: &str, stack: &Stack, state: &KernelState, published: &PublishedSurvey) {
    let host = host(state);
    let mut columns: Vec<Ipv4Addr> = vec![Ipv4Addr::LOCALHOST, "192.0.2.1".parse().expect("an address")];
    columns.extend(state.of_kind(Kind::Bridge).filter_map(|resource| match resource {
        Resource::Bridge(bridge) => Some(bridge.address.addr()),
        _ => None,
    }));
    let named: Vec<Ipv4Addr> =
        stack.containers.values().flat_map(|container| &container.ports).filter_map(|port| port.host_ip).collect();
    columns.extend(named.iter().filter(|address| **address != Ipv4Addr::LOCALHOST));
    columns[1..].sort_unstable();
    columns.dedup();
    assert_eq!(published.addresses, columns, "{name}: the host's addresses, aliases' virtual addresses left out");

    let declared: Vec<(&Container, &Publication)> = stack
        .containers
        .values()
        .flat_map(|container| container.ports.iter().map(move |port| (container, port)))
        .collect();
    assert_eq!(published.ports.len(), declared.len(), "{name}: a row per published port range");
    for (row, (container, publication)) in published.ports.iter().zip(declared) {
        assert_eq!((row.container.as_str(), &row.publication), (container.name.as_str(), publication), "{name}");
        let forward = state.of_kind(Kind::Forward).find_map(|resource| match resource {
            Resource::Forward(forward)
                if forward.container == container.name && forward.container_ports == publication.container_ports =>
            {
                Some(forward)
            }
            _ => None,
        });
        let forward = forward.unwrap_or_else(|| panic!("{name}: no forward of {container:?}"));
        let ports = forward.host_ports.ports().expect("every random port is picked");
        assert_eq!(row.host_ports, Some(ports), "{name}");
        for (spot, address) in row.spots.iter().zip(&published.addresses) {
            let expected =
                if publication.host_ip.is_none_or(|ip| ip == *address) { Expected::Allowed } else { Expected::Blocked };
            assert_eq!(
                (spot.address, spot.expected, spot.missing),
                (*address, Some(expected), None),
                "{name}: {row:?}"
            );
            let mut ends = vec![(ports.first, publication.container_ports.first)];
            if ports.count() > 1 {
                ends.push((ports.last, publication.container_ports.last));
            }
            let probes: Vec<(u16, u16)> = published.probes[spot.probes.clone()]
                .iter()
                .map(|probe| {
                    assert_eq!(
                        (probe.container.as_str(), probe.protocol, probe.address, probe.to, probe.expected),
                        (container.name.as_str(), publication.protocol, *address, forward.to, expected),
                        "{name}"
                    );
                    assert!(!probe.host_holds_port, "{name}: nothing holds the host's ports");
                    (probe.port, probe.container_port)
                })
                .collect();
            assert_eq!(probes, ends, "{name}: {row:?} on {address}");
        }
    }
    assert_eq!(
        published.probes.len(),
        published.ports.iter().flat_map(|row| &row.spots).map(|spot| spot.probes.len()).sum::<usize>(),
        "{name}: every probe belongs to one cell"
    );
    assert!(host.addresses.iter().any(|address| address.prefix_len() == 32), "the host has single addresses");
}

/// The survey with addresses, one probe per line, for its snapshot; then the published
/// ports, one probe from the host per line.
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
    for port in &survey.published.ports {
        let _ = writeln!(out, "host -> {} {}", port.container, port.publication);
        for spot in &port.spots {
            for probe in &survey.published.probes[spot.probes.clone()] {
                let _ = writeln!(
                    out,
                    "  {}:{}/{} -> {}:{} {:?}",
                    probe.address, probe.port, probe.protocol, probe.to, probe.container_port, probe.expected
                );
            }
        }
    }
    out
}

/// Hand-written publications of one container `a` on network `n` (10.89.0.0/24), on the
/// tests' host: its probes from the host, and the cells that must answer but cannot be
/// probed.
#[test]
fn a_published_port_is_probed_on_each_host_address() {
    let cases = [
        (
            "a port on loopback must arrive there only",
            "127.0.0.1:8080:80",
            &[
                "host -> a 127.0.0.1:8080/tcp allowed",
                "host -> a 10.89.0.1:8080/tcp blocked",
                "host -> a 192.0.2.1:8080/tcp blocked",
            ][..],
        ),
        (
            "a port without a host address must arrive on every one",
            "8080:80",
            &[
                "host -> a 127.0.0.1:8080/tcp allowed",
                "host -> a 10.89.0.1:8080/tcp allowed",
                "host -> a 192.0.2.1:8080/tcp allowed",
            ][..],
        ),
        (
            "a range is probed at both ends",
            "127.0.0.1:5000-5001:6000-6001/udp",
            &[
                "host -> a 127.0.0.1:5000/udp allowed",
                "host -> a 127.0.0.1:5001/udp allowed",
                "host -> a 10.89.0.1:5000/udp blocked",
                "host -> a 10.89.0.1:5001/udp blocked",
                "host -> a 192.0.2.1:5000/udp blocked",
                "host -> a 192.0.2.1:5001/udp blocked",
            ][..],
        ),
        (
            "a single address of the host is a column once a publication names it",
            "10.20.3.4:53:53",
            &[
                "host -> a 127.0.0.1:53/tcp blocked",
                "host -> a 10.20.3.4:53/tcp allowed",
                "host -> a 10.89.0.1:53/tcp blocked",
                "host -> a 192.0.2.1:53/tcp blocked",
            ][..],
        ),
        (
            "another loopback address is the host's too",
            "127.0.0.2:8080:80",
            &[
                "host -> a 127.0.0.1:8080/tcp blocked",
                "host -> a 10.89.0.1:8080/tcp blocked",
                "host -> a 127.0.0.2:8080/tcp allowed",
                "host -> a 192.0.2.1:8080/tcp blocked",
            ][..],
        ),
        (
            "an address the host does not have is never probed, and must answer",
            "198.51.100.7:8080:80",
            &[
                "host -> a 127.0.0.1:8080/tcp blocked",
                "host -> a 10.89.0.1:8080/tcp blocked",
                "host -> a 192.0.2.1:8080/tcp blocked",
                "missing on 198.51.100.7: HostAddress",
            ][..],
        ),
    ];
    for (case, port, expected) in cases {
        let stack = stack(&format!(
            "name: s\nnetworks: {{ n: {{}} }}\ncontainers:\n  a: {{ networks: [n], ports: ['{port}'] }}\n"
        ));
        let state = applied(&stack);
        let survey = surveyed(&stack, &state);
        let [row] = survey.published.ports.as_slice() else { panic!("{case}: one row") };
        let mut found = Vec::new();
        for spot in &row.spots {
            found.extend(survey.published.probes[spot.probes.clone()].iter().map(host_line));
            found.extend(spot.missing.map(|missing| format!("missing on {}: {missing:?}", spot.address)));
        }
        assert_eq!(found, expected, "{case}");
        let to = address(&state, "a", "n");
        assert!(survey.published.probes.iter().all(|probe| probe.to == to), "{case}");
    }
}

#[test]
fn a_random_port_not_yet_picked_must_answer_and_cannot_be_probed() {
    let stack = stack("name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], ports: ['80'] }\n");
    // Lowered without the host's ports, the random port stays to be picked.
    let state = lower(&stack, &KernelState::default(), &HostFacts::default()).expect("lowers").state;
    let survey = surveyed(&stack, &state);
    assert!(survey.published.probes.is_empty());
    let table = as_declared(&survey);
    assert!(!table.correct);
    assert!(table.published.iter().all(|cell| cell.mark == Mark::Broken && cell.missing == Some(Missing::HostPort)));
    assert_eq!(table.summary.wrong, table.published.len());
    let text = render_text(&table, false);
    assert!(
        text.contains(
            "host -> 127.0.0.1 (a *:random->80/tcp): must arrive in a, the host's rules hold no port picked for it"
        ),
        "{text}"
    );
}

#[test]
fn a_probe_from_the_host_arrived_only_on_proof() {
    let cases = [
        (Delivery::Token, false, true),
        (Delivery::InContainer, false, true),
        (Delivery::Replied, false, true),
        // The host's own program may have sent the reply.
        (Delivery::Replied, true, false),
        (Delivery::Elsewhere, false, false),
        // The host answers its own ports: a refusal may be the host's.
        (Delivery::Refused, false, false),
        (Delivery::TimedOut, false, false),
        (Delivery::Unreachable, false, false),
        (Delivery::NoAnswer, false, false),
    ];
    for (delivery, host_holds_port, reached) in cases {
        assert_eq!(delivery.reached(host_holds_port), reached, "{delivery:?}, host holds the port: {host_holds_port}");
    }
}

#[test]
fn a_udp_reply_counts_only_when_the_host_holds_no_socket_on_the_port() {
    let stack = stack(
        "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], ports: ['127.0.0.1:9053:53/udp', '127.0.0.1:9054:54/udp'] }\n",
    );
    let state = applied(&stack);
    let mut host = host(&state);
    host.local_ports.as_mut().expect("the host's ports").busy.insert((Protocol::Udp, 9053));
    let survey = survey(&stack, &state, &host);
    let holds: Vec<(u16, bool)> = survey
        .published
        .probes
        .iter()
        .filter(|probe| probe.address == Ipv4Addr::LOCALHOST)
        .map(|probe| (probe.port, probe.host_holds_port))
        .collect();
    assert_eq!(holds, [(9053, true), (9054, false)]);
    let replied: Vec<Delivery> = survey.published.probes.iter().map(|_| Delivery::Replied).collect();
    let table = survey.table(&outcomes(&survey, &[]), &replied);
    let marks: Vec<(u16, char)> = table
        .published
        .iter()
        .filter(|cell| cell.address == Ipv4Addr::LOCALHOST)
        .map(|cell| (cell.probes[0].port, cell.mark.symbol()))
        .collect();
    assert_eq!(marks, [(9053, '#'), (9054, '.')]);
}

#[test]
fn published_ports_in_every_form_as_text() {
    let (stack, state) = example("port-publishing");
    let survey = surveyed(&stack, &state);
    let table = survey.table(
        &outcomes(&survey, &[]),
        &deliveries(
            &survey,
            &[
                // The host answers 443 on its uplink itself: no rule forwards it there.
                ("host -> web 192.0.2.1:443/tcp allowed", Delivery::Elsewhere),
                // db's port, published on loopback, arrives on the host's other address.
                ("host -> db 10.20.3.4:5432/tcp blocked", Delivery::InContainer),
            ],
        ),
    );
    assert!(!table.correct);
    insta::assert_snapshot!(render_text(&table, false));
}

/// Scenario 4 on a host without 10.20.3.4, which only `db`'s `10.20.3.4:8081:8080` names:
/// that publication cannot arrive there and is wrong; the others are not probed on that
/// address, and not wrong there, those published on all interfaces included.
#[test]
fn an_address_the_host_lacks_fails_only_the_publication_that_names_it() {
    let (stack, state) = example("port-publishing");
    let lacking = Ipv4Addr::new(10, 20, 3, 4);
    let mut host = host(&state);
    host.addresses.retain(|address| address.addr() != lacking);
    let survey = survey(&stack, &state, &host);
    assert!(survey.published.addresses.contains(&lacking), "a column, since a publication names it");
    assert!(survey.published.probes.iter().all(|probe| probe.address != lacking));
    let table = as_declared(&survey);
    let column: Vec<(String, char)> = table
        .published
        .iter()
        .filter(|cell| cell.address == lacking)
        .map(|cell| (format!("{} {}", cell.container, cell.publication()), cell.mark.symbol()))
        .collect();
    let picked = table.published.iter().find(|cell| cell.random).and_then(|cell| cell.host_ports.clone());
    let picked = picked.expect("the random port is picked");
    assert_eq!(
        column,
        [
            ("db 127.0.0.1:5432->5432/tcp".to_owned(), '-'),
            ("db 10.20.3.4:8081->8080/tcp".to_owned(), '#'),
            ("web *:443->443/tcp".to_owned(), '-'),
            ("web *:8080->80/tcp".to_owned(), '-'),
            (format!("web *:{picked}->3000/tcp (random)"), '-'),
            ("web *:5000-5100->2000-2100/tcp".to_owned(), '-'),
            ("web 127.0.0.1:9053->53/udp".to_owned(), '-'),
        ]
    );
    let wrong: Vec<(&str, Ipv4Addr, Option<Missing>)> = table
        .published
        .iter()
        .filter(|cell| !cell.correct)
        .map(|cell| (cell.container.as_str(), cell.address, cell.missing))
        .collect();
    assert_eq!(wrong, [("db", lacking, Some(Missing::HostAddress))]);
    assert_eq!(table.summary.wrong, 1);
    // The publication that names it must still not arrive on the host's other addresses.
    let elsewhere: Vec<String> =
        survey.published.probes.iter().filter(|probe| probe.port == 8081).map(host_line).collect();
    assert_eq!(
        elsewhere,
        [
            "host -> db 127.0.0.1:8081/tcp blocked",
            "host -> db 10.89.0.1:8081/tcp blocked",
            "host -> db 192.0.2.1:8081/tcp blocked",
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&table.to_json()).expect("JSON");
    let web = json["published"]
        .as_array()
        .expect("published cells")
        .iter()
        .find(|cell| cell["container"] == "web" && cell["host_ports"] == "443" && cell["address"] == "10.20.3.4");
    let web = web.expect("web's port 443 on 10.20.3.4");
    assert_eq!(
        (&web["expected"], &web["mark"], &web["correct"]),
        (&"not_applicable".into(), &"-".into(), &true.into())
    );
    assert_eq!((&web["probes"], &web["missing"]), (&serde_json::json!([]), &serde_json::Value::Null));
    insta::assert_snapshot!(render_text(&table, false));
}

#[test]
fn host_network_containers_are_neither_rows_nor_columns() {
    let (stack, state) = example("reverse-proxy");
    let survey = surveyed(&stack, &state);
    assert!(stack.containers.contains_key("node-exporter"));
    assert!(!survey.containers.contains(&"node-exporter".to_owned()));
    assert!(survey.probes.iter().all(|probe| probe.source != "node-exporter" && probe.destination != "node-exporter"));
}

#[test]
fn an_allowed_flow_to_a_missing_address_is_broken() {
    let (stack, mut state) = example("web-app-db");
    state.resources.remove(&Key::Link { container: "flaskapp".to_owned(), network: "web_nw".to_owned() });
    let survey = surveyed(&stack, &state);
    let pair = survey.pairs.iter().find(|pair| pair.source == "nginx" && pair.destination == "flaskapp");
    let pair = pair.expect("a pair");
    assert_eq!(pair.missing, ["web_nw"]);
    let probes: Vec<String> = survey.probes[pair.probes.clone()].iter().map(line).collect();
    assert_eq!(probes, ["nginx -> flaskapp db_nw tcp/5000 blocked"]);
    let table = as_declared(&survey);
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
    let survey = surveyed(&stack, &state);
    let table = survey.table(
        &outcomes(
            &survey,
            &[
                ("nginx -> flaskapp web_nw tcp/5000 allowed", Outcome::TimedOut),
                ("nginx -> flaskapp web_nw tcp/9 blocked", Outcome::Refused),
            ],
        ),
        &deliveries(&survey, &[]),
    );
    let cell = table.cells.iter().find(|cell| cell.source == "nginx" && cell.destination == "flaskapp");
    assert_eq!(cell.expect("a cell").mark, Mark::Leak);
    assert_eq!(table.summary.wrong, 2);
}

/// Scenario one as the live kernel runs it before flows are enforced: undeclared pairs on
/// a network reach each other; and nginx's one flow timed out. nginx's port, published on
/// 127.0.0.1:8080, is answered there by the host itself, and arrives on the uplink's
/// address.
fn scenario_one_gone_wrong() -> TruthTable {
    let (stack, state) = example("web-app-db");
    let survey = surveyed(&stack, &state);
    survey.table(
        &outcomes(
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
        ),
        &deliveries(
            &survey,
            &[
                ("host -> nginx 127.0.0.1:8080/tcp allowed", Delivery::Refused),
                ("host -> nginx 192.0.2.1:8080/tcp blocked", Delivery::Token),
            ],
        ),
    )
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
    let survey = surveyed(&stack, &state);
    let table = as_declared(&survey);
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
    let survey = surveyed(&stack, &applied(&stack));
    let table = as_declared(&survey);
    insta::assert_snapshot!(render_text(&table, false));
}

/// The truth table is between containers: a flow to the host adds no pair, and no probe to
/// a container called `host` (there is none) or to the host.
#[test]
fn flows_to_the_host_are_not_probed() {
    let text = "name: s\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], talks_to: ['host:22', 'b:80'] }\n  \
                b: { networks: [n] }\n";
    let with_host = stack(text);
    let without = stack(&text.replace("'host:22', ", ""));
    let lines = |stack: &Stack| {
        let state = applied(stack);
        let survey = surveyed(stack, &state);
        let pairs: Vec<(String, String)> =
            survey.pairs.iter().map(|pair| (pair.source.clone(), pair.destination.clone())).collect();
        (pairs, survey.probes.iter().map(line).collect::<Vec<_>>())
    };
    let (pairs, probes) = lines(&with_host);
    assert_eq!((&pairs, &probes), (&lines(&without).0, &lines(&without).1));
    assert!(probes.iter().all(|probe| !probe.contains("host")), "{probes:?}");
}
