//! The live kernel, always in a sandbox (`support::sandbox`): each example of the scenarios
//! is applied and its reachability proved with real TCP connections from inside the
//! containers' namespaces, by name and by address; plans are idempotent, drift is repaired,
//! saved plans go stale, hot connects keep other connections up, killed applies converge,
//! and destroy removes the stack's objects and nothing else.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sandbox::{Sandbox, assert_success};
use stackctl::graph::StackGraph;
use stackctl::model::{Attachment, Protocol, Stack, Traffic};
use stackctl::state::{bridge_ifname, veth_ifname};
use stacks::{
    addresses, apply, assert_converged, example, namespace, plan, run, stack_of, stdout, topology, write_stack,
};

/// The port every test listener takes in every container; it answers with the container's name.
const PORT: u16 = 7000;

/// The containers with a namespace of their own.
fn namespaced(stack: &Stack) -> Vec<&str> {
    stack
        .containers
        .values()
        .filter(|container| container.attachment != Attachment::Host)
        .map(|container| container.name.as_str())
        .collect()
}

fn networks_of<'a>(stack: &'a Stack, container: &str) -> BTreeSet<&'a str> {
    stack.containers[container].memberships().iter().map(|membership| membership.network.as_str()).collect()
}

/// The TCP port a probe from `source` to `target` on `network` uses when the pair has a
/// declared flow there (a flow of all traffic takes `PORT`), with whether it is allowed.
fn allowed_port(stack: &Stack, source: &str, target: &str, network: &str) -> Option<u16> {
    StackGraph::build(stack)
        .allowed_flows()
        .into_iter()
        .filter(|flow| flow.source == source && flow.destination == target && flow.network == network)
        .find_map(|flow| match flow.traffic {
            Traffic::All => Some(PORT),
            Traffic::Ports { protocol: Protocol::Tcp, ports } => Some(ports.first),
            Traffic::Ports { .. } => None,
        })
}

/// Proves the reachability of an applied stack with real connections: every container
/// reaches, by name and by each address, exactly what the least-privilege graph allows it
/// (its declared flows, and everything on open networks), and nothing else: not
/// `PORT` of a member of its network it has no flow to, and nothing on another network.
/// An alias reaches one of the containers that carry it.
fn assert_reachability(sandbox: &Sandbox, file: &str) {
    let stack = stack_of(file);
    let containers = namespaced(&stack);
    let mut ports: BTreeSet<(&str, u16)> = containers.iter().map(|name| (*name, PORT)).collect();
    for flow in StackGraph::build(&stack).allowed_flows() {
        if let Traffic::Ports { protocol: Protocol::Tcp, ports: range } = flow.traffic
            && let Some(target) = containers.iter().find(|name| **name == flow.destination)
        {
            ports.insert((target, range.first));
        }
    }
    let _listeners: Vec<_> =
        ports.iter().map(|(name, port)| sandbox.listen(&namespace(&stack, name), *port, name)).collect();
    let addresses = addresses(&topology(sandbox, file));

    // Connections by address are made side by side: the blocked ones wait for a timeout.
    let mut attempts = Vec::new();
    for source in &containers {
        for (target, network, address) in &addresses {
            if target == source {
                continue;
            }
            let allowed = networks_of(&stack, source)
                .contains(network.as_str())
                .then(|| allowed_port(&stack, source, target, network))
                .flatten();
            // An allowed flow's port must connect; `PORT` must not, unless it is that port.
            if let Some(port) = allowed {
                attempts.push((source.to_string(), target.clone(), *address, port, true));
            }
            if allowed != Some(PORT) {
                attempts.push((source.to_string(), target.clone(), *address, PORT, false));
            }
        }
    }
    let by_address: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = attempts
            .into_iter()
            .map(|(source, target, address, port, reachable)| {
                let netns = namespace(&stack, &source);
                scope.spawn(move || {
                    let result = sandbox.connect(&netns, SocketAddr::from((address, port)));
                    (source, target, address, port, reachable, result)
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("connect thread")).collect()
    });
    for (source, target, address, port, reachable, result) in by_address {
        match (reachable, result) {
            (true, Ok(reply)) => assert_eq!(reply, target, "{source} reached the wrong container at {address}"),
            (true, Err(error)) => panic!("{source} cannot reach {target} at {address}:{port}: {error}"),
            (false, Ok(_)) => panic!("{source} reaches {target} at {address}:{port}, which it may not"),
            (false, Err(_)) => {}
        }
    }

    // By name, side by side too, on the port of an allowed flow, through the container's
    // name servers: a name resolves only on a shared network, and any other container's
    // name does not exist for it.
    let mut pairs: Vec<(&str, &str, u16, bool)> = Vec::new();
    for source in &containers {
        for target in containers.iter().filter(|target| *target != source) {
            let shared: Vec<&str> =
                networks_of(&stack, source).intersection(&networks_of(&stack, target)).copied().collect();
            match shared.iter().find_map(|network| allowed_port(&stack, source, target, network)) {
                Some(port) => pairs.push((source, target, port, true)),
                None if shared.is_empty() => pairs.push((source, target, PORT, false)),
                None => {}
            }
        }
    }
    let by_name: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = pairs
            .iter()
            .map(|(source, target, port, _)| scope.spawn(move || sandbox.connect_by_name(file, source, target, *port)))
            .collect();
        threads.into_iter().map(|thread| thread.join().expect("connect thread")).collect()
    });
    for ((source, target, port, reachable), result) in pairs.iter().zip(by_name) {
        match (reachable, result) {
            (true, Ok(reply)) => assert_eq!(&reply, target, "{source} resolved {target} to another container"),
            (true, Err(error)) => panic!("{source} cannot reach {target}:{port} by name: {error}"),
            (false, Ok(_)) => panic!("{source} reaches {target} by name without a shared network"),
            (false, Err(_)) => {}
        }
    }

    for source in &containers {
        for membership in stack.containers[*source].memberships() {
            for (carrier, theirs) in stack.memberships_on(&membership.network) {
                let Some(port) = allowed_port(&stack, source, &carrier.name, &membership.network) else { continue };
                for alias in &theirs.aliases {
                    let reply = sandbox.connect_by_name(file, source, alias, port);
                    let carriers: Vec<&str> = stack
                        .memberships_on(&membership.network)
                        .filter(|(_, m)| m.aliases.contains(alias))
                        .map(|(c, _)| c.name.as_str())
                        .collect();
                    let reply = reply.unwrap_or_else(|error| panic!("{source} cannot reach alias {alias}: {error}"));
                    assert!(
                        carriers.contains(&reply.as_str()),
                        "{source}: alias {alias} of {} reached {reply}",
                        carrier.name
                    );
                }
            }
        }
    }
}

