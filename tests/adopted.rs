//! Namespaces adopted through `netns:`, on the live kernel, always in a sandbox with a pid
//! namespace of its own (`support::sandbox`), where `/proc/1/ns/net` is the sandbox's own
//! namespace, which plays the machine's: a path that does not exist, or that is no
//! longer a network namespace (the empty file a runtime leaves when the container
//! restarts, or a namespace deleted after apply), stops `plan`, `apply`, `check` and
//! `show` with an error naming the container and the path, before anything changes (also a
//! namespace of another type); once `netns:` names a namespace again, the plan wires it
//! anew, naming every device. A first apply on a new scratch host adopts it as planned.
//! A path that leads to what is not the container's (the host's own namespace, the
//! scratch host's, another stack's container's, a FIFO, a file, a directory) stops `plan`
//! and `apply` at once, before any table, bridge, namespace or lock is made, and `destroy`
//! returns without touching it.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, assert_success};
use stacks::{apply, assert_converged, run, stdout, write_stack};

const STACK: &str = "name: adopt\nnetworks: { n: {} }\ncontainers:\n  web: { networks: [n], netns: /run/netns/legacy }\n  \
                     b: { networks: [n] }\n";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `command` fails, exit 1, naming the container and the path and what is
/// there.
fn assert_refused(sandbox: &Sandbox, file: &str, command: &[&str], what: &str) {
    let output = run(sandbox, &[&["-f", file][..], command].concat());
    assert_eq!(output.status.code(), Some(1), "{command:?}: {}{}", stdout(&output), stderr(&output));
    let expected = format!("error: container `web` adopts /run/netns/legacy (`netns:`), {what}: if the container");
    assert!(stderr(&output).contains(&expected), "{command:?}: {}", stderr(&output));
    assert!(stderr(&output).contains("set `netns:` to the path of its namespace now"), "{}", stderr(&output));
}

/// What the sandbox holds that stackctl might have made: interfaces, named namespaces,
/// tables, and stackctl's files.
fn made(sandbox: &Sandbox) -> String {
    sandbox.sh("ip -o link show | awk -F': ' '{print $2}'; ls /run/netns /etc/netns; nft list tables; \
         find /run/stackctl 2>/dev/null || true")
}

fn a_missing_path_or_an_empty_file_stops_every_command_before_any_change() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "adopt.yaml", STACK);
    let validated = run(&sandbox, &["-f", &file, "validate"]);
    assert_success(&validated, "validate: a path is a fact of the host, not of the file");
    let untouched = made(&sandbox);
    for (what, setup) in
        [("which does not exist", ""), ("which is not a network namespace (any more)", "touch /run/netns/legacy")]
    {
        if !setup.is_empty() {
            sandbox.sh(setup);
        }
        let untouched = made(&sandbox);
        for command in [&["plan"][..], &["apply", "--yes"], &["plan", "--host-netns", "scratch"]] {
            assert_refused(&sandbox, &file, command, what);
        }
        assert_eq!(made(&sandbox), untouched, "a refused apply changes nothing");
    }
    sandbox.sh("rm /run/netns/legacy");
    assert_eq!(made(&sandbox), untouched);
}

fn a_namespace_of_another_type_stops_every_command_before_any_change() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "adopt.yaml", STACK);
    // A namespace, but not a network namespace: joining it as one fails with nothing but
    // "Invalid argument".
    sandbox.sh("touch /run/netns/legacy && mount --bind /proc/1/ns/uts /run/netns/legacy");
    let untouched = made(&sandbox);
    for command in [&["plan"][..], &["apply", "--yes"], &["plan", "--host-netns", "scratch"]] {
        assert_refused(&sandbox, &file, command, "which is not a network namespace but one of another type");
    }
    assert_eq!(made(&sandbox), untouched, "a refused apply changes nothing");
}

