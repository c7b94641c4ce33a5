//! Times stackctl against the live kernel, next to baselines doing the same work in the same
//! run: a hand-written `ip` script, netavark (Podman's network backend) and Docker.
//!
//! For N containers (`STACKCTL_BENCH_SIZES`, default 10,100,1000) on clamp(N/10, 2, 10)
//! networks, every third container on two: cold apply, no-op plan, one-change apply (one
//! more container) and destroy, each the wall-clock time of whole processes, median of
//! `STACKCTL_BENCH_REPEAT` repetitions (default 3 for N <= 100, else 1), each repetition
//! in a fresh sandbox (tests/support/sandbox.rs: new network and mount namespaces), and
//! the peak memory of stackctl. Docker, whose daemon makes its bridges on the machine
//! itself, runs for N <= `STACKCTL_BENCH_DOCKER_MAX` (default 100) only, with every
//! object named `stackctl-bench-...` and removed at the end. See BENCHMARKS.md.
//!
//! Run as root with `cargo bench --bench kernel`; prints a Markdown table on stdout, and
//! progress and failures on stderr.

#[path = "kernel/common.rs"]
mod common;
#[path = "kernel/docker.rs"]
mod docker;
#[path = "kernel/ip.rs"]
mod ip;
#[path = "kernel/netavark.rs"]
mod netavark;
#[path = "kernel/process.rs"]
mod process;
#[path = "../tests/support/sandbox.rs"]
mod sandbox;
#[path = "kernel/stackctl.rs"]
mod stackctl;
#[path = "kernel/topology.rs"]
mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Run, Sample};
use sandbox::Sandbox;
use topology::Topology;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Stackctl,
    Ip,
    Netavark,
    Docker,
}

const BASELINES: [Tool; 3] = [Tool::Ip, Tool::Netavark, Tool::Docker];

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Stackctl => "stackctl",
            Tool::Ip => "ip script",
            Tool::Netavark => "netavark",
            Tool::Docker => "docker",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Tool::Stackctl => "stackctl",
            Tool::Ip => "ip",
            Tool::Netavark => "netavark",
            Tool::Docker => "docker",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Cold,
    Noop,
    One,
    Destroy,
}

const OPS: [Op; 4] = [Op::Cold, Op::Noop, Op::One, Op::Destroy];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Cold => "cold apply (ms)",
            Op::Noop => "no-op plan (ms)",
            Op::One => "one-change apply (ms)",
            Op::Destroy => "destroy (ms)",
        }
    }
}

struct Config {
    sizes: Vec<usize>,
    repeat: Option<usize>,
    docker_max: usize,
}

impl Config {
    fn from_env() -> Config {
        let number = |text: &str, variable: &str| -> usize {
            text.trim().parse().unwrap_or_else(|_| panic!("{variable}: {text:?} is not a number"))
        };
        let sizes = match std::env::var("STACKCTL_BENCH_SIZES") {
            Ok(text) => text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| number(part, "STACKCTL_BENCH_SIZES"))
                .collect(),
            Err(_) => vec![10, 100, 1000],
        };
        assert!(sizes.iter().all(|&n| n >= 1), "STACKCTL_BENCH_SIZES: every size must be at least 1");
        let repeat =
            std::env::var("STACKCTL_BENCH_REPEAT").ok().map(|text| number(&text, "STACKCTL_BENCH_REPEAT").max(1));
        let docker_max = std::env::var("STACKCTL_BENCH_DOCKER_MAX")
            .map(|text| number(&text, "STACKCTL_BENCH_DOCKER_MAX"))
            .unwrap_or(100);
        Config { sizes, repeat, docker_max }
    }

    fn repeats(&self, n: usize) -> usize {
        self.repeat.unwrap_or(if n <= 100 { 3 } else { 1 })
    }
}

/// Why a whole column is not measured (`None`: it is).
#[derive(Default)]
struct Unavailable(BTreeMap<Tool, String>);

#[derive(Default)]
struct Results {
    samples: BTreeMap<(Op, usize, Tool), Vec<Sample>>,
    rss_kib: BTreeMap<(usize, Tool), u64>,
    /// The steps whose failure was already printed.
    reported: BTreeSet<(Op, usize, Tool)>,
}

