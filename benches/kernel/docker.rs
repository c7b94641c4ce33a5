//! The Docker baseline: the one part of the bench outside a sandbox, because the Docker
//! daemon makes its bridges in the machine's own namespace. Every object it creates is
//! named `stackctl-bench-...`, its subnets come from 10.213.0.0/16 (checked free first),
//! and a guard removes all of them, and the image, when dropped (also on a panic); left-
//! overs of an interrupted run are removed when the next one starts.
//!
//! Cold apply: `docker network create` per network, `docker run -d --network` per
//! container and `docker network connect` for second memberships, as a person would type
//! them. Destroy: one `docker rm -f` of all the containers, one `docker network rm` of
//! all the networks. The image holds only a static busybox; nothing is pulled.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::Ipv4Net;

use crate::common::{Run, checked, timed};
use crate::topology::{Topology, gateway, network_name, pool, subnet};

pub const PREFIX: &str = "stackctl-bench-";
pub const IMAGE: &str = "stackctl-bench-busybox";
const BUSYBOX: &str = "/bin/busybox";

/// Docker is usable and the image is built; dropping it removes everything the bench made.
pub struct Docker {
    _private: (),
}

impl Docker {
    /// Checks that Docker answers and that 10.213.0.0/16 is free, removes leftovers of an
    /// earlier run, and builds the image. `Err` says why the column cannot be measured.
    pub fn start(dir: &Path) -> Result<Docker, String> {
        let info = docker().args(["info", "--format", "{{.ServerVersion}}"]).output();
        match info {
            Ok(output) if output.status.success() => {}
            Ok(output) => return Err(format!("not available ({})", first_line(&output.stderr))),
            Err(error) => return Err(format!("not available ({error})")),
        }
        cleanup();
        let guard = Docker { _private: () };
        check_pool_free()?;
        build_image(dir)?;
        Ok(guard)
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        cleanup();
        let _ = docker().args(["image", "rm", "-f", IMAGE]).output();
    }
}

fn docker() -> Command {
    let mut command = Command::new("docker");
    command.env("DOCKER_CLI_HINTS", "false");
    command
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().find(|line| !line.trim().is_empty()).unwrap_or("").trim().to_owned()
}

/// The names of `docker ps -a` or `docker network ls` entries that carry the prefix.
fn ours(args: &[&str]) -> Vec<String> {
    let output = docker().args(args).output().expect("run docker");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|name| name.starts_with(PREFIX))
        .map(str::to_owned)
        .collect()
}

pub fn containers() -> Vec<String> {
    ours(&["ps", "-a", "--format", "{{.Names}}"])
}

pub fn networks() -> Vec<String> {
    ours(&["network", "ls", "--format", "{{.Name}}"])
}

/// Removes every container and network named with the prefix (not the image).
pub fn cleanup() {
    let containers = containers();
    if !containers.is_empty() {
        let _ = docker().args(["rm", "-f"]).args(&containers).output();
    }
    let networks = networks();
    if !networks.is_empty() {
        let _ = docker().args(["network", "rm"]).args(&networks).output();
    }
}

/// 10.213.0.0/16 must overlap no route of the machine and no Docker network.
fn check_pool_free() -> Result<(), String> {
    let pool = pool();
    let mut taken: Vec<String> = Vec::new();
    let routes = Command::new("ip").args(["-4", "route", "show", "table", "all"]).output().expect("run ip route");
    for line in String::from_utf8_lossy(&routes.stdout).lines() {
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        if matches!(first, "local" | "broadcast" | "unicast" | "multicast" | "blackhole" | "unreachable" | "prohibit") {
            first = words.next().unwrap_or("");
        }
        taken.push(first.to_owned());
    }
    let ids = String::from_utf8_lossy(&docker().args(["network", "ls", "-q"]).output().expect("docker").stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if !ids.is_empty() {
        let output = docker()
            .args(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"])
            .args(&ids)
            .output()
            .expect("docker network inspect");
        taken.extend(String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned));
    }
    for entry in taken {
        let net = entry.parse::<Ipv4Net>().ok().or_else(|| entry.parse::<std::net::Ipv4Addr>().ok().map(Ipv4Net::from));
        if let Some(net) = net
            && net.prefix_len() > 0
            && (net.contains(&pool.network()) || pool.contains(&net.network()))
        {
            return Err(format!("skipped ({pool} overlaps {net} on this machine)"));
        }
    }
    Ok(())
}

/// Builds `FROM scratch` + a static busybox, without any registry.
fn build_image(dir: &Path) -> Result<(), String> {
    let bytes = std::fs::read(BUSYBOX)
        .map_err(|error| format!("failed: {BUSYBOX}: {error} (apt-get install -y busybox-static)"))?;
    if !is_static_elf(&bytes) {
        return Err(format!("failed: {BUSYBOX} is not static (apt-get install -y busybox-static)"));
    }
    let context = dir.join("docker-image");
    std::fs::create_dir_all(&context).expect("create the image context");
    let copy = context.join("busybox");
    std::fs::write(&copy, &bytes).expect("copy busybox");
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make busybox executable");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /busybox\nCMD [\"/busybox\", \"sleep\", \"3600\"]\n",
    )
    .expect("write the Dockerfile");
    let output = docker().args(["build", "-q", "-t", IMAGE]).arg(&context).output().expect("docker build");
    if !output.status.success() {
        return Err(format!("failed: docker build: {}", first_line(&output.stderr)));
    }
    Ok(())
}

