//! Every kind of bad input, run through the real binary: each must exit 65 and name the
//! mistake at the right line and column, both in the JSON report that editors read and in
//! the text that miette draws for people. The stack files are in `tests/invalid/`, one
//! mistake each, with a comment on their first line saying what is wrong. `suggest` looks
//! past the mistakes that say only that networks are missing and stops on every other.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// One bad stack file and what `stackctl validate` must say about it.
struct Case {
    /// The file's name in `tests/invalid/`.
    fixture: &'static str,
    /// A part of the error's message.
    message: &'static str,
    /// Where the error points, 1-based, columns in characters.
    line: usize,
    column: usize,
    /// A part of the error's help, when it must have one.
    help: Option<&'static str>,
}

const fn case(fixture: &'static str, message: &'static str, line: usize, column: usize) -> Case {
    Case { fixture, message, line, column, help: None }
}

const fn with_help(
    fixture: &'static str,
    message: &'static str,
    line: usize,
    column: usize,
    help: &'static str,
) -> Case {
    Case { fixture, message, line, column, help: Some(help) }
}

const CASES: &[Case] = &[
    // The file is not YAML, or not the YAML of a stack file.
    case("invalid-yaml.yaml", "did not find expected ',' or '}'", 5, 11),
    with_help("unknown-key.yaml", "unknown key `subnt`", 5, 5, "did you mean `subnet`?"),
    with_help("unknown-key-top.yaml", "unknown key `network`", 3, 1, "did you mean `networks`?"),
    with_help("wrong-type.yaml", "invalid boolean `maybe`", 5, 15, "`true` and `false`"),
    case("yaml-1-1-boolean.yaml", "invalid boolean `yes`", 5, 15),
    case("wrong-type-list.yaml", "invalid type: expected a list", 8, 15),
    case("wrong-type-string.yaml", "invalid type: expected a string", 2, 7),
    case("wrong-type-port.yaml", "invalid type: floating point `1.5`, expected a string or a number", 8, 13),
    with_help("unknown-isolation.yaml", "unknown value `opn`", 5, 16, "did you mean `open`?"),
    with_help("duplicate-key.yaml", "duplicate key `web_nw`", 5, 3, "merge the two entries"),
    case("duplicate-nested-key.yaml", "duplicate key `ports`", 9, 5),
    with_help("empty-file.yaml", "the stack file is empty", 1, 1, "starts with `name: STACK`"),
    with_help("missing-name.yaml", "a value is missing", 2, 5, "write the value after the colon"),
    case("network-joined-twice.yaml", "container `web` joins network `web_nw` twice", 7, 24),
    with_help("relative-netns.yaml", "netns `legacy` is not an absolute path", 8, 12, "`/run/netns/legacy`"),
    with_help(
        "static-without-subnet.yaml",
        "static address 10.89.0.5 on network `web_nw`, which has no declared subnet",
        8,
        23,
        "declare `subnet:` on network `web_nw`",
    ),
    with_help(
        "subnet-too-small.yaml",
        "subnet 10.20.0.0/30 of network `db_nw` has room for 1 address besides its gateway, but 2 join it",
        5,
        13,
        "use a prefix of /29 or shorter",
    ),
    with_help(
        "bridge-ports.yaml",
        "network `n` has 1024 members, but a Linux bridge holds at most 1023 ports (the kernel's BR_MAX_PORTS is 1024",
        4,
        3,
        "split the members over networks of at most 1023 each",
    ),
    case(
        "overlapping-subnets-three.yaml",
        "subnet 10.1.0.0/24 of network `b` overlaps subnet 10.1.0.0/24 of network `a`",
        7,
        13,
    ),
    case(
        "overlapping-subnets-three.yaml",
        "subnet 10.1.0.0/16 of network `c` overlaps subnet 10.1.0.0/24 of network `a`",
        9,
        13,
    ),
    case(
        "overlapping-subnets-three.yaml",
        "subnet 10.1.0.0/16 of network `c` overlaps subnet 10.1.0.0/24 of network `b`",
        9,
        13,
    ),
    with_help(
        "alias-not-on-shared-network.yaml",
        "container `web` talks to alias `api`, which is declared only on `back_nw`, which `web` does not join",
        9,
        16,
        "join `web` to `back_nw`",
    ),
    // References that resolve to nothing.
    with_help("unknown-network.yaml", "container `app` joins unknown network `db_nv`", 8, 24, "did you mean `db_nw`?"),
    with_help(
        "unknown-flow-container.yaml",
        "container `nginx` talks to `flaskap`, which is no container or alias",
        8,
        16,
        "did you mean `flaskapp`?",
    ),
    with_help(
        "unknown-flow-alias.yaml",
        "container `nginx` talks to `backnd`, which is no container or alias",
        8,
        16,
        "did you mean `backend`?",
    ),
    with_help("no-network.yaml", "container `worker` joins no network", 8, 3, "`stackctl suggest` derives them"),
    with_help(
        "flow-from-none-mode.yaml",
        "container `sandbox` talks to `db` but shares no network with it",
        8,
        16,
        "`sandbox` has `network_mode: none`, so no network can carry this flow",
    ),
    with_help(
        "no-shared-network.yaml",
        "container `nginx` talks to `db` but shares no network with it",
        9,
        16,
        "join both to one network",
    ),
    // Addresses and subnets.
    case("address-outside-subnet.yaml", "address 10.21.0.5 is outside subnet 10.20.0.0/24", 9, 22),
    case("address-network.yaml", "address 10.20.0.0 is the network address of 10.20.0.0/24", 9, 22),
    case("address-broadcast.yaml", "address 10.20.0.255 is the broadcast address of 10.20.0.0/24", 9, 22),
    case("address-gateway.yaml", "address 10.20.0.1 is the gateway of network `db_nw`", 9, 22),
    case("address-declared-gateway.yaml", "address 10.20.0.254 is the gateway of network `db_nw`", 10, 22),
    // The second address in the file is the one reported; the first is its context.
    case(
        "duplicate-address.yaml",
        "containers `db` and `cache` both have address 10.20.0.5 on network `db_nw`",
        12,
        22,
    ),
    case(
        "overlapping-subnets.yaml",
        "subnet 10.20.5.0/24 of network `narrow` overlaps subnet 10.20.0.0/16 of network `wide`",
        7,
        13,
    ),
    case("flow-to-own-alias.yaml", "container `web` talks to itself", 9, 16),
    case("gateway-outside-subnet.yaml", "gateway address 10.30.0.1 is outside subnet 10.20.0.0/24", 6, 14),
    // Published ports and flows.
    case("malformed-port.yaml", "invalid host port `http`: expected a number from 1 to 65535", 8, 13),
    case("malformed-flow.yaml", "invalid port `postgres`: expected a number from 1 to 65535", 8, 16),
    case("port-zero.yaml", "host port 0 is not a port: use 1 to 65535", 8, 13),
    case("port-too-large.yaml", "container port 70000 is above 65535", 9, 9),
    case(
        "range-length.yaml",
        "host ports 5000-5100 (101 ports) and container ports 2000-2050 (51 ports) differ in length",
        8,
        13,
    ),
    case(
        "duplicate-publication.yaml",
        "container `api` publishes 127.0.0.1:8080->8000/tcp, which container `web` already publishes as \
         127.0.0.1:8080->80/tcp",
        11,
        13,
    ),
    case(
        "duplicate-publication-same-container.yaml",
        "container `web` publishes 127.0.0.1:8080->81/udp, which it already publishes as 127.0.0.1:8080->80/udp",
        8,
        38,
    ),
    case(
        "overlapping-publication.yaml",
        "container `api` publishes 127.0.0.1:5100-5101->7000-7001/udp, which container `web` already publishes",
        11,
        13,
    ),
    case(
        "duplicate-random-publication.yaml",
        "container `web` publishes 127.0.0.1:random->80/tcp, which it already publishes as",
        8,
        30,
    ),
    case(
        "all-interfaces-publication.yaml",
        "container `api` publishes 127.0.0.1:8080->8000/tcp, which container `web` already publishes as \
         *:8080->80/tcp",
        11,
        13,
    ),
    with_help(
        "ports-internal-only.yaml",
        "container `db` publishes ports but joins only internal networks",
        8,
        13,
        "join a network that is not `internal: true`",
    ),
    // Names and network modes.
    case(
        "alias-is-container-name.yaml",
        "alias `nginx` of container `app` on network `web_nw` is the name of container `nginx`",
        10,
        27,
    ),
    with_help(
        "container-named-host.yaml",
        "container name `host` is reserved: a flow to `host` means the host itself",
        8,
        3,
        "rename the container",
    ),
    with_help(
        "alias-named-host.yaml",
        "alias name `host` is reserved: a flow to `host` means the host itself",
        8,
        27,
        "rename the alias",
    ),
    with_help(
        "flow-to-host-from-host-mode.yaml",
        "container `exporter` talks to the host but has `network_mode: host`",
        8,
        16,
        "a host-mode container is on the host already",
    ),
    with_help(
        "host-mode-networks.yaml",
        "container `exporter` has `network_mode: host` and networks",
        8,
        16,
        "remove either `network_mode` or `networks`",
    ),
    with_help(
        "none-mode-ports.yaml",
        "container `sandbox` has `network_mode: none` and published ports",
        6,
        13,
        "remove `ports`",
    ),
    case(
        "invalid-container-name.yaml",
        "invalid container name `-web`: a name must start with a letter or digit",
        6,
        3,
    ),
    case("invalid-network-name.yaml", "invalid network name `web nw`: ` ` is not allowed in a name", 4, 3),
    case("invalid-stack-name.yaml", "invalid stack name `my/shop`: `/` is not allowed in a name", 2, 7),
    case("invalid-alias-name.yaml", "invalid alias name `app:v2`: `:` is not allowed in a name", 8, 27),
];

