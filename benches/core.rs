//! Times the pure core on generated stacks: validate + plan on 100 and 1000 containers (100
//! networks), and `diff` between two revisions of the 1000-container stack. The target is
//! under 50 ms for 1000 containers.
//!
//! Absolute times depend on the machine, so every row is also given as a ratio to a
//! baseline timed in the same run: parsing a JSON document of the same stack with
//! `serde_json`, the least any reading of the stack file can cost.
//!
//! Run with `cargo bench --bench core`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use stackctl::graph::StackGraph;
use stackctl::model::{Stack, validate_file};
use stackctl::plan::{plan, render_text};
use stackctl::review::{Format, Review};
use stackctl::spec::{SourceFile, load};
use stackctl::state::{HostFacts, KernelState, lower};

const NETWORKS: usize = 100;
/// Timed runs per row, after two untimed ones that warm caches and the allocator.
const RUNS: usize = 21;
const TARGET: Duration = Duration::from_millis(50);

/// One container of a generated stack.
struct Container {
    name: String,
    /// Network indices, each with the aliases declared there.
    networks: Vec<(usize, Vec<String>)>,
    talks_to: Vec<String>,
    ports: Vec<String>,
}

/// A generated stack of `count` containers. Revision 1 differs from revision 0 as a
/// typical change does: about one container in a hundred is removed, ten are added, and
/// the flows of their network neighbours follow.
fn generate(count: usize, revision: u32) -> Vec<Container> {
    let removed = |index: usize| revision > 0 && index % 97 == 13;
    let added = if revision > 0 { 10 } else { 0 };
    let indices: Vec<usize> = (0..count + added).filter(|index| !removed(*index)).collect();
    let mut containers: Vec<Container> = indices
        .iter()
        .map(|&index| {
            let primary = index % NETWORKS;
            let mut networks = vec![(primary, Vec::new())];
            let secondary = (index * 7 + 1) % NETWORKS;
            if index % 3 == 0 && secondary != primary {
                networks.push((secondary, Vec::new()));
            }
            // Some containers join a group alias on their first network.
            if index % 5 == 0 {
                networks[0].1.push(format!("svc{primary}"));
            }
            let mut ports = Vec::new();
            if !internal(primary) {
                if index % 10 == 0 {
                    ports.push(format!("127.0.0.1:{}:80", 20000 + index));
                }
                if index % 25 == 3 {
                    ports.push("8080".to_owned());
                }
            }
            Container { name: format!("c{index}"), networks, talks_to: Vec::new(), ports }
        })
        .collect();
    // Two or three flows each, to names and aliases on the container's own networks.
    // Each name with the container that holds it: a container reaches itself without a
    // flow, so it may use an alias it holds only when another container holds it too.
    let mut names_on: Vec<Vec<(String, String)>> = vec![Vec::new(); NETWORKS];
    for container in &containers {
        for (network, aliases) in &container.networks {
            let names = std::iter::once(&container.name).chain(aliases);
            names_on[*network].extend(names.map(|name| (name.clone(), container.name.clone())));
        }
    }
    for (position, container) in containers.iter_mut().enumerate() {
        let candidates: BTreeSet<&String> = container
            .networks
            .iter()
            .flat_map(|(network, _)| &names_on[*network])
            .filter(|(_, holder)| *holder != container.name)
            .map(|(name, _)| name)
            .collect();
        let candidates: Vec<&String> = candidates.into_iter().collect();
        if candidates.is_empty() {
            continue;
        }
        let wanted = 2 + position % 2;
        for flow in 0..wanted.min(candidates.len()) {
            let target = candidates[(position * 31 + flow * 17) % candidates.len()];
            let traffic = [":80", ":5432", "/udp", ""][(position + flow) % 4];
            container.talks_to.push(format!("{target}{traffic}"));
        }
        container.talks_to.dedup();
    }
    containers
}

fn internal(network: usize) -> bool {
    network % 20 == 5
}

fn open(network: usize) -> bool {
    network % 10 == 7
}

fn quoted(list: &[String]) -> String {
    list.iter().map(|item| format!("\"{item}\"")).collect::<Vec<_>>().join(", ")
}

fn yaml(containers: &[Container]) -> String {
    let mut out = String::from("name: bench\nnetworks:\n");
    for network in 0..NETWORKS {
        out.push_str(&format!("  n{network}:\n"));
        out.push_str(&format!("    internal: {}\n", internal(network)));
        out.push_str(&format!("    isolation: {}\n", if open(network) { "open" } else { "flows" }));
    }
    out.push_str("containers:\n");
    for container in containers {
        out.push_str(&format!("  {}:\n    networks:\n", container.name));
        for (network, aliases) in &container.networks {
            out.push_str(&format!("      n{network}: {{ aliases: [{}] }}\n", aliases.join(", ")));
        }
        out.push_str(&format!("    talks_to: [{}]\n", quoted(&container.talks_to)));
        out.push_str(&format!("    ports: [{}]\n", quoted(&container.ports)));
    }
    out
}