fn scenario(name: &str) {
    let sandbox = Sandbox::new();
    let file = example(name);
    let text = apply(&sandbox, &file);
    assert!(text.contains("Apply complete"), "{text}");
    assert_converged(&sandbox, &file);
    assert_reachability(&sandbox, &file);
}

fn scenario_1_web_app_db() {
    scenario("web-app-db");
}

fn scenario_2_reverse_proxy() {
    scenario("reverse-proxy");
}

fn scenario_3_pets_tenants() {
    scenario("pets-tenants");
}

fn scenario_5_hot_connect() {
    scenario("hot-connect");
}

fn a_second_apply_changes_nothing_and_writes_nothing() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    // Every netlink change in the host namespace and the containers' would show here.
    let mut monitors: Vec<_> = [None, Some("shop:nginx"), Some("shop:flaskapp"), Some("shop:db")]
        .into_iter()
        .map(|netns| {
            let mut command = sandbox.command("ip");
            if let Some(netns) = netns {
                command.args(["-n", netns]);
            }
            command.args(["monitor", "link", "address", "route"]).stdout(Stdio::piped()).spawn().expect("ip monitor")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let second = apply(&sandbox, &file);
    std::thread::sleep(Duration::from_millis(300));
    let mut events = String::new();
    for monitor in &mut monitors {
        monitor.kill().expect("stop ip monitor");
        events += &sandbox::read_all(monitor.stdout.take().expect("piped"));
        let _ = monitor.wait();
    }
    assert_eq!(second, "No changes. The kernel matches the stack.\n");
    assert!(events.trim().is_empty(), "the second apply changed the kernel:\n{events}");
}

fn drift_is_shown_and_repaired() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let nginx = veth_ifname("shop", "nginx", "web_nw");
    let flaskapp_db = veth_ifname("shop", "flaskapp", "db_nw");
    let web_nw = bridge_ifname("shop", "web_nw");
    sandbox.sh(&format!(
        "ip link del {flaskapp_db}; ip link set {nginx} down; ip netns exec shop:db ip addr flush dev eth0; \
         sysctl -qw net.ipv4.conf.{web_nw}.send_redirects=1; ip netns exec shop:db sysctl -qw net.ipv4.ip_forward=1"
    ));
    let (code, text) = plan(&sandbox, &file);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("Changed outside stackctl since the last apply:"), "{text}");
    assert!(text.contains("link    flaskapp@db_nw: deleted"), "{text}");
    assert!(text.contains("link    nginx@web_nw: state: up -> down"), "{text}");
    assert!(text.contains("link    db@db_nw: address: 10.20.0.2/24 -> none"), "{text}");
    // A setting of the bridge is the stack's too: redirects would send members around the
    // host's firewall.
    assert!(
        text.contains(
            "bridge  web_nw: conf: forwarding=1 send_redirects=0 route_localnet=1 -> forwarding=1 send_redirects=1"
        ),
        "{text}"
    );
    // So is a container's namespace's: db must not route between networks.
    assert!(text.contains("netns   db: conf: forwarding=off ipv6=off -> forwarding=on ipv6=off"), "{text}");
    assert!(text.contains("Plan: 1 to add, 4 to change, 0 to destroy."), "{text}");
    apply(&sandbox, &file);
    assert_eq!(sandbox.sh("ip netns exec shop:db sysctl -n net.ipv4.ip_forward"), "0\n");
    assert_eq!(sandbox.sh(&format!("sysctl -n net.ipv4.conf.{web_nw}.send_redirects")), "0\n");
    assert_converged(&sandbox, &file);
    assert_reachability(&sandbox, &file);
}