impl Results {
    fn record(&mut self, n: usize, tool: Tool, run: Run) {
        let steps = [
            (Op::Cold, Some(run.cold)),
            (Op::Noop, run.noop),
            (Op::One, Some(run.one)),
            (Op::Destroy, Some(run.destroy)),
        ];
        for (op, sample) in steps {
            let Some(sample) = sample else { continue };
            if let Err(error) = &sample
                && self.reported.insert((op, n, tool))
            {
                eprintln!("FAILED {} N={n}, {}:\n  {error}", tool.label(), op.label());
            }
            self.samples.entry((op, n, tool)).or_default().push(sample);
        }
        if let Some(rss) = run.max_rss_kib {
            let peak = self.rss_kib.entry((n, tool)).or_default();
            *peak = (*peak).max(rss);
        }
    }

    /// The median time of a step in ms; `Err` when any repetition failed, `None` when
    /// it was not measured.
    fn median_ms(&self, op: Op, n: usize, tool: Tool) -> Option<Result<f64, ()>> {
        let samples = self.samples.get(&(op, n, tool))?;
        let mut times: Vec<Duration> = Vec::new();
        for sample in samples {
            match sample {
                Ok(time) => times.push(*time),
                Err(_) => return Some(Err(())),
            }
        }
        times.sort();
        let middle = times.len() / 2;
        let median = if times.len() % 2 == 1 { times[middle] } else { (times[middle - 1] + times[middle]) / 2 };
        Some(Ok(median.as_secs_f64() * 1000.0))
    }

    fn all_succeeded(&self, n: usize, tool: Tool) -> bool {
        OPS.iter().all(|&op| self.samples.get(&(op, n, tool)).is_none_or(|samples| samples.iter().all(Result::is_ok)))
    }

    /// Peak memory in MB (10^6 bytes), when every step of the column succeeded at this N.
    fn peak_mb(&self, n: usize, tool: Tool) -> Option<Result<f64, ()>> {
        let rss = self.rss_kib.get(&(n, tool))?;
        if !self.all_succeeded(n, tool) {
            return Some(Err(()));
        }
        Some(Ok(*rss as f64 * 1024.0 / 1e6))
    }
}

fn main() {
    let config = Config::from_env();
    // Says why and skips when not root (fails when CI requires it).
    if !sandbox::may_make_sandboxes() {
        eprintln!("skipped: kernel benchmarks need root");
        return;
    }
    let dir = tempfile::Builder::new().prefix("stackctl-bench-").tempdir().expect("a temporary directory");

    let mut unavailable = Unavailable::default();
    if !Path::new(netavark::NETAVARK).exists() {
        unavailable.0.insert(Tool::Netavark, "not installed".to_owned());
    }
    let docker = if config.sizes.iter().any(|&n| n <= config.docker_max) {
        eprintln!("docker: checking the daemon and building {} ...", docker::IMAGE);
        match docker::Docker::start(dir.path()) {
            Ok(docker) => Some(docker),
            Err(reason) => {
                eprintln!("docker: {reason}");
                unavailable.0.insert(Tool::Docker, reason);
                None
            }
        }
    } else {
        None
    };
    warm_up(&unavailable, docker.is_some());

    let mut results = Results::default();
    for &n in &config.sizes {
        let topology = Topology::generate(n);
        let plus_one = topology.plus_one();
        let size_dir = dir.path().join(format!("n{n}"));
        std::fs::create_dir_all(&size_dir).expect("create a directory per size");
        let stack = size_dir.join("stack.yaml");
        let stack2 = size_dir.join("stack-plus-one.yaml");
        std::fs::write(&stack, topology.stack_yaml()).expect("write the stack file");
        std::fs::write(&stack2, plus_one.stack_yaml()).expect("write the second stack file");
        validate(&stack);
        validate(&stack2);
        let ip_scripts = ip::write(&size_dir, &plus_one);
        let netavark_scripts = netavark::write(&size_dir, &plus_one);
        let docker_scripts = docker::write(&size_dir, &plus_one);
        let docker_here = docker.as_ref().filter(|_| n <= config.docker_max);

        let repeats = config.repeats(n);
        for repetition in 1..=repeats {
            eprintln!("N={n} ({} networks), repetition {repetition}/{repeats}", topology.networks);
            eprint!("  stackctl ...");
            results.record(n, Tool::Stackctl, stackctl::run(&stack, &stack2, &plus_one));
            settle(n);
            eprint!(" ip script ...");
            results.record(n, Tool::Ip, common::run_scripts(&ip_scripts, "ip"));
            settle(n);
            if !unavailable.0.contains_key(&Tool::Netavark) {
                eprint!(" netavark ...");
                results.record(n, Tool::Netavark, common::run_scripts(&netavark_scripts, "netavark"));
                settle(n);
            }
            if let Some(docker) = docker_here {
                eprint!(" docker ...");
                results.record(n, Tool::Docker, docker::run(&docker_scripts, docker));
                settle(n);
            }
            eprintln!(" done");
        }
    }
    drop(docker);

    print!("{}", table(&config, &results, &unavailable));
    println!();
    print!("{}", targets(&config, &results));
}