/// The fixtures that hold more than one finding, or only warnings; tested on their own below.
const OTHER_FIXTURES: &[&str] = &["several-mistakes.yaml", "warning-all-interfaces.yaml", "warning-open-network.yaml"];

/// The fixtures of [`CASES`] whose mistake says only that the file's networks are missing or
/// do not carry what its containers need: `suggest`, which derives networks afresh, reads them.
const GAPS: &[&str] =
    &["no-network.yaml", "no-shared-network.yaml", "alias-not-on-shared-network.yaml", "ports-internal-only.yaml"];

/// Files without networks, which `suggest` looks past, and with one other mistake, which
/// stops it as it stops `validate`.
const SUGGEST_CASES: &[Case] = &[
    with_help(
        "no-network-unknown-flow.yaml",
        "container `nginx` talks to `flaskap`, which is no container or alias",
        5,
        16,
        "did you mean `flaskapp`?",
    ),
    case(
        "no-network-duplicate-publication.yaml",
        "container `api` publishes 127.0.0.1:8080->8000/tcp, which container `web` already publishes as \
         127.0.0.1:8080->80/tcp",
        8,
        13,
    ),
    with_help("no-network-unknown-key.yaml", "unknown key `talk_to`", 5, 5, "did you mean `talks_to`?"),
];