fn a_saved_plan_applies_only_to_the_state_it_was_made_against() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let dir = tempfile::tempdir().expect("temporary directory");
    let saved = dir.path().join("plan.json").display().to_string();
    let output = run(&sandbox, &["-f", &file, "plan", "--out", &saved]);
    assert_success(&output, "plan --out");
    // Something changes between plan and apply: a bridge of the stack appears.
    apply(
        &sandbox,
        &write_stack(
            dir.path(),
            "db-only.yaml",
            "name: shop\nnetworks:\n  db_nw: { subnet: 10.20.0.0/24, internal: true }\n",
        ),
    );
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    // 75: a stale plan, which planning again makes good.
    assert_eq!(output.status.code(), Some(75));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "error: stale plan `{saved}`: the stack's objects on this host changed since the plan was made; nothing \
             was changed"
        )),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!sandbox.has_netns("shop:nginx"), "a stale plan changed the host");

    let output = run(&sandbox, &["-f", &file, "plan", "--out", &saved]);
    assert_success(&output, "plan --out");
    let output = run(&sandbox, &["apply", "--yes", &saved]);
    assert_success(&output, "apply of a fresh saved plan");
    assert_converged(&sandbox, &file);
}

fn hot_connect_and_disconnect_keep_other_connections_up() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    // An open network, as Docker's are: members reach each other on every port.
    let apart = "name: micro\nnetworks:\n  custom-network: { isolation: open }\n  other: {}\ncontainers:\n  vault-ms:\n    networks: [other]\n  security-processor:\n    networks: [custom-network]\n  peer:\n    networks: [custom-network]\n";
    let together = "name: micro\nnetworks:\n  custom-network: { isolation: open }\n  other: {}\ncontainers:\n  vault-ms:\n    networks: [other, custom-network]\n  security-processor:\n    networks: [custom-network]\n  peer:\n    networks: [custom-network]\n";
    let apart = write_stack(dir.path(), "apart.yaml", apart);
    let together = write_stack(dir.path(), "together.yaml", together);
    apply(&sandbox, &apart);
    let _listeners: Vec<_> = ["vault-ms", "security-processor", "peer"]
        .iter()
        .map(|name| sandbox.listen(&format!("micro:{name}"), PORT, name))
        .collect();
    let _echo = sandbox.listen_echo("micro:peer", 7001);
    let namespace_inode = |name: &str| sandbox.sh(&format!("stat -L -c %i /run/netns/{name}"));
    let inode = namespace_inode("micro:security-processor");

    let before = sandbox.connect_by_name(&apart, "security-processor", "vault-ms", PORT);
    assert!(before.is_err(), "vault-ms resolves before it shares a network: {before:?}");
    // A long-lived connection on the network that stays.
    let peer = addresses(&topology(&sandbox, &apart)).into_iter().find(|(c, _, _)| c == "peer").expect("peer").2;
    let connection = sandbox.open("micro:security-processor", SocketAddr::from((peer, 7001)));

    let (code, text) = plan(&sandbox, &together);
    assert_eq!(code, 2);
    // The plan's lines, not the steps under it.
    let changes: Vec<&str> =
        text.lines().take_while(|line| *line != "Steps:").filter(|line| line.starts_with("  ")).collect();
    // The link, the names, and the network's policy, which lists its members.
    assert!(
        changes.iter().all(|line| line.contains(" link ") || line.contains(" hosts ") || line.contains(" policy ")),
        "{text}"
    );
    assert_eq!(changes.iter().filter(|line| line.contains(" link ")).count(), 1, "{text}");
    apply(&sandbox, &together);
    connection.assert_alive("after connecting vault-ms");
    assert_eq!(sandbox.connect_by_name(&together, "security-processor", "vault-ms", PORT).as_deref(), Ok("vault-ms"));
    assert_eq!(namespace_inode("micro:security-processor"), inode, "the namespace was replaced");

    apply(&sandbox, &apart);
    connection.assert_alive("after disconnecting vault-ms");
    assert!(sandbox.connect_by_name(&apart, "security-processor", "vault-ms", PORT).is_err());
    apply(&sandbox, &together);
    connection.assert_alive("after reconnecting vault-ms");
    assert_eq!(sandbox.connect_by_name(&together, "security-processor", "vault-ms", PORT).as_deref(), Ok("vault-ms"));
}

