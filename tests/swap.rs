//! Aliases on the live kernel, always in a sandbox (`support::sandbox`): scenario 1's
//! `app` moving between flaskapp and flaskapp-v2 under continuous load with no failed
//! request, for clients that resolve the alias once and clients that resolve it per
//! request: with one edit and one apply that creates the new container and waits for it,
//! back and forth; between two containers that both stay; away from a container that
//! stopped accepting; and refused, changing nothing, when the new container cannot take
//! the alias and apply may not wait. Also scenario 2's alias spreading connections over
//! the containers that share it.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Listener, Sandbox, Watched, read_all};
use serde_json::Value;
use stacks::{alias_address, apply, both_versions, example, plan, run, write_stack};

/// A client that sends requests without pause through a name until a file appears: each
/// request is a new connection whose first line is the reply. `per-request` resolves the
/// name before every request (through the container's resolver); `once` resolves it once,
/// at start, and keeps the address, as nginx does with its upstreams. A connection may
/// take 10 s, as long as TCP's retransmissions of a lost handshake packet take to get
/// through; a proxy waits as long (nginx: 60 s). Prints its counts as JSON.
const CLIENT: &str = r#"
import json, os, socket, sys, time
mode, name, port, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def resolve():
    return socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
fixed = resolve() if mode == "once" else None
counts, errors, replies = {}, [], []
while not os.path.exists(stop):
    started = time.time()
    try:
        address = fixed or resolve()
        with socket.create_connection(address, timeout=10) as connection:
            connection.settimeout(10)
            reply = connection.makefile().readline().strip()
        if not reply:
            raise OSError("no reply from %s" % (address,))
        counts[reply] = counts.get(reply, 0) + 1
        replies.append(reply)
    except OSError as error:
        errors.append("%r at %.3f after %.3f s" % (error, started, time.time() - started))
print(json.dumps({"counts": counts, "failed": len(errors), "errors": errors[:5], "last": replies[-20:], "address": str(fixed)}))
"#;

/// The two kinds of client, running in nginx through `app` until the load is finished;
/// killed if the test ends before.
struct Load {
    clients: Vec<(&'static str, Child)>,
    stop: PathBuf,
}

impl Load {
    fn start(sandbox: &Sandbox, file: &str, dir: &Path) -> Load {
        let stop = dir.join("stop-the-load");
        let clients = ["per-request", "once"]
            .into_iter()
            .map(|mode| {
                let child = sandbox
                    .stackctl()
                    .args(["-f", file, "exec", "nginx", "--", "python3", "-c", CLIENT, mode, "app", "5000"])
                    .arg(&stop)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start a client in nginx");
                (mode, child)
            })
            .collect();
        // Both clients have resolved and sent requests before anything moves.
        std::thread::sleep(Duration::from_millis(1500));
        Load { clients, stop }
    }

