//! A sandbox for tests and benchmarks that touch the kernel: a new network and mount
//! namespace, with private tmpfs over `/run` (so `/run/netns` and stackctl's lock and
//! record files) and a copy-on-write overlay over `/etc` (so `/etc/netns`, which starts
//! empty there whatever the machine's holds). Everything a test creates lives and dies in
//! it; the machine's own network is never touched.
//!
//! A test that looks at processes (by `/proc/PID`, as stackctl does to find those inside a
//! container's namespace) takes a sandbox with a pid namespace of its own too
//! ([`Sandbox::with_own_pids`]): its `/proc` then shows only the sandbox's processes, not
//! the machine's, and every process started in it (`stackctl exec` gives its programs a
//! mount namespace of their own, so they are not found by their mount namespace) ends
//! with it.
//!
//! The sandbox is a `sleep` process started by `unshare`; commands join its namespaces with
//! `nsenter`, and threads of the test process join a namespace inside it with `setns`.
//! Dropping the sandbox, also when a test panics, kills every process still in its mount
//! namespace (the name server that apply starts detached, and anything else a test started
//! there), each by its pid, and then that `sleep`; the kernel then takes the mount namespace
//! down, and with it every network namespace bound under its `/run/netns`.

#![allow(dead_code)] // Each test binary uses its own part of the helpers.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Set by CI, which runs as root: there kernel tests that cannot make their sandboxes fail
/// instead of being ignored.
const REQUIRED: &str = "STACKCTL_KERNEL_TESTS";

/// Whether this process may make sandboxes, which takes root. When it may not and CI
/// requires the kernel tests ([`REQUIRED`] is set), it says so and exits at once with a
/// failure: the tests (`support::harness`) and benchmarks would otherwise go unrun.
pub fn may_make_sandboxes() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os(REQUIRED).is_some() {
        eprintln!("error: {REQUIRED} is set, so the kernel tests must run, but they need root and this is not root");
        std::process::exit(1);
    }
    false
}

const SETUP: &str = r#"
set -e
mount -t tmpfs stackctl-sandbox-run /run
mkdir -p /run/netns /run/.etc/upper /run/.etc/work
mount -t overlay stackctl-sandbox-etc -o lowerdir=/etc,upperdir=/run/.etc/upper,workdir=/run/.etc/work /etc
rm -rf /etc/netns
mkdir /etc/netns
ip link set lo up
echo ready
exec sleep infinity
"#;

pub struct Sandbox {
    child: Child,
    /// The process whose namespaces the sandbox's commands join: `unshare` itself, or,
    /// with a pid namespace, the first process in it (which `unshare` forks).
    inside: u32,
    pids: Pids,
}

/// Whether a sandbox has a pid namespace of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pids {
    Machine,
    Own,
}

impl Sandbox {
    /// A new sandbox. It takes root: the kernel tests run only where
    /// [`may_make_sandboxes`] (`support::harness` ignores them elsewhere).
    pub fn new() -> Sandbox {
        Sandbox::make(Pids::Machine)
    }

    /// A new sandbox with a pid namespace of its own as well, mounted on its `/proc`: see
    /// the module's comment. Its commands run as children of `nsenter` there, so a
    /// spawned command's pid is `nsenter`'s, not the program's.
    pub fn with_own_pids() -> Sandbox {
        Sandbox::make(Pids::Own)
    }