/// A stack big enough that apply takes a while, so that kills land inside it.
fn many_containers(count: usize) -> String {
    let mut text = String::from("name: many\nnetworks:\n  front: {}\n  back: { internal: true }\ncontainers:\n");
    for index in 0..count {
        let networks = if index % 3 == 0 {
            "[front, back]"
        } else if index % 3 == 1 {
            "[front]"
        } else {
            "[back]"
        };
        text.push_str(&format!("  c{index}:\n    networks: {networks}\n"));
    }
    text
}

/// Kills a command started in a process group of its own, with what it started there
/// (`nft`, which would otherwise commit its transaction after the next apply looked), as an
/// interrupt from a terminal or a service manager does, and reaps it. The name server is not
/// in the group: apply starts it in a session of its own, to outlive apply.
fn kill_group(child: &mut std::process::Child) {
    let group = nix::unistd::Pid::from_raw(-i32::try_from(child.id()).expect("a pid"));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

fn apply_killed_at_any_moment_converges_on_the_next_apply() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_stack(dir.path(), "many.yaml", &many_containers(30));
    let start = Instant::now();
    apply(&sandbox, &file);
    let full = start.elapsed();
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");

    const POINTS: u32 = 16;
    for point in 0..POINTS {
        let delay = full * point / POINTS;
        let mut child = sandbox
            .stackctl()
            .args(["-f", &file, "apply", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start apply");
        std::thread::sleep(delay);
        kill_group(&mut child);
        let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
        assert_success(&output, &format!("apply after a kill at {delay:?}"));
        assert_converged(&sandbox, &file);
        let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
        assert_success(&output, "destroy");
    }
    // And a kill during destroy.
    apply(&sandbox, &file);
    let mut child = sandbox
        .stackctl()
        .args(["-f", &file, "destroy", "--yes"])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("destroy");
    std::thread::sleep(full / 3);
    kill_group(&mut child);
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
}

fn destroy_removes_what_the_stack_owns_and_nothing_else() {
    let sandbox = Sandbox::new();
    let file = example("hot-connect");
    sandbox.sh(
        "ip link add keep0 type bridge; ip netns add keep; mkdir -p /etc/netns/keep; echo x > /etc/netns/keep/hosts",
    );
    apply(&sandbox, &example("web-app-db"));
    apply(&sandbox, &file);
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert!(stdout(&output).contains("Destroy complete"), "{}", stdout(&output));
    let links = sandbox.sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1");
    let namespaces = sandbox.sh("ls /run/netns");
    // The other stack and the foreign objects are untouched.
    for name in ["keep0", "lo"] {
        assert!(links.lines().any(|link| link == name), "{name} is gone: {links}");
    }
    let others = links.lines().filter(|link| link.starts_with("stb") || link.starts_with("stv")).count();
    assert_eq!(others, 6, "only web-app-db's 2 bridges and 4 veth ends stay: {links}");
    assert_eq!(namespaces.lines().collect::<Vec<_>>(), ["keep", "shop:db", "shop:flaskapp", "shop:nginx"]);
    assert_eq!(sandbox.sh("ls /etc/netns").lines().filter(|name| name.starts_with("micro")).count(), 0);
    assert_eq!(sandbox.sh("cat /etc/netns/keep/hosts"), "x\n");
    let tables = sandbox.sh("nft list tables");
    assert_eq!(tables, "table inet stackctl-shop\ntable bridge stackctl-shop\n", "only web-app-db's tables stay");
    // Destroying again finds nothing.
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "second destroy");
    assert_eq!(stdout(&output), "No changes. The kernel matches the stack.\n");
}

/// `ip netns add` makes `/run/netns` a mount point of its own; had stackctl not made it a
/// shared one first, that would copy the stack's namespace mounts and their deletion would
/// fail with "device or resource busy".
fn a_namespace_added_with_ip_netns_after_apply_does_not_stop_destroy() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    sandbox.sh("ip netns add later");
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy after ip netns add");
    assert_eq!(sandbox.sh("ls /run/netns"), "later\n");
}