fn the_first_apply_on_a_new_scratch_host_adopts_what_its_plan_showed() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "adopt.yaml", STACK);
    sandbox.sh("ip netns add legacy");
    // The plan, made before the scratch host exists, is the one apply finds once it has
    // created the host: the adopted namespace is there in both.
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "apply", "--yes"]);
    assert_success(&output, "the first apply on a new scratch host");
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// A process that keeps a namespace alive after its path is gone, as a container's own
/// processes keep its namespace while the runtime restarts it.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn a_namespace_deleted_after_apply_is_named_and_a_new_one_is_wired_with_every_device_named() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "adopt.yaml", STACK);
    sandbox.sh("ip netns add legacy");
    apply(&sandbox, &file);
    // The old namespace lives on, and with it the container end of its link, which no
    // path leads to any more.
    let _holder =
        Holder(sandbox.command("ip").args(["netns", "exec", "legacy", "sleep", "1000"]).spawn().expect("sleep"));
    sandbox.sh("for i in $(seq 100); do pgrep -x -f 'sleep 1000' && break; sleep 0.05; done");
    sandbox.sh("ip netns delete legacy");
    for command in [&["plan"][..], &["apply", "--yes"], &["check"], &["show"]] {
        assert_refused(&sandbox, &file, command, "which does not exist");
    }

    // The container restarted in a new namespace, and `netns:` names it.
    sandbox.sh("ip netns add legacy");
    let output = run(&sandbox, &["-f", &file, "plan"]);
    assert_success(&output, "plan");
    let plan = stdout(&output);
    assert!(plan.contains("dev eth0") && !plan.contains("dev \n") && !plan.contains("ifname= "), "{plan}");
    assert!(plan.contains("-/+ link    web@n ifname: unknown -> eth0"), "{plan}");
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);

    // Destroy releases the adopted namespace, and removes the name files of a container
    // whose namespace is gone.
    sandbox.sh("ip netns delete legacy");
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(sandbox.sh("ls /etc/netns; ls /run/netns"), "");
}

/// What the sandbox holds that stackctl might have made or changed: [`made`], and the
/// routes of the sandbox's own namespace, which plays the host.
fn made_or_routed(sandbox: &Sandbox) -> String {
    format!("{}{}", made(sandbox), sandbox.sh("ip -4 route show table all"))
}

/// A host with a default route of its own, which a container's wiring would replace.
fn with_a_default_route(sandbox: &Sandbox) {
    sandbox.sh("ip link add uplink type veth peer name uplink-peer && ip link set uplink up && ip link set uplink-peer up && ip addr add 192.0.2.2/24 dev uplink && \
                ip route add default via 192.0.2.1");
}

/// Runs stackctl in the sandbox, killed after 30 s, and how long it took.
fn run_timed(sandbox: &Sandbox, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = sandbox
        .command("timeout")
        .args(["-s", "KILL", "30", env!("CARGO_BIN_EXE_stackctl")])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run stackctl");
    (output, started.elapsed())
}

/// Asserts that plan and apply (also on a scratch host that does not exist yet, when
/// `scratch` says so) refuse `web`'s path at once, saying `why`, and that they and
/// destroy leave everything as it was.
fn assert_refused_at_once(sandbox: &Sandbox, file: &str, path: &str, why: &str, host: &[&str]) {
    let untouched = made_or_routed(sandbox);
    for command in [&["plan"][..], &["apply", "--yes"]] {
        let args = [host, &["-f", file], command].concat();
        let (output, took) = run_timed(sandbox, &args);
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}: {}", stderr(&output));
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}{}", stdout(&output), stderr(&output));
        let expected = format!("error: container `web` adopts {path} (`netns:`), which is {why}");
        assert!(stderr(&output).contains(&expected), "{args:?}: {}", stderr(&output));
        assert_eq!(made_or_routed(sandbox), untouched, "{args:?} changed nothing");
    }
    let args = [host, &["-f", file, "destroy", "--yes"]].concat();
    let (output, took) = run_timed(sandbox, &args);
    assert!(took < Duration::from_secs(10), "{args:?} took {took:?}: {}", stderr(&output));
    assert_success(&output, "destroy");
    assert_eq!(made_or_routed(sandbox), untouched, "{args:?} changed nothing");
}

