//! How apply keeps the host's name server serving its stack: it writes the stack's zone,
//! makes sure a current server runs (starting one, or replacing one that is dead, hung or
//! of another version, and ending any other that runs for the host, such as one whose pid
//! file went with the run directory), sends it every stack's zone, and waits for the
//! reload that shows the zone's digest. The last zone withdrawn stops the server.

use std::fs::File;
use std::fs::TryLockError;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::control::{Reply, Request, Status, ask};
use super::running::{Host, is_name_server};
use super::{Files, version};
use crate::kernel::files::{remove_empty_directory, remove_file};
use crate::kernel::lock::ApplyLock;
use crate::kernel::writing::{Access, Holder, append_file, directory, write_file};
use crate::kernel::{HostNamespace, Places};
use crate::names::{Zone, digest};

/// How long a server may take to tell its status before it counts as hung.
const STATUS_WAIT: Duration = Duration::from_secs(1);
/// How long a reload may take: it reads every stack's zone.
const RELOAD_WAIT: Duration = Duration::from_secs(10);
/// How long a new server may take to answer.
const START_WAIT: Duration = Duration::from_secs(5);
/// How long a server may take to end once stopped or killed.
const END_WAIT: Duration = Duration::from_secs(3);
/// How long to wait for another apply that is starting or reloading the server.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Where the host's own name servers are written, which the server forwards to.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The name server of one host, as apply sees it.
pub struct Supervisor<'a> {
    files: Files,
    places: &'a Places,
    host: &'a HostNamespace,
}