/// Runs each program once, untimed, so that the first timed run does not pay for reading
/// it from disk.
fn warm_up(unavailable: &Unavailable, docker: bool) {
    let sandbox = Sandbox::new();
    let _ = sandbox.stackctl().arg("--version").output();
    let _ = sandbox.command("ip").args(["-V"]).output();
    let _ = sandbox.command("bash").args(["-c", "true"]).output();
    if !unavailable.0.contains_key(&Tool::Netavark) {
        let _ = sandbox.command(netavark::NETAVARK).arg("--version").output();
    }
    if docker {
        let _ = Command::new("docker").arg("version").output();
    }
}

/// The kernel frees deleted namespaces in the background; give it time before the next
/// column, so that one column's clean-up does not land in the next one's time.
fn settle(n: usize) {
    std::thread::sleep(Duration::from_millis(200 + 2 * n as u64));
}

/// Checks a generated stack file with `stackctl validate` (which reads only the file), in
/// a sandbox all the same.
fn validate(file: &Path) {
    let sandbox = Sandbox::new();
    let output = sandbox.stackctl().arg("-f").arg(file).arg("validate").output().expect("run stackctl validate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the generated {} does not validate:\n{text}", file.display());
    if !text.contains("(0 warnings)") {
        eprintln!("note: stackctl validate on {}:\n{text}", file.display());
    }
}

/// One cell: a number, or why there is none.
enum Cell {
    Value(f64),
    Text(String),
}

impl Cell {
    fn from(measured: Option<Result<f64, ()>>, missing: &str) -> Cell {
        match measured {
            Some(Ok(value)) => Cell::Value(value),
            Some(Err(())) => Cell::Text("failed".to_owned()),
            None => Cell::Text(missing.to_owned()),
        }
    }