fn stackctl() -> Command {
    let mut command = Command::cargo_bin("stackctl").expect("the binary is built");
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn fixture(name: &str) -> String {
    format!("tests/invalid/{name}")
}

/// What a run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let output = stackctl().args(args).output().expect("stackctl runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 standard output"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 standard error"),
    }
}

/// The JSON report of `validate --format json` on one fixture, with the exit code.
fn json_report(name: &str) -> (Option<i32>, Value) {
    let path = fixture(name);
    let run = run(&["validate", "-f", &path, "--format", "json"]);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("{name}: the report is no JSON ({error}): {}", run.stdout));
    assert_eq!(report["format_version"], 1, "{name}");
    assert_eq!(report["file"], path.as_str(), "{name}");
    (run.code, report)
}

fn diagnostics(report: &Value) -> &[Value] {
    report["diagnostics"].as_array().expect("a list of diagnostics")
}

/// The reports miette drew, one per finding, each on one line: the renderer wraps long
/// messages and helps onto lines that start with `│`, which would break a search for them.
fn text_reports(stderr: &str) -> Vec<String> {
    let mut reports: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('×') || trimmed.starts_with('⚠') {
            reports.push(String::new());
        }
        if let Some(report) = reports.last_mut() {
            report.push(' ');
            report.push_str(trimmed.strip_prefix('│').unwrap_or(trimmed).trim());
        }
    }
    reports
}

#[test]
fn every_bad_input_is_reported_in_json_with_its_position() {
    for case in CASES {
        let (code, report) = json_report(case.fixture);
        assert_eq!(code, Some(65), "{}", case.fixture);
        assert_eq!(report["valid"], false, "{}", case.fixture);
        let diagnostic = diagnostics(&report)
            .iter()
            .find(|diagnostic| diagnostic["message"].as_str().is_some_and(|message| message.contains(case.message)))
            .unwrap_or_else(|| panic!("{}: no diagnostic says `{}`: {report:#}", case.fixture, case.message));
        assert_eq!(diagnostic["severity"], "error", "{}", case.fixture);
        assert_eq!(
            (diagnostic["line"].as_u64(), diagnostic["column"].as_u64()),
            (Some(case.line as u64), Some(case.column as u64)),
            "{}: wrong position",
            case.fixture
        );
        if let Some(help) = case.help {
            let given = diagnostic["help"].as_str().unwrap_or_default();
            assert!(given.contains(help), "{}: help `{given}` does not say `{help}`", case.fixture);
        }
    }
}

