//! The name server's process (`stackctl resolver`): it holds its pid file locked for as
//! long as it runs, answers on every gateway of every zone in its directory, and reloads
//! when asked on its control socket.
//!
//! A reload reads the zone files and the host's `resolv.conf`, builds a new index and
//! swaps it in whole; it opens sockets for new gateways and closes those of gateways no
//! zone has, and leaves every other socket alone, so that no query in flight is lost.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use nix::sched::{CloneFlags, setns};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Mutex, Notify};

use super::control::{Reply, Request, Status};
use super::listen::{Listening, Shared, listen_on};
use super::{Files, version};
use crate::kernel::writing::{self, Access, Holder, lock_file};
use crate::kernel::{HostNamespace, KernelError, Places, netns};
use crate::names::{Index, ZONE_FORMAT_VERSION, Zone, digest, upstreams};

/// Where the host's own name servers are written.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Serves the zones of `host` (those in `directory`, when given) until asked to stop, in
/// the host's namespace. Fails when another server already serves them, or when it cannot
/// open its control socket. Must run before the process starts any other thread: the
/// threads it starts are in the namespace of the thread that starts them.
pub fn serve(host: &HostNamespace, places: &Places, directory: Option<&Path>) -> Result<(), KernelError> {
    let files =
        directory.map_or_else(|| Files::of(places, host), |directory| Files { directory: directory.to_owned() });
    let object = format!("the name server in {}", files.directory.display());
    if let HostNamespace::Named(name) = host {
        let path = places.netns.join(name);
        let joined = netns::open(&path).and_then(|file| Ok(setns(file.as_fd(), CloneFlags::CLONE_NEWNET)?));
        joined.map_err(|error| {
            KernelError::new("join", format!("host namespace `{name}` ({})", path.display()), error)
        })?;
    }
    writing::directory(&files.directory, Access::RootOnly, Holder::Stackctl)
        .map_err(|error| KernelError::new("create the directory of", &object, error))?;
    let pid_file = hold_pid_file(&files).map_err(|error| KernelError::new("start", &object, error))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| KernelError::new("start the runtime of", &object, error))?;
    let outcome = runtime.block_on(run(files.clone())).map_err(|error| KernelError::new("serve", &object, error));
    // Every socket is closed before the pid file's lock says that the server is gone.
    drop(runtime);
    let _ = std::fs::remove_file(files.control());
    let _ = std::fs::remove_file(files.pid());
    log("stopped");
    drop(pid_file);
    outcome
}

/// Locks the pid file and writes this process's pid in it: the lock says that a server
/// runs, whatever the file holds, and the kernel releases it however the server ends.
fn hold_pid_file(files: &Files) -> io::Result<File> {
    let mut file = lock_file(&files.pid(), Access::RootOnly)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(files.pid()).unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another name server (pid {}) serves this directory", holder.trim()),
            ));
        }
        Err(TryLockError::Error(error)) => return Err(error),
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

async fn run(files: Files) -> io::Result<()> {
    // The pid file is ours, so a socket file left here is a dead server's.
    let _ = std::fs::remove_file(files.control());
    let control = UnixListener::bind(files.control())?;
    let server = Arc::new(Server {
        files,
        shared: Arc::new(Shared::new()),
        loaded: Mutex::new(Loaded::default()),
        stop: Notify::new(),
    });
    let status = server.reload().await;
    log(&format!("started, pid {}, version {}: {}", status.pid, status.version, summary(&status)));
    let accepting = Arc::clone(&server);
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = control.accept().await {
                tokio::spawn(answer_control(stream, Arc::clone(&accepting)));
            }
        }
    });
    server.stop.notified().await;
    Ok(())
}

struct Server {
    files: Files,
    shared: Arc<Shared>,
    /// What the last reload left; held by a reload from start to end, so reloads never
    /// overlap.
    loaded: Mutex<Loaded>,
    stop: Notify,
}

#[derive(Default)]
struct Loaded {
    listening: BTreeMap<Ipv4Addr, Listening>,
    unbound: BTreeMap<Ipv4Addr, String>,
    zones: BTreeMap<String, String>,
    rejected: BTreeMap<String, String>,
}

