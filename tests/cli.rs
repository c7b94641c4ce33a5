//! The command line as users and pipelines see it: plans of every example, exit codes,
//! colour and completions.

use assert_cmd::Command;

fn stackctl() -> Command {
    let mut command = Command::cargo_bin("stackctl").expect("the binary is built");
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .expect("examples directory")
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_example_validates_and_plans() {
    for name in examples() {
        let path = format!("examples/{name}");
        stackctl().args(["validate", "-f", &path]).assert().success();
        let output = stackctl().args(["plan", "--offline", "-f", &path]).output().expect("plan runs");
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let plan = String::from_utf8(output.stdout).expect("utf-8 plan");
        assert!(plan.contains("Plan: "), "{name}: {plan}");
        insta::assert_snapshot!(format!("plan_{}", name.trim_end_matches(".yaml")), plan);
    }
}

#[test]
fn plans_are_byte_identical_across_runs() {
    let run = || {
        stackctl().args(["plan", "--offline", "-f", "examples/hot-connect.yaml"]).output().expect("plan runs").stdout
    };
    assert_eq!(run(), run());
}

#[test]
fn detailed_exitcode_tells_changes_from_none() {
    stackctl().args(["plan", "--offline", "--detailed-exitcode", "-f", "examples/web-app-db.yaml"]).assert().code(2);
    let empty = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(empty.path(), "name: empty\n").expect("write stack file");
    let output = stackctl()
        .args(["plan", "--offline", "--detailed-exitcode", "-f"])
        .arg(empty.path())
        .output()
        .expect("plan runs");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "No changes. The kernel matches the stack.\n");
    // Without the flag, changes are no failure.
    stackctl().args(["plan", "--offline", "-f", "examples/web-app-db.yaml"]).assert().code(0);
}

#[test]
fn file_flag_is_global() {
    stackctl().args(["-f", "examples/web-app-db.yaml", "validate"]).assert().success();
    stackctl().args(["validate", "--file", "examples/web-app-db.yaml"]).assert().success();
}

#[test]
fn default_file_is_stack_yaml_in_the_working_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web-app-db.yaml"), dir.path().join("stack.yaml"))
        .expect("copy example");
    Command::cargo_bin("stackctl").expect("binary").current_dir(dir.path()).arg("validate").assert().success();
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    stackctl().arg("frobnicate").assert().code(64);
    stackctl().args(["plan", "--no-such-flag"]).assert().code(64);
    stackctl().args(["graph", "--format", "png"]).assert().code(64);
    stackctl().arg("--help").assert().code(0);
    stackctl().arg("--version").assert().code(0).stdout(predicates::str::starts_with("stackctl "));
}

#[test]
fn output_has_no_colour_off_a_terminal() {
    for no_color in [None, Some("1")] {
        let mut command = stackctl();
        command.args(["plan", "--offline", "-f", "examples/port-publishing.yaml"]);
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().expect("plan runs");
        assert!(!output.stdout.contains(&0x1b), "escape codes in the plan");
        assert!(!output.stderr.contains(&0x1b), "escape codes in the warnings");
        assert!(String::from_utf8_lossy(&output.stderr).contains("on all interfaces"));
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = stackctl().args(["completions", shell]).output().expect("completions run");
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).expect("utf-8 script");
        assert!(script.contains("stackctl") && script.contains("validate"), "{shell}");
    }
}

#[test]
fn empty_sections_and_lists_mean_none() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("stack.yaml");
    let text = "name: s\nnetworks:\n  n:\ncontainers:\n  a:\n    networks:\n      n:\n    talks_to:\n    ports:\n";
    std::fs::write(&path, text).expect("write stack file");
    stackctl().args(["validate", "-f"]).arg(&path).assert().success();
    std::fs::write(&path, "name: s\nnetworks:\ncontainers:\n").expect("write stack file");
    let output = stackctl().args(["plan", "--offline", "-f"]).arg(&path).output().expect("plan runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "No changes. The kernel matches the stack.\n");
}