    fn make(pids: Pids) -> Sandbox {
        assert!(nix::unistd::geteuid().is_root(), "a sandbox needs root: kernel tests run as root");
        let mut unshare = Command::new("unshare");
        unshare.args(["--net", "--mount", "--propagation", "private"]);
        if pids == Pids::Own {
            // The first process of the pid namespace is killed with `unshare`, and the
            // kernel then kills every other process in it.
            unshare.args(["--pid", "--fork", "--kill-child", "--mount-proc"]);
        }
        let mut child = unshare
            .args(["--", "sh", "-c", SETUP])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start unshare for a sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("read sandbox set-up");
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the sandbox did not set up: {line:?}");
        }
        let inside = match pids {
            Pids::Machine => child.id(),
            Pids::Own => child_of(child.id()).expect("unshare forked the sandbox's first process"),
        };
        Sandbox { child, inside, pids }
    }

    /// The pid, as the machine sees it, of a process inside the sandbox's namespaces.
    pub fn pid(&self) -> u32 {
        self.inside
    }

    /// A command that runs `program` inside the sandbox's network and mount namespaces,
    /// and its pid namespace when it has one. Without one, `nsenter` execs the program, so
    /// the spawned child's pid is the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.pid().to_string(), "--net", "--mount"]);
        if self.pids == Pids::Own {
            command.arg("--pid");
        }
        command.arg("--").arg(program);
        command
    }

    /// Whether a process of the sandbox, by its pid there, still runs (and is not a
    /// zombie): read from the sandbox's `/proc`.
    pub fn runs(&self, pid: u32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/root/proc/{pid}/stat", self.pid())).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }

    /// `stackctl` inside the sandbox.
    pub fn stackctl(&self) -> Command {
        let mut command = self.command(env!("CARGO_BIN_EXE_stackctl"));
        command.env("NO_COLOR", "1").stdin(Stdio::null());
        command
    }

    /// Runs a shell script inside the sandbox and returns its output, failing the test when
    /// the script fails.
    pub fn sh(&self, script: &str) -> String {
        let output = self.command("sh").args(["-ec", script]).output().expect("run sh in the sandbox");
        assert_success(&output, script);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The path of a named network namespace of the sandbox, as this process sees it.
    pub fn netns_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/run/netns/{name}", self.pid()))
    }

    /// Whether a named network namespace exists in the sandbox.
    pub fn has_netns(&self, name: &str) -> bool {
        self.netns_path(name).exists()
    }

    /// Runs `f` on a thread that has joined the named network namespace of the sandbox
    /// (`None`: the sandbox's own, which plays the host).
    pub fn in_netns<T: Send + 'static>(&self, netns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_in_netns(netns, f).join().expect("thread in a namespace")
    }

    fn spawn_in_netns<T: Send + 'static>(
        &self,
        netns: Option<&str>,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = match netns {
            Some(name) => self.netns_path(name),
            None => PathBuf::from(format!("/proc/{}/ns/net", self.pid())),
        };
        let file = File::open(&path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        std::thread::spawn(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("join the namespace");
            f()
        })
    }

    /// A TCP listener on `port` of every address of a namespace, answering each connection
    /// with `reply` and a newline, until dropped.
    pub fn listen(&self, netns: &str, port: u16, reply: &str) -> Listener {
        let reply = format!("{reply}\n");
        self.serve(netns, port, move |mut stream| {
            let _ = stream.write_all(reply.as_bytes());
        })
    }

    /// A TCP listener that echoes back every line it receives, on each connection, until
    /// dropped: the other end of a long-lived connection.
    pub fn listen_echo(&self, netns: &str, port: u16) -> Listener {
        self.serve(netns, port, |stream| {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone a stream");
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if writeln!(writer, "{line}").is_err() {
                        break;
                    }
                }
            });
        })
    }

    /// A TCP listener on `port` of every address of the sandbox's own namespace, which
    /// plays the host, answering each connection with `reply` and a newline, until dropped.
    pub fn listen_on_host(&self, port: u16, reply: &str) -> Listener {
        let reply = format!("{reply}\n");
        self.serve_in(None, port, move |mut stream| {
            let _ = stream.write_all(reply.as_bytes());
        })
    }

    /// Accepts connections on `port` in a namespace and hands each to `serve`, until the
    /// listener is dropped.
    pub fn serve(&self, netns: &str, port: u16, serve: impl Fn(TcpStream) + Send + 'static) -> Listener {
        self.serve_in(Some(netns), port, serve)
    }

    /// [`Sandbox::serve`] in a named namespace, or (`None`) the sandbox's own.
    fn serve_in(&self, netns: Option<&str>, port: u16, serve: impl Fn(TcpStream) + Send + 'static) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            self.spawn_in_netns(netns, move || {
                let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind a test listener");
                listener.set_nonblocking(true).expect("non-blocking listener");
                ready_tx.send(()).expect("report the listener ready");
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(false);
                            serve(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        ready_rx.recv().expect("listener started");
        Listener { stop, thread: Some(thread) }
    }

    /// Opens a TCP connection from a namespace, to keep open across changes.
    pub fn open(&self, netns: &str, to: SocketAddr) -> Connection {
        let stream = self
            .in_netns(Some(netns), move || TcpStream::connect_timeout(&to, Duration::from_secs(1)))
            .unwrap_or_else(|error| panic!("connect from {netns} to {to}: {error}"));
        stream.set_read_timeout(Some(Duration::from_secs(2))).expect("read timeout");
        let connection = Connection { stream };
        connection.assert_alive("when opened");
        connection
    }

    /// Connects from a namespace to an address and reads the first line the peer sends.
    pub fn connect(&self, netns: &str, to: SocketAddr) -> std::io::Result<String> {
        self.in_netns(Some(netns), move || {
            let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(1))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut line = String::new();
            BufReader::new(&mut stream).read_line(&mut line)?;
            Ok(line.trim_end().to_owned())
        })
    }

    /// Connects from a container to `name:port` the way its programs would: through
    /// `stackctl exec`, whose resolver asks the name servers of the container's
    /// `resolv.conf`. Returns the first line the peer sent, or the error output.
    pub fn connect_by_name(&self, file: &str, container: &str, name: &str, port: u16) -> Result<String, String> {
        let script = format!("exec 3<>/dev/tcp/{name}/{port} && head -n 1 <&3");
        let output = self
            .stackctl()
            .args(["-f", file, "exec", container, "--", "timeout", "3", "bash", "-c", &script])
            .output()
            .expect("run stackctl exec");
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim_end().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// The first child of a process, found by the parent pid of each process.
fn child_of(parent: u32) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok()).find(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status.lines().any(|line| line.strip_prefix("PPid:").is_some_and(|ppid| ppid.trim() == parent.to_string()))
    })
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.processes() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sandbox {
    /// The processes inside the sandbox but its `sleep`: those that share its mount
    /// namespace, which only processes started in the sandbox do. A detached process
    /// (the name server) would otherwise outlive the sandbox, and keep it alive.
    pub fn processes(&self) -> Vec<i32> {
        let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        let Some(own) = namespace(&self.pid().to_string()) else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != self.pid() as i32 && namespace(&pid.to_string()).as_ref() == Some(&own))
            .collect()
    }

    /// The pid of the name server that apply started in the sandbox, while one runs, for
    /// the host `tag` (`host`, or `netns-NAME` for a named host namespace); in a sandbox
    /// without a pid namespace of its own, where the pid file's pid is the machine's.
    pub fn name_server(&self, tag: &str) -> Option<i32> {
        let path = format!("/proc/{}/root/run/stackctl/{tag}/names/resolver.pid", self.pid());
        let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        self.processes().contains(&pid).then_some(pid)
    }
}