    /// Stops the clients and asserts that none of their requests failed, that each
    /// reached both versions, and that the last ones went to `last`. Returns the requests
    /// made.
    fn finish(mut self, last: &str) -> u64 {
        std::fs::write(&self.stop, "").expect("write the stop file");
        let mut requests = 0;
        for (mode, child) in std::mem::take(&mut self.clients) {
            let output = child.wait_with_output().expect("wait for the client");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let result: Value = serde_json::from_str(text.trim())
                .unwrap_or_else(|_| panic!("client output: {text}\n{}", String::from_utf8_lossy(&output.stderr)));
            eprintln!("{mode} client: {} failed, {}", result["failed"], result["counts"]);
            assert_eq!(result["failed"], 0, "{mode} client: {result}");
            let counts = &result["counts"];
            for version in ["v1", "v2"] {
                assert!(counts[version].as_u64().unwrap_or(0) > 0, "{mode} never reached {version}: {result}");
                requests += counts[version].as_u64().unwrap_or(0);
            }
            let replies = result["last"].as_array().expect("last replies");
            assert!(replies.iter().all(|reply| reply == last), "{mode}: new connections go to {last}: {result}");
        }
        requests
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for (_, child) in &mut self.clients {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Serves the version's name to each new connection on port 5000, and to each line a
/// long-lived connection sends.
fn serve_version(sandbox: &Sandbox, namespace: &str, version: &'static str) -> Listener {
    sandbox.serve(namespace, 5000, move |stream| {
        std::thread::spawn(move || {
            let mut writer = stream.try_clone().expect("clone a stream");
            if writeln!(writer, "{version}").is_err() {
                return;
            }
            for _ in BufReader::new(stream).lines().map_while(Result::ok) {
                if writeln!(writer, "{version}").is_err() {
                    break;
                }
            }
        });
    })
}

/// The virtual address of an alias, as `show` lists it.
fn vip(sandbox: &Sandbox, file: &str, alias: &str) -> Ipv4Addr {
    alias_address(sandbox, file, alias).unwrap_or_else(|| panic!("`show` lists no virtual address of `{alias}`"))
}

/// Applies `file`, whose swap moves `app` to `container`, the way a deployment does with
/// one edit: apply wires the new container and says it waits for it; then the new version
/// starts in it. Returns apply's output (its standard error as read) and the new
/// version's listener.
fn swap_to(sandbox: &Sandbox, file: &str, container: &str, version: &'static str) -> (Output, Listener) {
    let apply = Watched::spawn(sandbox.stackctl().args(["-f", file, "apply", "--yes", "--wait", "60s"]));
    let waiting = format!("waiting up to 1m for container `{container}` to accept tcp/5000");
    let line = apply.wait_for(&waiting, Duration::from_secs(30));
    assert!(
        line.contains(&format!("from another terminal, e.g. `stackctl -f {file} exec {container} -- COMMAND`")),
        "{line}"
    );
    let listener = serve_version(sandbox, &format!("shop:{container}"), version);
    (apply.finish(), listener)
}

fn assert_swapped(output: &Output, from: &str, to: &str) {
    let said = read_all(&output.stdout[..]);
    let errors = read_all(&output.stderr[..]);
    assert!(output.status.success(), "the swap to {to} failed: {said}\n{errors}");
    assert!(said.contains("swap    app@web_nw") && said.contains(&format!("{from} -> {to}")), "{said}");
    assert!(said.contains(&format!("drained `{from}`")), "{said}\n{errors}");
}

/// A long-lived connection through `app`, open before a swap: it must keep being
/// answered by the version it started on while the swap drains it.
struct LongLived {
    writer: TcpStream,
    replies: BufReader<TcpStream>,
}

impl LongLived {
    fn open(sandbox: &Sandbox, app: SocketAddr, version: &str) -> LongLived {
        let stream = sandbox.in_netns(Some("shop:nginx"), move || {
            TcpStream::connect_timeout(&app, Duration::from_secs(1)).expect("open a long-lived connection")
        });
        stream.set_read_timeout(Some(Duration::from_secs(3))).expect("read timeout");
        let mut replies = BufReader::new(stream.try_clone().expect("clone"));
        let mut first = String::new();
        replies.read_line(&mut first).expect("the long-lived connection's greeting");
        assert_eq!(first.trim(), version);
        LongLived { writer: stream, replies }
    }

    /// Sends `count` requests, 100 ms apart, each answered by `version`.
    fn use_for(&mut self, count: usize, version: &str) {
        let mut line = String::new();
        for request in 0..count {
            writeln!(self.writer, "ping").expect("the long-lived connection takes a request");
            line.clear();
            self.replies.read_line(&mut line).unwrap_or_else(|error| panic!("request {request} unanswered: {error}"));
            assert_eq!(line.trim(), version, "a long-lived connection stays where it started");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn one_edit_swaps_back_and_forth_lose_no_request() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let mut current = serve_version(&sandbox, "shop:flaskapp", "v1");
    let app = SocketAddr::from((vip(&sandbox, &v1, "app"), 5000));

    let (code, text) = plan(&sandbox, &v2);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("swap    app@web_nw") && text.contains("flaskapp -> flaskapp-v2"), "{text}");

    let load = Load::start(&sandbox, &v1, dir.path());
    let mut long_lived = LongLived::open(&sandbox, app, "v1");
    let mut user = Some(std::thread::spawn(move || long_lived.use_for(30, "v1")));
    let moves = [
        (&v2, "flaskapp", "flaskapp-v2", "v2"),
        (&v1, "flaskapp-v2", "flaskapp", "v1"),
        (&v2, "flaskapp", "flaskapp-v2", "v2"),
    ];
    for (round, (file, from, to, version)) in moves.into_iter().enumerate() {
        let started = Instant::now();
        let (output, listener) = swap_to(&sandbox, file, to, version);
        assert_swapped(&output, from, to);
        let said = read_all(&output.stdout[..]);
        let note = format!(
            "note: container `{to}` does not run yet: this apply creates its network namespace; once wired, apply waits up to 1m"
        );
        assert!(said.contains(&note), "{said}");
        eprintln!("swap {round} to {to} took {:?}", started.elapsed());
        assert!(!sandbox.has_netns(&format!("shop:{from}")), "the old container is removed after the drain");
        current = listener;
        if let Some(user) = user.take() {
            user.join().expect("the long-lived connection was answered by v1 throughout the swap");
        }
    }
    let requests = load.finish("v2");
    eprintln!("{requests} requests through three swaps, none failed");
    drop(current);
}

fn an_alias_moves_between_containers_that_both_stay_losing_no_request() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    apply(&sandbox, &v1);
    let both = both_versions(dir.path());
    apply(&sandbox, &both);
    let moved = moved_to_v2(dir.path());
    let _old = serve_version(&sandbox, "shop:flaskapp", "v1");
    let _new = serve_version(&sandbox, "shop:flaskapp-v2", "v2");
    let app = SocketAddr::from((vip(&sandbox, &both, "app"), 5000));

    let (code, text) = plan(&sandbox, &moved);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("flaskapp -> flaskapp-v2"), "an alias leaving a container that stays is a swap: {text}");
    assert!(text.contains("drain  established connections through app to flaskapp"), "{text}");

    let load = Load::start(&sandbox, &both, dir.path());
    let mut long_lived = LongLived::open(&sandbox, app, "v1");
    let mut user = Some(std::thread::spawn(move || long_lived.use_for(30, "v1")));
    let moves =
        [(&moved, "flaskapp", "flaskapp-v2"), (&both, "flaskapp-v2", "flaskapp"), (&moved, "flaskapp", "flaskapp-v2")];
    for (file, from, to) in moves {
        let output = run(&sandbox, &["-f", file, "apply", "--yes"]);
        eprintln!("{}", read_all(&output.stderr[..]));
        assert_swapped(&output, from, to);
        if let Some(user) = user.take() {
            user.join().expect("the long-lived connection was answered by v1 until it ended");
        }
        assert!(sandbox.has_netns("shop:flaskapp") && sandbox.has_netns("shop:flaskapp-v2"), "both stay");
    }
    let requests = load.finish("v2");
    eprintln!("{requests} requests through three moves between containers that stay, none failed");

    // The flow that reached flaskapp through the alias is gone once drained: nginx may
    // not reach it any more.
    let flaskapp = stacks::address_of(&sandbox, &moved, "flaskapp", "web_nw");
    let direct = sandbox.connect("shop:nginx", SocketAddr::from((flaskapp, 5000)));
    assert!(direct.is_err(), "nginx still reaches flaskapp, which no flow allows: {direct:?}");
}

/// Scenario 1 with both versions running and `app` on flaskapp-v2, flaskapp kept.
fn moved_to_v2(dir: &Path) -> String {
    let both = std::fs::read_to_string(both_versions(dir)).expect("read both versions");
    let text = both.replace("      web_nw: { aliases: [app] }\n", "      web_nw: {}\n").replace(
        "  flaskapp-v2:\n    networks:\n      web_nw: {}\n",
        "  flaskapp-v2:\n    networks:\n      web_nw: { aliases: [app] }\n",
    );
    assert_ne!(text, both, "the alias moved in the text");
    write_stack(dir, "moved.yaml", &text)
}

fn a_swap_away_from_a_container_that_stopped_accepting_loses_no_request() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let _old = serve_version(&sandbox, "shop:flaskapp", "v1");
    let load = Load::start(&sandbox, &v1, dir.path());
    // The old version stops accepting: new handshakes to it are lost, and their clients
    // send them again after 1 s, 3 s, 7 s. Conntrack would keep sending those retries to
    // the old container, which the swap removes: they must follow the alias instead.
    sandbox.sh("ip netns exec shop:flaskapp nft add table ip overloaded && \
         ip netns exec shop:flaskapp nft add chain ip overloaded input '{ type filter hook input priority 0; }' && \
         ip netns exec shop:flaskapp nft add rule ip overloaded input tcp dport 5000 tcp flags syn drop");
    std::thread::sleep(Duration::from_millis(500));
    let (output, _new) = swap_to(&sandbox, &v2, "flaskapp-v2", "v2");
    assert_swapped(&output, "flaskapp", "flaskapp-v2");
    // The retries of the handshakes lost before the repoint are due 1 s, 3 s and 7 s
    // after them: the load runs until the last is through.
    std::thread::sleep(Duration::from_secs(8));
    let requests = load.finish("v2");
    eprintln!("{requests} requests, none failed, though the old version stopped accepting before the swap");
}

fn a_swap_that_cannot_start_without_waiting_is_refused_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let _old = serve_version(&sandbox, "shop:flaskapp", "v1");
    let app = SocketAddr::from((vip(&sandbox, &v1, "app"), 5000));

