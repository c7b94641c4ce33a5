//! ARCHITECTURE.md's first invariant, checked: the pure core does no I/O.
//!
//! The compiler and clippy do most of it: the core is its own crate (`crates/core`), so it
//! can only use what its manifest lists, and its `clippy.toml` forbids the standard
//! library's files, environment, clock, processes, threads, sockets and printing. What is
//! left to check here is the manifest's side: that nothing the core depends on, directly or
//! through others, is a runtime, a netlink or system-call crate or an argument parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crates whose presence in the core's dependencies would let it reach the kernel, the
/// network, processes or the command line: by name, or by the start of their names.
const FORBIDDEN: &[&str] = &["tokio", "rtnetlink", "netlink", "nix", "clap", "mio", "futures", "bollard", "hyper"];

/// The packages the core's normal (not dev or build) dependencies reach, by name.
fn core_dependencies() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Only this machine's platform: the others' crates need not be downloaded.
    let platform =
        format!("{}-unknown-linux-{}", std::env::consts::ARCH, if cfg!(target_env = "musl") { "musl" } else { "gnu" });
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", &platform])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| (package["id"].as_str().expect("id"), package["name"].as_str().expect("name")))
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolved nodes")
        .iter()
        .map(|node| (node["id"].as_str().expect("id"), node))
        .collect();
    let core = packages.iter().find(|(_, name)| **name == "stackctl-core").map(|(id, _)| *id).expect("the core crate");
    let mut reached = BTreeSet::new();
    let mut next = vec![core];
    while let Some(id) = next.pop() {
        for dependency in nodes[id]["deps"].as_array().expect("deps") {
            let normal =
                dependency["dep_kinds"].as_array().expect("dependency kinds").iter().any(|kind| kind["kind"].is_null());
            let id = dependency["pkg"].as_str().expect("package id");
            if normal && reached.insert(packages[id].to_owned()) {
                next.push(id);
            }
        }
    }
    reached
}

#[test]
fn the_core_depends_on_nothing_that_does_io() {
    let dependencies = core_dependencies();
    // The walk found the tree, not nothing: the core's own direct dependencies are in it.
    for expected in ["serde", "petgraph", "hickory-proto", "miette"] {
        assert!(dependencies.contains(expected), "{expected} missing from {dependencies:?}");
    }
    let forbidden: Vec<&String> = dependencies
        .iter()
        .filter(|name| {
            FORBIDDEN.iter().any(|forbidden| name.as_str() == *forbidden || name.starts_with(&format!("{forbidden}-")))
        })
        .collect();
    assert!(forbidden.is_empty(), "the core depends on crates that do I/O: {forbidden:?}");
}

/// The files under `dir`, at any depth.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}

/// The graph is built from the validated model, so the model, validation included, must
/// not reach back into the graph: what validation needs of the flows it computes itself.
#[test]
fn the_model_does_not_depend_on_the_graph() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src/model");
    let reaching: Vec<String> = rust_files(&model)
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).expect("readable source").contains("crate::graph"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(reaching.is_empty(), "the model uses the graph in {reaching:?}");
}
