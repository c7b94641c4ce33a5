//! What stackctl writes, and what it reads back as a plan, on the live kernel, always in a
//! sandbox (`support::sandbox`): a saved plan that was edited (an operation, a namespace
//! name) is refused as tampered with, and one whose stack file changed since as stale,
//! with nothing changed; applying one shows the drift before its plan, as `plan` does;
//! `plan --out` writes through no symbolic link and into no other
//! user's file; every file and directory stackctl makes has its own mode whatever the
//! umask; another user can neither write those files nor hold stackctl's locks; and a lock
//! timeout names the process that holds the lock.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, assert_success};
use serde_json::Value;
use stackctl::state::veth_ifname;
use stacks::{apply, example, run, write_stack};

/// The exit of a saved plan tampered with: bad input, like an invalid stack file.
const TAMPERED: i32 = 65;
/// The exit of a stale saved plan: planning again gives a good one.
const STALE: i32 = 75;

/// The user who is not root.
const NOBODY: u32 = 65534;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a shell script in the sandbox and returns its output, whether or not it failed.
fn sh(sandbox: &Sandbox, script: &str) -> Output {
    sandbox.command("sh").args(["-c", script]).stdin(Stdio::null()).output().expect("run sh in the sandbox")
}

/// `stackctl` with `arguments` in the sandbox, under `umask`.
fn run_under_umask(sandbox: &Sandbox, umask: &str, arguments: &[&str]) -> Output {
    let script = format!("umask {umask}; exec \"$0\" \"$@\"");
    sandbox
        .command("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_stackctl")])
        .args(arguments)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run stackctl under a umask")
}

/// Nothing of any stack's is on the sandbox's host: no namespace, no interface but
/// loopback, no table.
fn assert_nothing_made(sandbox: &Sandbox, what: &str) {
    let made = sandbox.sh("ls /run/netns; ip -o link show | grep -v ': lo:' || true; nft list tables");
    assert_eq!(made.trim(), "", "{what} changed the host");
}

/// Edits the saved plan at `path` in place.
/// Plans `file` and saves the plan as `plan.json` in `dir`; its path.
fn save_plan(sandbox: &Sandbox, file: &str, dir: &Path) -> String {
    let saved = dir.join("plan.json").display().to_string();
    assert_success(&run(sandbox, &["-f", file, "plan", "--out", &saved]), "plan --out");
    saved
}

/// Asserts that `output` exited with `code` and said `expected`.
fn assert_refused(output: &Output, code: i32, expected: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    assert!(stderr(output).contains(expected), "{}", stderr(output));
}

fn edit_plan(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut plan: Value = serde_json::from_slice(&std::fs::read(path).expect("read the plan")).expect("JSON");
    edit(&mut plan);
    std::fs::write(path, serde_json::to_vec_pretty(&plan).expect("JSON")).expect("write the plan");
}

/// The resource of the first operation of `action` that is of `kind` and whose `field` is
/// `value`.
fn resource<'a>(plan: &'a mut Value, action: &str, kind: &str, field: &str, value: &str) -> &'a mut Value {
    let operations = plan["plan"]["operations"].as_array_mut().expect("operations");
    let found = operations.iter_mut().find(|operation| {
        operation["action"] == action && operation["resource"]["kind"] == kind && operation["resource"][field] == value
    });
    &mut found.unwrap_or_else(|| panic!("no {action} of a {kind} whose {field} is {value}"))["resource"]
}

fn a_saved_plan_shows_the_drift_it_repairs_as_plan_does() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    apply(&sandbox, &file);
    sandbox.sh(&format!("ip link set {} down", veth_ifname("shop", "nginx", "web_nw")));
    let saved = save_plan(&sandbox, &file, dir.path());
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    assert_success(&output, "apply of the saved plan");
    let text = String::from_utf8_lossy(&output.stdout);
    let drift = text.find("Changed outside stackctl since the last apply:").unwrap_or_else(|| panic!("{text}"));
    assert!(text.contains("link    nginx@web_nw: state: up -> down"), "{text}");
    assert!(text.find("Plan: 0 to add, 1 to change, 0 to destroy.").is_some_and(|plan| drift < plan), "{text}");
}