fn adopting(path: &str) -> String {
    format!("name: adopt\nnetworks: {{ n: {{}} }}\ncontainers:\n  web: {{ networks: [n], netns: {path} }}\n")
}

fn the_hosts_own_namespace_is_refused_before_any_change() {
    let sandbox = Sandbox::with_own_pids();
    with_a_default_route(&sandbox);
    let dir = tempfile::tempdir().expect("temporary directory");
    let own = "the network namespace stackctl runs in, the machine's own network";
    let file = write_stack(dir.path(), "host.yaml", &adopting("/proc/1/ns/net"));
    assert_refused_at_once(&sandbox, &file, "/proc/1/ns/net", own, &[]);
    // On a scratch host, the machine's namespace is no container's either.
    assert_refused_at_once(&sandbox, &file, "/proc/1/ns/net", own, &["--host-netns", "scratch"]);
    // Nor is the scratch host's: here it exists, and plays the host.
    sandbox.sh("ip netns add scratch");
    let file = write_stack(dir.path(), "scratch.yaml", &adopting("/run/netns/scratch"));
    let scratch = "the scratch host `scratch` (`--host-netns scratch`)";
    assert_refused_at_once(&sandbox, &file, "/run/netns/scratch", scratch, &["--host-netns", "scratch"]);
}

fn a_fifo_a_file_or_a_directory_is_refused_at_once_before_any_change() {
    let sandbox = Sandbox::with_own_pids();
    with_a_default_route(&sandbox);
    let dir = tempfile::tempdir().expect("temporary directory");
    sandbox.sh("mkfifo /run/netns/fifo");
    for (path, why) in [
        ("/run/netns/fifo", "a FIFO (named pipe), not a network namespace"),
        ("/etc/passwd", "a regular file, not a network namespace"),
        ("/run/netns", "a directory, not a network namespace"),
    ] {
        let file = write_stack(dir.path(), "adopt.yaml", &adopting(path));
        assert_refused_at_once(&sandbox, &file, path, why, &[]);
    }
}

fn another_stacks_namespace_is_refused_before_any_change() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    sandbox.sh("ip netns add legacy");
    let other = "name: other\nnetworks: { m: {} }\ncontainers:\n  db: { networks: [m] }\n  \
                 ext: { networks: [m], netns: /run/netns/legacy }\n";
    let other = write_stack(dir.path(), "other.yaml", other);
    apply(&sandbox, &other);
    // A process of `db`, so that its namespace has a path under /proc too.
    let _holder =
        Holder(sandbox.command("ip").args(["netns", "exec", "other:db", "sleep", "1000"]).spawn().expect("sleep"));
    let pid = sandbox.sh("for i in $(seq 100); do pgrep -x -f 'sleep 1000' && break; sleep 0.05; done");
    let by_pid = format!("/proc/{}/ns/net", pid.trim());
    let made_for_db = "the namespace stackctl made for container `db` of stack `other`";
    let adopted_for_ext = "the namespace that stack `other` adopts for its container `ext` (as /run/netns/legacy)";
    for (path, why) in
        [("/run/netns/other:db", made_for_db), (by_pid.as_str(), made_for_db), ("/run/netns/legacy", adopted_for_ext)]
    {
        let file = write_stack(dir.path(), "adopt.yaml", &adopting(path));
        assert_refused_at_once(&sandbox, &file, path, why, &[]);
    }
    assert_converged(&sandbox, &other);
}

harness::main! {
    Shared: [
        a_missing_path_or_an_empty_file_stops_every_command_before_any_change,
        a_namespace_of_another_type_stops_every_command_before_any_change,
        the_first_apply_on_a_new_scratch_host_adopts_what_its_plan_showed,
        a_namespace_deleted_after_apply_is_named_and_a_new_one_is_wired_with_every_device_named,
        the_hosts_own_namespace_is_refused_before_any_change,
        a_fifo_a_file_or_a_directory_is_refused_at_once_before_any_change,
        another_stacks_namespace_is_refused_before_any_change,
    ],
}