/// A 64-bit little-endian ELF without a PT_INTERP program header.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |at: usize| bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize);
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(offset), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..count).all(|index| bytes.get(offset + index * size..offset + index * size + 4) != Some(&3u32.to_le_bytes()[..]))
}

pub struct Scripts {
    pub create: PathBuf,
    pub one: PathBuf,
    pub destroy: PathBuf,
    pub count: usize,
}

fn name(local: &str) -> String {
    format!("{PREFIX}{local}")
}

/// Writes the three scripts for `plus_one`, the topology with the added container last.
pub fn write(dir: &Path, plus_one: &Topology) -> Scripts {
    let count = plus_one.len() - 1;
    let mut create = String::from("#!/bin/bash\nset -e\n");
    for network in 0..plus_one.networks {
        let _ = writeln!(
            create,
            "docker network create --subnet {} --gateway {} {} > /dev/null",
            subnet(network),
            gateway(network),
            name(&network_name(network))
        );
    }
    let mut one = String::from("#!/bin/bash\nset -e\n");
    for (index, container) in plus_one.containers.iter().enumerate() {
        let script = if index < count { &mut create } else { &mut one };
        let container_name = name(&container.name);
        let _ = writeln!(
            script,
            "docker run -d --name {container_name} --network {} {IMAGE} > /dev/null",
            name(&network_name(container.networks[0]))
        );
        for &network in &container.networks[1..] {
            let _ = writeln!(script, "docker network connect {} {container_name}", name(&network_name(network)));
        }
    }
    let all_containers: Vec<String> = plus_one.containers.iter().map(|container| name(&container.name)).collect();
    let all_networks: Vec<String> = (0..plus_one.networks).map(|network| name(&network_name(network))).collect();
    let destroy = format!(
        "#!/bin/bash\nset -e\ndocker rm -f {} > /dev/null\ndocker network rm {} > /dev/null\n",
        all_containers.join(" "),
        all_networks.join(" ")
    );
    let scripts = Scripts {
        create: dir.join("docker-create.sh"),
        one: dir.join("docker-one.sh"),
        destroy: dir.join("docker-destroy.sh"),
        count,
    };
    std::fs::write(&scripts.create, create).expect("write the docker create script");
    std::fs::write(&scripts.one, one).expect("write the docker one-change script");
    std::fs::write(&scripts.destroy, destroy).expect("write the docker destroy script");
    scripts
}

fn script(path: &Path, what: &str) -> crate::common::Sample {
    let mut command = Command::new("bash");
    command.arg(path).env("DOCKER_CLI_HINTS", "false");
    timed(command, what).0
}

fn check_running(expected: usize, what: &str) -> Result<(), String> {
    let running = ours(&["ps", "--format", "{{.Names}}"]).len();
    if running == expected {
        Ok(())
    } else {
        Err(format!("{what}: exited 0, but {running} containers run instead of {expected}"))
    }
}

/// One repetition; whatever happens, nothing named with the prefix is left but the image.
pub fn run(scripts: &Scripts, _docker: &Docker) -> Run {
    cleanup();
    let cold = checked(script(&scripts.create, "docker create script"), || {
        check_running(scripts.count, "docker create script")
    });
    let one = checked(script(&scripts.one, "docker one-container script"), || {
        check_running(scripts.count + 1, "docker one-container script")
    });
    let destroy = checked(script(&scripts.destroy, "docker teardown script"), || {
        let (containers, networks) = (containers(), networks());
        if containers.is_empty() && networks.is_empty() {
            Ok(())
        } else {
            Err(format!("docker teardown script: exited 0, but left {containers:?} and {networks:?}"))
        }
    });
    cleanup();
    Run { cold, noop: None, one, destroy, max_rss_kib: None }
}