fn a_saved_plan_whose_operation_was_edited_is_refused_as_tampered_with() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    let saved = save_plan(&sandbox, &file, dir.path());
    // The flow of the app to the database is widened to every port.
    edit_plan(Path::new(&saved), |plan| {
        let flow = resource(plan, "create", "flow", "source", "flaskapp");
        flow["traffic"] = serde_json::json!({ "kind": "all" });
    });
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    let expected = format!(
        "error: plan `{saved}` was tampered with: its operation 4 (`+ flow flaskapp -> db all on db_nw`) is not \
         what stack file `{file}` gives for the state it was made against; nothing was changed"
    );
    assert_refused(&output, TAMPERED, &expected);
    assert_nothing_made(&sandbox, "a plan tampered with");
}

/// A plan edited to name a FIFO as its stack file is refused at once (reading it would
/// wait for a writer forever), and so is one that names a directory.
fn a_saved_plan_that_names_no_regular_stack_file_is_refused_at_once() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let saved = save_plan(&sandbox, &example("web-app-db"), dir.path());
    let fifo = dir.path().join("stack.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    for named in [fifo.display().to_string(), dir.path().display().to_string()] {
        edit_plan(Path::new(&saved), |plan| plan["stack_file"] = Value::String(named.clone()));
        let started = std::time::Instant::now();
        let output = run(&sandbox, &["apply", "--yes", &saved]);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "apply returned at once");
        assert_refused(&output, TAMPERED, &format!("it names `{named}` as its stack file, which is no regular file"));
        assert_nothing_made(&sandbox, "a plan naming no regular stack file");
    }
}

fn a_saved_plan_whose_namespace_name_was_edited_is_refused_before_anything_changes() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let both = write_stack(
        dir.path(),
        "both.yaml",
        "name: shop\nnetworks:\n  n: {}\ncontainers:\n  app: { networks: [n] }\n  db: { networks: [n] }\n",
    );
    let app_only =
        write_stack(dir.path(), "app.yaml", "name: shop\nnetworks:\n  n: {}\ncontainers:\n  app: { networks: [n] }\n");
    apply(&sandbox, &both);
    sandbox.sh("echo precious > /run/target");
    let saved = save_plan(&sandbox, &app_only, dir.path());
    // The namespace the plan deletes is a path out of /run/netns.
    edit_plan(Path::new(&saved), |plan| {
        resource(plan, "delete", "namespace", "container", "db")["name"] = "../target".into();
    });
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    let expected = format!(
        "error: plan `{saved}` was tampered with: it holds namespace name `../target`, which no stack file gives: \
         the namespace of container `db` is named `shop:db`; nothing was changed"
    );
    assert_refused(&output, TAMPERED, &expected);
    assert_eq!(sandbox.sh("cat /run/target"), "precious\n", "the plan reached a file outside /run/netns");
    assert!(sandbox.has_netns("shop:db"), "the refused plan deleted the namespace");
}

fn a_saved_plan_whose_stack_file_changed_since_is_refused_as_stale() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = "name: shop\nnetworks:\n  n: {}\ncontainers:\n  app: { networks: [n] }\n";
    let file = write_stack(dir.path(), "stack.yaml", text);
    let saved = save_plan(&sandbox, &file, dir.path());
    write_stack(dir.path(), "stack.yaml", &format!("{text}  db: {{ networks: [n] }}\n"));
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    let expected = format!(
        "error: stale plan `{saved}`: stack file `{file}` changed since the plan was made; nothing was changed"
    );
    assert_refused(&output, STALE, &expected);
    assert_nothing_made(&sandbox, "a stale plan");
}

