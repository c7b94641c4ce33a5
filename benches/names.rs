//! Names and aliases on the live kernel (issue 5), each in a fresh sandbox
//! (tests/support/sandbox.rs), against baselines run in the same run:
//!
//! - swap: scenario 1's `app` moving from flaskapp to flaskapp-v2 while clients that
//!   resolved it once open connection after connection: the swap's duration, the failed
//!   requests (there must be none), and the request rate through the swap against the rate
//!   with no swap.
//! - dns: stackctl's name server against aardvark-dns serving the same 20 names in the same
//!   sandbox: queries per second with 64 in flight, and p50/p99 latency of one query at a
//!   time, the two measured in turn for `STACKCTL_BENCH_REPEAT` rounds (default 5), each
//!   cell the median of the rounds. The ratio is stackctl's over aardvark's (above 1 is
//!   better for queries/s, below 1 for latency).
//!
//! `STACKCTL_BENCH_ROWS` (default `swap,dns`) picks the groups. Run as root with
//! `cargo bench --bench names`; prints a Markdown table on stdout, then the issue's
//! targets, and progress and failures on stderr. See BENCHMARKS.md.

#[path = "names/dns.rs"]
mod dns;
#[path = "names/query.rs"]
mod query;
#[path = "../tests/support/sandbox.rs"]
mod sandbox;
#[path = "../tests/support/stacks.rs"]
mod stacks;
#[path = "names/swap.rs"]
mod swap;

const GROUPS: [&str; 2] = ["swap", "dns"];
/// Rounds of the dns group unless `STACKCTL_BENCH_REPEAT` says otherwise.
const DNS_ROUNDS: usize = 5;
/// The latency target for one query at a time.
const P99_TARGET_US: f64 = 1000.0;

fn main() {
    let text = std::env::var("STACKCTL_BENCH_ROWS").unwrap_or_else(|_| GROUPS.join(","));
    let groups: Vec<&str> = text.split(',').map(str::trim).filter(|group| !group.is_empty()).collect();
    for group in &groups {
        assert!(GROUPS.contains(group), "STACKCTL_BENCH_ROWS: unknown group {group:?} (known: {})", GROUPS.join(","));
    }
    let rounds = std::env::var("STACKCTL_BENCH_REPEAT").map_or(DNS_ROUNDS, |text| {
        text.trim()
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("STACKCTL_BENCH_REPEAT: {text:?} is not a number"))
            .max(1)
    });
    if !sandbox::may_make_sandboxes() {
        eprintln!("skipped: kernel benchmarks need root");
        return;
    }
    let dir = tempfile::Builder::new().prefix("stackctl-bench-names-").tempdir().expect("a temporary directory");
    println!("| row | stackctl | baseline | ratio |");
    println!("| --- | --- | --- | --- |");
    if groups.contains(&"swap") {
        match swap::run(dir.path()) {
            Ok(run) => {
                println!("| swap duration (drain included) | {:.0} ms | - | - |", run.took.as_secs_f64() * 1000.0);
                println!(
                    "| requests/s through the swap vs with no swap | {:.0} | {:.0} | {:.2}x |",
                    run.rate_during,
                    run.rate_before,
                    run.rate_during / run.rate_before
                );
                println!("| failed requests of {} | {} | - | - |", run.requests, run.failed);
            }
            Err(error) => eprintln!("swap: {error}"),
        }
    }
    if groups.contains(&"dns") {
        match dns::run(dir.path(), rounds) {
            Ok(run) => dns_rows(&run, rounds),
            Err(error) => eprintln!("dns: {error}"),
        }
    }
}

/// The dns rows, then the two targets.
fn dns_rows(run: &dns::DnsRun, rounds: usize) {
    let baseline = match &run.aardvark_version {
        Ok(version) => version.clone(),
        Err(_) => "aardvark-dns".to_owned(),
    };
    let theirs = |value: &dyn Fn(&dns::Sample) -> f64| -> Result<f64, String> {
        match (&run.aardvark_version, &run.aardvark) {
            (Err(why), _) => Err(why.clone()),
            (Ok(_), Err(_)) => Err("failed".to_owned()),
            (Ok(_), Ok(samples)) => dns::median(samples.iter().map(value)).ok_or_else(|| "-".to_owned()),
        }
    };
    let ours = |value: &dyn Fn(&dns::Sample) -> f64| dns::median(run.stackctl.iter().map(value));
    let row = |label: String, value: &dyn Fn(&dns::Sample) -> f64| {
        let ours = ours(value);
        let theirs = theirs(value);
        let cell = |value: Option<f64>| value.map_or("-".to_owned(), |value| format!("{value:.0}"));
        let ratio = match (ours, &theirs) {
            (Some(ours), Ok(theirs)) if *theirs > 0.0 => format!("{:.2}x", ours / theirs),
            _ => "-".to_owned(),
        };
        let theirs = theirs.map_or_else(|why| why, |value| cell(Some(value)));
        println!("| {label} | {} | {theirs} | {ratio} |", cell(ours));
    };
    let in_flight = dns::IN_FLIGHT;
    row(format!("DNS queries/s, {in_flight} in flight (vs {baseline}), median of {rounds}"), &|sample| {
        sample.per_second
    });
    row("DNS p50 latency, one at a time (µs)".to_owned(), &|sample| sample.p50_us);
    row("DNS p99 latency, one at a time (µs)".to_owned(), &|sample| sample.p99_us);
    let lost = |samples: &[dns::Sample]| {
        let lost: u64 = samples.iter().map(|sample| sample.lost + sample.failed + sample.latency_lost).sum();
        lost.to_string()
    };
    let their_lost = match (&run.aardvark_version, &run.aardvark) {
        (Err(why), _) => why.clone(),
        (Ok(_), Err(_)) => "failed".to_owned(),
        (Ok(_), Ok(samples)) => lost(samples),
    };
    println!("| DNS queries lost or not answered, all rounds | {} | {their_lost} | - |", lost(&run.stackctl));

    println!();
    let speed = match (ours(&|sample| sample.per_second), theirs(&|sample| sample.per_second)) {
        (Some(ours), Ok(theirs)) if theirs > 0.0 => {
            format!("{} ({:.2}x)", if ours >= theirs { "PASS" } else { "MISS" }, ours / theirs)
        }
        (_, Err(why)) => format!("not measured (aardvark-dns: {why})"),
        _ => "MISS (not measured)".to_owned(),
    };
    println!("- DNS queries/s at least aardvark-dns's: {speed}");
    let p99 = match ours(&|sample| sample.p99_us) {
        Some(p99) if p99 < P99_TARGET_US => format!("PASS ({p99:.0} µs)"),
        Some(p99) => format!("MISS ({p99:.0} µs)"),
        None => "MISS (not measured)".to_owned(),
    };
    println!("- DNS p99 latency under 1 ms, one at a time: {p99}");
}

/// Runs `stackctl -f FILE VERB --yes` in the sandbox: `Err` with its error output when it
/// fails.
fn stackctl(sandbox: &sandbox::Sandbox, file: &str, verb: &str) -> Result<(), String> {
    let output = sandbox.stackctl().args(["-f", file, verb, "--yes"]).output().map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{verb} {file}: {}", String::from_utf8_lossy(&output.stderr).trim()))
    }
}
