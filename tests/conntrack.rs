//! The conntrack table on the live kernel, always in a sandbox (`support::sandbox`):
//! scenario 1's alias `app` sends nginx's connections to flaskapp by DNAT, and the table
//! of the host namespace lists each with the alias's address, the backend and its state;
//! a SYN that flaskapp drops (its accept queue is full) is listed unreplied, and deleting
//! its entry removes that entry alone.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/sandbox.rs"]
mod sandbox;
#[path = "support/stacks.rs"]
mod stacks;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, connect, getsockname, listen, setsockopt, socket,
    sockopt,
};
use sandbox::Sandbox;
use stackctl::kernel::conntrack::{Deletion, Entry, Protocol, Table, TcpState, tcp_states};
use stacks::{address_of, alias_address, apply, example};

/// The IPv4 entries of the sandbox's host namespace, where the alias's DNAT happens.
fn list(sandbox: &Sandbox) -> Vec<Entry> {
    sandbox.in_netns(None, || Table::open()?.list()).expect("list the host's conntrack table")
}

fn delete(sandbox: &Sandbox, entry: &Entry) -> Deletion {
    let entry = entry.clone();
    sandbox.in_netns(None, move || Table::open()?.delete(&entry)).expect("delete a conntrack entry")
}

/// The entry of the connection from `client`, listed as soon as it shows: a packet
/// crosses the host after the call that sent it returns.
fn entry_from(sandbox: &Sandbox, client: SocketAddr) -> Entry {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let found = list(sandbox).into_iter().find(|entry| SocketAddr::V4(entry.original.source) == client);
        match found {
            Some(entry) => return entry,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("no conntrack entry from {client} in the host namespace"),
        }
    }
}

/// A listener on `port` of a namespace that never accepts, with a backlog of 0: the
/// first connection fills its queue, and every SYN after it is dropped, as a busy
/// server's are.
fn full_listener(sandbox: &Sandbox, netns: &str, port: u16) -> OwnedFd {
    sandbox
        .in_netns(Some(netns), move || {
            let listener = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
            // Connections accepted by the port's previous listener are still open.
            setsockopt(&listener, sockopt::ReuseAddr, &true)?;
            bind(listener.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, port))?;
            listen(&listener, Backlog::new(0)?)?;
            Ok::<_, nix::Error>(listener)
        })
        .expect("a listener with a full queue")
}

/// Sends a SYN from a namespace without waiting for an answer; returns the socket (which
/// sends it again until closed) and its address.
fn send_syn(sandbox: &Sandbox, netns: &str, to: SocketAddrV4) -> (OwnedFd, SocketAddr) {
    sandbox
        .in_netns(Some(netns), move || {
            let client = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_NONBLOCK, None)?;
            match connect(client.as_raw_fd(), &SockaddrIn::from(to)) {
                Err(nix::Error::EINPROGRESS) => {}
                other => panic!("a connection to a full queue should be in progress: {other:?}"),
            }
            let address: SockaddrIn = getsockname(client.as_raw_fd())?;
            Ok::<_, nix::Error>((client, SocketAddr::V4(address.into())))
        })
        .expect("send a SYN")
}

fn dnat_entries_are_listed_and_an_unreplied_one_deleted_alone() {
    let sandbox = Sandbox::new();
    let file = example("web-app-db");
    apply(&sandbox, &file);
    let app = alias_address(&sandbox, &file, "app").expect("`show` lists the address of `app`");
    let flaskapp = address_of(&sandbox, &file, "flaskapp", "web_nw");
    let to_app = SocketAddrV4::new(app, 5000);

    // An established connection through the alias, kept open and answered throughout.
    let echo = sandbox.listen_echo("shop:flaskapp", 5000);
    let established = sandbox.open("shop:nginx", SocketAddr::V4(to_app));
    drop(echo);

    // Then flaskapp stops accepting: one connection fills its queue, the next SYN is dropped.
    let _full = full_listener(&sandbox, "shop:flaskapp", 5000);
    let queued = sandbox
        .in_netns(Some("shop:nginx"), move || TcpStream::connect_timeout(&to_app.into(), Duration::from_secs(1)))
        .expect("the first connection is queued");
    let (unanswered, syn_from) = send_syn(&sandbox, "shop:nginx", to_app);

    let open = entry_from(&sandbox, established.local_addr());
    assert_eq!((open.protocol, open.original.destination), (Protocol::Tcp, to_app));
    assert_eq!(*open.reply.source.ip(), flaskapp, "the reply comes from the backend");
    assert_eq!(open.reply.source.port(), 5000);
    assert_eq!(open.tcp_state, Some(TcpState::Established));
    assert!(open.status.is_dst_nat() && open.status.has_seen_reply() && open.status.is_assured(), "{open:?}");
    assert!(open.is_through(app, flaskapp) && !open.is_unreplied());
    assert!(!open.is_through(app, Ipv4Addr::new(10, 89, 0, 200)));

    let syn = entry_from(&sandbox, syn_from);
    assert_eq!(syn.original.destination, to_app);
    assert_eq!(*syn.reply.source.ip(), flaskapp);
    assert_eq!(syn.tcp_state, Some(TcpState::SynSent));
    assert!(syn.is_through(app, flaskapp) && syn.is_unreplied() && !syn.status.is_assured(), "{syn:?}");

    let entries = list(&sandbox);
    let through: Vec<&Entry> = entries.iter().filter(|entry| entry.is_through(app, flaskapp)).collect();
    assert_eq!(
        tcp_states(through.iter().copied()),
        [(TcpState::SynSent, 1), (TcpState::Established, 2)].into(),
        "the open connection, the queued one and the unanswered SYN: {through:#?}"
    );

    // The entry's tuple with another id is no entry: the open connection's entry stays.
    let other_id = Entry { id: open.id ^ 1, ..open.clone() };
    assert_eq!(delete(&sandbox, &other_id), Deletion::AlreadyGone);
    assert!(list(&sandbox).contains(&open), "a deletion with another id deleted the entry");

    // Closed, the client sends no more SYNs, which would make a new entry for the tuple.
    drop(unanswered);
    assert_eq!(delete(&sandbox, &syn), Deletion::Deleted);
    let after = list(&sandbox);
    assert!(
        after.iter().all(|entry| SocketAddr::V4(entry.original.source) != syn_from),
        "the SYN's entry is still listed"
    );
    assert!(after.contains(&open), "the open connection's entry changed");
    assert_eq!(delete(&sandbox, &syn), Deletion::AlreadyGone);
    established.assert_alive("after the deletions");
    drop(queued);
}

harness::main! {
    Alone: [
        // Fills an accept queue and looks for the dropped SYN's entry for 2 s.
        dnat_entries_are_listed_and_an_unreplied_one_deleted_alone,
    ],
}
