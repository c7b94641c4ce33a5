//! The README's quick start, run as a new user would run it, in a sandbox
//! (`support::sandbox`): its shell blocks, word for word but for the binary (the test's
//! own build of it, not `target/release`) and the `cargo` commands (the tests are what
//! runs them). A promise of the quick start is a test: nginx's published port answers in
//! the scratch host, `check` passes, and the one-edit swap moves `app` to flaskapp-v2 while
//! a second terminal starts it.
//!
//! The blocks run in order, each in a shell that knows the variables the blocks before it
//! set, as one terminal would, and goes on after a command that fails, as a terminal does
//! (`getent` says with its exit code that `db` does not resolve): what each command must
//! print is asserted, and each block's last command must succeed. A block that the README says to run "from a second
//! terminal" starts once the block before it, which keeps running, says what it waits for.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;

use std::process::{Child, Output, Stdio};
use std::time::Duration;

use sandbox::{Sandbox, Watched, assert_success, read_all};

/// One `sh` block of the quick start, and whether the README runs it from a second terminal.
struct Block {
    script: String,
    second_terminal: bool,
}

/// The quick start's blocks, from its heading to the next one.
fn quick_start() -> Vec<Block> {
    let readme = include_str!("../README.md");
    let start = readme.find("## Quick start").expect("a quick start");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let before = &rest[..open];
        let body = &rest[open + 6..];
        let close = body.find("```").expect("a closed block");
        let paragraph = before.trim_end().rsplit("\n\n").next().unwrap_or_default();
        blocks.push(Block {
            script: body[..close].to_owned(),
            second_terminal: paragraph.contains("from a second\nterminal")
                || paragraph.contains("from a second terminal"),
        });
        rest = &body[close + 3..];
    }
    blocks
}

/// A block as the test runs it: the test's binary for the release build, no `cargo`.
fn runnable(script: &str) -> String {
    let binary = env!("CARGO_BIN_EXE_stackctl");
    script
        .lines()
        .filter(|line| !line.starts_with("cargo test"))
        .map(|line| {
            line.replace("cargo build --release && ", "")
                .replace("cargo run --release -- ", &format!("{binary} "))
                .replace("target/release/stackctl", binary)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The shell variables a block sets, for the blocks after it.
fn variables(script: &str) -> Vec<String> {
    script
        .split(['\n', '&'])
        .map(str::trim)
        .filter(|part| {
            part.split_once('=')
                .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        })
        .map(|part| part.to_owned())
        .collect()
}

fn shell(sandbox: &Sandbox, prelude: &[String], script: &str) -> std::process::Command {
    let mut command = sandbox.command("bash");
    command
        .args(["-c", &format!("cd {}\n{}\n{script}", env!("CARGO_MANIFEST_DIR"), prelude.join("\n"))])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `block` while a second terminal runs `second` once `block` says it waits.
fn with_second_terminal(sandbox: &Sandbox, prelude: &[String], block: &str, second: &str) -> (Output, Child) {
    let first = Watched::spawn(&mut shell(sandbox, prelude, block));
    first.wait_for("waiting up to", Duration::from_secs(60));
    let second = shell(sandbox, prelude, second).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("run");
    (first.finish(), second)
}

fn the_quick_start_works_as_the_readme_says() {
    let sandbox = Sandbox::new();
    let blocks = quick_start();
    assert_eq!(blocks.len(), 6, "the quick start has changed: update this test with it");
    let mut prelude: Vec<String> = Vec::new();
    let mut outputs: Vec<Output> = Vec::new();
    let mut second_terminals: Vec<Child> = Vec::new();
    let mut index = 0;
    while index < blocks.len() {
        let script = runnable(&blocks[index].script);
        let output = match blocks.get(index + 1).filter(|next| next.second_terminal) {
            Some(next) => {
                let (output, second) = with_second_terminal(&sandbox, &prelude, &script, &runnable(&next.script));
                second_terminals.push(second);
                prelude.extend(variables(&runnable(&next.script)));
                index += 1;
                output
            }
            None => shell(&sandbox, &prelude, &script).output().expect("run a block"),
        };
        assert_success(&output, &format!("quick start block {index}:\n{script}"));
        prelude.extend(variables(&script));
        outputs.push(output);
        index += 1;
    }
    let said = |block: usize| read_all(&outputs[block].stdout[..]);

    // Set-up: the stack is up in the scratch host and shown.
    assert!(said(0).contains("Apply complete") && said(0).contains("network web_nw"), "{}", said(0));
    // Try it: nginx answers on the published port inside the scratch host; names resolve
    // as the README says; check passes; nothing left to change.
    let tried = said(1);
    assert!(tried.lines().next().is_some_and(|line| line.starts_with("<!DOCTYPE HTML")), "{tried}");
    assert!(tried.contains(" flaskapp\n") && tried.contains(" app\n") && !tried.contains(" db\n"), "{tried}");
    assert!(tried.contains("probes, 0 wrong"), "check found a wrong cell: {tried}");
    assert!(tried.contains("No changes. The kernel matches the stack."), "{tried}");
    // The swap: one apply moved `app`, drained flaskapp and removed it with its server.
    let swapped = said(2);
    assert!(swapped.contains("flaskapp -> flaskapp-v2") && swapped.contains("drained `flaskapp`"), "{swapped}");
    assert!(swapped.contains("Apply complete"), "{swapped}");
    assert!(!sandbox.has_netns("shop@stackctl-demo:flaskapp"));
    // Clean up: nothing of the quick start is left, its processes included.
    for mut second in second_terminals {
        let status = second.wait().expect("the second terminal's server ends");
        assert!(!status.success(), "the second terminal's server was ended by destroy --kill-processes");
    }
    assert_eq!(sandbox.sh("ls /run/netns"), "");
    assert!(sandbox.processes().is_empty(), "processes left: {:?}", sandbox.processes());
}

harness::main! {
    Shared: [
        the_quick_start_works_as_the_readme_says,
    ],
}