/// How many times the warning of a port published on all interfaces is printed.
fn exposure_warnings(args: &[&str]) -> usize {
    let output = stackctl().args(args).output().expect("stackctl runs");
    String::from_utf8_lossy(&output.stderr).matches("on all interfaces").count()
        + String::from_utf8_lossy(&output.stdout).matches("on all interfaces").count()
}

#[test]
fn warnings_come_once_from_the_commands_that_review_a_file_and_never_from_others() {
    let file = "examples/port-publishing.yaml";
    let once = exposure_warnings(&["validate", "-f", file]);
    assert!(once > 0, "validate shows the warnings");
    assert_eq!(exposure_warnings(&["plan", "--offline", "-f", file]), once);
    assert_eq!(exposure_warnings(&["diff", file, "examples/web-app-db.yaml"]), once);
    // (Without touching the machine's kernel: exec names no container of the file, and
    // destroy has neither a terminal nor --yes.)
    for quiet in [
        &["exec", "-f", file, "no-such-container", "--", "true"][..],
        &["graph", "-f", file],
        &["suggest", "-f", file],
        &["destroy", "-f", file],
    ] {
        assert_eq!(exposure_warnings(quiet), 0, "{quiet:?} prints the warnings");
    }
}

#[test]
fn apply_without_a_terminal_or_yes_is_refused_before_anything_is_printed() {
    for args in [&["apply", "-f", "examples/web-app-db.yaml"][..], &["destroy", "-f", "examples/web-app-db.yaml"]] {
        let output = stackctl().args(args).output().expect("stackctl runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "", "{args:?} printed before its usage error");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.starts_with("error: standard input is not a terminal") && said.contains("pass --yes"), "{said}");
    }
}

#[test]
fn help_lists_only_the_options_each_command_takes() {
    let help = |args: &[&str]| {
        String::from_utf8(stackctl().args(args).arg("--help").output().expect("help").stdout).expect("utf-8")
    };
    for command in ["diff", "completions"] {
        let text = help(&[command]);
        assert!(!text.contains("--file") && !text.contains("--host-netns"), "{command} --help:\n{text}");
    }
    for command in ["validate", "graph", "suggest"] {
        let text = help(&[command]);
        assert!(text.contains("--file") && !text.contains("--host-netns"), "{command} --help:\n{text}");
    }
    for command in ["plan", "apply", "destroy", "show", "exec", "check"] {
        let text = help(&[command]);
        assert!(text.contains("--file") && text.contains("--host-netns"), "{command} --help:\n{text}");
    }
    assert!(help(&["exec"]).contains("The container, by its name in the stack file"));
    assert!(help(&["apply"]).contains("--wait <DURATION>"));
    // Given before a command that does not take them, they are an error, not ignored.
    let output = stackctl().args(["-f", "x.yaml", "diff", "a.yaml", "b.yaml"]).output().expect("diff runs");
    assert_eq!(output.status.code(), Some(64));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "error: `-f/--file` does not apply to `stackctl diff`\n");
    // Before or after the command, for those that take them.
    for args in [&["-f", "examples/web-app-db.yaml", "validate"][..], &["validate", "-f", "examples/web-app-db.yaml"]] {
        stackctl().args(args).assert().success();
    }
    // A host name is a name: not a path.
    let output = stackctl().args(["plan", "--host-netns", "../etc", "-f", "examples/web-app-db.yaml"]).output();
    assert_eq!(output.expect("plan runs").status.code(), Some(64));
}

/// The offline plan of scenario 1 with `args` around the command, and
/// `STACKCTL_HOST_NETNS` set to `environment` (`None`: unset): its exit code and output.
fn offline_plan(environment: Option<&str>, before: &[&str], after: &[&str]) -> std::process::Output {
    let mut command = stackctl();
    command.env_remove("STACKCTL_HOST_NETNS");
    if let Some(value) = environment {
        command.env("STACKCTL_HOST_NETNS", value);
    }
    command.args(before).args(["plan", "--offline", "-f", "examples/web-app-db.yaml"]).args(after);
    command.output().expect("plan runs")
}