/// The same stack as a JSON document, for the baseline.
fn json_text(containers: &[Container]) -> String {
    let networks: Map<String, Value> = (0..NETWORKS)
        .map(|network| {
            let isolation = if open(network) { "open" } else { "flows" };
            (format!("n{network}"), json!({ "internal": internal(network), "isolation": isolation }))
        })
        .collect();
    let containers: Map<String, Value> = containers
        .iter()
        .map(|container| {
            let memberships: Map<String, Value> = container
                .networks
                .iter()
                .map(|(network, aliases)| (format!("n{network}"), json!({ "aliases": aliases })))
                .collect();
            let value = json!({ "networks": memberships, "talks_to": container.talks_to, "ports": container.ports });
            (container.name.clone(), value)
        })
        .collect();
    json!({ "name": "bench", "networks": networks, "containers": containers }).to_string()
}

fn parse(text: &str) -> Stack {
    let file = SourceFile { name: "bench.yaml".to_owned(), text: text.to_owned() };
    let validated = validate_file(&file);
    validated.stack.unwrap_or_else(|| panic!("a generated stack is refused: {:#?}", validated.diagnostics))
}

struct Timing {
    median: Duration,
    min: Duration,
}

fn measure<T>(mut run: impl FnMut() -> T) -> Timing {
    for _ in 0..2 {
        black_box(run());
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(run());
            start.elapsed()
        })
        .collect();
    times.sort();
    Timing { median: times[RUNS / 2], min: times[0] }
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Prints one row; `target` is whether the 50 ms target applies to it.
fn row(label: &str, timing: &Timing, baseline: &Timing, target: bool) {
    let ratio = timing.median.as_secs_f64() / baseline.median.as_secs_f64();
    let verdict = match (target, timing.median <= TARGET) {
        (false, _) => "",
        (true, true) => "meets the 50 ms target",
        (true, false) => "MISSES the 50 ms target",
    };
    println!(
        "{label:<44} {:>11} {:>11} {:>9} {verdict}",
        millis(timing.median),
        millis(timing.min),
        format!("{ratio:.1}x")
    );
}

fn main() {
    let host = HostFacts::default();
    println!("{RUNS} runs per row; ratio = median / median of the same size's JSON baseline\n");
    println!("{:<44} {:>11} {:>11} {:>9}", "", "median", "min", "ratio");
    for count in [100, 1000] {
        let containers = generate(count, 0);
        let text = yaml(&containers);
        let json = json_text(&containers);
        let stack = parse(&text);
        let baseline = measure(|| serde_json::from_str::<Value>(&json).expect("valid JSON"));
        row(&format!("baseline: serde_json parse, {count} containers"), &baseline, &baseline, false);
        let file = SourceFile { name: "generated.yaml".to_owned(), text: text.clone() };
        row(&format!("  load (YAML to spec), {count}"), &measure(|| load(&file).expect("loads")), &baseline, false);
        row(&format!("load + validate, {count}"), &measure(|| parse(&text)), &baseline, false);
        let lower_plan = measure(|| {
            let desired = lower(&stack, &KernelState::default(), &host).expect("lowers");
            plan(&desired, &KernelState::default())
        });
        row(&format!("lower + plan against empty, {count}"), &lower_plan, &baseline, false);
        // The graph is built by validation, lowering and review alike, so it is shown on
        // its own.
        row(
            &format!("  of which StackGraph::build, {count}"),
            &measure(|| StackGraph::build(&stack)),
            &baseline,
            false,
        );
        let whole = measure(|| {
            let stack = parse(&text);
            let desired = lower(&stack, &KernelState::default(), &host).expect("lowers");
            render_text(&plan(&desired, &KernelState::default()), false)
        });
        row(&format!("validate + plan (end to end), {count}"), &whole, &baseline, count == 1000);

        if count == 1000 {
            let new_text = yaml(&generate(count, 1));
            let new_stack = parse(&new_text);
            let old_state = lower(&stack, &KernelState::default(), &host).expect("lowers").state;
            let core = measure(|| {
                let desired = lower(&new_stack, &old_state, &host).expect("lowers");
                plan(&desired, &old_state)
            });
            row("diff core: lower new against old + plan", &core, &baseline, false);
            let review = measure(|| Review::between(&stack, &new_stack).expect("lowers"));
            row("diff: Review::between", &review, &baseline, false);
            let diff = measure(|| {
                let (old, new) = (parse(&text), parse(&new_text));
                Review::between(&old, &new).expect("lowers").render(Format::Text, "old.yaml", "new.yaml", false)
            });
            row("diff (end to end: 2x validate, review, text)", &diff, &baseline, true);
        }
        println!();
    }
}
