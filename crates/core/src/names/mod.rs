//! Names: what the host's name server answers, and to whom.
//!
//! Each stack's names are a [`Zone`], computed from its kernel state: its containers, each
//! asking from its address on a network at that network's gateway, and what each of them
//! sees (the names of the containers and aliases it shares a network with). The server
//! serves every stack of a host from an [`Index`] of their zones, and decides what to do
//! with each packet by [`respond`], and shares what it holds for its clients (TCP
//! connections, forwarded queries) among them by [`Slots`], so that no client starves
//! another. The server that moves the bytes is the kernel shell's (`kernel::resolver`).

mod index;
mod resolv_conf;
mod respond;
mod slots;
mod zone;

#[cfg(test)]
mod tests;

pub use index::Index;
pub use resolv_conf::{parse as parse_resolv_conf, render as render_resolv_conf, upstreams};
pub use respond::{Response, Transport, relayed, respond, unanswered};
pub use slots::{FORWARDS, Grant, Limits, Slots, TCP_CONNECTIONS, Ticket};
pub use zone::{Client, Served, View, ZONE_FORMAT_VERSION, Zone, digest, zone};
