//! What the kernel tests share: the examples, running stackctl in a sandbox, and reading
//! what it shows.

#![allow(dead_code)] // Each test binary uses its own part of the helpers.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use stackctl::model::{Stack, validate_file};
use stackctl::spec::SourceFile;

use super::sandbox::{Sandbox, assert_success};

pub fn example(name: &str) -> String {
    format!("{}/examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"))
}

pub fn stack_of(path: &str) -> Stack {
    let text = std::fs::read_to_string(path).expect("read stack file");
    validate_file(&SourceFile { name: path.to_owned(), text }).stack.expect("a valid stack")
}

/// A stack file written for one test, in a directory the sandbox sees too.
pub fn write_stack(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write stack file");
    path.display().to_string()
}

pub fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.stackctl().args(args).output().expect("run stackctl")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn apply(sandbox: &Sandbox, file: &str) -> String {
    let output = run(sandbox, &["-f", file, "apply", "--yes"]);
    assert_success(&output, &format!("apply {file}"));
    stdout(&output)
}

/// `plan --detailed-exitcode`'s code and text.
pub fn plan(sandbox: &Sandbox, file: &str) -> (i32, String) {
    let output = run(sandbox, &["-f", file, "plan", "--detailed-exitcode"]);
    (output.status.code().unwrap_or(-1), stdout(&output))
}

pub fn assert_converged(sandbox: &Sandbox, file: &str) {
    let (code, text) = plan(sandbox, file);
    assert_eq!((code, text.as_str()), (0, "No changes. The kernel matches the stack.\n"), "{file} has not converged");
}

/// `show --format json`.
pub fn topology(sandbox: &Sandbox, file: &str) -> Value {
    let output = run(sandbox, &["-f", file, "show", "--format", "json"]);
    assert_success(&output, "show");
    serde_json::from_slice(&output.stdout).expect("show prints JSON")
}

/// Each member's address on each network: (container, network, address).
pub fn addresses(topology: &Value) -> Vec<(String, String, Ipv4Addr)> {
    let mut addresses = Vec::new();
    for network in topology["networks"].as_array().expect("networks") {
        for member in network["members"].as_array().expect("members") {
            let address = member["address"].as_str().expect("every member has an address").parse().expect("IPv4");
            addresses.push((
                member["container"].as_str().expect("name").to_owned(),
                network["name"].as_str().expect("name").to_owned(),
                address,
            ));
        }
    }
    addresses
}

/// A container's address on a network, as `show` reports it.
pub fn address_of(sandbox: &Sandbox, file: &str, container: &str, network: &str) -> Ipv4Addr {
    let found = addresses(&topology(sandbox, file)).into_iter().find(|(c, n, _)| c == container && n == network);
    found.unwrap_or_else(|| panic!("{container} has no address on {network}")).2
}

pub fn namespace(stack: &Stack, container: &str) -> String {
    format!("{}:{container}", stack.name)
}

/// Scenario 1 with flaskapp-v2 running beside flaskapp before it takes the alias `app`:
/// the apply that swaps an alias needs its new container running (its namespace exists
/// and it listens), as a deployment starts the new version before moving traffic to it.
pub fn both_versions(dir: &Path) -> String {
    let v1 = std::fs::read_to_string(example("web-app-db")).expect("read scenario 1");
    let text =
        format!("{v1}  flaskapp-v2:\n    networks:\n      web_nw: {{}}\n      db_nw: {{}}\n    talks_to: [db:5432]\n");
    write_stack(dir, "both.yaml", &text)
}

/// The virtual address of an alias, as `show` lists it; `None` when it lists none.
pub fn alias_address(sandbox: &Sandbox, file: &str, alias: &str) -> Option<Ipv4Addr> {
    let topology = topology(sandbox, file);
    let networks = topology["networks"].as_array()?;
    networks
        .iter()
        .flat_map(|network| network["aliases"].as_array().into_iter().flatten())
        .find(|shown| shown["name"] == alias)
        .and_then(|shown| shown["address"].as_str()?.parse().ok())
}
