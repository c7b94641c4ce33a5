//! The stackctl column: cold apply, no-op plan, one-change apply and destroy, each one
//! `stackctl` process inside the same fresh sandbox, which plays the host.

use std::path::Path;

use crate::common::{Run, Sample, check_created, check_destroyed, checked, timed};
use crate::sandbox::Sandbox;
use crate::topology::{STACK, Topology};

fn netns(plus_one: &Topology) -> Vec<String> {
    plus_one.containers.iter().map(|container| format!("{STACK}:{}", container.name)).collect()
}

/// One repetition: `stack` holds N containers, `stack2` the same plus one.
pub fn run(stack: &Path, stack2: &Path, plus_one: &Topology) -> Run {
    let sandbox = Sandbox::new();
    let netns = netns(plus_one);
    let count = netns.len() - 1;
    let stackctl = |file: &Path, args: &[&str], what: &str| -> (Sample, u64) {
        let mut command = sandbox.stackctl();
        command.arg("-f").arg(file).args(args);
        timed(command, what)
    };

    let (cold, cold_rss) = stackctl(stack, &["apply", "--yes"], "stackctl apply (cold)");
    let cold = checked(cold, || check_created(&sandbox, &netns[..count], "stackctl apply (cold)"));

    // `plan --detailed-exitcode` exits 0 with no changes; 2 (a failure here) with changes.
    let (noop, noop_rss) = stackctl(stack, &["plan", "--detailed-exitcode"], "stackctl plan (no-op, must exit 0)");

    let (one, one_rss) = stackctl(stack2, &["apply", "--yes"], "stackctl apply (one change)");
    let one = checked(one, || check_created(&sandbox, &netns, "stackctl apply (one change)"));

    let (destroy, destroy_rss) = stackctl(stack2, &["destroy", "--yes"], "stackctl destroy");
    let destroy = checked(destroy, || check_destroyed(&sandbox, "stackctl destroy"));

    let max_rss_kib = [cold_rss, noop_rss, one_rss, destroy_rss].into_iter().max();
    Run { cold, noop: Some(noop), one, destroy, max_rss_kib }
}