fn plan_out_writes_through_no_symbolic_link_and_into_no_other_users_file() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("write the victim");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&victim, &link).expect("a symbolic link");
    let output = run(&sandbox, &["-f", &file, "plan", "--out", &link.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains(&format!("{} is a symbolic link, and stackctl never writes through one", link.display())),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&victim).expect("read the victim"), "precious");
    assert!(std::fs::symlink_metadata(&link).expect("the link").file_type().is_symlink());

    let theirs = dir.path().join("theirs.json");
    std::fs::write(&theirs, "theirs").expect("write their file");
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("give it to nobody");
    let output = run(&sandbox, &["-f", &file, "plan", "--out", &theirs.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains(&format!("{} is owned by uid {NOBODY}", theirs.display())), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&theirs).expect("read their file"), "theirs");
    assert_eq!(std::fs::metadata(&theirs).expect("their file").uid(), NOBODY);

    // A new file is root's only, whatever the umask; one of root's own is replaced.
    let fresh = dir.path().join("fresh.json");
    for _ in 0..2 {
        let output = run_under_umask(&sandbox, "000", &["-f", &file, "plan", "--out", &fresh.display().to_string()]);
        assert_success(&output, "plan --out under umask 000");
        assert_eq!(std::fs::metadata(&fresh).expect("the plan").mode() & 0o7777, 0o600);
    }
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 4, "a partial file was left: {left:?}");
}

/// Every file, directory and socket under stackctl's run directory, the directories of the
/// containers' name files (of scenario 1's containers: the sandbox's `/etc` shows the
/// machine's beneath its own) and the namespaces' directory, as `MODE TYPE PATH`.
fn made_by_stackctl(sandbox: &Sandbox) -> Vec<(u32, char, String)> {
    let listed = sandbox.sh("find /etc/netns /run/netns -maxdepth 0 -printf '%m %y %p\\n'; \
         find /run/stackctl /etc/netns/shop:nginx /etc/netns/shop:flaskapp /etc/netns/shop:db -printf '%m %y %p\\n'");
    listed
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            let mode = u32::from_str_radix(fields.next().expect("mode"), 8).expect("octal mode");
            let kind = fields.next().expect("type").chars().next().expect("a type");
            (mode, kind, fields.next().expect("path").to_owned())
        })
        .collect()
}

/// The mode each of stackctl's files and directories must have: root's alone under its run
/// directory, readable by everyone where a container's programs read them.
fn expected_mode(kind: char, path: &str) -> Option<u32> {
    let root_only = path.starts_with("/run/stackctl");
    match kind {
        'd' if root_only => Some(0o700),
        'd' => Some(0o755),
        'f' if root_only => Some(0o600),
        'f' => Some(0o644),
        // The name server's control socket is its own (not a file stackctl writes).
        _ => None,
    }
}

fn assert_modes(sandbox: &Sandbox, umask: &str) {
    let made = made_by_stackctl(sandbox);
    assert!(made.iter().any(|(_, _, path)| path.ends_with("/hosts")), "{made:?}");
    assert!(made.iter().any(|(_, _, path)| path.ends_with("shop.zone.json")), "{made:?}");
    let wrong: Vec<String> = made
        .iter()
        .filter_map(|(mode, kind, path)| {
            let expected = expected_mode(*kind, path)?;
            (*mode != expected).then(|| format!("{path}: {mode:o}, not {expected:o}"))
        })
        .collect();
    assert!(wrong.is_empty(), "under umask {umask}: {wrong:#?}");
}

