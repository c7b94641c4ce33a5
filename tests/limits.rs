//! The limits a large stack meets, on the live kernel in sandboxes (`support::sandbox`): a
//! bridge's ports, which validation knows (the 1024th member failed apply part way, with
//! "Exchange full"), and the process's limit on open files, which plan and apply raise as
//! `check` does (600 containers failed at about the 510th under a soft limit of 1024, and
//! 10,000 at the 9,982nd under a limit of 20,000), or, when they may not raise it enough,
//! refuse before any change, naming it.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::process::{Output, Stdio};

use sandbox::{Sandbox, assert_success};
use stacks::{run, stdout, write_stack};

/// A stack of `count` containers on one network.
fn many(count: usize) -> String {
    let mut text = "name: many\nnetworks:\n  n: { subnet: 10.90.0.0/20 }\ncontainers:\n".to_owned();
    for index in 0..count {
        text.push_str(&format!("  c{index:04}: {{ networks: [n] }}\n"));
    }
    text
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stackctl in the sandbox under a limit on open files (`soft:hard`), with or without
/// `CAP_SYS_RESOURCE`, which raising the hard limit takes.
fn run_limited(sandbox: &Sandbox, limit: &str, resource: Resource, args: &[&str]) -> Output {
    let mut command = sandbox.command("prlimit");
    command.arg(format!("--nofile={limit}"));
    if resource == Resource::Dropped {
        command.args(["setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource"]);
    }
    command
        .arg(env!("CARGO_BIN_EXE_stackctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run stackctl")
}

/// Whether stackctl keeps `CAP_SYS_RESOURCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Kept,
    Dropped,
}

/// Whether this process may raise a hard limit (`CAP_SYS_RESOURCE`, bit 24), as stackctl
/// run from it may.
fn may_raise_hard_limits() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read own status");
    let effective = status.lines().find_map(|line| line.strip_prefix("CapEff:")).expect("CapEff");
    u64::from_str_radix(effective.trim(), 16).expect("hex capabilities") & (1 << 24) != 0
}

/// The namespaces and interfaces in the sandbox.
fn made(sandbox: &Sandbox) -> (usize, usize) {
    let count = |script: &str| sandbox.sh(script).trim().parse().expect("a count");
    (count("ls /run/netns | wc -l"), count("ip -o link show | wc -l"))
}

fn a_bridge_holds_the_members_validation_allows_and_no_more() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let batch: String = (1..=1024)
        .map(|port| format!("link add p{port} type veth peer name q{port}\nlink set p{port} master br0\n"))
        .collect();
    let batch_file = write_stack(dir.path(), "ports.batch", &batch);
    let output = sandbox
        .command("sh")
        .args(["-c", &format!("ip link add br0 type bridge && ip -batch {batch_file}")])
        .output()
        .expect("run ip");
    assert!(stderr(&output).contains("Exchange full"), "{}", stderr(&output));
    assert_eq!(sandbox.sh("ip -o link show master br0 | wc -l").trim(), "1023", "the kernel's ports per bridge");

    let full = write_stack(dir.path(), "full.yaml", &many(1023));
    assert_success(&run(&sandbox, &["-f", &full, "validate"]), "1023 members fit one bridge");
    let over = write_stack(dir.path(), "over.yaml", &many(1024));
    let output = run(&sandbox, &["-f", &over, "validate"]);
    assert_eq!(output.status.code(), Some(65), "{}", stderr(&output));
    assert!(stderr(&output).contains("network `n` has 1024 members, but a Linux bridge holds at most 1023 ports"));
}

fn apply_raises_its_soft_limit_on_open_files_as_check_does() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "many.yaml", &many(200));
    // Under the soft limit alone, the 200 namespaces, each with a connection, do not fit.
    let output = run_limited(&sandbox, "128:4096", Resource::Dropped, &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply under a soft limit of 128");
    let output = run_limited(&sandbox, "128:4096", Resource::Dropped, &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "converged: {}{}", stdout(&output), stderr(&output));
    let output = run_limited(&sandbox, "128:4096", Resource::Dropped, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
}

fn a_hard_limit_too_small_is_raised_or_stops_apply_before_any_change() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "many.yaml", &many(200));
    let untouched = made(&sandbox);
    // 200 namespaces need 456 files; an apply that held two per namespace failed part way
    // under 300, at about the 130th.
    let refused = |resource: Resource| {
        for command in [&["plan"][..], &["apply", "--yes"]] {
            let output = run_limited(&sandbox, "300:300", resource, &[&["-f", &file][..], command].concat());
            assert_eq!(output.status.code(), Some(1), "{command:?}: {}{}", stdout(&output), stderr(&output));
            let expected = "applying the stack's 200 namespaces holds up to 456 open files at once, but the limit on \
                            open files (RLIMIT_NOFILE) is 300, hard limit 300";
            assert!(stderr(&output).contains(expected), "{command:?}: {}", stderr(&output));
            assert_eq!(made(&sandbox), untouched, "{command:?} made nothing");
        }
    };
    refused(Resource::Dropped);
    if may_raise_hard_limits() {
        let output = run_limited(&sandbox, "300:300", Resource::Kept, &["-f", &file, "apply", "--yes"]);
        assert_success(&output, "apply raises its hard limit");
        assert_eq!(made(&sandbox).0, 200);
    } else {
        // Root without CAP_SYS_RESOURCE (a container's root, as where this was written).
        refused(Resource::Kept);
    }
    // Destroy holds no connection per namespace, and is never refused for the limit.
    let output = run_limited(&sandbox, "300:300", Resource::Dropped, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy under the small limit");
    assert_eq!(made(&sandbox), untouched);
}

harness::main! {
    Shared: [
        a_bridge_holds_the_members_validation_allows_and_no_more,
        apply_raises_its_soft_limit_on_open_files_as_check_does,
        a_hard_limit_too_small_is_raised_or_stops_apply_before_any_change,
    ],
}