impl Server {
    async fn reload(&self) -> Status {
        let mut loaded = self.loaded.lock().await;
        let files = self.files.clone();
        let read = tokio::task::spawn_blocking(move || read_zones(&files)).await.unwrap_or_default();
        let index = Index::build(read.zones.iter());
        let upstreams = upstreams(&read.resolv_conf, index.gateways());
        let gateways = index.gateways().clone();
        loaded.unbound.clear();
        for gateway in &gateways {
            if loaded.listening.contains_key(gateway) {
                continue;
            }
            match listen_on(*gateway, &self.shared) {
                Ok(listening) => {
                    loaded.listening.insert(*gateway, listening);
                }
                Err(error) => {
                    loaded.unbound.insert(*gateway, error.to_string());
                }
            }
        }
        self.shared.index.store(Arc::new(index));
        self.shared.upstreams.store(Arc::new(upstreams));
        loaded.listening.retain(|gateway, _| gateways.contains(gateway));
        loaded.zones = read.digests;
        loaded.rejected = read.rejected;
        let status = status_of(&loaded);
        for (stack, reason) in &status.rejected {
            log(&format!("cannot serve the zone of stack `{stack}`: {reason}"));
        }
        for (gateway, reason) in &status.unbound {
            log(&format!("cannot listen on {gateway}:{}: {reason}", super::PORT));
        }
        status
    }

    async fn status(&self) -> Status {
        status_of(&*self.loaded.lock().await)
    }
}

fn status_of(loaded: &Loaded) -> Status {
    Status {
        pid: std::process::id(),
        version: version(),
        zones: loaded.zones.clone(),
        rejected: loaded.rejected.clone(),
        listening: loaded.listening.keys().copied().collect(),
        unbound: loaded.unbound.clone(),
    }
}

/// What a reload reads from files.
#[derive(Default)]
struct Read {
    zones: Vec<Zone>,
    digests: BTreeMap<String, String>,
    rejected: BTreeMap<String, String>,
    resolv_conf: String,
}

fn read_zones(files: &Files) -> Read {
    let mut read = Read {
        // No `resolv.conf` is no name server to forward to.
        resolv_conf: std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default(),
        ..Read::default()
    };
    for stack in files.stacks().unwrap_or_default() {
        let zone = std::fs::read(files.zone(&stack)).map_err(|error| error.to_string()).and_then(|bytes| {
            let zone: Zone =
                serde_json::from_slice(&bytes).map_err(|error| format!("unreadable zone file: {error}"))?;
            if zone.format_version != ZONE_FORMAT_VERSION {
                return Err(format!(
                    "zone format version {}, this server reads {ZONE_FORMAT_VERSION}",
                    zone.format_version
                ));
            }
            if zone.stack != stack {
                return Err(format!("the file holds the zone of stack `{}`", zone.stack));
            }
            Ok((zone, digest(&bytes)))
        });
        match zone {
            Ok((zone, digest)) => {
                read.digests.insert(stack, digest);
                read.zones.push(zone);
            }
            Err(reason) => {
                read.rejected.insert(stack, reason);
            }
        }
    }
    read
}

/// Answers the requests of one control connection, a JSON line each.
async fn answer_control(stream: UnixStream, server: Arc<Server>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let request = serde_json::from_str::<Request>(&line);
        let reply = match request {
            Ok(Request::Status) => Reply::Status(server.status().await),
            Ok(Request::Reload) => {
                let status = server.reload().await;
                log(&format!("reloaded: {}", summary(&status)));
                Reply::Reloaded(status)
            }
            Ok(Request::Stop) => Reply::Stopping,
            Err(error) => Reply::Refused { message: format!("unreadable request: {error}") },
        };
        let mut text = serde_json::to_string(&reply).expect("a reply serializes");
        text.push('\n');
        let _ = writer.write_all(text.as_bytes()).await;
        if reply == Reply::Stopping {
            log("asked to stop");
            server.stop.notify_one();
            return;
        }
    }
}

fn summary(status: &Status) -> String {
    format!("{} zones, listening on {} gateways", status.zones.len(), status.listening.len())
}

/// A line of the server's log (its standard error, which apply sends to a file).
fn log(message: &str) {
    eprintln!("{} stackctl resolver: {message}", humantime::format_rfc3339_seconds(SystemTime::now()));
}
