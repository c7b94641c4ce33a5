//! The netavark baseline (Podman's network backend): per container, `ip netns add` (what
//! the container runtime does before calling netavark) and one `netavark setup` with the
//! container's networks and static addresses in its JSON options; teardown is `netavark
//! teardown` and `ip netns del` per container (netavark removes a bridge with its last
//! member). Run by bash inside a fresh sandbox; netavark's iptables rules land there too.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::common::{Scripts, netns, quote};
use crate::topology::{Topology, gateway, network_name, subnet};

pub const NETAVARK: &str = "/usr/lib/podman/netavark";

/// netavark's `--config` directory (for aardvark-dns, which these networks do not use),
/// on the sandbox's private `/run`.
const CONFIG: &str = "/run/stackctl-bench-netavark";

/// Writes one JSON options file per container and the three scripts, for `plus_one`.
pub fn write(dir: &Path, plus_one: &Topology) -> Scripts {
    let json_dir = dir.join("netavark");
    std::fs::create_dir_all(&json_dir).expect("create the netavark options directory");
    let addresses = plus_one.addresses();
    let count = plus_one.len() - 1;
    let mut create = String::from("#!/bin/bash\nset -e\n");
    let mut one = String::from("#!/bin/bash\nset -e\n");
    let mut destroy = String::from("#!/bin/bash\nset -e\n");
    for (index, container) in plus_one.containers.iter().enumerate() {
        let mut networks = Map::new();
        let mut network_info = Map::new();
        for (position, (&network, address)) in container.networks.iter().zip(&addresses[index]).enumerate() {
            let name = network_name(network);
            networks
                .insert(name.clone(), json!({ "interface_name": format!("eth{position}"), "static_ips": [address] }));
            network_info.insert(
                name.clone(),
                json!({
                    "name": name,
                    "id": format!("{:064x}", network + 1),
                    "driver": "bridge",
                    "network_interface": format!("nvb{network}"),
                    "subnets": [{ "subnet": subnet(network), "gateway": gateway(network) }],
                    "ipv6_enabled": false,
                    "internal": false,
                    "dns_enabled": false,
                }),
            );
        }
        let options = json!({
            "container_id": format!("{:064x}", 0x1_0000 + index),
            "container_name": container.name,
            "networks": Value::Object(networks),
            "network_info": Value::Object(network_info),
        });
        let file = json_dir.join(format!("{}.json", container.name));
        std::fs::write(&file, serde_json::to_string_pretty(&options).expect("JSON")).expect("write netavark options");
        let ns = netns(container);
        let script = if index < count { &mut create } else { &mut one };
        let _ = writeln!(script, "ip netns add {ns}");
        let _ = writeln!(script, "{NETAVARK} --config {CONFIG} setup /run/netns/{ns} < {} > /dev/null", quote(&file));
        let _ = writeln!(destroy, "{NETAVARK} --config {CONFIG} teardown /run/netns/{ns} < {}", quote(&file));
        let _ = writeln!(destroy, "ip netns del {ns}");
    }
    let scripts = Scripts {
        create: dir.join("netavark-create.sh"),
        one: dir.join("netavark-one.sh"),
        destroy: dir.join("netavark-destroy.sh"),
        netns: plus_one.containers.iter().map(netns).collect(),
    };
    std::fs::write(&scripts.create, create).expect("write the netavark create script");
    std::fs::write(&scripts.one, one).expect("write the netavark one-change script");
    std::fs::write(&scripts.destroy, destroy).expect("write the netavark destroy script");
    scripts
}
