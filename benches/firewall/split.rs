//! The baseline of the rule-set rows: the same tables made the way iptables-era tools make
//! them, one `nft` process per rule and per set element, from a shell script.
//!
//! It is derived from the script stackctl renders, so that its content is exactly the
//! same: the skeleton (the tables, their sets without elements and their chains with
//! their hooks, but no rules) is made by one `nft -f`, then every
//! set element by its own `nft add element` and every rule by its own `nft add rule`, in
//! the order of the rendered script.

use std::fmt::Write as _;

/// A rendered script taken apart.
pub struct Split {
    /// The prelude, tables, sets and chains: one `nft -f` file.
    pub skeleton: String,
    /// One `nft` command per set element and rule.
    pub commands: Vec<String>,
}

/// What the line being read belongs to.
enum Block {
    Top,
    Table,
    /// Inside a set's `elements = { ... }`.
    Elements(String),
    Chain(String),
}

/// Takes apart the output of `stackctl::firewall::render`, whose layout is fixed: one
/// table, set, chain header, element or rule per line, blocks closed on lines of their own.
pub fn split(script: &str) -> Split {
    let mut skeleton = String::new();
    let mut commands = Vec::new();
    let mut table = String::new();
    let mut block = Block::Top;
    for line in script.lines() {
        let trimmed = line.trim();
        block = match block {
            Block::Top => {
                skeleton.push_str(line);
                skeleton.push('\n');
                match trimmed.strip_prefix("table ").and_then(|rest| rest.strip_suffix(" {")) {
                    Some(name) => {
                        table = name.to_owned();
                        Block::Table
                    }
                    None => Block::Top,
                }
            }
            Block::Table if trimmed == "}" => {
                skeleton.push_str("}\n");
                Block::Top
            }
            Block::Table => {
                let (kind, rest) = trimmed.split_once(' ').expect("a set or a chain");
                let name = rest.split_once(' ').expect("a name and a brace").0.to_owned();
                match kind {
                    // A set is declared on one line, its elements (if any) follow.
                    "set" => {
                        let declaration = trimmed.trim_end_matches('}').trim_end();
                        let _ = writeln!(skeleton, "  {declaration} }}");
                        if trimmed.ends_with('}') { Block::Table } else { Block::Elements(name) }
                    }
                    "chain" => {
                        let _ = writeln!(skeleton, "  {trimmed}");
                        Block::Chain(name)
                    }
                    _ => panic!("unexpected line in a rendered table: {line:?}"),
                }
            }
            // The brace that closes the set itself is the one indented like the set.
            Block::Elements(_) if line == "  }" => Block::Table,
            Block::Elements(set) => {
                if trimmed != "elements = {" && trimmed != "}" {
                    let element = trimmed.trim_end_matches(',');
                    commands.push(format!("add element {table} {set} {{ {element} }}"));
                }
                Block::Elements(set)
            }
            Block::Chain(_) if trimmed == "}" => {
                skeleton.push_str("  }\n");
                Block::Table
            }
            Block::Chain(chain) => {
                if trimmed.starts_with("type ") {
                    let _ = writeln!(skeleton, "    {trimmed}");
                } else {
                    commands.push(format!("add rule {table} {chain} {trimmed}"));
                }
                Block::Chain(chain)
            }
        };
    }
    Split { skeleton, commands }
}

/// The baseline script: the skeleton from its file, then one `nft` per command. Each
/// command is one argument in single quotes, which the rendered text never contains.
pub fn shell_script(skeleton_file: &str, commands: &[String]) -> String {
    let mut text = format!("set -e\nnft -f '{skeleton_file}'\n");
    for command in commands {
        assert!(!command.contains('\''), "a rendered rule holds a single quote: {command}");
        let _ = writeln!(text, "nft '{command}'");
    }
    text
}
