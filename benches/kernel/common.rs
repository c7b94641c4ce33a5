//! What every column shares: one repetition's measurements, running a generated script,
//! and the checks that a step really did its work (a step that exits 0 but leaves the
//! topology incomplete counts as failed).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::measure;
use crate::sandbox::Sandbox;
use crate::topology::Container;

/// One timed step: its wall-clock time, or why it failed.
pub type Sample = Result<Duration, String>;

/// The measurements of one repetition of one column.
pub struct Run {
    pub cold: Sample,
    /// `None` where the column has no equivalent of `plan`.
    pub noop: Option<Sample>,
    pub one: Sample,
    pub destroy: Sample,
    /// The largest peak resident set of one process of the column, in KiB; `None` when
    /// the work is done by a daemon the bench does not measure.
    pub max_rss_kib: Option<u64>,
}

/// Runs a command to completion; `Ok(wall time)` when it exits 0. Also returns its peak
/// resident set (KiB).
pub fn timed(mut command: Command, what: &str) -> (Sample, u64) {
    let outcome = measure(&mut command);
    let sample = if outcome.success() { Ok(outcome.wall) } else { Err(outcome.failure(what)) };
    (sample, outcome.max_rss_kib)
}

/// Runs a generated bash script (`set -e` in it) inside the sandbox.
pub fn script_in(sandbox: &Sandbox, script: &Path, what: &str) -> (Sample, u64) {
    let mut command = sandbox.command("bash");
    command.arg(script);
    timed(command, what)
}

/// A successful sample turns into a failure when the check after it fails.
pub fn checked(sample: Sample, check: impl FnOnce() -> Result<(), String>) -> Sample {
    let time = sample?;
    check()?;
    Ok(time)
}

/// The named network namespaces under the sandbox's `/run/netns`.
pub fn netns_names(sandbox: &Sandbox) -> BTreeSet<String> {
    let dir = format!("/proc/{}/root/run/netns", sandbox.pid());
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            entries.filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned())).collect()
        }
        Err(_) => BTreeSet::new(),
    }
}

/// After a create step: exactly the `expected` namespaces exist, and the first and last
/// of them have a default route (the last command of each container in the scripts).
pub fn check_created(sandbox: &Sandbox, expected: &[String], what: &str) -> Result<(), String> {
    let found = netns_names(sandbox);
    let wanted: BTreeSet<String> = expected.iter().cloned().collect();
    if found != wanted {
        let missing: Vec<&String> = wanted.difference(&found).take(5).collect();
        let extra: Vec<&String> = found.difference(&wanted).take(5).collect();
        return Err(format!(
            "{what}: exited 0, but {} namespaces instead of {} (missing e.g. {missing:?}, unexpected e.g. {extra:?})",
            found.len(),
            wanted.len()
        ));
    }
    for netns in [expected.first(), expected.last()].into_iter().flatten() {
        let output = sandbox
            .command("ip")
            .args(["-n", netns, "-4", "route", "show", "default"])
            .output()
            .expect("run ip in the sandbox");
        if !output.status.success() || output.stdout.is_empty() {
            return Err(format!(
                "{what}: exited 0, but {netns} has no default route ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// After a destroy step: no namespace left, and no link but `lo` in the sandbox.
pub fn check_destroyed(sandbox: &Sandbox, what: &str) -> Result<(), String> {
    let mut problems = String::new();
    let left = netns_names(sandbox);
    if !left.is_empty() {
        let _ =
            write!(problems, "{} namespaces left (e.g. {:?}); ", left.len(), left.iter().take(3).collect::<Vec<_>>());
    }
    let output = sandbox.command("ip").args(["-o", "link", "show"]).output().expect("run ip in the sandbox");
    let links: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(':').nth(1).map(|name| name.trim().to_owned()))
        .filter(|name| name != "lo")
        .collect();
    if !links.is_empty() {
        let _ = write!(problems, "{} links left (e.g. {:?})", links.len(), links.iter().take(3).collect::<Vec<_>>());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("{what}: exited 0, but {}", problems.trim_end_matches("; "))) }
}

/// Quotes a path for bash.
pub fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The three scripts of a column that works through `ip netns`, and the namespaces they
/// make.
pub struct Scripts {
    /// Creates the first N containers and their networks.
    pub create: PathBuf,
    /// Creates the one added container.
    pub one: PathBuf,
    /// Deletes the N+1 namespaces and the bridges.
    pub destroy: PathBuf,
    /// The namespaces after `create` and after `one`.
    pub netns: Vec<String>,
}

/// The namespace a script column makes for a container.
pub fn netns(container: &Container) -> String {
    format!("bench-{}", container.name)
}

/// One repetition of a script column (`what` names it in messages), in a fresh sandbox.
pub fn run_scripts(scripts: &Scripts, what: &str) -> Run {
    let sandbox = Sandbox::new();
    let count = scripts.netns.len() - 1;
    let step = |script: &Path, name: &str| script_in(&sandbox, script, &format!("{what} {name} script"));
    let (cold, cold_rss) = step(&scripts.create, "create");
    let cold = checked(cold, || check_created(&sandbox, &scripts.netns[..count], &format!("{what} create script")));
    let (one, one_rss) = step(&scripts.one, "one-container");
    let one = checked(one, || check_created(&sandbox, &scripts.netns, &format!("{what} one-container script")));
    let (destroy, destroy_rss) = step(&scripts.destroy, "teardown");
    let destroy = checked(destroy, || check_destroyed(&sandbox, &format!("{what} teardown script")));
    Run { cold, noop: None, one, destroy, max_rss_kib: Some(cold_rss.max(one_rss).max(destroy_rss)) }
}
