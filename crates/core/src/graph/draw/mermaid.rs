//! The graph as a Mermaid flowchart, for pull requests and Markdown: networks are blue
//! hexagons, containers boxes, the host a framed box, host ports grey stadiums (red when published on every
//! interface); flows are thick arrows, memberships thin grey lines, and the reach an
//! `open` network grants beyond the declared flows dashed red lines.

use std::fmt::Write;

use super::scene::{EdgeKind, NodeKind, Scene, SceneNode};

const CLASSES: &[(&str, &str)] = &[
    ("network", "fill:#e3f2fd,stroke:#1565c0"),
    ("open", "fill:#fff3e0,stroke:#e65100,stroke-width:2px"),
    ("port", "fill:#f5f5f5,stroke:#757575"),
    ("exposed", "fill:#ffebee,stroke:#c62828,stroke-width:2px"),
];
const MEMBERSHIP_STYLE: &str = "stroke:#9e9e9e";
const OVER_PRIVILEGE_STYLE: &str = "stroke:#c62828,stroke-width:2px";

pub fn render(scene: &Scene) -> String {
    let mut out = String::from("flowchart LR\n");
    // Mermaid has no title for flowcharts; a comment names the stack for whoever reads the source.
    writeln!(out, "    %% least-privilege graph of stack {}, drawn by stackctl", scene.stack)
        .expect("writing to a string");
    for (class, style) in CLASSES {
        writeln!(out, "    classDef {class} {style}").expect("writing to a string");
    }
    for node in &scene.nodes {
        writeln!(out, "    {}", node_line(node)).expect("writing to a string");
    }
    // `linkStyle` names edges by their place in the file, so the places are kept as they go.
    let mut memberships = Vec::new();
    let mut over_privilege = Vec::new();
    for (index, edge) in scene.edges.iter().enumerate() {
        let arrow = match edge.kind {
            EdgeKind::Membership => {
                memberships.push(index.to_string());
                "---"
            }
            EdgeKind::Flow => "==>",
            EdgeKind::Publish => "-->",
            EdgeKind::OverPrivilege => {
                over_privilege.push(index.to_string());
                "-.-"
            }
        };
        let label = edge.label.as_deref().map(|label| format!("|\"{}\"|", escape(label))).unwrap_or_default();
        writeln!(out, "    {} {arrow}{label} {}", edge.from, edge.to).expect("writing to a string");
    }
    for (indices, style) in [(memberships, MEMBERSHIP_STYLE), (over_privilege, OVER_PRIVILEGE_STYLE)] {
        if !indices.is_empty() {
            writeln!(out, "    linkStyle {} {style}", indices.join(",")).expect("writing to a string");
        }
    }
    out
}

fn node_line(node: &SceneNode) -> String {
    let label = node.lines.iter().map(|line| escape(line)).collect::<Vec<_>>().join("<br/>");
    match node.kind {
        NodeKind::Network { open } => {
            format!("{}{{{{\"{label}\"}}}}:::{}", node.id, if open { "open" } else { "network" })
        }
        NodeKind::Container => format!("{}[\"{label}\"]", node.id),
        NodeKind::Port { all_interfaces } => {
            format!("{}([\"{label}\"]):::{}", node.id, if all_interfaces { "exposed" } else { "port" })
        }
        NodeKind::Host => format!("{}[[\"{label}\"]]", node.id),
    }
}

/// Makes text safe inside a quoted Mermaid label with Mermaid's own entity codes: a quote
/// would end the label, `#` starts an entity and `<` an HTML tag. Names never hold these,
/// but a `netns` path may hold anything.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => escaped.push_str("#35;"),
            '"' => escaped.push_str("#quot;"),
            '<' => escaped.push_str("#lt;"),
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::draw::scene::SceneEdge;

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        let cases = [
            ("/run/netns/a\"b", "/run/netns/a#quot;b"),
            ("#1 <b>", "#35;1 #lt;b>"),
            ("line\nbreak", "line break"),
            ("127.0.0.1:8080->80/tcp", "127.0.0.1:8080->80/tcp"),
        ];
        for (text, expected) in cases {
            assert_eq!(escape(text), expected, "{text}");
        }
    }

    #[test]
    fn each_kind_has_its_own_shape_and_line() {
        let node = |id: &str, kind| SceneNode { id: id.to_owned(), kind, lines: vec![id.to_owned(), "x".to_owned()] };
        let edge = |kind, label: Option<&str>| SceneEdge {
            from: "c_a".to_owned(),
            to: "c_b".to_owned(),
            kind,
            label: label.map(str::to_owned),
        };
        let scene = Scene {
            stack: "s".to_owned(),
            nodes: vec![
                node("n_a", NodeKind::Network { open: true }),
                node("c_a", NodeKind::Container),
                node("p_a_0", NodeKind::Port { all_interfaces: true }),
            ],
            edges: vec![
                edge(EdgeKind::Membership, None),
                edge(EdgeKind::Flow, Some("tcp/80")),
                edge(EdgeKind::Publish, None),
                edge(EdgeKind::OverPrivilege, Some("over-privilege on a")),
            ],
        };
        let drawn = render(&scene);
        for line in [
            "    n_a{{\"n_a<br/>x\"}}:::open\n",
            "    c_a[\"c_a<br/>x\"]\n",
            "    p_a_0([\"p_a_0<br/>x\"]):::exposed\n",
            "    c_a --- c_b\n",
            "    c_a ==>|\"tcp/80\"| c_b\n",
            "    c_a --> c_b\n",
            "    c_a -.-|\"over-privilege on a\"| c_b\n",
            "    linkStyle 0 stroke:#9e9e9e\n",
            "    linkStyle 3 stroke:#c62828,stroke-width:2px\n",
        ] {
            assert!(drawn.contains(line), "{line} not in:\n{drawn}");
        }
    }
}
