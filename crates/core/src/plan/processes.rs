//! Processes in the namespaces a plan deletes. They are the user's (started with `stackctl
//! exec`, or by a runtime), so a plan lists them and leaves them running, cut off from
//! everything once their namespace is gone, unless the user asks apply or destroy to end
//! them (`--kill-processes`). Processes in adopted namespaces are never touched: those
//! namespaces are not deleted.

use std::collections::BTreeMap;

use super::{Operation, Plan};
use crate::state::Resource;

/// A process, as observed in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Its command line, its arguments separated by spaces.
    pub command: String,
}

impl Process {
    /// Its command line on one line of output: its runs of white space (a script's
    /// newlines) as one space, and at most 60 characters.
    pub fn shown(&self) -> String {
        const LONGEST: usize = 60;
        let line = self.command.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.chars().count() <= LONGEST {
            return line;
        }
        let mut cut: String = line.chars().take(LONGEST - 1).collect();
        cut.push('…');
        cut
    }
}

/// What happens to the processes in the namespaces a plan deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fate {
    /// They keep running in the deleted namespace, where they reach nothing.
    #[default]
    LeftRunning,
    /// Apply ends them (SIGTERM, then SIGKILL) just before it deletes their namespace.
    Ended,
}

/// The processes that run in namespaces a plan deletes, by container, and what happens to
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stranded {
    pub processes: BTreeMap<String, Vec<Process>>,
    pub fate: Fate,
}

impl Stranded {
    /// The processes of `running` (by container, as observed) whose namespace `plan`
    /// deletes, removed or replaced: only namespaces that stackctl created.
    pub fn of(plan: &Plan, running: &BTreeMap<String, Vec<Process>>, fate: Fate) -> Stranded {
        let processes = plan
            .operations
            .iter()
            .filter_map(|operation| match operation {
                Operation::Delete { resource: Resource::Namespace(namespace) } if !namespace.adopted => {
                    let processes = running.get(&namespace.container).filter(|processes| !processes.is_empty())?;
                    Some((namespace.container.clone(), processes.clone()))
                }
                _ => None,
            })
            .collect();
        Stranded { processes, fate }
    }

    /// Whether apply ends the processes in a namespace it deletes: those listed, and those
    /// started since (during a swap's drain), read again just before the namespace goes.
    pub fn ends(&self) -> bool {
        self.fate == Fate::Ended
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Namespace;

    fn namespace(container: &str, adopted: bool) -> Resource {
        Resource::Namespace(Namespace {
            container: container.to_owned(),
            name: if adopted { format!("/run/netns/{container}") } else { format!("s:{container}") },
            adopted,
            loopback_up: true,
            conf: None,
        })
    }

    fn process(pid: u32) -> Process {
        Process { pid, command: format!("sleep {pid}") }
    }

    #[test]
    fn only_processes_in_created_namespaces_that_the_plan_deletes_are_stranded() {
        let plan = Plan {
            operations: vec![
                Operation::Delete { resource: namespace("gone", false) },
                Operation::Delete { resource: namespace("replaced", false) },
                Operation::Create { resource: namespace("replaced", false) },
                Operation::Delete { resource: namespace("adopted", true) },
                Operation::Delete { resource: namespace("idle", false) },
                Operation::Create { resource: namespace("new", false) },
            ],
            ..Plan::default()
        };
        let running: BTreeMap<String, Vec<Process>> = [
            ("gone", vec![process(10), process(11)]),
            ("replaced", vec![process(20)]),
            ("adopted", vec![process(30)]),
            ("idle", vec![]),
            ("kept", vec![process(40)]),
            ("new", vec![process(50)]),
        ]
        .into_iter()
        .map(|(container, processes)| (container.to_owned(), processes))
        .collect();
        let stranded = Stranded::of(&plan, &running, Fate::LeftRunning);
        let expected: BTreeMap<String, Vec<Process>> =
            [("gone", vec![process(10), process(11)]), ("replaced", vec![process(20)])]
                .into_iter()
                .map(|(container, processes)| (container.to_owned(), processes))
                .collect();
        assert_eq!(stranded.processes, expected);
        assert!(!stranded.ends(), "left running without --kill-processes");
        let ended = Stranded::of(&plan, &running, Fate::Ended);
        assert!(ended.ends());
        assert_eq!(ended.processes, expected, "the same are listed, whatever becomes of them");
    }

    /// Under the line of the namespace that goes (or is replaced), one line per process,
    /// a command on one line and cut short.
    #[test]
    fn a_plan_lists_the_processes_under_the_namespace_that_goes() {
        let plan = Plan {
            operations: vec![
                Operation::Delete { resource: namespace("gone", false) },
                Operation::Delete { resource: namespace("replaced", false) },
                Operation::Create { resource: namespace("replaced", false) },
            ],
            ..Plan::default()
        };
        let script = "python3 -c \nimport socket\nwhile True:\n    socket.create_connection(('app', 5000)).close()";
        let running = BTreeMap::from([
            ("gone".to_owned(), vec![process(10), Process { pid: 11, command: script.to_owned() }]),
            ("replaced".to_owned(), vec![process(20)]),
        ]);
        let left = crate::plan::render_text(
            &Plan { stranded: Stranded::of(&plan, &running, Fate::LeftRunning), ..plan.clone() },
            false,
        );
        let ended =
            crate::plan::render_text(&Plan { stranded: Stranded::of(&plan, &running, Fate::Ended), ..plan }, false);
        insta::assert_snapshot!(format!("{left}\n{ended}"));
    }
}
