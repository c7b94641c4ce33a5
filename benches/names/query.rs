//! A small DNS load client over UDP, for the dns rows: A queries for a list of names,
//! written by hand (a 12-byte header, the name's labels, type A, class IN), either many in
//! flight at once for throughput or one at a time for latency. A reply counts as answered
//! when it carries the query's id, says NOERROR and has at least one answer.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a query may wait for its reply before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

/// One query per name, each with id 0 until sent.
pub struct Queries {
    packets: Vec<Vec<u8>>,
}

impl Queries {
    pub fn new(names: &[String]) -> Queries {
        Queries { packets: names.iter().map(|name| packet(name)).collect() }
    }

    /// The query for the `n`th name (cycling), with `id`.
    fn with_id(&mut self, n: usize, id: u16) -> &[u8] {
        let count = self.packets.len();
        let packet = &mut self.packets[n % count];
        packet[..2].copy_from_slice(&id.to_be_bytes());
        packet
    }
}

/// A recursion-desired query for the A records of `name`, with no EDNS: what the C
/// library sends by default.
fn packet(name: &str) -> Vec<u8> {
    let mut packet = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        assert!(!label.is_empty() && label.len() < 64, "a name of short labels: {name:?}");
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

/// What a datagram says.
enum Reply {
    /// A reply to query `id` that answers it.
    Answered(u16),
    /// A reply to query `id` with an error code or no answer.
    Failed(u16),
    /// Not a reply.
    Garbage,
}

fn reply(bytes: &[u8]) -> Reply {
    if bytes.len() < 12 || bytes[2] & 0x80 == 0 {
        return Reply::Garbage;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let rcode = bytes[3] & 0x0f;
    let answers = u16::from_be_bytes([bytes[6], bytes[7]]);
    if rcode == 0 && answers >= 1 { Reply::Answered(id) } else { Reply::Failed(id) }
}

/// A UDP socket of the calling thread's namespace, connected to `server`.
fn socket(server: SocketAddr, timeout: Duration) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(timeout))?;
    Ok(socket)
}

fn timed_out(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// Whether `server` answers a query for `name` within `within`.
pub fn answers(server: SocketAddr, name: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut queries = Queries::new(&[name.to_owned()]);
    let Ok(socket) = socket(server, Duration::from_millis(100)) else { return false };
    let mut buffer = [0; 1500];
    for id in 1.. {
        if Instant::now() >= deadline {
            return false;
        }
        // A refused datagram (nothing listens yet) fails the send or the receive.
        if socket.send(queries.with_id(0, id)).is_err() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match socket.recv(&mut buffer) {
            Ok(length) if matches!(reply(&buffer[..length]), Reply::Answered(answered) if answered == id) => {
                return true;
            }
            Ok(_) => {}
            Err(error) if timed_out(&error) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

pub struct Throughput {
    /// Replies that answered, per second of the run.
    pub per_second: f64,
    /// Queries with no reply after [`LOST_AFTER`] (each replaced by a new one).
    pub lost: u64,
    /// Replies with an error code or no answer.
    pub failed: u64,
}

/// Keeps `in_flight` queries outstanding for `duration`, cycling over the names: each
/// reply, or each query lost, sends the next one.
pub fn throughput(
    server: SocketAddr,
    queries: &mut Queries,
    in_flight: usize,
    duration: Duration,
) -> io::Result<Throughput> {
    let socket = socket(server, Duration::from_millis(10))?;
    // When each outstanding id was sent; `order` keeps them in the order sent, so that the
    // oldest is found at once (answered ones leave it when they reach its front).
    let mut sent: Vec<Option<Instant>> = vec![None; usize::from(u16::MAX) + 1];
    let mut order: VecDeque<(u16, Instant)> = VecDeque::new();
    let (mut next_id, mut next_name) = (1u16, 0usize);
    let (mut answered, mut lost, mut failed) = (0u64, 0u64, 0u64);
    let mut send = |sent: &mut Vec<Option<Instant>>, order: &mut VecDeque<(u16, Instant)>| -> io::Result<()> {
        while sent[usize::from(next_id)].is_some() {
            next_id = next_id.wrapping_add(1);
        }
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        let now = Instant::now();
        socket.send(queries.with_id(next_name, id))?;
        next_name += 1;
        sent[usize::from(id)] = Some(now);
        order.push_back((id, now));
        Ok(())
    };
    let started = Instant::now();
    let deadline = started + duration;
    for _ in 0..in_flight {
        send(&mut sent, &mut order)?;
    }
    let mut buffer = [0; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match socket.recv(&mut buffer) {
            Ok(length) => {
                let (id, good) = match reply(&buffer[..length]) {
                    Reply::Answered(id) => (id, true),
                    Reply::Failed(id) => (id, false),
                    Reply::Garbage => continue,
                };
                // A reply to a query already counted lost, or to none, is ignored.
                if sent[usize::from(id)].take().is_some() {
                    if good {
                        answered += 1;
                    } else {
                        failed += 1;
                    }
                    send(&mut sent, &mut order)?;
                }
            }
            Err(error) if timed_out(&error) => {}
            Err(error) => return Err(error),
        }
        let now = Instant::now();
        while let Some(&(id, at)) = order.front() {
            if sent[usize::from(id)] != Some(at) {
                order.pop_front();
            } else if now.duration_since(at) >= LOST_AFTER {
                order.pop_front();
                sent[usize::from(id)] = None;
                lost += 1;
                send(&mut sent, &mut order)?;
            } else {
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Throughput { per_second: answered as f64 / seconds, lost, failed })
}

pub struct Latency {
    /// The round trip of each answered query, sorted.
    pub round_trips: Vec<Duration>,
    pub lost: u64,
    pub failed: u64,
}

impl Latency {
    /// The `p`th percentile (nearest rank) in microseconds.
    pub fn percentile_us(&self, p: f64) -> Option<f64> {
        let n = self.round_trips.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
        Some(self.round_trips[rank.min(n) - 1].as_secs_f64() * 1e6)
    }
}

/// One query at a time, each sent when the one before it was answered (or lost), for
/// `duration` or `most` queries, whichever comes first.
pub fn latency(server: SocketAddr, queries: &mut Queries, duration: Duration, most: usize) -> io::Result<Latency> {
    let socket = socket(server, LOST_AFTER)?;
    let mut round_trips = Vec::with_capacity(most);
    let (mut lost, mut failed) = (0u64, 0u64);
    let mut buffer = [0; 1500];
    let deadline = Instant::now() + duration;
    for n in 0..most {
        if Instant::now() >= deadline {
            break;
        }
        let id = (n as u16).wrapping_add(1);
        let packet = queries.with_id(n, id);
        let sent = Instant::now();
        socket.send(packet)?;
        loop {
            match socket.recv(&mut buffer) {
                Ok(length) => {
                    let took = sent.elapsed();
                    match reply(&buffer[..length]) {
                        Reply::Answered(answered) if answered == id => round_trips.push(took),
                        Reply::Failed(answered) if answered == id => failed += 1,
                        // A late reply to a query counted lost.
                        _ => continue,
                    }
                    break;
                }
                Err(error) if timed_out(&error) && sent.elapsed() >= LOST_AFTER => {
                    lost += 1;
                    break;
                }
                Err(error) if timed_out(&error) => {}
                Err(error) => return Err(error),
            }
        }
    }
    round_trips.sort_unstable();
    Ok(Latency { round_trips, lost, failed })
}
