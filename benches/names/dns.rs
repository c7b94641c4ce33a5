//! stackctl's name server against aardvark-dns (Podman's), serving the same names in the
//! same sandbox and run: queries per second with many in flight, and the latency of one
//! query at a time, measured by the same client (query.rs) from a namespace on each
//! server's network, the two servers measured in turn, round after round, so that the
//! machine's noise falls on both.
//!
//! stackctl: a stack of [`CONTAINERS`] containers on one network, applied in the sandbox;
//! apply starts the name server on the gateway, and the client asks from the first
//! container's namespace. aardvark-dns: a bridge with the same kind of gateway in the
//! sandbox's host namespace, a client namespace on it by a veth pair, and a configuration
//! with the same names, the client's address among them (aardvark answers its containers).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::query::{self, Queries};
use crate::sandbox::Sandbox;
use crate::stackctl;

/// Where Debian's package puts aardvark-dns.
pub const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";
/// Containers, named `c00`, `c01`, …; the client is the first.
const CONTAINERS: usize = 20;
/// Aliases of a few containers, served by both (the load asks the containers' names).
const ALIASES: [(usize, &str); 4] = [(1, "api"), (2, "db"), (3, "cache"), (7, "web")];
/// Queries outstanding at once in the throughput run.
pub const IN_FLIGHT: usize = 64;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);
const LATENCY_FOR: Duration = Duration::from_secs(2);
const LATENCY_MOST: usize = 5000;
/// Untimed load on each server before the first round.
const WARM_UP: Duration = Duration::from_millis(500);

const STACK: &str = "dnsbench";
const STACKCTL_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const AARDVARK_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The client's namespace on aardvark's network, and its address there.
const AARDVARK_CLIENT: &str = "aclient";
const AARDVARK_CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// aardvark's configuration directory, inside the sandbox.
const AARDVARK_CONFIG: &str = "/run/aardvark-bench";

/// One round of one server.
#[derive(Debug, Clone)]
pub struct Sample {
    pub per_second: f64,
    /// Queries lost in the throughput run, and replies that did not answer.
    pub lost: u64,
    pub failed: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Queries of the latency run: answered, and lost or not answered.
    pub latency_queries: usize,
    pub latency_lost: u64,
}

pub struct DnsRun {
    pub stackctl: Vec<Sample>,
    /// aardvark-dns's version (`aardvark-dns 1.4.0`), or why it was not measured.
    pub aardvark_version: Result<String, String>,
    pub aardvark: Result<Vec<Sample>, String>,
}

/// The names both servers serve, and the ones the load asks.
fn names() -> Vec<String> {
    (0..CONTAINERS).map(|n| format!("c{n:02}")).collect()
}

fn alias_of(n: usize) -> Option<&'static str> {
    ALIASES.iter().find(|(container, _)| *container == n).map(|(_, alias)| *alias)
}

