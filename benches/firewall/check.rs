//! The `check` row: `stackctl check` on the applied N-container stack (every ordered pair
//! probed from inside the source's namespace), against the same probes made one at a time.
//!
//! The baseline makes a deterministic sample of the probes, each a blocking TCP connect
//! with the same 1 s timeout from a thread that has just joined the source's namespace.
//! Probes of different kinds take very different times (an allowed probe meets a closed
//! port at once, a blocked one may wait for the timeout), so the sample is drawn from each
//! kind apart, and each kind's mean time is extrapolated to every probe of that kind. The
//! baseline also checks that each sampled probe meets what the stack declares, so that a
//! fast baseline cannot come from a firewall that is not there.

use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stackctl::check::{Expected, Probe};
use stackctl::model::{Protocol, Stack};

use crate::report::{Ratio, Row, Sample, median, reported};
use crate::run::{failure, ms, settle, timed, timed_any};
use crate::sandbox::Sandbox;
use crate::stack::{STACK, flows_yaml, probes};

/// Probes of each kind in the baseline's sample.
const SAMPLE: usize = 14;

const TIMEOUT: Duration = Duration::from_secs(1);

/// The kinds of probe the sample is drawn from.
const KINDS: [&str; 3] = ["allowed", "blocked on a shared network", "blocked across networks"];

fn kind(stack: &Stack, probe: &Probe) -> usize {
    if probe.expected == Expected::Allowed {
        0
    } else if stack.containers[&probe.source].membership(&probe.network).is_some() {
        1
    } else {
        2
    }
}

/// The baseline's sample, by kind, and how many probes of each kind `check` makes.
struct Strata {
    sample: [Vec<Probe>; 3],
    totals: [usize; 3],
}

impl Strata {
    /// Up to [`SAMPLE`] TCP probes of each kind, spread evenly over the probes of that
    /// kind: the same ones on every run.
    fn of(stack: &Stack, probes: &[Probe]) -> Strata {
        let mut strata = Strata { sample: Default::default(), totals: [0; 3] };
        let mut all: [Vec<&Probe>; 3] = Default::default();
        for probe in probes {
            let kind = kind(stack, probe);
            strata.totals[kind] += 1;
            if probe.protocol == Protocol::Tcp {
                all[kind].push(probe);
            }
        }
        for (kind, probes) in all.iter().enumerate() {
            let step = probes.len().div_ceil(SAMPLE).max(1);
            strata.sample[kind] = probes.iter().step_by(step).map(|probe| (*probe).clone()).collect();
        }
        strata
    }

    fn sampled(&self) -> usize {
        self.sample.iter().map(Vec::len).sum()
    }
}

/// What one `stackctl check` said besides its time.
struct Verdict {
    exit: Option<i32>,
    probes: Option<u64>,
    wrong: Option<u64>,
}

pub fn rows(dir: &Path, containers: usize, repeats: usize) -> Vec<Row> {
    let exists = check_exists();
    if !exists {
        eprintln!("check: `stackctl check --help` fails: the command does not exist yet; measuring the baseline only");
    }
    let yaml = flows_yaml(containers);
    let file = dir.join(format!("check-n{containers}.yaml"));
    std::fs::write(&file, &yaml).expect("write the stack file");
    let (stack, survey) = probes(&yaml);
    let strata = Strata::of(&stack, &survey.probes);

    let (mut checks, mut baselines, mut verdicts) = (Vec::new(), Vec::new(), Vec::new());
    let mut means: [Vec<Sample>; 3] = Default::default();
    let mut wrong = 0;
    for repetition in 1..=repeats {
        eprint!("check, N={containers} ({} probes), repetition {repetition}/{repeats}: apply ...", survey.probes.len());
        let sandbox = Sandbox::new();
        let mut apply = sandbox.stackctl();
        apply.arg("-f").arg(&file).args(["apply", "--yes"]);
        if let Err(error) = timed(apply, None, "stackctl apply") {
            let failed = reported(Err(error), "stackctl apply before check");
            checks.push(failed.clone());
            baselines.push(failed);
            continue;
        }
        if exists {
            eprint!(" stackctl check ...");
            let check = run_check(&sandbox, &file).map(|(time, verdict)| {
                verdicts.push(verdict);
                time
            });
            checks.push(reported(check, "stackctl check"));
        }
        eprint!(" one probe at a time ...");
        let (kind_means, mismatches) = one_at_a_time(&sandbox, &strata);
        let total: f64 = kind_means.iter().zip(strata.totals).map(|(mean, total)| mean * total as f64).sum();
        baselines.push(Ok(total));
        for (kind, mean) in kind_means.iter().enumerate() {
            means[kind].push(Ok(*mean));
        }
        wrong += mismatches;
        drop(sandbox);
        settle(containers);
        eprintln!(" done");
    }
    if wrong > 0 {
        eprintln!("check: {wrong} sampled probes, over all repetitions, did not meet what the stack declares");
    }
    let baseline = baseline_note(&strata, &means, wrong);
    let (ours, note) = if exists {
        (median(&checks), format!("{}; {baseline}", verdict_note(&verdicts, survey.probes.len())))
    } else {
        (Err("not available".to_owned()), format!("`stackctl check` does not exist in this build; {baseline}"))
    };
    vec![Row {
        measure: "`stackctl check`, every ordered pair (ms)".to_owned(),
        n: containers.to_string(),
        ours,
        theirs: median(&baselines),
        ratio: Ratio::BaselineOverStackctl,
        note,
    }]
}

