//! Several stacks on one host, always in a sandbox (`support::sandbox`): their subnets
//! never overlap, whether they are applied one after the other or at the same time, and
//! a declared subnet that another stack or the host uses is refused before any change.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::process::Output;

use ipnet::Ipv4Net;
use sandbox::Sandbox;
use stacks::{apply, run, stdout, topology, write_stack};

fn stack(name: &str, subnet: Option<&str>) -> String {
    let network = match subnet {
        Some(subnet) => format!("back:\n    subnet: {subnet}"),
        None => "back: {}".to_owned(),
    };
    format!("name: {name}\nnetworks:\n  {network}\ncontainers:\n  app:\n    networks: [back]\n")
}

fn subnet_of(sandbox: &Sandbox, file: &str) -> Ipv4Net {
    let topology = topology(sandbox, file);
    topology["networks"][0]["subnet"].as_str().expect("a subnet").parse().expect("a subnet")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stacks applied at the same moment pick their subnets one at a time: each apply either
/// makes its network in a subnet no other stack has, or, when another took the subnet it
/// planned while it was deciding, changes nothing and says to apply again; the next apply
/// picks a free one.
fn stacks_applied_at_once_never_share_a_subnet() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let names = ["one", "two", "three"];
    let files: Vec<String> =
        names.iter().map(|name| write_stack(dir.path(), &format!("{name}.yaml"), &stack(name, None))).collect();
    let applies: Vec<std::process::Child> = files
        .iter()
        .map(|file| {
            sandbox
                .stackctl()
                .args(["-f", file, "apply", "--yes"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start apply")
        })
        .collect();
    let mut refused = 0;
    for (file, apply_once) in files.iter().zip(applies) {
        let output = apply_once.wait_with_output().expect("apply ends");
        if !output.status.success() {
            let message = stderr(&output);
            assert!(message.contains("changed while the plan was shown"), "{file}: {message}");
            assert!(message.contains("run `stackctl apply` again"), "{message}");
            refused += 1;
            apply(&sandbox, file);
        }
    }
    let subnets: Vec<Ipv4Net> = files.iter().map(|file| subnet_of(&sandbox, file)).collect();
    for (index, subnet) in subnets.iter().enumerate() {
        for other in &subnets[index + 1..] {
            assert!(!subnet.contains(other) && !other.contains(subnet), "{subnets:?} ({refused} refused at first)");
        }
    }
    for file in &files {
        stacks::assert_converged(&sandbox, file);
    }
}

/// A declared subnet that another stack's network has, or that the host routes, is an
/// error in the stack file at the subnet, naming who has it; nothing is made, not even
/// the lock.
fn a_declared_subnet_that_the_host_uses_is_refused_before_any_change() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = write_stack(dir.path(), "first.yaml", &stack("first", None));
    apply(&sandbox, &first);
    let taken = subnet_of(&sandbox, &first);
    sandbox
        .sh("ip link add lan0 type veth peer name lan1 && ip addr add 172.30.0.1/16 dev lan0 && ip link set lan0 up");
    for (subnet, user) in
        [(taken.to_string(), "stack `first`".to_owned()), ("172.30.5.0/24".to_owned(), "interface `lan0`".to_owned())]
    {
        let second = write_stack(dir.path(), "second.yaml", &stack("second", Some(&subnet)));
        let before = sandbox.sh("ls -R /run /etc/netns; ip -o link; nft list ruleset");
        for command in ["plan", "apply"] {
            let mut args = vec!["-f", second.as_str(), command];
            if command == "apply" {
                args.push("--yes");
            }
            let output = run(&sandbox, &args);
            let message = stderr(&output);
            assert_eq!(output.status.code(), Some(65), "{command} with {subnet}: {message}{}", stdout(&output));
            assert!(message.contains(&format!("subnet {subnet} of network `back` overlaps")), "{message}");
            assert!(message.contains(&format!("which {user} uses")), "{message}");
            assert!(message.contains("second.yaml is invalid"), "{message}");
            assert!(
                message.contains(&format!(" 4 │     subnet: {subnet}")),
                "the error points at the subnet: {message}"
            );
        }
        assert_eq!(sandbox.sh("ls -R /run /etc/netns; ip -o link; nft list ruleset"), before, "nothing changed");
    }
}

harness::main! {
    Shared: [
        stacks_applied_at_once_never_share_a_subnet,
        a_declared_subnet_that_the_host_uses_is_refused_before_any_change,
    ],
}