/// A running test listener; dropping it stops it.
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An open TCP connection to an echo listener.
pub struct Connection {
    stream: TcpStream,
}

impl Connection {
    /// The client's end of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("a connected stream has a local address")
    }

    /// Sends a line and expects it back on the same connection.
    pub fn assert_alive(&self, when: &str) {
        (&self.stream).write_all(b"ping\n").unwrap_or_else(|error| panic!("the open connection broke {when}: {error}"));
        let mut line = String::new();
        BufReader::new(&self.stream).read_line(&mut line).unwrap_or_else(|error| panic!("no echo {when}: {error}"));
        assert_eq!(line, "ping\n", "the open connection broke {when}");
    }
}

/// Fails with the command's output when it did not succeed.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Reads a whole stream into a string, for children whose output is piped.
pub fn read_all(mut reader: impl Read) -> String {
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    text
}

/// A child whose standard error is read line by line as it comes, and kept whole: a
/// test waits for what it says (apply saying what it waits for), then acts.
pub struct Watched {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: JoinHandle<String>,
}

impl Watched {
    /// Starts `command` with its standard output and error piped.
    pub fn spawn(command: &mut Command) -> Watched {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start a command");
        let (sender, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped standard error");
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = sender.send(line);
            }
            all
        });
        Watched { child, lines, reader }
    }

    /// Waits, up to `within`, for a line of its standard error that contains `text`.
    pub fn wait_for(&self, text: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(error) => panic!("no line with `{text}` within {within:?}: {error}"),
            }
        }
    }

    /// Interrupts the child as Ctrl-C does (SIGINT, by its pid), and waits for it to end.
    pub fn interrupt(self) -> Output {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        self.finish()
    }

    /// Waits for the child to end: its output, with all of its standard error.
    pub fn finish(self) -> Output {
        let mut output = self.child.wait_with_output().expect("wait for a command");
        output.stderr = self.reader.join().expect("read its standard error").into_bytes();
        output
    }
}