pub fn run(dir: &Path, rounds: usize) -> Result<DnsRun, String> {
    let sandbox = Sandbox::new();
    let file = dir.join("dns.yaml");
    std::fs::write(&file, stack_text()).map_err(|error| format!("write {}: {error}", file.display()))?;
    let file = file.display().to_string();
    stackctl(&sandbox, &file, "apply")?;
    let outcome = with_stack(&sandbox, rounds);
    let destroyed = stackctl(&sandbox, &file, "destroy");
    // The last destroy stops the server; should it not, it is stopped here, by its pid.
    let left = sandbox.name_server("host");
    if let Some(pid) = left {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let run = outcome?;
    destroyed?;
    match left {
        Some(pid) => Err(format!("destroy left stackctl's name server (pid {pid}) running")),
        None => Ok(run),
    }
}

fn stack_text() -> String {
    let mut text = format!("name: {STACK}\nnetworks:\n  names:\n    subnet: 10.77.0.0/24\ncontainers:\n");
    for n in 0..CONTAINERS {
        match alias_of(n) {
            Some(alias) => {
                text.push_str(&format!("  c{n:02}:\n    networks:\n      names: {{ aliases: [{alias}] }}\n"))
            }
            None => text.push_str(&format!("  c{n:02}:\n    networks: [names]\n")),
        }
    }
    text
}

/// Everything between apply and destroy: aardvark started (and stopped, whatever
/// happens), both servers checked, warmed and measured in turn.
fn with_stack(sandbox: &Sandbox, rounds: usize) -> Result<DnsRun, String> {
    let ours = Server { netns: format!("{STACK}:c00"), address: SocketAddr::from((STACKCTL_GATEWAY, 53)) };
    ours.check(sandbox).map_err(|error| format!("stackctl's name server: {error}"))?;
    let aardvark_version = aardvark_version();
    let aardvark = match &aardvark_version {
        Ok(_) => Aardvark::start(sandbox).and_then(|running| {
            let server =
                Server { netns: AARDVARK_CLIENT.to_owned(), address: SocketAddr::from((AARDVARK_GATEWAY, 53)) };
            server.check(sandbox).map_err(|error| format!("aardvark-dns: {error}"))?;
            Ok((running, server))
        }),
        Err(why) => Err(why.clone()),
    };
    if let Err(error) = &aardvark
        && aardvark_version.is_ok()
    {
        eprintln!("dns: aardvark-dns not measured: {error}");
    }

    ours.warm(sandbox)?;
    if let Ok((_, theirs)) = &aardvark {
        theirs.warm(sandbox)?;
    }
    let mut stackctl = Vec::new();
    let mut baseline = Vec::new();
    for round in 1..=rounds {
        let sample = ours.measure(sandbox).map_err(|error| format!("stackctl, round {round}: {error}"))?;
        eprintln!("dns: round {round} stackctl: {}", describe(&sample));
        stackctl.push(sample);
        if let Ok((_, theirs)) = &aardvark {
            let sample = theirs.measure(sandbox).map_err(|error| format!("aardvark-dns, round {round}: {error}"))?;
            eprintln!("dns: round {round} aardvark-dns: {}", describe(&sample));
            baseline.push(sample);
        }
    }
    let aardvark = aardvark.map(|(running, _)| {
        drop(running);
        baseline
    });
    Ok(DnsRun { stackctl, aardvark_version, aardvark })
}

fn describe(sample: &Sample) -> String {
    format!(
        "{:.0} queries/s ({} lost, {} failed); p50 {:.0} µs, p99 {:.0} µs over {} queries ({} lost)",
        sample.per_second,
        sample.lost,
        sample.failed,
        sample.p50_us,
        sample.p99_us,
        sample.latency_queries,
        sample.latency_lost
    )
}

/// A name server as the client sees it: the namespace it asks from, and the address.
struct Server {
    netns: String,
    address: SocketAddr,
}

impl Server {
    /// Waits for the server to answer, then asks it every name once: both must serve the
    /// same names before they are compared.
    fn check(&self, sandbox: &Sandbox) -> Result<(), String> {
        let address = self.address;
        sandbox.in_netns(Some(&self.netns), move || {
            if !query::answers(address, "c01", Duration::from_secs(5)) {
                return Err(format!("no answer for c01 at {address} within 5 s"));
            }
            let aliases = ALIASES.iter().map(|(_, alias)| (*alias).to_owned());
            for name in names().into_iter().chain(aliases) {
                if !query::answers(address, &name, Duration::from_secs(1)) {
                    return Err(format!("no answer for {name} at {address}"));
                }
            }
            Ok(())
        })
    }

    fn warm(&self, sandbox: &Sandbox) -> Result<(), String> {
        let address = self.address;
        sandbox
            .in_netns(Some(&self.netns), move || {
                query::throughput(address, &mut Queries::new(&names()), IN_FLIGHT, WARM_UP).map(|_| ())
            })
            .map_err(|error| format!("warm up {address}: {error}"))
    }

    /// One round: the throughput run, then the latency run.
    fn measure(&self, sandbox: &Sandbox) -> Result<Sample, String> {
        let address = self.address;
        sandbox
            .in_netns(Some(&self.netns), move || -> std::io::Result<Sample> {
                let mut queries = Queries::new(&names());
                let load = query::throughput(address, &mut queries, IN_FLIGHT, THROUGHPUT_FOR)?;
                let one = query::latency(address, &mut queries, LATENCY_FOR, LATENCY_MOST)?;
                let percentile = |p| one.percentile_us(p).unwrap_or(f64::NAN);
                Ok(Sample {
                    per_second: load.per_second,
                    lost: load.lost,
                    failed: load.failed,
                    p50_us: percentile(50.0),
                    p99_us: percentile(99.0),
                    latency_queries: one.round_trips.len() + (one.lost + one.failed) as usize,
                    latency_lost: one.lost + one.failed,
                })
            })
            .map_err(|error| format!("{address}: {error}"))
    }
}

/// `aardvark-dns 1.4.0`, or why there is none.
fn aardvark_version() -> Result<String, String> {
    if !Path::new(AARDVARK).exists() {
        return Err("not installed (apt-get install aardvark-dns)".to_owned());
    }
    let output = std::process::Command::new(AARDVARK)
        .arg("--version")
        .output()
        .map_err(|error| format!("{AARDVARK} --version: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find(|line| line.starts_with("aardvark-dns")).map(str::to_owned).ok_or_else(|| {
        format!("{AARDVARK} --version printed {text:?}, {}", String::from_utf8_lossy(&output.stderr).trim())
    })
}

/// The aardvark-dns process this bench started; dropping it kills it.
struct Aardvark {
    pid: Option<i32>,
}

impl Aardvark {
    /// Makes aardvark's network (a bridge with the gateway, a client namespace on it),
    /// writes its configuration and starts it on port 53. `aardvark-dns run` forks: the
    /// command returns once the server process has written its pid file.
    ///
    /// The client's namespace is bound the way stackctl binds its own, not by `ip netns
    /// add`: that turns `/run/netns` into a bind mount of itself, which copies the mounts
    /// of the stack's namespaces below it, and stackctl's destroy then fails to remove
    /// their files (EBUSY).
    fn start(sandbox: &Sandbox) -> Result<Aardvark, String> {
        let script = format!(
            "ip link add abr0 type bridge
             ip addr add {AARDVARK_GATEWAY}/24 dev abr0
             ip link set abr0 up
             touch /run/netns/{AARDVARK_CLIENT}
             unshare --net=/run/netns/{AARDVARK_CLIENT} true
             ip link add aveth0 type veth peer name eth0 netns {AARDVARK_CLIENT}
             ip link set aveth0 master abr0 up
             ip -n {AARDVARK_CLIENT} addr add {AARDVARK_CLIENT_ADDRESS}/24 dev eth0
             ip -n {AARDVARK_CLIENT} link set eth0 up
             ip -n {AARDVARK_CLIENT} link set lo up
             mkdir -p {AARDVARK_CONFIG}"
        );
        let output = sandbox.command("sh").args(["-ec", &script]).output().map_err(|error| error.to_string())?;
        if !output.status.success() {
            return Err(format!("aardvark's network: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        let config = outside(sandbox, AARDVARK_CONFIG);
        std::fs::write(config.join("bench"), aardvark_config())
            .map_err(|error| format!("aardvark's config: {error}"))?;
        let started = sandbox.command(AARDVARK).args(["--config", AARDVARK_CONFIG, "-p", "53", "run"]).output();
        // Whatever the command says, a server that wrote its pid is ours to stop.
        let pid_file = config.join("aardvark.pid");
        let mut running = Aardvark { pid: None };
        let deadline = Instant::now() + Duration::from_secs(2);
        while running.pid.is_none() && Instant::now() < deadline {
            running.pid = std::fs::read_to_string(&pid_file).ok().and_then(|text| text.trim().parse().ok());
            if running.pid.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let output = started.map_err(|error| format!("start {AARDVARK}: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "{AARDVARK} run: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        if running.pid.is_none() {
            return Err(format!("{AARDVARK} run exited 0 but wrote no pid file"));
        }
        Ok(running)
    }
}

impl Drop for Aardvark {
    fn drop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        // Only the process that wrote the pid file, should the pid have been reused.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.trim().starts_with("aardvark") {
            return;
        }
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// aardvark's configuration of one network: the gateway it listens on, then a line per
/// container, `ID IPv4 IPv6 NAME[,ALIAS…]` (no IPv6 here). The client is `c00`.
fn aardvark_config() -> String {
    let mut text = format!("{AARDVARK_GATEWAY}\n");
    for n in 0..CONTAINERS {
        let address = Ipv4Addr::new(10, 78, 0, 2 + n as u8);
        let names = match alias_of(n) {
            Some(alias) => format!("c{n:02},{alias}"),
            None => format!("c{n:02}"),
        };
        text.push_str(&format!("{:064x} {address}  {names}\n", n + 1));
    }
    text
}

/// A path inside the sandbox's mount namespace, as this process reaches it.
fn outside(sandbox: &Sandbox, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root{path}", sandbox.pid()))
}

/// The median of some values.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}
