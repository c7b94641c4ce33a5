//! The `ip` script baseline: the topology built as a person would write it by hand, one
//! `ip` command per step, run by bash inside a fresh sandbox.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::common::{Scripts, netns};
use crate::topology::{Container, Topology, gateway, subnet};

fn bridge(network: usize) -> String {
    format!("sbn{network}")
}

/// Writes the three scripts for `plus_one`, the topology with the added container last.
pub fn write(dir: &Path, plus_one: &Topology) -> Scripts {
    let addresses = plus_one.addresses();
    let count = plus_one.len() - 1;
    let mut create = String::from("#!/bin/bash\nset -e\n");
    for network in 0..plus_one.networks {
        let _ = writeln!(create, "ip link add {} type bridge", bridge(network));
        let _ = writeln!(
            create,
            "ip addr add {}/{} dev {}",
            gateway(network),
            subnet(network).prefix_len(),
            bridge(network)
        );
        let _ = writeln!(create, "ip link set {} up", bridge(network));
    }
    for (index, container) in plus_one.containers[..count].iter().enumerate() {
        container_commands(&mut create, index, container, &addresses[index]);
    }
    let mut one = String::from("#!/bin/bash\nset -e\n");
    container_commands(&mut one, count, &plus_one.containers[count], &addresses[count]);
    let mut destroy = String::from("#!/bin/bash\nset -e\n");
    for container in &plus_one.containers {
        let _ = writeln!(destroy, "ip netns del {}", netns(container));
    }
    for network in 0..plus_one.networks {
        let _ = writeln!(destroy, "ip link del {}", bridge(network));
    }
    let scripts = Scripts {
        create: dir.join("ip-create.sh"),
        one: dir.join("ip-one.sh"),
        destroy: dir.join("ip-destroy.sh"),
        netns: plus_one.containers.iter().map(netns).collect(),
    };
    std::fs::write(&scripts.create, create).expect("write the ip create script");
    std::fs::write(&scripts.one, one).expect("write the ip one-change script");
    std::fs::write(&scripts.destroy, destroy).expect("write the ip destroy script");
    scripts
}

fn container_commands(script: &mut String, index: usize, container: &Container, addresses: &[Ipv4Addr]) {
    let ns = netns(container);
    let _ = writeln!(script, "ip netns add {ns}");
    for (position, (&network, address)) in container.networks.iter().zip(addresses).enumerate() {
        let host = format!("v{index}n{network}");
        let _ = writeln!(script, "ip link add {host} type veth peer name eth{position} netns {ns}");
        let _ = writeln!(script, "ip link set {host} master {} up", bridge(network));
        let _ = writeln!(script, "ip -n {ns} addr add {address}/{} dev eth{position}", subnet(network).prefix_len());
        let _ = writeln!(script, "ip -n {ns} link set eth{position} up");
    }
    let _ = writeln!(script, "ip -n {ns} link set lo up");
    let _ = writeln!(script, "ip -n {ns} route add default via {}", gateway(container.networks[0]));
}