/// Asserts that miette drew the case's mistake, at its place and with its help.
fn assert_text_report(case: &Case, stderr: &str) {
    let reports = text_reports(stderr);
    let report = reports
        .iter()
        .find(|report| report.contains(case.message))
        .unwrap_or_else(|| panic!("{}: no report says `{}`: {stderr}", case.fixture, case.message));
    let position = format!("[{}:{}:{}]", fixture(case.fixture), case.line, case.column);
    assert!(report.contains(&position), "{}: the report is not at {position}: {stderr}", case.fixture);
    if let Some(help) = case.help {
        assert!(report.contains("help: "), "{}: no help: {stderr}", case.fixture);
        assert!(report.contains(help), "{}: the help does not say `{help}`: {stderr}", case.fixture);
    }
}

#[test]
fn every_bad_input_is_reported_in_text_with_its_position() {
    for case in CASES {
        let path = fixture(case.fixture);
        let run = run(&["validate", "-f", &path]);
        assert_eq!(run.code, Some(65), "{}: {}", case.fixture, run.stderr);
        assert!(run.stdout.starts_with(&format!("{path} is invalid: ")), "{}: {}", case.fixture, run.stdout);
        assert_text_report(case, &run.stderr);
    }
}

#[test]
fn suggest_looks_past_missing_networks_and_stops_on_every_other_mistake() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for case in CASES {
        let path = fixture(case.fixture);
        let run = run(&["suggest", "-f", &path]);
        if !GAPS.contains(&case.fixture) {
            assert_eq!(run.code, Some(65), "{}: {}", case.fixture, run.stderr);
            assert_eq!(run.stdout, "", "{}", case.fixture);
            assert_text_report(case, &run.stderr);
            continue;
        }
        assert_eq!(run.code, Some(0), "{}: {}", case.fixture, run.stderr);
        // The gaps are no errors here: one line says they were looked past.
        let note =
            format!(" of {path} about missing or insufficient networks: the suggested layout replaces its networks\n");
        assert!(
            run.stderr.starts_with("note: ignored ") && run.stderr.ends_with(&note),
            "{}: {}",
            case.fixture,
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}: {}", case.fixture, run.stderr);
        let layout = dir.path().join(case.fixture);
        std::fs::write(&layout, &run.stdout).expect("write the suggested layout");
        let validated = stackctl().args(["validate", "-f"]).arg(&layout).output().expect("validate runs");
        assert!(
            validated.status.success(),
            "{}: {}\n{}",
            case.fixture,
            String::from_utf8_lossy(&validated.stderr),
            run.stdout
        );
    }
    for case in SUGGEST_CASES {
        let run = run(&["suggest", "-f", &fixture(case.fixture)]);
        assert_eq!(run.code, Some(65), "{}: {}", case.fixture, run.stderr);
        assert_eq!(run.stdout, "", "{}", case.fixture);
        assert_text_report(case, &run.stderr);
        assert_eq!(text_reports(&run.stderr).len(), 1, "{}: the gaps are reported: {}", case.fixture, run.stderr);
        // `validate` tells the same mistake, beside the gaps.
        let (code, report) = json_report(case.fixture);
        assert_eq!(code, Some(65), "{}", case.fixture);
        assert!(
            diagnostics(&report)
                .iter()
                .any(|diagnostic| diagnostic["message"].as_str().is_some_and(|message| message.contains(case.message))),
            "{}: {report:#}",
            case.fixture
        );
    }
}

#[test]
fn every_fixture_is_tested() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    for entry in std::fs::read_dir(directory).expect("fixture directory") {
        let name = entry.expect("directory entry").file_name().to_string_lossy().into_owned();
        let tested = CASES.iter().chain(SUGGEST_CASES).any(|case| case.fixture == name)
            || OTHER_FIXTURES.contains(&name.as_str());
        assert!(tested, "tests/invalid/{name} is in no test");
    }
}

