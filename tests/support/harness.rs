//! The test harness of the binaries that hold kernel tests (`harness = false` for them in
//! Cargo.toml), on libtest-mimic, so that a kernel test this machine cannot run is reported
//! as ignored, never as passed, and so that the tests that time things run alone.
//!
//! A binary lists its tests with [`main!`], each under its [`Timing`]; filtering by name,
//! `--list`, `--ignored`, `--include-ignored` and `--test-threads` work as with libtest.
//! Without root, its kernel tests are ignored (`--include-ignored` runs them all the same,
//! and each then fails, saying it needs root), unless CI requires them
//! (`STACKCTL_KERNEL_TESTS`): then the binary fails at once ([`sandbox::may_make_sandboxes`]).

use std::process::ExitCode;
use std::sync::{PoisonError, RwLock};

use libtest_mimic::{Arguments, Trial};

use crate::sandbox;

/// Whether a test may run while others of its binary run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "not every binary has tests of both timings")]
pub enum Timing {
    /// It may: what it asserts holds however busy the machine is (a bound on time it sets,
    /// if any, is many times what it needs).
    Shared,
    /// It may not: it kills processes at moments it measured, floods, holds many
    /// connections, keeps load on a swap or a drain, or asserts on time windows. The
    /// tests beside it, each an apply or a swap of its own on the same two cores, would
    /// move its windows (a kill lands after the apply it meant to cut; a query answered in
    /// milliseconds alone waits past its second behind them) and make it fail for nothing
    /// it tests.
    Alone,
}

/// A test: its function's name, the function, and whether it may share the machine.
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
    pub timing: Timing,
}

/// Held shared by every test that may run beside others and exclusively by one that must
/// run alone, so that a [`Timing::Alone`] test waits for the running ones to end and no
/// other starts until it has. A test that panics poisons nothing the next one needs: the
/// lock guards no data.
static RUNNING: RwLock<()> = RwLock::new(());

/// Runs the binary's kernel tests as the command line asks: see the module's comment.
/// The tests that run alone come last, so that the others run side by side first instead
/// of queueing behind each of them.
pub fn run(tests: Vec<Test>) -> ExitCode {
    let arguments = Arguments::from_args();
    let possible = sandbox::may_make_sandboxes();
    let runs_ignored = arguments.ignored || arguments.include_ignored;
    if !(possible || runs_ignored || arguments.list) {
        eprintln!(
            "kernel tests need root: they are ignored here (CI sets STACKCTL_KERNEL_TESTS and runs them as root)"
        );
    }
    let (shared, alone): (Vec<Test>, Vec<Test>) = tests.into_iter().partition(|test| test.timing == Timing::Shared);
    let trials = shared.into_iter().chain(alone).map(|test| trial(test).with_ignored_flag(!possible)).collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn trial(test: Test) -> Trial {
    let run = test.run;
    match test.timing {
        Timing::Shared => Trial::test(test.name, move || {
            let _shared = RUNNING.read().unwrap_or_else(PoisonError::into_inner);
            run();
            Ok(())
        }),
        Timing::Alone => Trial::test(test.name, move || {
            let _alone = RUNNING.write().unwrap_or_else(PoisonError::into_inner);
            run();
            Ok(())
        }),
    }
}

/// The `main` of a binary of kernel tests: its test functions, grouped by [`Timing`], e.g.
/// `harness::main! { Shared: [a, b], Alone: [c] }`.
macro_rules! main {
    ($($timing:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        fn main() -> std::process::ExitCode {
            $crate::harness::run(vec![$($($crate::harness::Test {
                name: stringify!($test),
                run: $test,
                timing: $crate::harness::Timing::$timing,
            },)*)*])
        }
    };
}
pub(crate) use main;
