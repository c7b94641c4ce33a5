//! How the name server shares what it holds for its clients (TCP connections, queries
//! forwarded to the host's name servers) so that no client starves another: each client
//! (a source address) holds at most its own limit, and once every slot is taken, a client
//! takes one from whoever holds the most, as long as that is more than it holds itself.
//! A client that floods the server therefore only ever pushes out its own work and that
//! of clients that hold more than it does.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// What a kind of slot allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Slots held at once, by every client together: what bounds the server's memory and
    /// descriptors.
    pub total: usize,
    /// Slots held at once by one client.
    pub each: usize,
}

/// TCP connections. A stub resolver opens one when a reply did not fit in UDP, and rarely
/// more than a few at once; 16 leave room for a program that keeps several open. 256 of
/// them need 256 descriptors, or twice that while each forwards a query.
pub const TCP_CONNECTIONS: Limits = Limits { total: 256, each: 16 };

/// Queries forwarded to the host's name servers over UDP and waiting for an answer (each
/// holds a socket of its own for up to a few seconds). 64 in flight are about 3000 queries
/// a second from one client at a usual round trip of 20 ms.
pub const FORWARDS: Limits = Limits { total: 1024, each: 64 };

/// One slot held: which one, so that it can be given back or taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

/// A slot given to a client, and the one taken away for it from another (or the same)
/// client, whose work ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub ticket: Ticket,
    pub evicted: Option<Ticket>,
}

/// The slots of one kind, by client.
#[derive(Debug, Clone)]
pub struct Slots<C> {
    limits: Limits,
    /// Each client's tickets, oldest first; a client that holds none is not here.
    held: BTreeMap<C, VecDeque<Ticket>>,
    holder: HashMap<Ticket, C>,
    next: u64,
}

impl<C: Ord + Copy> Slots<C> {
    pub fn new(limits: Limits) -> Slots<C> {
        Slots { limits, held: BTreeMap::new(), holder: HashMap::new(), next: 0 }
    }

    /// A slot for `client`, or `None` when it already holds its fair share of a full
    /// table. A client at its own limit gives up its oldest slot for the new one; with
    /// every slot taken, the client that holds the most (of several, the one whose oldest
    /// slot is oldest) gives up its oldest, if it holds more than `client`.
    pub fn take(&mut self, client: C) -> Option<Grant> {
        let holds = self.held.get(&client).map_or(0, VecDeque::len);
        let evicted = if holds >= self.limits.each {
            self.held.get(&client).and_then(|tickets| tickets.front().copied())
        } else if self.holder.len() >= self.limits.total {
            let (_, tickets) = self
                .held
                .iter()
                .max_by(|(_, a), (_, b)| a.len().cmp(&b.len()).then_with(|| b.front().cmp(&a.front())))?;
            if tickets.len() <= holds {
                return None;
            }
            tickets.front().copied()
        } else {
            None
        };
        if let Some(evicted) = evicted {
            self.give_back(evicted);
        }
        let ticket = Ticket(self.next);
        self.next += 1;
        self.held.entry(client).or_default().push_back(ticket);
        self.holder.insert(ticket, client);
        Some(Grant { ticket, evicted })
    }

    /// Frees the slot of `ticket`; one already freed (taken away) is nothing to free.
    pub fn give_back(&mut self, ticket: Ticket) {
        let Some(client) = self.holder.remove(&ticket) else { return };
        if let Some(tickets) = self.held.get_mut(&client) {
            tickets.retain(|held| *held != ticket);
            if tickets.is_empty() {
                self.held.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes a slot for each client in turn; what each got: `+` a slot, `+N` a slot that
    /// took ticket N away, `-` none.
    fn run(limits: Limits, clients: &[char]) -> (String, Slots<char>) {
        let mut slots = Slots::new(limits);
        let outcomes: Vec<String> = clients
            .iter()
            .map(|client| match slots.take(*client) {
                Some(Grant { evicted: None, .. }) => format!("{client}+"),
                Some(Grant { evicted: Some(Ticket(evicted)), .. }) => format!("{client}+{evicted}"),
                None => format!("{client}-"),
            })
            .collect();
        (outcomes.join(" "), slots)
    }

    fn held_by(slots: &Slots<char>, client: char) -> usize {
        slots.held.get(&client).map_or(0, VecDeque::len)
    }

    #[test]
    fn who_gets_a_slot() {
        let small = Limits { total: 4, each: 3 };
        let cases: &[(&str, &[char], &str)] = &[
            ("room for everyone", &['a', 'b', 'a'], "a+ b+ a+"),
            ("a client at its limit gives up its own oldest", &['a', 'a', 'a', 'a'], "a+ a+ a+ a+0"),
            (
                "a full table: the newcomer takes from whoever holds the most",
                &['a', 'a', 'a', 'b', 'c'],
                "a+ a+ a+ b+ c+0",
            ),
            (
                "a full table: of equals, the one with the oldest slot gives",
                &['a', 'a', 'b', 'b', 'c'],
                "a+ a+ b+ b+ c+0",
            ),
            ("fair shares refuse the one who asks for more", &['a', 'b', 'c', 'd', 'a'], "a+ b+ c+ d+ a-"),
            (
                "the oldest slot decides between equals, the count before it",
                &['b', 'a', 'a', 'b', 'c', 'd'],
                "b+ a+ a+ b+ c+0 d+1",
            ),
        ];
        for (what, clients, expected) in cases {
            assert_eq!(run(small, clients).0, *expected, "{what}");
        }
    }

    #[test]
    fn a_flood_from_one_client_leaves_everyone_else_a_slot() {
        let mut clients = vec!['h'; 1000];
        clients.extend(['v', 'w', 'h', 'x']);
        let (outcomes, slots) = run(Limits { total: 8, each: 4 }, &clients);
        assert!(outcomes.ends_with("v+ w+ h+996 x+"), "{outcomes}");
        assert_eq!([held_by(&slots, 'h'), held_by(&slots, 'v'), held_by(&slots, 'x')], [4, 1, 1]);
    }

    #[test]
    fn slots_given_back_are_free_again() {
        let (_, mut slots) = run(Limits { total: 2, each: 2 }, &['a', 'b']);
        slots.give_back(Ticket(0));
        slots.give_back(Ticket(0));
        assert_eq!(slots.take('c'), Some(Grant { ticket: Ticket(2), evicted: None }));
        assert_eq!(slots.take('c'), None, "c holds as many as b");
        assert_eq!(held_by(&slots, 'a'), 0);
    }
}
