//! Namespaces adopted through `netns:`, on the live kernel, always in a sandbox with a pid
//! namespace of its own (`support::sandbox`): a path that does not exist, or that is no
//! longer a network namespace (the empty file a runtime leaves when the container
//! restarts, or a namespace deleted after apply), stops `plan`, `apply`, `check` and
//! `show` with an error naming the container and the path, before anything changes (also a
//! namespace of another type); once `netns:` names a namespace again, the plan wires it
//! anew, naming every device. A first apply on a new scratch host adopts it as planned.

#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::process::{Child, Output};

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

#[test]
fn a_missing_path_or_an_empty_file_stops_every_command_before_any_change() {
    let Some(sandbox) = Sandbox::with_own_pids() else { return };
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

#[test]
fn a_namespace_of_another_type_stops_every_command_before_any_change() {
    let Some(sandbox) = Sandbox::with_own_pids() else { return };
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

#[test]
fn the_first_apply_on_a_new_scratch_host_adopts_what_its_plan_showed() {
    let Some(sandbox) = Sandbox::with_own_pids() else { return };
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

#[test]
fn a_namespace_deleted_after_apply_is_named_and_a_new_one_is_wired_with_every_device_named() {
    let Some(sandbox) = Sandbox::with_own_pids() else { return };
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