    fn render(&self, unit: &str) -> String {
        match self {
            Cell::Value(value) => format!("{}{unit}", number(*value)),
            Cell::Text(text) => text.clone(),
        }
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

fn ratio(baseline: &Cell, stackctl: &Cell) -> String {
    match (baseline, stackctl) {
        (Cell::Value(baseline), Cell::Value(stackctl)) if *stackctl > 0.0 => format!("{:.1}x", baseline / stackctl),
        _ => "—".to_owned(),
    }
}

/// The cell of a baseline where it has no number of its own.
fn baseline_cell(config: &Config, unavailable: &Unavailable, tool: Tool, n: usize, op: Option<Op>) -> Option<String> {
    if let Some(reason) = unavailable.0.get(&tool) {
        return Some(reason.clone());
    }
    if tool == Tool::Docker && n > config.docker_max {
        return Some(format!("skipped (N > {})", config.docker_max));
    }
    match (tool, op) {
        (_, Some(Op::Noop)) => Some("—".to_owned()),
        // Docker's work happens in its daemon, whose memory the bench does not measure.
        (Tool::Docker, None) => Some("—".to_owned()),
        _ => None,
    }
}

fn table(config: &Config, results: &Results, unavailable: &Unavailable) -> String {
    let mut text = String::new();
    let mut header = vec!["operation".to_owned(), "N".to_owned()];
    header.extend([Tool::Stackctl].iter().chain(&BASELINES).map(|tool| tool.label().to_owned()));
    header.extend(BASELINES.iter().map(|tool| format!("{}/stackctl", tool.short())));
    text.push_str(&format!("| {} |\n", header.join(" | ")));
    text.push_str(&format!("|{}\n", ["---|", "--:|", "--:|", "--:|", "--:|", "--:|", "--:|", "--:|", "--:|"].concat()));

    let mut row = |label: &str, n: usize, stackctl: Cell, baselines: Vec<(Tool, Option<String>, Cell)>, unit: &str| {
        let mut cells = vec![label.to_owned(), n.to_string(), stackctl.render(unit)];
        for (_, fixed, cell) in &baselines {
            cells.push(fixed.clone().unwrap_or_else(|| cell.render(unit)));
        }
        for (_, fixed, cell) in &baselines {
            cells.push(if fixed.is_some() { "—".to_owned() } else { ratio(cell, &stackctl) });
        }
        text.push_str(&format!("| {} |\n", cells.join(" | ")));
    };

    for op in OPS {
        for &n in &config.sizes {
            let stackctl = Cell::from(results.median_ms(op, n, Tool::Stackctl), "—");
            let baselines = BASELINES
                .iter()
                .map(|&tool| {
                    let fixed = baseline_cell(config, unavailable, tool, n, Some(op));
                    (tool, fixed, Cell::from(results.median_ms(op, n, tool), "—"))
                })
                .collect();
            row(op.label(), n, stackctl, baselines, "");
        }
    }
    for &n in &config.sizes {
        let stackctl = Cell::from(results.peak_mb(n, Tool::Stackctl), "—");
        let baselines = BASELINES
            .iter()
            .map(|&tool| {
                let fixed = baseline_cell(config, unavailable, tool, n, None);
                (tool, fixed, Cell::from(results.peak_mb(n, tool), "—"))
            })
            .collect();
        row("peak memory (MB, largest process)", n, stackctl, baselines, "");
    }
    text
}

fn targets(config: &Config, results: &Results) -> String {
    let verdict =
        |n: usize, measured: Option<Result<f64, ()>>, pass: &dyn Fn(f64) -> bool, show: &dyn Fn(f64) -> String| {
            if !config.sizes.contains(&n) {
                return format!("not measured (N={n} not in STACKCTL_BENCH_SIZES)");
            }
            match measured {
                Some(Ok(value)) => format!("{} ({})", if pass(value) { "PASS" } else { "MISS" }, show(value)),
                Some(Err(())) => "MISS (failed)".to_owned(),
                None => "MISS (not measured)".to_owned(),
            }
        };
    let speedup = match (results.median_ms(Op::Cold, 100, Tool::Ip), results.median_ms(Op::Cold, 100, Tool::Stackctl)) {
        (Some(Ok(ip)), Some(Ok(stackctl))) if stackctl > 0.0 => Some(Ok(ip / stackctl)),
        (Some(Err(())), _) | (_, Some(Err(()))) => Some(Err(())),
        _ => None,
    };
    let mut text = String::new();
    let lines = [
        (
            "cold apply of 100 containers at least 10x faster than the ip script",
            verdict(100, speedup, &|x| x >= 10.0, &|x| format!("{x:.1}x")),
        ),
        (
            "no-op plan of 1000 containers under 100 ms",
            verdict(1000, results.median_ms(Op::Noop, 1000, Tool::Stackctl), &|ms| ms < 100.0, &|ms| {
                format!("{ms:.1} ms")
            }),
        ),
        (
            "one-change apply at 1000 containers under 20 ms",
            verdict(1000, results.median_ms(Op::One, 1000, Tool::Stackctl), &|ms| ms < 20.0, &|ms| {
                format!("{ms:.1} ms")
            }),
        ),
        (
            "peak memory at 1000 containers under 50 MB",
            verdict(1000, results.peak_mb(1000, Tool::Stackctl), &|mb| mb < 50.0, &|mb| format!("{mb:.1} MB")),
        ),
    ];
    for (target, verdict) in lines {
        text.push_str(&format!("- {target}: {verdict}\n"));
    }
    text
}
