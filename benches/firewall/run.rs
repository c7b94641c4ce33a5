//! Running whole processes inside a sandbox and timing them, and reading back what the
//! sandbox's firewall holds.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;

/// Runs a command to completion, feeding it `input` on stdin; returns its wall-clock time
/// from spawn to exit and its output, or why it failed (a non-zero exit included).
pub fn timed(command: Command, input: Option<&str>, what: &str) -> Result<(Duration, Output), String> {
    let (wall, output) = timed_any(command, input, what)?;
    if output.status.success() { Ok((wall, output)) } else { Err(failure(what, &output)) }
}

/// [`timed`], whatever the exit status.
pub fn timed_any(mut command: Command, input: Option<&str>, what: &str) -> Result<(Duration, Output), String> {
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().map_err(|error| format!("{what}: spawn: {error}"))?;
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input.as_bytes()).map_err(|error| format!("{what}: write stdin: {error}"))?;
    }
    let output = child.wait_with_output().map_err(|error| format!("{what}: wait: {error}"))?;
    Ok((start.elapsed(), output))
}

/// The exit status and the end of the error output, for a failure message.
pub fn failure(what: &str, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let start = stderr.len().saturating_sub(1500);
    let start = (start..=stderr.len()).find(|&index| stderr.is_char_boundary(index)).unwrap_or(0);
    format!("{what}: {}\n  stderr: {}", output.status, &stderr[start..])
}

/// `nft -f -` of a script inside the sandbox: stackctl's own way of making its tables.
pub fn nft_script(sandbox: &Sandbox, script: &str, what: &str) -> Result<Duration, String> {
    let mut command = sandbox.command("nft");
    command.args(["-f", "-"]);
    timed(command, Some(script), what).map(|(wall, _)| wall)
}

/// How many rules and set elements the sandbox's firewall holds: every one that stackctl
/// renders carries a comment, and nothing else in a fresh sandbox does.
pub fn firewall_items(sandbox: &Sandbox) -> Result<usize, String> {
    let mut command = sandbox.command("nft");
    command.args(["list", "ruleset"]);
    let (_, output) = timed(command, None, "nft list ruleset")?;
    Ok(String::from_utf8_lossy(&output.stdout).matches(" comment \"").count())
}

/// Fails a step that exited 0 but left a firewall other than the one expected.
pub fn expect_items(sandbox: &Sandbox, expected: usize, what: &str) -> Result<(), String> {
    let found = firewall_items(sandbox)?;
    if found == expected {
        Ok(())
    } else {
        Err(format!("{what}: exited 0, but the firewall holds {found} rules and elements instead of {expected}"))
    }
}

/// Milliseconds, for the table.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The kernel frees a dropped sandbox's namespaces in the background; give it time, so
/// that one step's clean-up does not land in the next one's time.
pub fn settle(containers: usize) {
    std::thread::sleep(Duration::from_millis(200 + 2 * containers as u64));
}
