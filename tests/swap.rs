//! Aliases on the live kernel, always in a sandbox (`support::sandbox`): scenario 1's
//! `app` moving from flaskapp to flaskapp-v2 under continuous load with no failed request,
//! a swap refused when the new container does not listen, and scenario 2's alias spreading
//! connections over the containers that share it.

#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, read_all};
use serde_json::Value;
use stacks::{alias_address, apply, both_versions, example, plan, run};

/// A client that sends requests without pause through a name, for `seconds`: each request
/// is a new connection whose first line is the reply. `per-request` resolves the name
/// before every request (through the container's resolver); `once` resolves it once, at
/// start, and keeps the address, as nginx does with its upstreams. Prints its counts as
/// JSON.
const CLIENT: &str = r#"
import json, socket, sys, time
mode, name, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def resolve():
    return socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
fixed = resolve() if mode == "once" else None
counts, errors, replies = {}, [], []
end = time.time() + seconds
while time.time() < end:
    try:
        address = fixed or resolve()
        with socket.create_connection(address, timeout=3) as connection:
            connection.settimeout(3)
            reply = connection.makefile().readline().strip()
        if not reply:
            raise OSError("no reply from %s" % (address,))
        counts[reply] = counts.get(reply, 0) + 1
        replies.append(reply)
    except OSError as error:
        errors.append(repr(error))
print(json.dumps({"counts": counts, "failed": len(errors), "errors": errors[:5], "last": replies[-20:], "address": str(fixed)}))
"#;

/// A running client; killed if the test ends before it does.
struct Client {
    child: Option<Child>,
}

impl Client {
    fn start(sandbox: &Sandbox, file: &str, mode: &str, seconds: f64) -> Client {
        let child = sandbox
            .stackctl()
            .args(["-f", file, "exec", "nginx", "--", "python3", "-c", CLIENT, mode, "app", "5000"])
            .arg(seconds.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a client in nginx");
        Client { child: Some(child) }
    }

    fn finish(mut self) -> Value {
        let child = self.child.take().expect("a running client");
        let output = child.wait_with_output().expect("wait for the client");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        serde_json::from_str(text.trim())
            .unwrap_or_else(|_| panic!("client output: {text}\n{}", String::from_utf8_lossy(&output.stderr)))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Serves the version's name to each new connection on port 5000, and to each line a
/// long-lived connection sends.
fn serve_version(sandbox: &Sandbox, namespace: &str, version: &'static str) -> sandbox::Listener {
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

#[test]
fn app_moves_to_flaskapp_v2_with_no_failed_request() {
    let Some(sandbox) = Sandbox::new() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let v1 = example("web-app-db");
    let v2 = example("web-app-db-v2");
    apply(&sandbox, &v1);
    let both = both_versions(dir.path());
    apply(&sandbox, &both);
    let _old = serve_version(&sandbox, "shop:flaskapp", "v1");
    let _new = serve_version(&sandbox, "shop:flaskapp-v2", "v2");
    let app = SocketAddr::from((app_address(&sandbox), 5000));

    // A long-lived connection through the alias, open before the swap and busy during it.
    let long_lived = sandbox.in_netns(Some("shop:nginx"), move || {
        std::net::TcpStream::connect_timeout(&app, Duration::from_secs(1)).expect("open a long-lived connection")
    });
    long_lived.set_read_timeout(Some(Duration::from_secs(3))).expect("read timeout");
    let mut replies = BufReader::new(long_lived.try_clone().expect("clone"));
    let mut first = String::new();
    replies.read_line(&mut first).expect("the long-lived connection's greeting");
    assert_eq!(first.trim(), "v1");

    let per_request = Client::start(&sandbox, &both, "per-request", 9.0);
    let once = Client::start(&sandbox, &both, "once", 9.0);
    std::thread::sleep(Duration::from_millis(1500));

    let (code, text) = plan(&sandbox, &v2);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("swap    app@web_nw") && text.contains("flaskapp -> flaskapp-v2"), "{text}");
    assert!(text.contains("up to 30s"), "{text}");

    let started = Instant::now();
    let swap = sandbox.stackctl().args(["-f", &v2, "apply", "--yes"]).stdout(Stdio::piped()).spawn().expect("apply");
    // The long-lived connection keeps working on the old container while the swap waits
    // for it, then ends normally.
    let mut writer = long_lived;
    let mut line = String::new();
    for _ in 0..30 {
        writeln!(writer, "ping").expect("the long-lived connection takes a request");
        line.clear();
        replies.read_line(&mut line).expect("the long-lived connection answers");
        assert_eq!(line.trim(), "v1", "a long-lived connection stays on the old container");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(writer);
    drop(replies);
    let output = swap.wait_with_output().expect("the swap ends");
    let took = started.elapsed();
    let said = read_all(&output.stdout[..]);
    assert!(output.status.success(), "the swap failed: {said}");
    assert!(said.contains("drained `flaskapp`"), "{said}");
    assert!(!sandbox.has_netns("shop:flaskapp"), "the old container is removed after the drain");
    eprintln!("the swap took {took:?}");

    for (name, client) in [("per-request", per_request), ("once", once)] {
        let result = client.finish();
        eprintln!("{name} client: {}", result["counts"]);
        assert_eq!(result["failed"], 0, "{name} client: {result}");
        let counts = &result["counts"];
        assert!(counts["v1"].as_u64().unwrap_or(0) > 0 && counts["v2"].as_u64().unwrap_or(0) > 0, "{name}: {result}");
        let last = result["last"].as_array().expect("last replies");
        assert!(last.iter().all(|reply| reply == "v2"), "{name}: new connections go to v2 after the swap: {result}");
    }
}

fn app_address(sandbox: &Sandbox) -> Ipv4Addr {
    vip(sandbox, &example("web-app-db"), "app")
}

#[test]
fn a_swap_to_a_container_that_does_not_listen_is_refused_and_changes_nothing() {
    let Some(sandbox) = Sandbox::new() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    apply(&sandbox, &example("web-app-db"));
    let both = both_versions(dir.path());
    apply(&sandbox, &both);
    let _old = serve_version(&sandbox, "shop:flaskapp", "v1");
    let app = SocketAddr::from((app_address(&sandbox), 5000));
    let v2 = example("web-app-db-v2");
    let (_, before) = plan(&sandbox, &v2);

    let output = run(&sandbox, &["-f", &v2, "apply", "--yes"]);
    let said = read_all(&output.stderr[..]);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("refuse the swap of alias `app` on `web_nw`"), "{said}");
    assert!(said.contains("nothing in container `flaskapp-v2` listens on tcp/5000"), "{said}");
    assert!(said.contains("0 of"), "nothing was made: {said}");
    assert_eq!(plan(&sandbox, &v2).1, before, "the refused swap changed nothing");
    assert_eq!(sandbox.connect("shop:nginx", app).expect("app still answers"), "v1");
}

#[test]
fn an_alias_of_several_containers_spreads_new_connections_over_them() {
    let Some(sandbox) = Sandbox::new() else { return };
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
