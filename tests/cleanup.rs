//! What removal leaves behind, on the live kernel, always in a sandbox with a pid namespace
//! of its own (`support::sandbox`): the processes still running in a namespace that
//! destroy or a swap removes are listed (pid and command) and left running, and ended only
//! with `--kill-processes`; processes in adopted namespaces are never touched; and once
//! every stack of a host is destroyed, nothing of stackctl's is left under `/run/stackctl`
//! and `/etc/netns`, while until then every neighbour (another stack on the host, the same
//! stack on a scratch host) keeps all of its files and namespaces.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::collections::BTreeSet;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use sandbox::{Listener, Sandbox, Watched, assert_success};
use stacks::{apply, example, run, stdout, write_stack};

/// A program started in a container with `stackctl exec`, as a user starts one; killed
/// (its `nsenter`, at least: the sandbox's pid namespace takes the rest) when dropped.
struct Started {
    child: Child,
    /// Its pid in the sandbox.
    pid: u32,
}

impl Started {
    /// Starts `sleep SECONDS` in a container of the stack of `file`, with `stackctl exec`;
    /// the distinct number of seconds tells the processes apart.
    fn exec(sandbox: &Sandbox, file: &str, container: &str, seconds: u32) -> Started {
        let seconds_arg = seconds.to_string();
        let child = sandbox.stackctl().args(["-f", file, "exec", container, "--", "sleep", &seconds_arg]).spawn();
        Started::found(sandbox, child.expect("start stackctl exec"), seconds)
    }

    /// Starts `sleep SECONDS` in the named namespace `netns`, with `ip netns exec`.
    fn in_netns(sandbox: &Sandbox, netns: &str, seconds: u32) -> Started {
        let child = sandbox.command("ip").args(["netns", "exec", netns, "sleep", &seconds.to_string()]).spawn();
        Started::found(sandbox, child.expect("start ip netns exec"), seconds)
    }