#[test]
fn several_mistakes_are_reported_at_once() {
    let (code, report) = json_report("several-mistakes.yaml");
    assert_eq!(code, Some(65));
    let found: Vec<(&str, u64, u64)> = diagnostics(&report)
        .iter()
        .map(|diagnostic| {
            (
                diagnostic["severity"].as_str().expect("severity"),
                diagnostic["line"].as_u64().expect("line"),
                diagnostic["column"].as_u64().expect("column"),
            )
        })
        .collect();
    // In file order: the overlapping subnet, the unknown flow target, the port 0, the
    // broadcast address and the unknown network.
    assert_eq!(found, [("error", 7, 13), ("error", 11, 16), ("error", 12, 13), ("error", 15, 23), ("error", 16, 7)]);

    let run = run(&["validate", "-f", &fixture("several-mistakes.yaml")]);
    assert_eq!(run.code, Some(65));
    assert_eq!(text_reports(&run.stderr).len(), 5, "{}", run.stderr);
    assert_eq!(run.stdout, "tests/invalid/several-mistakes.yaml is invalid: 5 errors, 0 warnings\n");
}

#[test]
fn warnings_do_not_fail_validation() {
    let warnings = [
        (
            "warning-all-interfaces.yaml",
            "container `web` publishes *:8080->80/tcp on all interfaces",
            8,
            13,
            "bind it to one address, such as `127.0.0.1:8080:80`",
        ),
        (
            "warning-open-network.yaml",
            "open network `flat` lets 2 pairs reach each other with no declared flow: `app` and `db`, `db` and `web`",
            4,
            3,
            "set `isolation: flows`",
        ),
    ];
    for (name, message, line, column, help) in warnings {
        let (code, report) = json_report(name);
        assert_eq!(code, Some(0), "{name}");
        assert_eq!(report["valid"], true, "{name}");
        let [diagnostic] = diagnostics(&report) else { panic!("{name}: not exactly one finding: {report:#}") };
        assert_eq!(diagnostic["severity"], "warning", "{name}");
        assert_eq!(diagnostic["message"], message, "{name}");
        assert_eq!((diagnostic["line"].as_u64(), diagnostic["column"].as_u64()), (Some(line), Some(column)), "{name}");
        assert!(diagnostic["help"].as_str().is_some_and(|given| given.contains(help)), "{name}: {diagnostic}");

        let path = fixture(name);
        let run = run(&["validate", "-f", &path]);
        assert_eq!(run.code, Some(0), "{name}");
        assert_eq!(run.stdout, format!("{path} is valid (1 warning)\n"));
        let reports = text_reports(&run.stderr);
        let [report] = reports.as_slice() else { panic!("{name}: not exactly one report: {}", run.stderr) };
        assert!(report.starts_with(&format!(" ⚠ {message}")), "{name}: {report}");
        assert!(report.contains(&format!("[{path}:{line}:{column}]")), "{name}: {report}");
    }
}

#[test]
fn a_missing_file_exits_1_and_names_it() {
    for format in ["text", "json"] {
        let run = run(&["validate", "-f", "tests/invalid/no-such-file.yaml", "--format", format]);
        assert_eq!(run.code, Some(1), "{format}");
        assert!(
            run.stderr.starts_with("error: cannot read stack file `tests/invalid/no-such-file.yaml`: "),
            "{format}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{format}");
    }
}

#[test]
fn usage_errors_exit_64() {
    let cases: [(&[&str], &str); 4] = [
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["validate", "--no-such-flag"], "unexpected argument '--no-such-flag'"),
        (&["validate", "--format", "yaml"], "invalid value 'yaml' for '--format <FORMAT>'"),
        (&["validate", "-f"], "a value is required for '--file <FILE>'"),
    ];
    for (args, message) in cases {
        let run = run(args);
        assert_eq!(run.code, Some(64), "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn the_file_flag_works_before_and_after_the_subcommand() {
    let path = fixture("unknown-network.yaml");
    let reports: Vec<Run> = [
        ["-f", &path, "validate", "--format", "json"],
        ["validate", "-f", &path, "--format", "json"],
        ["--file", &path, "validate", "--format", "json"],
        ["validate", "--format", "json", "--file", &path],
    ]
    .iter()
    .map(|args| run(args))
    .collect();
    for report in &reports {
        assert_eq!(report.code, Some(65));
        assert_eq!(report.stdout, reports[0].stdout);
    }
    assert!(reports[0].stdout.contains("unknown network `db_nv`"), "{}", reports[0].stdout);
}
