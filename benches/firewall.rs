//! Times stackctl's firewall (issue 4) on the live kernel, each row against a baseline run
//! in the same run, every repetition in a fresh sandbox (tests/support/sandbox.rs: new
//! network and mount namespaces, so the machine's own firewall is never touched):
//!
//! - rule set: the tables of N containers with ten flows each (`STACKCTL_BENCH_SIZES`,
//!   default 100,1000), rendered and made in one `nft -f` transaction, first and again
//!   over existing tables, against one `nft` process per rule and set element;
//! - check: `stackctl check` on 100 of those containers, against its probes made one at a
//!   time (a sample, extrapolated);
//! - traffic: bulk throughput and short connections per second through a published port,
//!   against the same traffic sent straight to the container.
//!
//! Each cell is the median of `STACKCTL_BENCH_REPEAT` repetitions (default 3, and 1 for the
//! rule set of more than 100 containers). `STACKCTL_BENCH_ROWS` (default
//! `rules,check,traffic`) picks the rows, `STACKCTL_BENCH_MIB` (default 1024) the MiB each
//! throughput run sends. See BENCHMARKS.md.
//!
//! Run as root with `cargo bench --bench firewall`; prints a Markdown table on stdout, and
//! progress and failures on stderr.

#[path = "firewall/check.rs"]
mod check;
#[path = "firewall/report.rs"]
mod report;
#[path = "firewall/ruleset.rs"]
mod ruleset;
#[path = "firewall/run.rs"]
mod run;
#[path = "../tests/support/sandbox.rs"]
mod sandbox;
#[path = "firewall/split.rs"]
mod split;
#[path = "firewall/stack.rs"]
mod stack;
#[path = "firewall/traffic.rs"]
mod traffic;

use sandbox::Sandbox;

/// The size of the stack `stackctl check` runs on.
const CHECK_SIZE: usize = 100;

struct Config {
    sizes: Vec<usize>,
    repeat: Option<usize>,
    rows: Vec<String>,
    mib: usize,
}

impl Config {
    fn from_env() -> Config {
        let number = |text: &str, variable: &str| -> usize {
            text.trim().parse().unwrap_or_else(|_| panic!("{variable}: {text:?} is not a number"))
        };
        let list = |variable: &str, default: &str| -> Vec<String> {
            let text = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
            text.split(',').map(str::trim).filter(|part| !part.is_empty()).map(str::to_owned).collect()
        };
        let sizes: Vec<usize> =
            list("STACKCTL_BENCH_SIZES", "100,1000").iter().map(|part| number(part, "STACKCTL_BENCH_SIZES")).collect();
        assert!(sizes.iter().all(|&n| n >= 2), "STACKCTL_BENCH_SIZES: every size must be at least 2");
        let repeat =
            std::env::var("STACKCTL_BENCH_REPEAT").ok().map(|text| number(&text, "STACKCTL_BENCH_REPEAT").max(1));
        let rows = list("STACKCTL_BENCH_ROWS", "rules,check,traffic");
        for row in &rows {
            assert!(["rules", "check", "traffic"].contains(&row.as_str()), "STACKCTL_BENCH_ROWS: unknown row {row:?}");
        }
        let mib = std::env::var("STACKCTL_BENCH_MIB").map_or(1024, |text| number(&text, "STACKCTL_BENCH_MIB").max(1));
        Config { sizes, repeat, rows, mib }
    }

    /// Repetitions at N containers: a rule set of 1000 containers, with its baseline of
    /// thousands of processes, is measured once unless asked otherwise.
    fn repeats(&self, n: usize) -> usize {
        self.repeat.unwrap_or(if n <= 100 { 3 } else { 1 })
    }

    fn wants(&self, row: &str) -> bool {
        self.rows.iter().any(|wanted| wanted == row)
    }
}

fn main() {
    let config = Config::from_env();
    // Says why and skips when not root (fails when CI requires it).
    if !sandbox::may_make_sandboxes() {
        eprintln!("skipped: kernel benchmarks need root");
        return;
    }
    let first = Sandbox::new();
    // Runs each program once, untimed, so that the first timed run does not pay for reading
    // it from disk.
    let _ = first.stackctl().arg("--version").output();
    let _ = first.command("nft").arg("--version").output();
    drop(first);
    let dir = tempfile::Builder::new().prefix("stackctl-bench-firewall-").tempdir().expect("a temporary directory");

    let mut rows = Vec::new();
    if config.wants("rules") {
        rows.extend(ruleset::rows(dir.path(), &config.sizes, &|n| config.repeats(n)));
    }
    if config.wants("check") {
        rows.extend(check::rows(dir.path(), CHECK_SIZE, config.repeats(CHECK_SIZE)));
    }
    if config.wants("traffic") {
        rows.extend(traffic::rows(dir.path(), config.repeats(1), config.mib));
    }
    print!("{}", report::table(&rows));
}
