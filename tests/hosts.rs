//! Which host a stack is applied on, on the live kernel, always in a sandbox
//! (`support::sandbox`): one stack on several hosts of one machine at once (scratch hosts
//! and the sandbox's own), each destroyed without touching the others; nothing created
//! before the user agrees; the commands a new user runs first (`plan`, `show`, `exec`)
//! on a host where nothing is applied yet; the flag that names a host beating the
//! environment; a saved plan refused on another host; and a scratch host that does not
//! exist, whether its creation was interrupted or it was deleted by hand with its stack's
//! namespaces and files left beside it.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Output, Stdio};

use sandbox::{Sandbox, assert_success};
use stacks::{alias_address, example, run, stdout};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `stackctl` on the host `host` (`None`: the sandbox's own namespace).
fn on(host: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = host.map(|host| vec!["--host-netns".to_owned(), host.to_owned()]).unwrap_or_default();
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    all
}

fn run_on(sandbox: &Sandbox, host: Option<&str>, args: &[&str]) -> Output {
    let args = on(host, args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(sandbox, &args)
}

/// The namespace of a container of stack `shop` on `host`.
fn namespace(host: Option<&str>, container: &str) -> String {
    match host {
        None => format!("shop:{container}"),
        Some(host) => format!("shop@{host}:{container}"),
    }
}

/// Everything of a host that the stack's apply made: its namespaces, the links of the
/// host namespace, its files under /etc/netns and /run/stackctl, and its rules.
fn footprint(sandbox: &Sandbox, host: Option<&str>) -> String {
    let ip = host.map(|host| format!("ip -n {host}")).unwrap_or_else(|| "ip".to_owned());
    let nft = host.map(|host| format!("ip netns exec {host} nft")).unwrap_or_else(|| "nft".to_owned());
    let prefix = namespace(host, "");
    let tag = host.map(|host| format!("netns-{host}")).unwrap_or_else(|| "host".to_owned());
    sandbox.sh(&format!(
        "ls /run/netns | grep -F '{prefix}' || true; {ip} -o link show | awk -F': ' '{{print $2}}' | sort; \
         ls /etc/netns | grep -F '{prefix}' || true; ls /run/stackctl/{tag} 2>/dev/null || true; \
         {nft} list tables; for n in $(ls /run/netns | grep -F '{prefix}'); do ip -n $n -o addr show; done"
    ))
}

/// `app` answers from flaskapp in the stack on `host`.
fn app_answers(sandbox: &Sandbox, host: Option<&str>, file: &str) {
    let address = match host {
        None => alias_address(sandbox, file, "app"),
        Some(host) => {
            let output = run_on(sandbox, Some(host), &["-f", file, "show", "--format", "json"]);
            assert_success(&output, "show");
            let topology: serde_json::Value = serde_json::from_slice(&output.stdout).expect("show prints JSON");
            topology["networks"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|network| network["aliases"].as_array().into_iter().flatten())
                .find(|alias| alias["name"] == "app")
                .and_then(|alias| alias["address"].as_str()?.parse().ok())
        }
    }
    .expect("app has a virtual address");
    let label = host.unwrap_or("the machine's host");
    let _listener = sandbox.listen(&namespace(host, "flaskapp"), 5000, label);
    let reply = sandbox.connect(&namespace(host, "nginx"), SocketAddr::from((address, 5000)));
    assert_eq!(reply.as_deref().ok(), Some(label), "nginx reaches app on {label}");
}

fn one_stack_runs_on_several_hosts_at_once_and_each_destroy_leaves_the_others_alone() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let hosts = [Some("a"), Some("b"), None];
    for host in hosts {
        let output = run_on(&sandbox, host, &["-f", &file, "apply", "--yes"]);
        assert_success(&output, &format!("apply on {host:?}"));
    }
    for host in hosts {
        app_answers(&sandbox, host, &file);
        let output = run_on(&sandbox, host, &["-f", &file, "plan", "--detailed-exitcode"]);
        assert_eq!(output.status.code(), Some(0), "{host:?} has converged: {}", stdout(&output));
    }
    let before: Vec<String> = hosts.iter().map(|host| footprint(&sandbox, *host)).collect();

    // Destroying the stack on the machine's host leaves both scratch hosts whole.
    assert_success(&run_on(&sandbox, None, &["-f", &file, "destroy", "--yes"]), "destroy on the machine's host");
    assert_eq!(footprint(&sandbox, Some("a")), before[0], "destroy on the machine's host touched host a");
    assert_eq!(footprint(&sandbox, Some("b")), before[1], "destroy on the machine's host touched host b");
    assert!(!sandbox.has_netns("shop:nginx"));
    // And destroying it on host a leaves host b whole, also when the environment names
    // host b: the flag wins.
    let output = sandbox
        .stackctl()
        .env("STACKCTL_HOST_NETNS", "b")
        .args(on(Some("a"), &["-f", &file, "destroy", "--yes"]))
        .output()
        .expect("run stackctl");
    assert_success(&output, "destroy on host a");
    assert_eq!(footprint(&sandbox, Some("b")), before[1], "destroy on host a touched host b");
    assert!(!sandbox.has_netns("shop@a:nginx"));
    app_answers(&sandbox, Some("b"), &file);
    let output = run_on(&sandbox, Some("b"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "host b has not converged: {}", stdout(&output));
}

/// What a command may not leave behind before the user agrees: any namespace, and
/// anything under stackctl's run directory or /etc/netns.
fn nothing_created(sandbox: &Sandbox) {
    assert_eq!(
        sandbox.sh("ls -A /run/netns /etc/netns; ls -A /run/stackctl 2>&1 || true"),
        "/etc/netns:\n\n/run/netns:\nls: cannot access '/run/stackctl': No such file or directory\n"
    );
}

fn nothing_is_created_before_the_user_agrees() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    for host in [Some("demo"), None] {
        // Without a terminal and without --yes: a usage error before anything is read.
        let output = run_on(&sandbox, host, &["-f", &file, "apply"]);
        assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
        assert!(stderr(&output).contains("pass --yes to apply"), "{}", stderr(&output));
        assert_eq!(stdout(&output), "", "the plan is not printed before a usage error");
        nothing_created(&sandbox);

        // On a terminal, answered "no".
        let args = on(host, &["-f", &file, "apply"]);
        let command = format!("{} {}", env!("CARGO_BIN_EXE_stackctl"), args.join(" "));
        let mut script = sandbox
            .command("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run apply on a terminal");
        script.stdin.take().expect("piped").write_all(b"no\n").expect("answer no");
        let output = script.wait_with_output().expect("apply ends");
        let said = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{said}");
        assert!(
            said.contains("Apply these changes?") && said.contains("apply cancelled: nothing was changed"),
            "{said}"
        );
        assert!(!said.contains("nothing was changed."), "a message ends without a period: {said}");
        nothing_created(&sandbox);

        // `plan` reads only, also on a scratch host that does not exist yet.
        let output = run_on(&sandbox, host, &["-f", &file, "plan", "--detailed-exitcode"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        nothing_created(&sandbox);
    }
}

fn a_new_user_can_plan_show_and_exec_before_the_first_apply() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output = run_on(&sandbox, Some("fresh"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stdout(&output);
    assert!(
        said.contains("The scratch host `fresh` (/run/netns/fresh) does not exist yet: apply creates it first"),
        "{said}"
    );
    assert!(said.contains("+ netns   nginx") && said.contains("name=shop@fresh:nginx"), "{said}");
    assert!(!said.contains("dev \n") && !said.contains("dev  "), "an empty device: {said}");
    assert!(!sandbox.has_netns("fresh"), "plan created the scratch host");

    for host in [Some("fresh"), None] {
        let output = run_on(&sandbox, host, &["-f", &file, "show"]);
        assert_eq!(output.status.code(), Some(1));
        let expected = match host {
            Some(_) => "error: stack `shop` is not applied on the scratch host `fresh`, which does not exist yet: \
                        `stackctl apply` creates it\n"
                .to_owned(),
            None => "error: stack `shop` is not applied on this host: `stackctl apply` creates it\n".to_owned(),
        };
        assert_eq!(stderr(&output), expected);
        let output = run_on(&sandbox, host, &["-f", &file, "exec", "nginx", "--", "true"]);
        assert_eq!(output.status.code(), Some(1));
        let path = format!("/run/netns/{}", namespace(host, "nginx"));
        let on = host.map_or_else(|| "this host".to_owned(), |host| format!("the scratch host `{host}`"));
        assert_eq!(
            stderr(&output),
            format!(
                "error: container `nginx` of stack `shop` does not run on {on}: its namespace {path} does not \
                 exist; `stackctl apply` creates it\n"
            )
        );
    }

    // The first apply creates the scratch host with its loopback up, and the plan it showed.
    let output = run_on(&sandbox, Some("fresh"), &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "the first apply");
    assert!(sandbox.sh("ip -n fresh -br link show lo").contains("UP"), "the scratch host's loopback is down");
    let output = run_on(&sandbox, Some("fresh"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

fn a_saved_plan_refused_on_another_host_names_both_hosts() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    for (made_on, made_for) in [(Some("a"), "the scratch host `a`"), (None, "the machine's own host")] {
        let saved = dir.path().join("saved.json").display().to_string();
        assert_success(&run_on(&sandbox, made_on, &["-f", &file, "plan", "--out", &saved]), "plan --out");
        let output = run_on(&sandbox, Some("b"), &["apply", "--yes", &saved]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            format!(
                "error: plan `{saved}` was made for {made_for}, and this is the scratch host `b`: apply it without \
                 `--host-netns` (it names its own host), or plan again for this one\n"
            )
        );
        nothing_created(&sandbox);
    }
}

fn the_empty_file_of_an_interrupted_creation_is_a_host_that_does_not_exist_yet() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    sandbox.sh("touch /run/netns/demo");
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("The scratch host `demo` (/run/netns/demo) does not exist yet"),
        "{}",
        stdout(&output)
    );
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "show"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is not applied on the scratch host `demo`, which does not exist yet"));
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(stdout(&output), "No changes. The stack has nothing on this host.\n");

    // Apply creates the host in the file it finds, with its loopback up.
    assert_success(&run_on(&sandbox, Some("demo"), &["-f", &file, "apply", "--yes"]), "apply");
    assert!(sandbox.sh("ip -n demo -br link show lo").contains("UP"), "the scratch host's loopback is down");
    app_answers(&sandbox, Some("demo"), &file);
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// What of stackctl's is outside any host namespace: the named namespaces, and the files
/// under /etc/netns and stackctl's run directory.
fn outside_hosts(sandbox: &Sandbox) -> String {
    sandbox.sh("ls -A /run/netns /etc/netns; find /run/stackctl 2>&1 | sort")
}

fn a_scratch_host_deleted_by_hand_stops_plan_and_apply_and_destroy_removes_what_it_left() {
    let sandbox = Sandbox::with_own_pids();
    let file = example("web-app-db");
    assert_success(&run_on(&sandbox, Some("demo"), &["-f", &file, "apply", "--yes"]), "apply");
    let server = sandbox.sh("cat /run/stackctl/netns-demo/names/resolver.pid");
    let server: u32 = server.trim().parse().expect("the name server's pid");
    // A program that a user started in nginx.
    let args = on(Some("demo"), &["-f", &file, "exec", "nginx", "--", "sleep", "1000"]);
    let mut exec = sandbox.stackctl().args(&args).spawn().expect("start a program in nginx");
    let program = sandbox.sh("for i in $(seq 100); do pgrep -x -f 'sleep 1000' && break; sleep 0.05; done");
    let program: u32 = program.trim().parse().expect("the program's pid");
    sandbox.sh("ip netns delete demo");
    let left = outside_hosts(&sandbox);
    assert!(left.contains("shop@demo:nginx") && left.contains("shop.lock"), "{left}");

    for command in [&["plan"][..], &["apply", "--yes"]] {
        let output = run_on(&sandbox, Some("demo"), &[&["-f", &file][..], command].concat());
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {said}{}", stdout(&output));
        let expected = format!(
            "error: the scratch host `demo` (/run/netns/demo) does not exist, but stack `shop` still has namespaces \
             or files for it (was the host deleted without `stackctl destroy`?), so nothing was changed: run \
             `stackctl --host-netns demo -f {file} destroy` first, which removes them: /run/netns/shop@demo:db, "
        );
        assert!(said.starts_with(&expected), "{command:?}: {said}");
        assert_eq!(outside_hosts(&sandbox), left, "{command:?} changed something");
    }
    // `show` and `check` say the same: destroy first, not apply.
    for command in ["show", "check"] {
        let output = run_on(&sandbox, Some("demo"), &["-f", &file, command]);
        assert_eq!(
            stderr(&output),
            "error: the scratch host `demo` does not exist, but stack `shop` still has namespaces or files for it: \
             `stackctl --host-netns demo destroy` removes them\n",
            "{command}"
        );
    }

    // Destroy lists the program, ends it as asked, and removes everything the stack left.
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "destroy", "--yes", "--kill-processes"]);
    assert_success(&output, "destroy");
    let said = stdout(&output);
    for expected in [
        "The scratch host `demo` (/run/netns/demo) does not exist, but stack `shop` left these for it: ",
        "destroy creates the host again, empty, to remove them, and then deletes it.",
        "- netns   nginx",
        &format!("runs   pid {program}: sleep 1000 (ended first: --kill-processes)"),
        "deleted the scratch host `demo` again",
    ] {
        assert!(said.contains(expected), "missing `{expected}`: {said}");
    }
    nothing_created(&sandbox);
    assert!(!sandbox.runs(program), "the program in nginx still runs");
    exec.wait().expect("the program's exec ends with it");
    assert!(!sandbox.runs(server), "the name server of the deleted host still runs");

    // The host is new again.
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "plan", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stdout(&output).contains("The scratch host `demo` (/run/netns/demo) does not exist yet"));
}

fn files_left_for_a_scratch_host_deleted_by_hand_are_removed_without_creating_it() {
    let sandbox = Sandbox::with_own_pids();
    let file = example("web-app-db");
    assert_success(&run_on(&sandbox, Some("demo"), &["-f", &file, "apply", "--yes"]), "apply");
    let server = sandbox.sh("cat /run/stackctl/netns-demo/names/resolver.pid");
    let server: u32 = server.trim().parse().expect("the name server's pid");
    sandbox.sh(
        "for namespace in demo shop@demo:db shop@demo:flaskapp shop@demo:nginx; do ip netns delete $namespace; done",
    );

    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "plan"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stderr(&output).contains("/etc/netns/shop@demo:db, "), "{}", stderr(&output));
    let output = run_on(&sandbox, Some("demo"), &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    let said = stdout(&output);
    assert!(said.contains("left these for it: /etc/netns/shop@demo:db, ") && said.contains("; destroy removes them."));
    assert!(!said.contains("deleted the scratch host"), "{said}");
    nothing_created(&sandbox);
    assert!(!sandbox.runs(server), "the name server of the deleted host still runs");
}

harness::main! {
    Shared: [
        one_stack_runs_on_several_hosts_at_once_and_each_destroy_leaves_the_others_alone,
        nothing_is_created_before_the_user_agrees,
        a_new_user_can_plan_show_and_exec_before_the_first_apply,
        a_saved_plan_refused_on_another_host_names_both_hosts,
        the_empty_file_of_an_interrupted_creation_is_a_host_that_does_not_exist_yet,
        a_scratch_host_deleted_by_hand_stops_plan_and_apply_and_destroy_removes_what_it_left,
        files_left_for_a_scratch_host_deleted_by_hand_are_removed_without_creating_it,
    ],
}