    // flaskapp-v2 does not exist yet, and apply may not wait for it.
    let (_, before) = plan(&sandbox, &v2);
    let output = run(&sandbox, &["-f", &v2, "apply", "--yes"]);
    let said = read_all(&output.stderr[..]);
    assert_eq!(output.status.code(), Some(1), "{said}");
    for expected in [
        "error: the swap of alias `app` on `web_nw` cannot start, so nothing was changed:",
        "container `flaskapp-v2` does not run yet: this apply creates its network namespace",
        "apply with `--wait 5m`: it creates the namespace of `flaskapp-v2` and waits while you start it there",
        "exec flaskapp-v2 -- COMMAND`",
        "podman run --network ns:/run/netns/shop:flaskapp-v2",
    ] {
        assert!(said.contains(expected), "missing `{expected}`: {said}");
    }
    // Only waiting works for a container whose namespace only the apply creates.
    assert!(!said.contains("apply again") && !said.contains("COMMAND &"), "advice in a circle: {said}");
    assert_eq!(plan(&sandbox, &v2).1, before, "the refused swap changed nothing");
    assert!(!sandbox.has_netns("shop:flaskapp-v2"));

    // flaskapp-v2 runs but does not listen.
    let both = both_versions(dir.path());
    apply(&sandbox, &both);
    let (_, before) = plan(&sandbox, &v2);
    let output = run(&sandbox, &["-f", &v2, "apply", "--yes"]);
    let said = read_all(&output.stderr[..]);
    assert_eq!(output.status.code(), Some(1), "{said}");
    for expected in [
        "nothing in container `flaskapp-v2` listens on tcp/5000",
        "start a program in `flaskapp-v2` that accepts on tcp/5000, e.g. with",
        "exec flaskapp-v2 -- COMMAND &",
        "then apply again; or apply with `--wait 5m` and start it while apply waits",
    ] {
        assert!(said.contains(expected), "missing `{expected}`: {said}");
    }
    assert_eq!(plan(&sandbox, &v2).1, before, "the refused swap changed nothing");
    assert_eq!(sandbox.connect("shop:nginx", app).expect("app still answers"), "v1");
}

fn an_alias_of_several_containers_spreads_new_connections_over_them() {
    let sandbox = Sandbox::new();
    let file = example("reverse-proxy");
    apply(&sandbox, &file);
    let pool = vip(&sandbox, &file, "sinatra-pool");
    let _a = sandbox.listen("sinatra:sinatra-a", 9000, "a");
    let _b = sandbox.listen("sinatra:sinatra-b", 9000, "b");
    let replies: Vec<String> = (0..10)
        .map(|_| sandbox.connect("sinatra:edge", SocketAddr::from((pool, 9000))).expect("the pool answers"))
        .collect();
    assert_eq!(replies.iter().filter(|reply| *reply == "a").count(), 5, "{replies:?}");
    assert_eq!(replies.iter().filter(|reply| *reply == "b").count(), 5, "{replies:?}");
}

/// Two networks and both versions of the app, with `app` (and `api`) on `holder`.
fn two_networks(dir: &Path, name: &str, flaskapp: &str, flaskapp_v2: &str, nginx_talks: &str) -> String {
    let text = format!(
        "name: shop\nnetworks:\n  web_nw: {{ subnet: 10.30.0.0/24 }}\n  api_nw: {{ subnet: 10.31.0.0/24 }}\n\
         containers:\n  nginx:\n    networks: [web_nw, api_nw]\n    talks_to: [{nginx_talks}]\n\
         \x20 flaskapp:\n    networks:\n{flaskapp}\x20 flaskapp-v2:\n    networks:\n{flaskapp_v2}"
    );
    write_stack(dir, name, &text)
}

/// Applies `before`, opens a connection through `app` to flaskapp (v1), applies `after`,
/// which moves `app` away from flaskapp, and keeps using the connection while the swap
/// drains it: every request on it must be answered by v1, and the swap must wait for it.
fn a_connection_through_the_alias_outlives_the_swap(before: &str, after: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    apply(&sandbox, before);
    let _v1 = serve_version(&sandbox, "shop:flaskapp", "v1");
    let _v2 = serve_version(&sandbox, "shop:flaskapp-v2", "v2");
    let app = SocketAddr::from((vip(&sandbox, before, "app"), 5000));
    let mut long_lived = LongLived::open(&sandbox, app, "v1");
    let swap = Watched::spawn(sandbox.stackctl().args(["-f", after, "apply", "--yes"]));
    long_lived.use_for(30, "v1");
    drop(long_lived);
    let output = swap.finish();
    let said = read_all(&output.stdout[..]);
    assert!(output.status.success(), "{said}\n{}", read_all(&output.stderr[..]));
    assert!(said.contains("flaskapp -> flaskapp-v2") && said.contains("drained `flaskapp`"), "{said}");
    let waited = said
        .lines()
        .find_map(|line| line.strip_prefix("drained `flaskapp`: its connections finished within "))
        .and_then(|waited| humantime::parse_duration(waited).ok())
        .unwrap_or_else(|| panic!("how long the drain waited: {said}"));
    assert!(waited >= Duration::from_secs(2), "the drain did not wait for the connection: {said}");
    assert_eq!(sandbox.connect("shop:nginx", app).expect("app answers"), "v2");
    sandbox
}

/// A flow to the container the alias leaves narrows (tcp/5000-5001 to tcp/5001): until the
/// removal both ranges cannot stand in the kernel's set, so the narrower one comes then.
fn a_swap_whose_flows_to_the_old_container_narrow_applies_and_drains() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let talks = "\"app:5000/tcp\", \"flaskapp:5001/tcp\"";
    let before =
        two_networks(dir.path(), "before.yaml", "      web_nw: { aliases: [app] }\n", "      web_nw: {}\n", talks);
    let after =
        two_networks(dir.path(), "after.yaml", "      web_nw: {}\n", "      web_nw: { aliases: [app] }\n", talks);
    let sandbox = a_connection_through_the_alias_outlives_the_swap(&before, &after);
    // The flow of its own that nginx keeps to flaskapp still passes.
    let _direct = sandbox.listen("shop:flaskapp", 5001, "direct");
    let flaskapp = stacks::address_of(&sandbox, &after, "flaskapp", "web_nw");
    assert_eq!(sandbox.connect("shop:nginx", SocketAddr::from((flaskapp, 5001))).as_deref().ok(), Some("direct"));
}

