//! The rule-set rows: making a stack's firewall (N containers, ten flows each) the way
//! stackctl does, one rendered script in one `nft -f` transaction, against one `nft`
//! process per rule and element; first on an empty host, then again over the tables the
//! first run left (the steady state: every apply that changes a rule replaces the
//! tables). A whole `stackctl apply` of the stack is timed too, for context.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::report::{Ratio, Row, Sample, median, reported};
use crate::run::{expect_items, ms, nft_script, settle, timed};
use crate::sandbox::Sandbox;
use crate::split::{shell_script, split};
use crate::stack::{FLOWS, flows_yaml, render_script};

/// The generated files of one size.
struct Files {
    containers: usize,
    yaml: String,
    stack: PathBuf,
    /// The baseline's shell script.
    baseline: PathBuf,
    /// Rules and set elements in the rendered script.
    items: usize,
}

fn prepare(dir: &Path, containers: usize) -> Files {
    let dir = dir.join(format!("rules-n{containers}"));
    std::fs::create_dir_all(&dir).expect("a directory per size");
    let yaml = flows_yaml(containers);
    let stack = dir.join("stack.yaml");
    std::fs::write(&stack, &yaml).expect("write the stack file");
    let split = split(&render_script(&yaml));
    let skeleton = dir.join("skeleton.nft");
    std::fs::write(&skeleton, &split.skeleton).expect("write the skeleton");
    let baseline = dir.join("one-per-rule.sh");
    let skeleton = skeleton.to_str().expect("a UTF-8 temporary path");
    std::fs::write(&baseline, shell_script(skeleton, &split.commands)).expect("write the baseline script");
    Files { containers, yaml, stack, baseline, items: split.commands.len() }
}

/// The samples of every repetition at one size, in ms.
#[derive(Default)]
struct Samples {
    first: Vec<Sample>,
    again: Vec<Sample>,
    render: Vec<Sample>,
    baseline_first: Vec<Sample>,
    baseline_again: Vec<Sample>,
    whole: Vec<Sample>,
}

/// The rows of every size in `sizes`, each the median of `repeats(N)` repetitions.
pub fn rows(dir: &Path, sizes: &[usize], repeats: &dyn Fn(usize) -> usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut whole_rows = Vec::new();
    for &containers in sizes {
        let files = prepare(dir, containers);
        let mut samples = Samples::default();
        let repeats = repeats(containers);
        for repetition in 1..=repeats {
            eprint!("rule set, N={containers} ({} items), repetition {repetition}/{repeats}:", files.items);
            repeat(&files, &mut samples);
            eprintln!(" done");
        }
        let n = containers.to_string();
        let render = median(&samples.render)
            .map(|ms| format!(" (validate, lower and render: {ms:.1} ms of it)"))
            .unwrap_or_default();
        rows.push(Row {
            measure: "rule-set apply, empty host (ms)".to_owned(),
            n: n.clone(),
            ours: median(&samples.first),
            theirs: median(&samples.baseline_first),
            ratio: Ratio::BaselineOverStackctl,
            note: format!(
                "{} rules and set elements ({FLOWS} flows per container) in one `nft -f`{render}; baseline: \
                 one `nft` process each",
                files.items
            ),
        });
        rows.push(Row {
            measure: "rule-set re-apply over existing tables (ms)".to_owned(),
            n: n.clone(),
            ours: median(&samples.again),
            theirs: median(&samples.baseline_again),
            ratio: Ratio::BaselineOverStackctl,
            note: "the same, over the tables of the first run (render included)".to_owned(),
        });
        whole_rows.push(Row {
            measure: "whole `stackctl apply`, empty host (ms)".to_owned(),
            n,
            ours: median(&samples.whole),
            theirs: Err("—".to_owned()),
            ratio: Ratio::None,
            note: "context: namespaces, bridges, veths, addresses, hosts files and the firewall".to_owned(),
        });
    }
    rows.extend(whole_rows);
    rows
}

/// One repetition at one size: each side in a fresh sandbox of its own.
fn repeat(files: &Files, samples: &mut Samples) {
    eprint!(" stackctl ...");
    let sandbox = Sandbox::new();
    let (first, render) = match stackctl_apply(&sandbox, files, "render + nft -f (empty host)") {
        Ok((total, render)) => (Ok(total), Ok(render)),
        Err(error) => (Err(error), Err("failed".to_owned())),
    };
    samples.first.push(reported(first, "rule-set apply, stackctl"));
    samples.render.push(render);
    let again = stackctl_apply(&sandbox, files, "render + nft -f (over existing tables)").map(|(total, _)| total);
    samples.again.push(reported(again, "rule-set re-apply, stackctl"));
    drop(sandbox);

    eprint!(" one nft per rule ...");
    let sandbox = Sandbox::new();
    let first = baseline_apply(&sandbox, files, "one nft per rule (empty host)");
    samples.baseline_first.push(reported(first, "rule-set apply, one nft per rule"));
    let again = baseline_apply(&sandbox, files, "one nft per rule (over existing tables)");
    samples.baseline_again.push(reported(again, "rule-set re-apply, one nft per rule"));
    drop(sandbox);

    eprint!(" stackctl apply ...");
    let sandbox = Sandbox::new();
    let mut command = sandbox.stackctl();
    command.arg("-f").arg(&files.stack).args(["apply", "--yes"]);
    let whole = timed(command, None, "stackctl apply")
        .and_then(|(wall, _)| expect_items(&sandbox, files.items, "stackctl apply").map(|()| ms(wall)));
    samples.whole.push(reported(whole, "whole stackctl apply"));
    drop(sandbox);
    settle(files.containers);
}

/// What stackctl does for the firewall in an apply: render, then one `nft -f -`. Returns
/// the total and the render time, in ms.
fn stackctl_apply(sandbox: &Sandbox, files: &Files, what: &str) -> Result<(f64, f64), String> {
    let start = Instant::now();
    let script = render_script(&files.yaml);
    let render = start.elapsed();
    let nft = nft_script(sandbox, &script, what)?;
    expect_items(sandbox, files.items, what)?;
    Ok((ms(render + nft), ms(render)))
}

fn baseline_apply(sandbox: &Sandbox, files: &Files, what: &str) -> Result<f64, String> {
    let mut command = sandbox.command("bash");
    command.arg(&files.baseline);
    let (wall, _) = timed(command, None, what)?;
    expect_items(sandbox, files.items, what)?;
    Ok(ms(wall))
}