fn a_foreign_interface_with_a_colliding_name_is_left_untouched() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let name = bridge_ifname("shop", "web_nw");
    sandbox.sh(&format!("ip link add {name} type bridge; ip addr add 192.0.2.1/24 dev {name}"));
    let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("interface name `{name}`")) && stderr.contains("untouched"), "{stderr}");
    assert!(sandbox.sh(&format!("ip -br addr show {name}")).contains("192.0.2.1/24"), "the foreign bridge changed");
    assert!(sandbox.sh("ls /run/netns").is_empty(), "apply went ahead");
    let output = run(&sandbox, &["-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert!(sandbox.sh(&format!("ip -br link show {name}")).contains(&name), "destroy removed a foreign bridge");
}

fn a_scratch_namespace_can_play_the_host() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply in a scratch host");
    assert!(!sandbox.sh("ip -o link show").contains("stb"), "bridges in the sandbox's own namespace");
    assert_eq!(sandbox.sh("ip -n scratch -o link show type bridge | wc -l").trim(), "2");
    let output =
        sandbox.stackctl().env("STACKCTL_HOST_NETNS", "scratch").args(["-f", &file, "show"]).output().expect("show");
    assert_success(&output, "show");
    assert!(stdout(&output).contains("network web_nw  subnet 10.89.0.0/24  gateway 10.89.0.1"), "{}", stdout(&output));
    // nginx talks to flaskapp on 5000, and the scratch host's firewall lets it.
    let _listener = sandbox.listen("shop@scratch:flaskapp", 5000, "flaskapp");
    let script = "exec 3<>/dev/tcp/flaskapp/5000 && head -n 1 <&3";
    let output = sandbox
        .stackctl()
        .args(["--host-netns", "scratch", "-f", &file, "exec", "nginx", "--", "timeout", "3", "bash", "-c", script])
        .output()
        .expect("run stackctl exec");
    assert_success(&output, "nginx connects to flaskapp by name");
    assert_eq!(stdout(&output), "flaskapp\n");
    assert!(sandbox.sh("nft list tables").is_empty(), "rules in the sandbox's own namespace");
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "destroy", "--yes"]);
    assert_success(&output, "destroy");
    assert_eq!(sandbox.sh("ls /run/netns"), "scratch\n");
}

/// The scratch host that `--host-netns` creates is a working host: its loopback is up, so a
/// port published on 127.0.0.1 answers there, as the quick start has it.
fn a_scratch_host_reaches_its_published_port_on_loopback() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "apply", "--yes"]);
    assert_success(&output, "apply in a scratch host");
    assert!(sandbox.sh("ip -n scratch -br link show lo").contains("UP"), "the scratch host's loopback is down");
    // nginx's port 80 is published on 127.0.0.1:8080.
    let _nginx = sandbox.listen("shop@scratch:nginx", 80, "nginx");
    let reply = sandbox.connect("scratch", SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(reply.as_deref().ok(), Some("nginx"), "127.0.0.1:8080 in the scratch host: {reply:?}");
    // And `check` proves it from the scratch host.
    let output = run(&sandbox, &["--host-netns", "scratch", "-f", &file, "check"]);
    assert_success(&output, "check in a scratch host");
    assert!(stdout(&output).contains("  nginx 127.0.0.1:8080->80/tcp . X X\n"), "{}", stdout(&output));
}

