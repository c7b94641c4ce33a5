//! Drawings of the least-privilege graph, for `stackctl graph`: Mermaid for pull requests
//! and Markdown, DOT for Graphviz, and JSON for machines. The two pictures share one
//! [`scene::Scene`], so they always show the same things.

mod dot;
mod json;
mod mermaid;
mod scene;

use super::StackGraph;
use scene::Scene;

/// The drawings `stackctl graph --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawing {
    /// A Mermaid flowchart, which GitHub and GitLab render in Markdown.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
    /// Version 1 of the graph's JSON form.
    Json,
}

/// Draws the graph; the same graph always gives the same text, ending in a newline.
pub fn draw(graph: &StackGraph, drawing: Drawing) -> String {
    match drawing {
        Drawing::Mermaid => mermaid::render(&Scene::of(graph)),
        Drawing::Dot => dot::render(&Scene::of(graph)),
        Drawing::Json => json::render(graph),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate;
    use crate::spec::{SourceFile, load};

    /// An open network with names that Mermaid would misread, an alias, and a port on
    /// every interface: everything a drawing has to flag.
    const LAB: &str = "name: lab
networks:
  lab.net: { subnet: 10.9.0.0/24, isolation: open }
containers:
  end:
    networks:
      lab.net: { aliases: [o-1] }
    ports: [\"8080:80\"]
  x-ray: { networks: [lab.net], talks_to: [\"o-1:80\"] }
  zed: { networks: [lab.net] }
";

    #[test]
    fn drawings_flag_open_networks_exposed_ports_and_aliases() {
        let spec = load(&SourceFile { name: "lab.yaml".to_owned(), text: LAB.to_owned() }).expect("readable");
        let stack = validate(&spec).stack.expect("valid");
        let graph = StackGraph::build(&stack);
        let cases: &[(Drawing, &[&str])] = &[
            (
                Drawing::Mermaid,
                &[
                    "n_lab_dnet{{\"lab.net<br/>10.9.0.0/24, isolation: open\"}}:::open",
                    "p_end_0([\"*:8080->80/tcp<br/>all interfaces\"]):::exposed",
                    "c_end ---|\"alias o-1\"| n_lab_dnet",
                    "c_x_hray ==>|\"tcp/80 via o-1\"| c_end",
                    "c_end -.-|\"over-privilege on lab.net\"| c_zed",
                    "c_x_hray -.-|\"over-privilege on lab.net\"| c_zed",
                ],
            ),
            (
                Drawing::Dot,
                &[
                    "c_x_hray -> c_end [penwidth=2, label=\"tcp/80 via o-1\"];",
                    "c_end -> c_zed [dir=none, style=dashed, color=\"#c62828\", label=\"over-privilege on lab.net\"];",
                    "p_end_0 [label=\"*:8080->80/tcp\\nall interfaces\", shape=cds",
                ],
            ),
            (
                Drawing::Json,
                &[
                    "\"format_version\": 1,",
                    "\"isolation\": \"open\"",
                    "\"grant\": \"open_network\"",
                    "\"all_interfaces\": true,",
                    "\"containers\": [\n        \"x-ray\",\n        \"zed\"\n      ]",
                ],
            ),
        ];
        for (drawing, expected) in cases {
            let drawn = draw(&graph, *drawing);
            for text in *expected {
                assert!(drawn.contains(text), "{drawing:?} lacks {text}:\n{drawn}");
            }
            assert!(drawn.ends_with('\n'), "{drawing:?}");
        }
    }
}