/// flaskapp leaves one network and keeps the other, where `app` leaves it: its
/// connections through `app` drain, though it loses an address elsewhere.
fn a_container_kept_on_the_aliass_network_but_removed_from_another_drains_its_alias_connections() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let talks = "\"app:5000/tcp\", \"api:5000/tcp\"";
    let both = "      web_nw: { aliases: [app] }\n      api_nw: { aliases: [api] }\n";
    let none = "      web_nw: {}\n      api_nw: {}\n";
    let before = two_networks(dir.path(), "before.yaml", both, none, talks);
    let after = two_networks(dir.path(), "after.yaml", "      web_nw: {}\n", both, talks);
    a_connection_through_the_alias_outlives_the_swap(&before, &after);
}

/// flaskapp gets another address on the network where `app` leaves it: until its
/// connections through `app` have drained, it keeps the one they use.
fn a_container_whose_address_changes_as_the_alias_leaves_it_keeps_the_old_one_until_drained() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let talks = "\"app:5000/tcp\"";
    let before = two_networks(
        dir.path(),
        "before.yaml",
        "      web_nw: { aliases: [app], ipv4: 10.30.0.10 }\n",
        "      web_nw: {}\n",
        talks,
    );
    let after = two_networks(
        dir.path(),
        "after.yaml",
        "      web_nw: { ipv4: 10.30.0.11 }\n",
        "      web_nw: { aliases: [app] }\n",
        talks,
    );
    let sandbox = a_connection_through_the_alias_outlives_the_swap(&before, &after);
    assert_eq!(stacks::address_of(&sandbox, &after, "flaskapp", "web_nw"), Ipv4Addr::new(10, 30, 0, 11));
}