impl<'a> Supervisor<'a> {
    pub fn new(places: &'a Places, host: &'a HostNamespace) -> Supervisor<'a> {
        Supervisor { files: Files::of(places, host), places, host }
    }

    pub fn files(&self) -> &Files {
        &self.files
    }

    /// Serves `zone`: writes it (when it changed), makes sure a current server runs, and
    /// returns once the server answers from it on every one of its gateways.
    pub fn publish(&self, zone: &Zone) -> io::Result<()> {
        let bytes = zone.to_json();
        let digest = digest(&bytes);
        directory(&self.files.directory, Access::RootOnly, Holder::Stackctl)?;
        let _lock = self.lock()?;
        let path = self.files.zone(&zone.stack);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            write_file(&path, &bytes, Access::RootOnly)?;
        }
        let status = self.ensure()?;
        if serves(&status, zone, &digest).is_ok() {
            return Ok(());
        }
        serves(&self.reload()?, zone, &digest)
    }

    /// Stops serving the names of `stack`; with no stack left, stops the server and
    /// removes its files.
    pub fn withdraw(&self, stack: &str) -> io::Result<()> {
        // A server may run without its directory, lost with the run directory: it has no
        // zone left to serve, so it is stopped like any other.
        if !self.files.directory.exists() && self.others(None)?.is_empty() {
            return Ok(());
        }
        directory(&self.files.directory, Access::RootOnly, Holder::Stackctl)?;
        let lock = self.lock()?;
        let served = match std::fs::remove_file(self.files.zone(stack)) {
            Ok(()) => true,
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            Err(error) => return Err(error),
        };
        if self.files.stacks()?.is_empty() {
            self.stop()?;
            return self.remove_files(lock);
        }
        // A stack without a zone is served nothing: the server has nothing to drop.
        if !served {
            return Ok(());
        }
        self.ensure()?;
        if self.reload()?.zones.contains_key(stack) {
            return Err(io::Error::other(format!("the name server still serves stack `{stack}` after a reload")));
        }
        Ok(())
    }

    /// The zone of `stack` that the running server serves: `None` when no server answers,
    /// when it is of another version, when it serves another zone than the file holds or
    /// does not listen on every gateway of it, or when another server runs for the host
    /// (one whose pid file is gone answers from the zones it last had).
    pub fn loaded(&self, stack: &str) -> Option<Zone> {
        let bytes = std::fs::read(self.files.zone(stack)).ok()?;
        let Ok(Reply::Status(status)) = ask(&self.files.control(), &Request::Status, STATUS_WAIT) else {
            return None;
        };
        let zone: Zone = serde_json::from_slice(&bytes).ok()?;
        let current = status.version == version()
            && serves(&status, &zone, &digest(&bytes)).is_ok()
            && self.others(Some(status.pid)).is_ok_and(|others| others.is_empty());
        current.then_some(zone)
    }

    /// Sends the server every stack's zone and the host's `resolv.conf`: what it serves
    /// after.
    fn reload(&self) -> io::Result<Status> {
        // No `resolv.conf` is no name server to forward to.
        let resolv_conf = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
        let request = Request::Reload { zones: self.files.zones()?, resolv_conf };
        match ask(&self.files.control(), &request, RELOAD_WAIT)? {
            Reply::Reloaded(status) => Ok(status),
            other => Err(unexpected(&other)),
        }
    }

    /// Once the server has stopped with no zone left: removes its log, the pid file and
    /// control socket that a killed server leaves, the supervision lock (`lock`, held) and
    /// the directory, unless something else is in it. An apply that publishes a zone
    /// meanwhile makes them again.
    fn remove_files(&self, lock: ApplyLock) -> io::Result<()> {
        for path in [self.files.log(), self.files.pid(), self.files.control()] {
            remove_file(&path)?;
        }
        lock.remove()?;
        remove_empty_directory(&self.files.directory)
    }

    fn lock(&self) -> io::Result<ApplyLock> {
        ApplyLock::acquire(&self.files.supervision_lock(), LOCK_WAIT, |_| {}).map_err(io::Error::other)
    }

    /// The status of a current server, started when none answers or the one that does is
    /// of another version; any other server that runs for the host is ended.
    fn ensure(&self) -> io::Result<Status> {
        if let Ok(Reply::Status(status)) = ask(&self.files.control(), &Request::Status, STATUS_WAIT)
            && status.version == version()
        {
            self.end_others(Some(status.pid))?;
            return Ok(status);
        }
        self.end_running()?;
        self.end_others(None)?;
        self.start()
    }

    /// Starts a server in the host namespace, detached from this process (a session of its
    /// own, its output in the log), and waits until it answers.
    fn start(&self) -> io::Result<Status> {
        let log = append_file(&self.files.log(), Access::RootOnly)?;
        let mut command = Command::new(std::env::current_exe()?);
        if let HostNamespace::Named(name) = self.host {
            command.args(["--host-netns", name]);
        }
        command
            .arg("resolver")
            .arg("--dir")
            .arg(&self.files.directory)
            .env_remove("STACKCTL_HOST_NETNS")
            // It outlives this command: it must not keep the directory it was run from busy.
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: between fork and exec the child only makes the setsid and close_range
        // system calls, which are async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                // Only its standard streams go to the server: a descriptor that whoever ran
                // apply left open (a pipe a script waits on, a lock) would stay open for as
                // long as the server runs. A kernel without close_range (before 5.11) has
                // its descriptors passed on.
                let _ = nix::libc::close_range(3, u32::MAX, nix::libc::CLOSE_RANGE_CLOEXEC as i32);
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        // Reaps the server should it end while this process still runs; once this process
        // ends, the server is init's.
        std::thread::spawn(move || child.wait());
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Ok(Reply::Status(status)) = ask(&self.files.control(), &Request::Status, STATUS_WAIT)
                && status.pid == pid
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the name server (pid {pid}) did not answer within {START_WAIT:?}: see {}",
                        self.files.log().display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asks the server to stop, and kills it when it does not; then ends any other that
    /// runs for the host.
    fn stop(&self) -> io::Result<()> {
        if self.holder()?.is_some() {
            let _ = ask(&self.files.control(), &Request::Stop, STATUS_WAIT);
            if !self.ended_within(END_WAIT)? {
                self.end_running()?;
            }
        }
        self.end_others(None)
    }

    /// Kills the server that holds the pid file, if one does, by its pid, once `/proc`
    /// shows that the pid is stackctl's name server in the host's namespace; any other
    /// process is left alone.
    fn end_running(&self) -> io::Result<()> {
        let Some(pid) = self.holder()? else { return Ok(()) };
        if !is_name_server(pid) {
            return Err(io::Error::other(format!(
                "{} is locked by pid {pid}, which is not stackctl's name server: it is left alone",
                self.files.pid().display()
            )));
        }
        self.running()?.end(pid, END_WAIT)
    }

    /// The name servers that run for the host, found by what they are, but for `current`.
    fn others(&self, current: Option<u32>) -> io::Result<Vec<i32>> {
        let mut found = self.running()?.name_servers()?;
        found.retain(|pid| Some(*pid as u32) != current);
        Ok(found)
    }

    /// Ends every name server that runs for the host but `current`, each by its pid.
    fn end_others(&self, current: Option<u32>) -> io::Result<()> {
        let running = self.running()?;
        for pid in self.others(current)? {
            running.end(pid, END_WAIT)?;
        }
        Ok(())
    }

    /// Where the host's name servers run, and what they serve.
    fn running(&self) -> io::Result<Host> {
        Host::new(self.places, self.host, &self.files.directory)
    }

    /// The pid of the running server: the process that holds the pid file locked.
    fn holder(&self) -> io::Result<Option<i32>> {
        let file = match File::open(self.files.pid()) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        match file.try_lock() {
            // Nobody holds it; dropping the file releases it at once.
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => {
                // From the file opened, not by its path: a server that stops removes the
                // path before it lets the lock go.
                let mut text = String::new();
                std::io::Read::read_to_string(&mut &file, &mut text)?;
                text.trim().parse().map(Some).map_err(|_| {
                    io::Error::other(format!("{} is locked but holds no pid: {text:?}", self.files.pid().display()))
                })
            }
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    fn ended_within(&self, wait: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + wait;
        while self.holder()?.is_some() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(true)
    }
}

/// Whether a status shows `zone` (whose file has `digest`) served on all its gateways;
/// otherwise, why not.
fn serves(status: &Status, zone: &Zone, digest: &str) -> io::Result<()> {
    if status.zones.get(&zone.stack).map(String::as_str) != Some(digest) {
        let reason = status.rejected.get(&zone.stack).map_or("it serves an older zone", String::as_str);
        return Err(io::Error::other(format!(
            "the name server does not serve the zone of stack `{}`: {reason}",
            zone.stack
        )));
    }
    for gateway in &zone.gateways {
        if !status.listening.contains(gateway) {
            let reason = status.unbound.get(gateway).map_or("not tried yet", String::as_str);
            return Err(io::Error::other(format!("the name server cannot listen on {gateway}: {reason}")));
        }
    }
    Ok(())
}

fn unexpected(reply: &Reply) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the name server gave an unexpected reply: {reply:?}"))
}
