//! Asking the host's own name servers what the stack's names do not answer: each in turn,
//! over the transport the client used, each for a bounded time. Whether a reply answers
//! the question is the core's to say ([`crate::names::relayed`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

use crate::names::relayed;

/// How long one name server may take to answer.
const WAIT: Duration = Duration::from_millis(1500);
/// How many of the host's name servers are asked, at most, as the C library does.
const TRIED: usize = 3;

/// The reply of the first of `upstreams` that answers `query` over UDP.
pub async fn over_udp(upstreams: &[IpAddr], query: &[u8]) -> Option<Vec<u8>> {
    for upstream in upstreams.iter().take(TRIED) {
        if let Some(reply) = ask_udp(*upstream, query).await {
            return Some(reply);
        }
    }
    None
}

/// The reply of the first of `upstreams` that answers `query` over TCP.
pub async fn over_tcp(upstreams: &[IpAddr], query: &[u8]) -> Option<Vec<u8>> {
    for upstream in upstreams.iter().take(TRIED) {
        if let Ok(Some(reply)) = timeout(WAIT, ask_tcp(*upstream, query)).await {
            return Some(reply);
        }
    }
    None
}

async fn ask_udp(upstream: IpAddr, query: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = match upstream {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A socket of its own, on a port the kernel picks, connected to the name server: only
    // its replies reach it.
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.connect((upstream, super::PORT)).await.ok()?;
    socket.send(query).await.ok()?;
    let deadline = Instant::now() + WAIT;
    let mut buffer = vec![0; usize::from(u16::MAX)];
    // Something that is not the reply (a late answer to another question) does not end
    // the wait.
    loop {
        let length = timeout_at(deadline, socket.recv(&mut buffer)).await.ok()?.ok()?;
        if let Some(reply) = relayed(query, &buffer[..length]) {
            return Some(reply);
        }
    }
}

async fn ask_tcp(upstream: IpAddr, query: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(query.len()).ok()?;
    let mut stream = TcpStream::connect((upstream, super::PORT)).await.ok()?;
    let mut message = Vec::with_capacity(query.len() + 2);
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(query);
    stream.write_all(&message).await.ok()?;
    let length = stream.read_u16().await.ok()?;
    let mut reply = vec![0; usize::from(length)];
    stream.read_exact(&mut reply).await.ok()?;
    relayed(query, &reply)
}
