//! The topology as an aligned text table, one block per network.

use std::fmt::Write;

use super::Topology;

fn or_missing<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "missing".to_owned(), |value| value.to_string())
}

pub fn render_table(topology: &Topology) -> String {
    let mut out = format!("stack {}\n", topology.stack);
    for network in &topology.networks {
        let _ = writeln!(
            out,
            "\nnetwork {}  subnet {}  gateway {}  bridge {}{}",
            network.name,
            or_missing(network.subnet),
            or_missing(network.gateway),
            or_missing(network.bridge.as_deref()),
            if network.up || network.bridge.is_none() { "" } else { " (down)" },
        );
        let rows: Vec<[String; 5]> = network
            .members
            .iter()
            .map(|member| {
                [
                    member.container.clone(),
                    or_missing(member.address),
                    if member.aliases.is_empty() { "-".to_owned() } else { member.aliases.join(",") },
                    or_missing(member.ifname.as_deref()),
                    match &member.host_ifname {
                        Some(name) if member.up => name.clone(),
                        Some(name) => format!("{name} (down)"),
                        None => "missing".to_owned(),
                    },
                ]
            })
            .collect();
        let header = ["CONTAINER", "ADDRESS", "ALIASES", "IFNAME", "HOST IFNAME"].map(str::to_owned);
        let mut widths = header.clone().map(|cell| cell.len());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            let _ = writeln!(out, "  {}", line.join("  ").trim_end());
        }
        for alias in &network.aliases {
            let backends: Vec<String> =
                alias.backends.iter().map(|backend| format!("{} ({})", backend.container, backend.address)).collect();
            let _ = writeln!(
                out,
                "  alias {} at {} -> {}",
                alias.name,
                or_missing(alias.address),
                if backends.is_empty() { "missing".to_owned() } else { backends.join(", ") }
            );
        }
    }
    let _ = writeln!(out);
    for container in &topology.containers {
        let _ = writeln!(
            out,
            "container {}  netns {}  default route {}{}",
            container.name,
            or_missing(container.netns.as_deref()),
            container.default_route.as_deref().unwrap_or("none"),
            if container.ports.is_empty() {
                String::new()
            } else {
                let ports: Vec<String> = container.ports.iter().map(ToString::to_string).collect();
                format!("  ports {}", ports.join(", "))
            },
        );
    }
    out
}
