//! ARCHITECTURE.md's first invariant, checked: the pure core does no I/O. Its modules may
//! not name the standard library's or any crate's ways of reaching files, the environment,
//! the clock, processes, sockets or the kernel.

use std::path::{Path, PathBuf};

/// The modules of the pure core, relative to `src/`.
const CORE: &[&str] =
    &["spec", "diagnostic.rs", "model", "graph", "state", "plan", "review", "show", "check", "firewall", "names"];

/// Paths whose use means I/O, the environment or the clock.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::env",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "std::process",
    "std::time",
    "std::thread",
    "std::net::Tcp",
    "std::net::Udp",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
    "dbg!",
    "tokio",
    "rtnetlink",
    "nix::",
    "libc::",
    "SystemTime",
    "Instant",
];

fn rust_files(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("readable source directory") {
            rust_files(&entry.expect("directory entry").path(), found);
        }
    } else if path.extension().is_some_and(|extension| extension == "rs") {
        found.push(path.to_owned());
    }
}

#[test]
fn the_pure_core_does_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for module in CORE {
        rust_files(&src.join(module), &mut files);
    }
    assert!(files.len() > 10, "the core's files were not found: {files:?}");
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for forbidden in FORBIDDEN {
                if code.contains(forbidden) {
                    violations.push(format!("{}:{}: `{forbidden}` in `{}`", file.display(), number + 1, line.trim()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "I/O in the pure core:\n{}", violations.join("\n"));
}