fn every_file_and_directory_stackctl_makes_has_its_own_mode_whatever_the_umask() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    // stackctl makes the shared directories too, when they are missing.
    sandbox.sh("rmdir /run/netns && rm -rf /etc/netns");
    let output = run_under_umask(&sandbox, "000", &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply under umask 000");
    assert_modes(&sandbox, "000");
    assert_success(&run(&sandbox, &["-f", &file, "destroy", "--yes"]), "destroy");

    // A directory an older stackctl left open is closed; hosts files stay readable by the
    // containers' programs under a umask that would hide them.
    sandbox.sh("mkdir -p /run/stackctl && chmod 777 /run/stackctl");
    let output = run_under_umask(&sandbox, "077", &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply under umask 077");
    assert_modes(&sandbox, "077");
}

fn another_user_can_neither_hold_the_locks_nor_write_stackctls_files() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output = run_under_umask(&sandbox, "022", &["-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply");
    let made = made_by_stackctl(&sandbox);
    let mut script = String::from("set +e\n");
    for (_, kind, path) in &made {
        match kind {
            'f' => {
                script.push_str(&format!("(: >> '{path}') 2>/dev/null && echo \"wrote {path}\"\n"));
                if path.starts_with("/run/stackctl") {
                    script.push_str(&format!("flock -n '{path}' true 2>/dev/null && echo \"locked {path}\"\n"));
                }
            }
            'd' => script.push_str(&format!(
                "(: > '{path}/intruder') 2>/dev/null && echo \"created a file in {path}\"\n\
                 flock -n '{path}/other.lock' true 2>/dev/null && echo \"made a lock in {path}\"\n"
            )),
            _ => {}
        }
    }
    let as_nobody = format!("setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups sh -c \"$0\"");
    let output = sandbox.command("sh").args(["-c", &as_nobody, &script]).output().expect("run as nobody");
    let done = String::from_utf8_lossy(&output.stdout);
    assert_eq!(done, "", "another user could: {}", stderr(&output));

    // A lock file another user made is refused, not taken.
    sandbox.sh(&format!("chown {NOBODY} /run/stackctl/host/shop.lock"));
    let grown = std::fs::read_to_string(&file).expect("read") + "  cache:\n    networks: [db_nw]\n";
    let dir = tempfile::tempdir().expect("temporary directory");
    let grown = write_stack(dir.path(), "grown.yaml", &grown);
    let output = run(&sandbox, &["-f", &grown, "apply", "--yes"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("/run/stackctl/host/shop.lock is owned by uid 65534, not by uid 0"),
        "{}",
        stderr(&output)
    );
    assert!(!sandbox.has_netns("shop:cache"), "apply went on without its lock");
}

fn a_lock_timeout_names_the_process_that_holds_the_lock() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    // The lock file names a pid long gone, as a holder that ended leaves it.
    sandbox.sh("mkdir -p -m 700 /run/stackctl/host && echo 999999 > /run/stackctl/host/shop.lock");
    let mut holder = sandbox
        .command("flock")
        .args(["/run/stackctl/host/shop.lock", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("hold the lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sh(&sandbox, "flock -n /run/stackctl/host/shop.lock true").status.success() {
        assert!(Instant::now() < deadline, "flock did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = run(&sandbox, &["-f", &file, "apply", "--yes", "--lock-timeout", "1s"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let pid = holder.id();
    assert!(
        stderr(&output)
            .contains(&format!("another apply of stack `shop` did not finish: another process still holds the lock /run/stackctl/host/shop.lock after 1s (held by pid {pid} (flock))")),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("999999"), "{}", stderr(&output));
    // A lock that is held is a reason to try again later, and stackctl says so.
    assert!(stderr(&output).contains("may succeed if run again later"), "{}", stderr(&output));
}

harness::main! {
    Shared: [
        a_saved_plan_shows_the_drift_it_repairs_as_plan_does,
        a_saved_plan_whose_operation_was_edited_is_refused_as_tampered_with,
        a_saved_plan_that_names_no_regular_stack_file_is_refused_at_once,
        a_saved_plan_whose_namespace_name_was_edited_is_refused_before_anything_changes,
        a_saved_plan_whose_stack_file_changed_since_is_refused_as_stale,
        plan_out_writes_through_no_symbolic_link_and_into_no_other_users_file,
        every_file_and_directory_stackctl_makes_has_its_own_mode_whatever_the_umask,
        another_user_can_neither_hold_the_locks_nor_write_stackctls_files,
        a_lock_timeout_names_the_process_that_holds_the_lock,
    ],
}