fn a_second_apply_waits_for_the_lock() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    sandbox.sh("mkdir -p /run/stackctl/host");
    let mut holder = sandbox
        .command("flock")
        .args(["--exclusive", "/run/stackctl/host/shop.lock", "sleep", "30"])
        .spawn()
        .expect("hold the lock");
    sandbox.sh("for i in $(seq 50); do [ -e /run/stackctl/host/shop.lock ] && break; sleep 0.1; done");
    std::thread::sleep(Duration::from_millis(200));
    let output = run(&sandbox, &["-f", &file, "apply", "--yes", "--lock-timeout", "500ms"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("waiting for another apply of stack `shop`"), "{stderr}");
    assert!(stderr.contains("still holds the lock"), "{stderr}");
    assert!(!sandbox.has_netns("shop:nginx"));
    apply(&sandbox, &file);
}

fn without_privileges_commands_exit_77() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    for command in
        [&["plan"][..], &["apply", "--yes"], &["show"], &["destroy", "--yes"], &["exec", "nginx", "--", "true"]]
    {
        let output = sandbox
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
            .arg(env!("CARGO_BIN_EXE_stackctl"))
            .args(["-f", &file])
            .args(command)
            .output()
            .expect("run setpriv");
        assert_eq!(output.status.code(), Some(77), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("needs root"), "{command:?}");
    }
}

fn a_failure_says_what_was_made_before_it_and_leaves_no_drift() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = stacks::write_stack(
        dir.path(),
        "alone.yaml",
        "name: alone\ncontainers:\n  a: { network_mode: none }\n  b: { network_mode: none }\n",
    );
    // A namespace cannot be bound where a directory stands.
    sandbox.sh("mkdir /run/netns/alone:a /run/netns/alone:b");
    let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("error: create netns `a`") && said.contains("nothing was changed before it failed"),
        "{said}"
    );
    assert!(!said.trim_end().ends_with(':'), "the message ends in a colon with nothing after it: {said}");

    // Halfway: the first namespace is made, the second is not.
    sandbox.sh("rmdir /run/netns/alone:a");
    let output = run(&sandbox, &["-f", &file, "apply", "--yes"]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("1 of 2 operations were made before it failed") && said.contains("+ netns   a"), "{said}");
    let (code, text) = plan(&sandbox, &file);
    assert_eq!(code, 2, "{text}");
    assert!(!text.contains("Changed outside stackctl"), "a failed apply is not a change outside: {text}");
    sandbox.sh("rmdir /run/netns/alone:b");
    apply(&sandbox, &file);
    assert_converged(&sandbox, &file);
}

/// Changing a network's isolation takes each member's address away and gives it back
/// (with or without its subnet's route), which takes the default route with it: the plan
/// makes the route again, and one apply converges.
fn changing_isolation_keeps_the_default_routes() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = example("web-app-db");
    let text = std::fs::read_to_string(&file).expect("read scenario 1");
    let open = write_stack(dir.path(), "open.yaml", &text.replace("  web_nw: {}\n", "  web_nw: { isolation: open }\n"));
    apply(&sandbox, &file);
    for (to, back) in [(&open, "open"), (&file, "flows")] {
        apply(&sandbox, to);
        assert_converged(&sandbox, to);
        let routes = sandbox.sh("ip -n shop:nginx route show default");
        assert!(routes.contains("default via 10.89.0.1 dev eth0"), "isolation {back}: {routes}");
    }
}

harness::main! {
    Shared: [
        scenario_1_web_app_db,
        scenario_2_reverse_proxy,
        scenario_3_pets_tenants,
        scenario_5_hot_connect,
        a_second_apply_changes_nothing_and_writes_nothing,
        drift_is_shown_and_repaired,
        a_saved_plan_applies_only_to_the_state_it_was_made_against,
        hot_connect_and_disconnect_keep_other_connections_up,
        destroy_removes_what_the_stack_owns_and_nothing_else,
        a_namespace_added_with_ip_netns_after_apply_does_not_stop_destroy,
        a_foreign_interface_with_a_colliding_name_is_left_untouched,
        a_scratch_namespace_can_play_the_host,
        a_scratch_host_reaches_its_published_port_on_loopback,
        a_second_apply_waits_for_the_lock,
        without_privileges_commands_exit_77,
        a_failure_says_what_was_made_before_it_and_leaves_no_drift,
        changing_isolation_keeps_the_default_routes,
    ],
    Alone: [
        // Kills applies at moments spread over how long one apply took.
        apply_killed_at_any_moment_converges_on_the_next_apply,
    ],
}