/// An apply interrupted while its swap waits (Ctrl-C) has kept the record of what it
/// made: the next plan shows no drift, and the next apply takes the swap up again.
fn a_swap_interrupted_while_it_waits_leaves_no_drift_and_resumes() {
    let sandbox = Sandbox::new();
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let _v1 = serve_version(&sandbox, "shop:flaskapp", "v1");
    let apply = Watched::spawn(sandbox.stackctl().args(["-f", &v2, "apply", "--yes", "--wait", "60s"]));
    apply.wait_for("waiting up to 1m for container `flaskapp-v2`", Duration::from_secs(30));
    let output = apply.interrupt();
    assert!(!output.status.success());
    let (code, text) = plan(&sandbox, &v2);
    assert_eq!(code, 2, "{text}");
    assert!(!text.contains("Changed outside stackctl"), "an interrupted apply is no change outside: {text}");
    assert!(text.contains("swap    app@web_nw"), "{text}");
    let (output, _v2) = swap_to(&sandbox, &v2, "flaskapp-v2", "v2");
    assert_swapped(&output, "flaskapp", "flaskapp-v2");
}

/// While a swap drains a container whose address the edit changes, the container is
/// whole at its old address: its own flows pass, its published port answers, and its
/// name resolves to it.
fn a_renumbered_container_keeps_its_flows_port_and_name_until_drained() {
    let sandbox = Sandbox::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let stack = |name: &str, flaskapp: &str, v2: &str| {
        let text = format!(
            "name: shop\nnetworks:\n  web_nw: {{ subnet: 10.30.0.0/24 }}\ncontainers:\n  nginx:\n    networks: [web_nw]\n\
             \x20   talks_to: [\"app:5000\", \"flaskapp:5000\"]\n  cache:\n    networks: [web_nw]\n  flaskapp:\n\
             \x20   networks:\n      web_nw: {flaskapp}\n    talks_to: [\"cache:6000\"]\n    ports: [\"127.0.0.1:8081:5000\"]\n\
             \x20 flaskapp-v2:\n    networks:\n      web_nw: {v2}\n"
        );
        write_stack(dir.path(), name, &text)
    };
    let before = stack("before.yaml", "{ aliases: [app], ipv4: 10.30.0.10 }", "{}");
    let after = stack("after.yaml", "{ ipv4: 10.30.0.11 }", "{ aliases: [app] }");
    apply(&sandbox, &before);
    let _v1 = serve_version(&sandbox, "shop:flaskapp", "v1");
    let _v2 = serve_version(&sandbox, "shop:flaskapp-v2", "v2");
    let _cache = sandbox.listen("shop:cache", 6000, "cache");
    let cache = SocketAddr::from((stacks::address_of(&sandbox, &before, "cache", "web_nw"), 6000));
    let app = SocketAddr::from((vip(&sandbox, &before, "app"), 5000));
    let mut long_lived = LongLived::open(&sandbox, app, "v1");
    let swap = Watched::spawn(sandbox.stackctl().args(["-f", &after, "apply", "--yes"]));
    let user = std::thread::spawn(move || long_lived.use_for(30, "v1"));
    std::thread::sleep(Duration::from_millis(1500));
    // During the drain:
    assert_eq!(sandbox.connect("shop:flaskapp", cache).as_deref().ok(), Some("cache"), "its own flow");
    let published = sandbox.in_netns(None, || {
        let mut stream = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], 8081)), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        BufReader::new(&mut stream).read_line(&mut line)?;
        Ok::<_, std::io::Error>(line.trim().to_owned())
    });
    assert_eq!(published.as_deref().ok(), Some("v1"), "its published port");
    assert_eq!(sandbox.connect_by_name(&after, "nginx", "flaskapp", 5000), Ok("v1".to_owned()), "its name");
    user.join().expect("the long-lived connection was answered by v1 until it ended");
    let output = swap.finish();
    assert!(output.status.success(), "{}", read_all(&output.stderr[..]));
    assert!(read_all(&output.stdout[..]).contains("drained `flaskapp`"));
    assert_eq!(stacks::address_of(&sandbox, &after, "flaskapp", "web_nw"), Ipv4Addr::new(10, 30, 0, 11));
}

harness::main! {
    Shared: [
        a_swap_that_cannot_start_without_waiting_is_refused_and_changes_nothing,
        an_alias_of_several_containers_spreads_new_connections_over_them,
        a_swap_interrupted_while_it_waits_leaves_no_drift_and_resumes,
    ],
    Alone: [
        // Load and long-lived connections (a request every 100 ms, each answered within 3 s)
        // through swaps and their drains, which must be seen waiting for them.
        one_edit_swaps_back_and_forth_lose_no_request,
        an_alias_moves_between_containers_that_both_stay_losing_no_request,
        a_swap_away_from_a_container_that_stopped_accepting_loses_no_request,
        a_swap_whose_flows_to_the_old_container_narrow_applies_and_drains,
        a_container_kept_on_the_aliass_network_but_removed_from_another_drains_its_alias_connections,
        a_container_whose_address_changes_as_the_alias_leaves_it_keeps_the_old_one_until_drained,
        a_renumbered_container_keeps_its_flows_port_and_name_until_drained,
    ],
}
