//! The traffic rows: what a published port costs. One container, `server`, publishes its
//! port 5000 on the host's loopback (127.0.0.1:8080) and on every host address (8081);
//! the sandbox's host gets an address of its own, 192.0.2.1, on a veth interface. A sink
//! in the container reads and discards; a client in the host sends to it through each
//! published port (DNAT, and masquerade for the loopback) and straight to the container's
//! address, which no rule rewrites. Bulk throughput and short connections per second.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::Value;

use crate::report::{Ratio, Row, Sample, median, reported};
use crate::run::{settle, timed};
use crate::sandbox::Sandbox;
use crate::stack::{STACK, published_yaml};

/// The host's address: a veth pair, as the kernel may lack the `dummy` module; both ends
/// stay in the sandbox's host namespace.
const UPLINK: &str = "
ip link add up0 type veth peer name up1
ip addr add 192.0.2.1/24 dev up0
ip link set up1 up
ip link set up0 up
";
const PORT: u16 = 5000;
/// The published ports, as the host reaches them.
const PUBLISHED: [(Ipv4Addr, u16); 2] = [(Ipv4Addr::LOCALHOST, 8080), (Ipv4Addr::new(192, 0, 2, 1), 8081)];
/// The size of each write and read.
const CHUNK: usize = 256 * 1024;
/// How long each run of short connections lasts.
const CONNECTING: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(1);

/// The samples of each path: the published ports in the order of [`PUBLISHED`], then the
/// direct one.
#[derive(Default)]
struct Samples {
    throughput: [Vec<Sample>; 3],
    connections: [Vec<Sample>; 3],
}

const DIRECT: usize = PUBLISHED.len();

pub fn rows(dir: &Path, repeats: usize, mib: usize) -> Vec<Row> {
    let file = dir.join("published.yaml");
    std::fs::write(&file, published_yaml()).expect("write the stack file");
    let bytes = mib * 1024 * 1024;
    let mut samples = Samples::default();
    for repetition in 0..repeats {
        eprint!("traffic, repetition {}/{repeats}:", repetition + 1);
        repeat(&file, bytes, repetition, &mut samples);
        eprintln!(" done");
    }
    let mut rows = Vec::new();
    for (index, (address, port)) in PUBLISHED.iter().enumerate() {
        rows.push(Row {
            measure: format!("throughput, host to {address}:{port} (MB/s)"),
            n: "1".to_owned(),
            ours: median(&samples.throughput[index]),
            theirs: median(&samples.throughput[DIRECT]),
            ratio: Ratio::PublishedOverDirect,
            note: format!(
                "one connection, {mib} MiB in {} KiB writes; direct: the container's address:{PORT}",
                CHUNK / 1024
            ),
        });
    }
    for (index, (address, port)) in PUBLISHED.iter().enumerate() {
        rows.push(Row {
            measure: format!("short connections, host to {address}:{port} (per s)"),
            n: "1".to_owned(),
            ours: median(&samples.connections[index]),
            theirs: median(&samples.connections[DIRECT]),
            ratio: Ratio::PublishedOverDirect,
            note: format!(
                "connect, send 1 byte, close, wait for the sink's close, for {} s; direct: the container's \
                 address:{PORT}",
                CONNECTING.as_secs()
            ),
        });
    }
    rows
}

/// One repetition, in a fresh sandbox. Each repetition starts with another path, so that
/// whatever the first run pays or leaves behind (caches, connections in TIME_WAIT) does
/// not always fall on the same one.
fn repeat(file: &Path, bytes: usize, repetition: usize, samples: &mut Samples) {
    let sandbox = Sandbox::new();
    sandbox.sh(UPLINK);
    let direct = match apply(&sandbox, file) {
        Ok(address) => SocketAddr::from((address, PORT)),
        Err(error) => {
            let failed = reported(Err(error), "traffic: apply the published stack");
            for list in samples.throughput.iter_mut().chain(samples.connections.iter_mut()) {
                list.push(failed.clone());
            }
            return;
        }
    };
    let paths = [SocketAddr::from(PUBLISHED[0]), SocketAddr::from(PUBLISHED[1]), direct];
    let order: Vec<usize> = (0..paths.len()).map(|step| (repetition + step) % paths.len()).collect();
    let sink = Sink::start(&sandbox, &format!("{STACK}:server"));
    for &index in &order {
        let sample = reported(throughput(&sandbox, paths[index], bytes), &format!("throughput to {}", paths[index]));
        eprint!(" {} {} MB/s", paths[index], sample.as_ref().map_or("failed".to_owned(), |rate| format!("{rate:.0}")));
        samples.throughput[index].push(sample);
    }
    for &index in &order {
        let sample = reported(connections(&sandbox, paths[index]), &format!("connections to {}", paths[index]));
        eprint!(" {} {}/s", paths[index], sample.as_ref().map_or("failed".to_owned(), |rate| format!("{rate:.0}")));
        samples.connections[index].push(sample);
    }
    drop(sink);
    drop(sandbox);
    settle(1);
}