    /// Waits until `sleep SECONDS` runs, and takes its pid.
    fn found(sandbox: &Sandbox, child: Child, seconds: u32) -> Started {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = sandbox.sh(&format!("pgrep -x -f 'sleep {seconds}' || true"));
            if let Some(pid) = found.lines().next().and_then(|pid| pid.trim().parse().ok()) {
                return Started { child, pid };
            }
            assert!(Instant::now() < deadline, "sleep {seconds} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines a plan prints under the line that deletes the namespace of `container`: the
/// processes that run in it.
fn listed_under(plan: &str, container: &str) -> Vec<String> {
    let deletes = |line: &&str| line.split_whitespace().take(3).eq(["-", "netns", container]);
    let mut lines = plan.lines().skip_while(|line| !deletes(line));
    assert!(lines.next().is_some(), "the plan does not delete the namespace of {container}:\n{plan}");
    lines.take_while(|line| line.trim_start().starts_with("runs ")).map(|line| line.trim().to_owned()).collect()
}

fn destroy_lists_the_processes_in_its_namespaces_and_ends_them_only_when_asked() {
    let sandbox = Sandbox::with_own_pids();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let sleeper = Started::exec(&sandbox, &file, "nginx", 1001);
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    let pid = sleeper.pid;
    assert_eq!(
        listed_under(&stdout(&output), "nginx"),
        [format!("runs   pid {pid}: sleep 1001 (left running, cut off; --kill-processes ends it)")]
    );
    assert!(listed_under(&stdout(&output), "db").is_empty(), "{}", stdout(&output));
    let warning = stderr(&output);
    assert!(
        warning.contains(&format!(
            "warning: left running in the deleted namespace of `nginx`, cut off from every network: pid {pid} \
             (sleep 1001); they are yours to end, e.g. `kill {pid}`"
        )),
        "{warning}"
    );
    assert!(sandbox.runs(pid), "destroy ended a process without --kill-processes");
    sandbox.sh(&format!("kill {pid}"));

    apply(&sandbox, &file);
    let sleeper = Started::exec(&sandbox, &file, "db", 1002);
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes", "--kill-processes"]);
    assert_success(&output, "destroy --kill-processes");
    let pid = sleeper.pid;
    assert_eq!(
        listed_under(&stdout(&output), "db"),
        [format!("runs   pid {pid}: sleep 1002 (ended first: --kill-processes)")]
    );
    assert!(
        stdout(&output).contains(&format!(
            "ended the processes in the namespace of `db` before deleting it: pid {pid} (sleep 1002)"
        )),
        "{}",
        stdout(&output)
    );
    assert!(!sandbox.runs(pid), "--kill-processes left the process running");
}

/// Applies `file`, whose swap moves `app` to `container`, with `--yes --wait 60s` and
/// `extra` arguments, and starts the new version in it once apply says it waits for it.
fn swap_to(sandbox: &Sandbox, file: &str, container: &str, extra: &[&str]) -> (Output, Listener) {
    let apply = Watched::spawn(sandbox.stackctl().args(["-f", file, "apply", "--yes", "--wait", "60s"]).args(extra));
    let waiting = format!("waiting up to 1m for container `{container}` to accept tcp/5000");
    apply.wait_for(&waiting, Duration::from_secs(30));
    let listener = sandbox.listen(&format!("shop:{container}"), 5000, container);
    (apply.finish(), listener)
}

fn a_swap_lists_the_processes_of_the_container_it_removes_and_ends_them_only_when_asked() {
    let sandbox = Sandbox::with_own_pids();
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let _v1 = sandbox.listen("shop:flaskapp", 5000, "flaskapp");
    let sleeper = Started::exec(&sandbox, &v1, "flaskapp", 1003);
    let pid = sleeper.pid;
    let left = format!("runs   pid {pid}: sleep 1003 (left running, cut off; --kill-processes ends it)");
    let planned = run(&sandbox, &["-f", &v2, "plan"]);
    assert_success(&planned, "plan");
    assert_eq!(listed_under(&stdout(&planned), "flaskapp"), std::slice::from_ref(&left));

    let (output, _v2) = swap_to(&sandbox, &v2, "flaskapp-v2", &[]);
    assert_success(&output, "the swap to flaskapp-v2");
    assert_eq!(listed_under(&stdout(&output), "flaskapp"), [left]);
    assert!(stderr(&output).contains(&format!("`kill {pid}`")), "{}", stderr(&output));
    assert!(!sandbox.has_netns("shop:flaskapp"), "the swap removes the old container");
    assert!(sandbox.runs(pid), "the swap ended a process without --kill-processes");

    let sleeper = Started::exec(&sandbox, &v2, "flaskapp-v2", 1004);
    let pid = sleeper.pid;
    let apply =
        Watched::spawn(sandbox.stackctl().args(["-f", &v1, "apply", "--yes", "--wait", "60s", "--kill-processes"]));
    apply.wait_for("waiting up to 1m for container `flaskapp` to accept tcp/5000", Duration::from_secs(30));
    // A process started once the plan was read, while the swap waits: ended too.
    let late = Started::exec(&sandbox, &v2, "flaskapp-v2", 1005);
    let _v1 = sandbox.listen("shop:flaskapp", 5000, "flaskapp");
    let output = apply.finish();
    assert_success(&output, "the swap back to flaskapp");
    assert_eq!(
        listed_under(&stdout(&output), "flaskapp-v2"),
        [format!("runs   pid {pid}: sleep 1004 (ended first: --kill-processes)")]
    );
    assert!(stdout(&output).contains("ended the processes in the namespace of `flaskapp-v2`"), "{}", stdout(&output));
    assert!(!sandbox.runs(pid), "--kill-processes left the process running");
    assert!(!sandbox.runs(late.pid), "--kill-processes left a process started during the swap running");
}

/// Everything under stackctl's directories and in `/run/netns`, one path a line.
fn everything(sandbox: &Sandbox) -> BTreeSet<String> {
    let listing = sandbox.sh("find /run/stackctl /etc/netns /run/netns -mindepth 1 2>/dev/null | sort || true");
    listing.lines().map(str::to_owned).collect()
}

/// What a stack keeps on a host whose directory is `tag`: its namespaces and name files
/// (named `prefix…`), its lock, record and zone.
fn of_stack(paths: &BTreeSet<String>, stack: &str, tag: &str, prefix: &str) -> BTreeSet<String> {
    let own = [
        format!("/run/netns/{prefix}"),
        format!("/etc/netns/{prefix}"),
        format!("/run/stackctl/{tag}/{stack}."),
        format!("/run/stackctl/{tag}/names/{stack}.zone.json"),
    ];
    paths.iter().filter(|path| own.iter().any(|own| path.starts_with(own.as_str()))).cloned().collect()
}

fn destroying_every_stack_of_a_host_leaves_nothing_and_neighbours_keep_theirs() {
    let sandbox = Sandbox::with_own_pids();
    let dir = tempfile::tempdir().expect("temporary directory");
    let shop = example("web-app-db");
    let adopt = write_stack(
        dir.path(),
        "adopt.yaml",
        "name: adopt\nnetworks: { n: {} }\ncontainers:\n  a: { networks: [n], netns: /run/netns/legacy }\n  \
         b: { networks: [n] }\n",
    );
    let before = everything(&sandbox);
    sandbox.sh("ip netns add legacy");
    apply(&sandbox, &adopt);
    apply(&sandbox, &shop);
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &shop, "apply", "--yes"]);
    assert_success(&output, "apply in a scratch host");
    let adopted = Started::in_netns(&sandbox, "legacy", 1005);
    let applied = everything(&sandbox);
    for expected in
        ["/etc/netns/adopt:a/hosts", "/etc/netns/shop@scratch:db/resolv.conf", "/run/stackctl/host/shop.lock"]
    {
        assert!(applied.contains(expected), "no {expected} in {applied:#?}");
    }

    // The same stack on the machine's host: the scratch host's, and the other stack's, stay.
    let output = run(&sandbox, &["-f", &shop, "destroy", "--yes"]);
    assert_success(&output, "destroy shop");
    let gone = of_stack(&applied, "shop", "host", "shop:");
    assert!(gone.contains("/run/stackctl/host/shop.record.json") && gone.contains("/etc/netns/shop:db/hosts"));
    let left: BTreeSet<String> = applied.difference(&gone).cloned().collect();
    assert_eq!(everything(&sandbox), left, "destroy of shop on the host removes its files and nothing else");

    // The last stack of the host, with an adopted container whose process stays.
    let output = run(&sandbox, &["-f", &adopt, "destroy", "--yes", "--kill-processes"]);
    assert_success(&output, "destroy adopt");
    assert!(sandbox.runs(adopted.pid), "destroy ended a process of an adopted namespace");
    let left: BTreeSet<String> =
        left.into_iter().filter(|path| !path.starts_with("/run/stackctl/host") && !path.contains("/adopt:")).collect();
    assert_eq!(everything(&sandbox), left, "the last destroy on the host removes the host's directory");

    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &shop, "destroy", "--yes"]);
    assert_success(&output, "destroy shop in the scratch host");
    let mut expected = before;
    expected.extend(["/run/netns/legacy".to_owned(), "/run/netns/scratch".to_owned()]);
    assert_eq!(everything(&sandbox), expected, "nothing of stackctl's is left");
}

harness::main! {
    Shared: [
        destroying_every_stack_of_a_host_leaves_nothing_and_neighbours_keep_theirs,
    ],
    Alone: [
        // End processes, one of them started while a swap waits, and find them gone.
        destroy_lists_the_processes_in_its_namespaces_and_ends_them_only_when_asked,
        a_swap_lists_the_processes_of_the_container_it_removes_and_ends_them_only_when_asked,
    ],
}
