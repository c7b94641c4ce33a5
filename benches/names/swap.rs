//! The flaskapp-v2 swap under load: how long the swap takes, and the request rate that
//! clients resolving `app` once sustain through it, against the rate they sustain with no
//! swap, in the same sandbox and run.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;
use crate::stackctl;
use crate::stacks::{alias_address, both_versions, example};

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
    let sandbox = Sandbox::new();
    let (v1, v2) = (example("web-app-db"), example("web-app-db-v2"));
    let both = both_versions(dir);
    for file in [&v1, &both] {
        stackctl(&sandbox, file, "apply")?;
    }
    let _old = sandbox.listen("shop:flaskapp", 5000, "v1");
    let _new = sandbox.listen("shop:flaskapp-v2", 5000, "v2");
    let app = alias_address(&sandbox, &v1, "app").ok_or("`show` lists no address for `app`")?;
    let app = SocketAddr::from((app, 5000));

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
    let swapped = stackctl(&sandbox, &v2, "apply");
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