/// Applies the stack and returns the container's address, as `stackctl show` reports it.
fn apply(sandbox: &Sandbox, file: &Path) -> Result<Ipv4Addr, String> {
    let mut command = sandbox.stackctl();
    command.arg("-f").arg(file).args(["apply", "--yes"]);
    timed(command, None, "stackctl apply")?;
    let mut command = sandbox.stackctl();
    command.arg("-f").arg(file).args(["show", "--format", "json"]);
    let (_, output) = timed(command, None, "stackctl show")?;
    let json: Value = serde_json::from_slice(&output.stdout).map_err(|error| format!("stackctl show: {error}"))?;
    json["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|network| network["members"].as_array().into_iter().flatten())
        .find(|member| member["container"] == "server")
        .and_then(|member| member["address"].as_str()?.parse().ok())
        .ok_or_else(|| {
            format!("stackctl show reports no address for `server`:\n{}", String::from_utf8_lossy(&output.stdout))
        })
}

/// Sends `bytes` on one connection, and waits until the sink has read them all (it closes
/// its end at the end of the stream); returns MB/s (10^6 bytes).
fn throughput(sandbox: &Sandbox, to: SocketAddr, bytes: usize) -> Sample {
    sandbox.in_netns(None, move || {
        let failed = |error: std::io::Error| format!("throughput to {to}: {error}");
        let mut stream = TcpStream::connect_timeout(&to, TIMEOUT).map_err(failed)?;
        let chunk = vec![0x5a_u8; CHUNK];
        let start = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            stream.write_all(&chunk).map_err(failed)?;
            sent += CHUNK;
        }
        stream.shutdown(Shutdown::Write).map_err(failed)?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(failed)?;
        let mut rest = [0_u8; 1];
        if stream.read(&mut rest).map_err(failed)? != 0 {
            return Err(format!("throughput to {to}: the sink answered"));
        }
        Ok(sent as f64 / 1e6 / start.elapsed().as_secs_f64())
    })
}

/// Opens short connections one after the other for [`CONNECTING`]: connect, send one
/// byte, close our end, and wait for the sink to close its own. Waiting makes each
/// connection a whole exchange, and keeps the sink's accept queue from overflowing (a
/// dropped SYN would stall the client for a second). Returns connections per second.
fn connections(sandbox: &Sandbox, to: SocketAddr) -> Sample {
    sandbox.in_netns(None, move || {
        let start = Instant::now();
        let mut count = 0_u32;
        while start.elapsed() < CONNECTING {
            let failed = |error: std::io::Error| format!("connection {} to {to}: {error}", count + 1);
            let mut stream = TcpStream::connect_timeout(&to, TIMEOUT).map_err(failed)?;
            stream.write_all(b"x").map_err(failed)?;
            stream.shutdown(Shutdown::Write).map_err(failed)?;
            stream.set_read_timeout(Some(TIMEOUT)).map_err(failed)?;
            let mut rest = [0_u8; 1];
            if stream.read(&mut rest).map_err(failed)? != 0 {
                return Err(format!("connection {} to {to}: the sink answered", count + 1));
            }
            count += 1;
        }
        Ok(f64::from(count) / start.elapsed().as_secs_f64())
    })
}

/// A TCP sink on port [`PORT`] of a namespace: it reads each connection to its end,
/// discards what it reads and closes, one connection at a time, until dropped.
struct Sink {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    fn start(sandbox: &Sandbox, netns: &str) -> Sink {
        let listener = sandbox.in_netns(Some(netns), || TcpListener::bind(("0.0.0.0", PORT)).expect("bind the sink"));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            // The socket stays in the namespace it was made in, whichever thread uses it.
            std::thread::spawn(move || {
                let mut buffer = vec![0_u8; CHUNK];
                while !stop.load(Ordering::Relaxed) {
                    // Wakes up now and then to see whether the sink is to stop.
                    let mut ready = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                    if poll(&mut ready, PollTimeout::from(100_u16)).unwrap_or(0) == 0 {
                        continue;
                    }
                    let Ok((mut stream, _)) = listener.accept() else { continue };
                    while matches!(stream.read(&mut buffer), Ok(read) if read > 0) {}
                }
            })
        };
        Sink { stop, thread: Some(thread) }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
