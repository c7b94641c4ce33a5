//! The flaskapp-v2 swap under load: how long the swap takes, and the request rate that
//! clients resolving `app` once sustain through it, against the rate they sustain with no
//! swap, in the same sandbox and run.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;

/// Client threads in nginx's namespace, each opening one connection after another.
const CLIENTS: usize = 4;
/// How long the rate without a swap is measured.
const BASELINE: Duration = Duration::from_secs(3);

pub struct SwapRun {
    pub took: Duration,
    /// Requests per second with no swap, and through the swap.
    pub rate_before: f64,
    pub rate_during: f64,
    pub requests: u64,
    pub failed: u64,
}

pub fn run(dir: &Path) -> Result<SwapRun, String> {
    let sandbox = Sandbox::new().ok_or("kernel benchmarks need root")?;
    let examples = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let v1 = format!("{examples}/web-app-db.yaml");
    let v2 = format!("{examples}/web-app-db-v2.yaml");
    let both = dir.join("both.yaml");
    let text = std::fs::read_to_string(&v1).map_err(|error| format!("read {v1}: {error}"))?;
    std::fs::write(
        &both,
        format!(
            "{text}  flaskapp-v2:\n    networks:\n      web_nw: {{}}\n      db_nw: {{}}\n    talks_to: [db:5432]\n"
        ),
    )
    .map_err(|error| format!("write {}: {error}", both.display()))?;
    let both = both.display().to_string();
    for file in [&v1, &both] {
        apply(&sandbox, file)?;
    }
    let _old = sandbox.listen("shop:flaskapp", 5000, "v1");
    let _new = sandbox.listen("shop:flaskapp-v2", 5000, "v2");
    let app = SocketAddr::from((alias_address(&sandbox, &v1)?, 5000));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            let file = std::fs::File::open(sandbox.netns_path("shop:nginx")).expect("nginx's namespace");
            std::thread::spawn(move || {
                nix::sched::setns(std::os::fd::AsFd::as_fd(&file), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("join nginx's namespace");
                while !stop.load(Ordering::Relaxed) {
                    match request(app) {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            eprintln!("swap: a request failed: {error}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    // The rate with no swap is taken over the last second before it, once the clients run.
    std::thread::sleep(BASELINE - Duration::from_secs(1));
    let warm = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    let before = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    let started = Instant::now();
    let swapped = apply(&sandbox, &v2);
    let took = started.elapsed();
    let during = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.join();
    }
    swapped?;
    Ok(SwapRun {
        took,
        rate_before: (before - warm) as f64,
        rate_during: during as f64 / took.as_secs_f64(),
        requests: ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    })
}

/// One request: a new connection, and the first line the backend sends.
fn request(to: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&mut stream).read_line(&mut line)?;
    let _ = stream.flush();
    if line.trim().is_empty() { Err(std::io::Error::other("no reply")) } else { Ok(()) }
}

fn apply(sandbox: &Sandbox, file: &str) -> Result<(), String> {
    let output = sandbox.stackctl().args(["-f", file, "apply", "--yes"]).output().map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("apply {file}: {}", String::from_utf8_lossy(&output.stderr)))
    }
}

fn alias_address(sandbox: &Sandbox, file: &str) -> Result<Ipv4Addr, String> {
    let output = sandbox
        .stackctl()
        .args(["-f", file, "show", "--format", "json"])
        .output()
        .map_err(|error| error.to_string())?;
    let topology: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|error| format!("show: {error}"))?;
    topology["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|network| network["aliases"].as_array().into_iter().flatten())
        .find(|alias| alias["name"] == "app")
        .and_then(|alias| alias["address"].as_str()?.parse().ok())
        .ok_or_else(|| "show lists no address for `app`".to_owned())
}
