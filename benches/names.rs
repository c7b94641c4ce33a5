//! Names and aliases on the live kernel (issue 5), each in a fresh sandbox
//! (tests/support/sandbox.rs), against baselines run in the same run:
//!
//! - swap: scenario 1's `app` moving from flaskapp to flaskapp-v2 while clients that
//!   resolved it once open connection after connection: the swap's duration, the failed
//!   requests (there must be none), and the request rate through the swap against the rate
//!   with no swap.
//!
//! Run as root with `cargo bench --bench names`; prints a Markdown table on stdout.

#[path = "../tests/support/sandbox.rs"]
mod sandbox;
#[path = "names/swap.rs"]
mod swap;

fn main() {
    if sandbox::Sandbox::new().is_none() {
        return;
    }
    let dir = tempfile::Builder::new().prefix("stackctl-bench-names-").tempdir().expect("a temporary directory");
    println!("| row | stackctl | baseline | ratio |");
    println!("| --- | --- | --- | --- |");
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