/// Whether this build has `stackctl check`: another engineer is writing it.
fn check_exists() -> bool {
    let sandbox = Sandbox::new();
    let mut command = sandbox.stackctl();
    command.args(["check", "--help"]);
    timed(command, None, "stackctl check --help").is_ok()
}

/// Times `stackctl check --format json`, whatever it exits with as long as it reports.
fn run_check(sandbox: &Sandbox, file: &Path) -> Result<(f64, Verdict), String> {
    let mut command = sandbox.stackctl();
    command.arg("-f").arg(file).args(["check", "--format", "json", "--timeout", "1s"]);
    let (wall, output) = timed_any(command, None, "stackctl check")?;
    let json: Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("{}\n  (no JSON report: {error})", failure("stackctl check", &output)))?;
    let summary = |field: &str| json.pointer(&format!("/summary/{field}")).and_then(Value::as_u64);
    let verdict = Verdict { exit: output.status.code(), probes: summary("probes"), wrong: summary("wrong") };
    Ok((ms(wall), verdict))
}

/// The sample, one probe after the other; returns each kind's mean time (ms), and how
/// many sampled probes met something else than declared.
fn one_at_a_time(sandbox: &Sandbox, strata: &Strata) -> ([f64; 3], usize) {
    let mut means = [0.0; 3];
    let mut mismatches = 0;
    for (kind, sample) in strata.sample.iter().enumerate() {
        let mut time = Duration::ZERO;
        for probe in sample {
            let to = SocketAddr::V4(SocketAddrV4::new(probe.address, probe.port));
            let start = Instant::now();
            let result = sandbox.in_netns(Some(&format!("{STACK}:{}", probe.source)), move || {
                TcpStream::connect_timeout(&to, TIMEOUT).map(drop)
            });
            time += start.elapsed();
            // A refused connection reached the destination: nothing listens on the port.
            let reached = match result {
                Ok(()) => true,
                Err(error) => error.kind() == ErrorKind::ConnectionRefused,
            };
            if reached != (probe.expected == Expected::Allowed) {
                mismatches += 1;
            }
        }
        if !sample.is_empty() {
            means[kind] = ms(time) / sample.len() as f64;
        }
    }
    let shown: Vec<String> = KINDS.iter().zip(means).map(|(kind, mean)| format!("{kind} {mean:.1} ms")).collect();
    eprint!(" (mean per probe: {})", shown.join(", "));
    (means, mismatches)
}

/// How the baseline was extrapolated: each kind's count and median mean time.
fn baseline_note(strata: &Strata, means: &[Vec<Sample>; 3], wrong: usize) -> String {
    let kinds: Vec<String> = KINDS
        .iter()
        .enumerate()
        .map(|(kind, label)| {
            let mean = median(&means[kind]).map_or("?".to_owned(), |mean| format!("{mean:.1}"));
            format!("{} {label} × {mean} ms", strata.totals[kind])
        })
        .collect();
    format!(
        "baseline: {} probes sampled, extrapolated as {}{}",
        strata.sampled(),
        kinds.join(" + "),
        if wrong > 0 { format!(" ({wrong} sampled probes not as declared)") } else { String::new() }
    )
}

/// The exit codes of the runs, the probe count the first reported and the wrong probes
/// each reported.
fn verdict_note(verdicts: &[Verdict], probes: usize) -> String {
    let show = |value: Option<u64>| value.map_or("?".to_owned(), |value| value.to_string());
    let exits: Vec<String> =
        verdicts.iter().map(|verdict| verdict.exit.map_or("signal".to_owned(), |code| code.to_string())).collect();
    let reported = verdicts.first().map_or("?".to_owned(), |verdict| show(verdict.probes));
    let wrong: Vec<String> = verdicts.iter().map(|verdict| show(verdict.wrong)).collect();
    format!("exit {}, {reported} probes reported ({probes} expected), {} wrong", exits.join("/"), wrong.join("/"))
}