#[test]
fn an_offline_plan_names_namespaces_after_the_host() {
    let output = offline_plan(None, &[], &["--host-netns", "demo"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("name=shop@demo:db") && !plan.contains("name=shop:"), "{plan}");
}

/// Where a host is named: `STACKCTL_HOST_NETNS` (`None`: unset), `--host-netns` before and
/// after the command; and the prefix of the namespaces the plan names.
struct Naming {
    environment: Option<&'static str>,
    before: &'static [&'static str],
    after: &'static [&'static str],
    host: &'static str,
}

#[test]
fn an_explicit_host_netns_beats_the_environment_and_an_empty_variable_is_unset() {
    let case = |environment, before, after, host| Naming { environment, before, after, host };
    let cases = [
        case(None, &[], &[], "shop:"),
        case(Some(""), &[], &[], "shop:"),
        case(Some("a"), &[], &[], "shop@a:"),
        case(Some("a"), &["--host-netns", "b"], &[], "shop@b:"),
        case(Some("a"), &[], &["--host-netns", "c"], "shop@c:"),
        case(Some("a"), &["--host-netns", "b"], &["--host-netns", "c"], "shop@c:"),
        case(Some(""), &["--host-netns", "b"], &[], "shop@b:"),
        case(None, &["--host-netns", "b"], &["--host-netns", "c"], "shop@c:"),
    ];
    for Naming { environment, before, after, host } in cases {
        let output = offline_plan(environment, before, after);
        let plan = String::from_utf8_lossy(&output.stdout);
        let case = format!("STACKCTL_HOST_NETNS={environment:?} {before:?} plan {after:?}");
        assert!(output.status.success(), "{case}: {}", String::from_utf8_lossy(&output.stderr));
        let named: std::collections::BTreeSet<&str> = plan
            .split_whitespace()
            .filter_map(|word| word.strip_prefix("name=")?.split_inclusive(':').next())
            .collect();
        assert_eq!(named, std::collections::BTreeSet::from([host]), "{case}: {plan}");
    }
    // A variable that names no namespace is a usage error, said as such.
    let output = offline_plan(Some("../etc"), &[], &[]);
    assert_eq!(output.status.code(), Some(64));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.starts_with("error: invalid value '../etc' in STACKCTL_HOST_NETNS"), "{said}");
}

#[test]
fn commands_that_take_no_host_refuse_a_host_netns_before_them_but_not_the_environment() {
    let file = "examples/web-app-db.yaml";
    let commands: [&[&str]; 5] = [
        &["validate", "-f", file],
        &["graph", "-f", file],
        &["suggest", "-f", file],
        &["diff", file, file],
        &["completions", "bash"],
    ];
    for command in commands {
        let output = stackctl().args(["--host-netns", "demo"]).args(command).output().expect("stackctl runs");
        assert_eq!(output.status.code(), Some(64), "{command:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("error: `--host-netns` does not apply to `stackctl {}`\n", command[0])
        );
        stackctl().env("STACKCTL_HOST_NETNS", "demo").args(command).assert().success();
    }
}

#[test]
fn a_diagnostic_far_along_a_long_line_is_told_by_line_and_column() {
    // Past column 65535, drawing the underline panicked (exit 101).
    let dir = tempfile::tempdir().expect("temporary directory");
    let padding = " ".repeat(70_000);
    for (name, text, column) in [
        (
            "unknown.yaml",
            format!("name: s\nnetworks: {{ n: {{}} }}\ncontainers:\n  a: {{{padding}networks: [nope] }}\n"),
            70_018,
        ),
        ("bracket.yaml", format!("name: s\ncontainers:\n  a: {{{padding}]\n"), 6),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write stack file");
        for format in ["text", "json"] {
            let output =
                stackctl().args(["validate", "--format", format, "-f"]).arg(&path).output().expect("validate runs");
            assert_eq!(
                output.status.code(),
                Some(65),
                "{name} as {format}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let output = stackctl().args(["plan", "--offline", "-f"]).arg(&path).output().expect("plan runs");
        assert_eq!(output.status.code(), Some(65), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let place = format!("at {}:{}:{column}: ", path.display(), if name == "unknown.yaml" { 4 } else { 3 });
        assert!(stderr.contains(&place) && stderr.contains("the line is longer than 1000 characters"), "{stderr}");
        assert!(stderr.len() < 1_000, "the long line is not printed: {} bytes", stderr.len());
    }
}
