//! The sockets on one gateway, and the loops that answer them. Answers from the stack's
//! names are sent from the loop that received the query, with no task in between; only a
//! query forwarded to the host's name servers gets a task of its own, and a bounded number
//! of those are in flight at once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, setsockopt, socket, sockopt,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{PORT, upstream};
use crate::names::{Index, Response, Transport, respond, unanswered};

/// Forwarded queries in flight at once; past that, a query is dropped and its client asks
/// again.
const FORWARDS: usize = 1024;
/// TCP connections open at once.
const CONNECTIONS: usize = 256;
/// How long a TCP connection may wait for its next query.
const IDLE: Duration = Duration::from_secs(10);

/// What every loop reads: the names to answer from and the name servers to forward to,
/// each swapped whole by a reload.
pub struct Shared {
    pub index: ArcSwap<Index>,
    pub upstreams: ArcSwap<Vec<IpAddr>>,
    forwards: Arc<Semaphore>,
    connections: Arc<Semaphore>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            index: ArcSwap::from_pointee(Index::default()),
            upstreams: ArcSwap::from_pointee(Vec::new()),
            forwards: Arc::new(Semaphore::new(FORWARDS)),
            connections: Arc::new(Semaphore::new(CONNECTIONS)),
        }
    }
}

/// The loops of one gateway; dropping this closes its sockets.
pub struct Listening {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Listens on port 53 of `gateway`, over UDP and TCP. The address need not exist yet
/// (`IP_FREEBIND`): a bridge that gets its address after the server starts is served
/// from that moment.
pub fn listen_on(gateway: Ipv4Addr, shared: &Arc<Shared>) -> io::Result<Listening> {
    let udp = UdpSocket::from_std(std::net::UdpSocket::from(bound(gateway, SockType::Datagram)?))?;
    let tcp = bound(gateway, SockType::Stream)?;
    listen(&tcp, Backlog::new(128).map_err(io::Error::from)?)?;
    let tcp = TcpListener::from_std(std::net::TcpListener::from(tcp))?;
    let tasks = vec![
        tokio::spawn(answer_udp(Arc::new(udp), gateway, Arc::clone(shared))),
        tokio::spawn(accept_tcp(tcp, gateway, Arc::clone(shared))),
    ];
    Ok(Listening { tasks })
}

/// A non-blocking socket bound to port 53 of `gateway`.
fn bound(gateway: Ipv4Addr, kind: SockType) -> io::Result<OwnedFd> {
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    // A listener may bind while connections of the one before it linger; UDP takes no such
    // option, so that no other process can share its port.
    if kind == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(gateway, PORT)))?;
    Ok(fd)
}

async fn answer_udp(socket: Arc<UdpSocket>, gateway: Ipv4Addr, shared: Arc<Shared>) {
    let mut buffer = vec![0; usize::from(u16::MAX)];
    loop {
        // Errors of a datagram socket concern one datagram; the next one is served.
        let Ok((length, SocketAddr::V4(client))) = socket.recv_from(&mut buffer).await else { continue };
        let query = &buffer[..length];
        match answer(&shared, gateway, *client.ip(), Transport::Udp, query) {
            Response::Reply(reply) => {
                let _ = socket.send_to(&reply, client).await;
            }
            Response::Forward => {
                let Ok(permit) = Arc::clone(&shared.forwards).try_acquire_owned() else { continue };
                let (socket, shared, query) = (Arc::clone(&socket), Arc::clone(&shared), query.to_vec());
                tokio::spawn(async move {
                    let upstreams = shared.upstreams.load_full();
                    let reply = upstream::over_udp(&upstreams, &query).await;
                    if let Some(reply) = reply.or_else(|| unanswered(&query, Transport::Udp)) {
                        let _ = socket.send_to(&reply, client).await;
                    }
                    drop(permit);
                });
            }
            Response::Drop => {}
        }
    }
}

/// What to do with a query, as the core says. Should the core ever panic on a packet, the
/// packet is dropped and the loop lives on: a panic would otherwise end the loop, and with
/// it every answer on that gateway.
fn answer(shared: &Shared, gateway: Ipv4Addr, client: Ipv4Addr, transport: Transport, query: &[u8]) -> Response {
    let index = shared.index.load();
    std::panic::catch_unwind(AssertUnwindSafe(|| respond(&index, gateway, client, transport, query)))
        .unwrap_or(Response::Drop)
}

async fn accept_tcp(listener: TcpListener, gateway: Ipv4Addr, shared: Arc<Shared>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok((stream, SocketAddr::V4(client))) => (stream, client),
            Ok(_) => continue,
            // Out of descriptors, most likely: the connections open now free some soon.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // A stranger's connection is closed unread, so that strangers cannot use up the
        // connections; past the limit a connection is closed at once too, and its client
        // falls back to UDP.
        if !shared.index.load().knows(gateway, *client.ip()) {
            continue;
        }
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else { continue };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = answer_tcp(stream, gateway, *client.ip(), &shared).await;
            drop(permit);
        });
    }
}

/// Answers the queries of one TCP connection, each framed by its length, until the client
/// closes it, falls idle, or sends what gets no reply.
async fn answer_tcp(mut stream: TcpStream, gateway: Ipv4Addr, client: Ipv4Addr, shared: &Shared) -> io::Result<()> {
    loop {
        let length = tokio::time::timeout(IDLE, stream.read_u16()).await.map_err(io::Error::from)??;
        let mut query = vec![0; usize::from(length)];
        tokio::time::timeout(IDLE, stream.read_exact(&mut query)).await.map_err(io::Error::from)??;
        let reply = match answer(shared, gateway, client, Transport::Tcp, &query) {
            Response::Reply(reply) => reply,
            Response::Forward => {
                let upstreams = shared.upstreams.load_full();
                let reply = upstream::over_tcp(&upstreams, &query).await;
                match reply.or_else(|| unanswered(&query, Transport::Tcp)) {
                    Some(reply) => reply,
                    None => return Ok(()),
                }
            }
            Response::Drop => return Ok(()),
        };
        let length = u16::try_from(reply.len()).map_err(io::Error::other)?;
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
    }
}
