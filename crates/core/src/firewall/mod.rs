//! The firewall as nftables text: the rules a stack's policies, published ports and flows
//! make ([`render`]), and which of them a host holds ([`Found`], [`recognise`]).
//!
//! A stack owns two tables, `inet stackctl-STACK` and `bridge stackctl-STACK`, and nothing
//! else of the host's firewall. Every apply that changes a rule replaces both tables in one
//! transaction. Each rule and set element carries, as its comment, the identity of the
//! resource it was made for: a digest of the whole resource, so a rule made for an older
//! version of a resource does not count for the new one. nft normalises the expressions it
//! lists, so rules are recognised by that comment, never by their text.

mod read;
mod render;

pub use read::{Found, FoundError, dropping_forward_chains, recognise};
pub use render::{Family, MARK, Object, ObjectKind, Objects, objects, render, render_replacing};

use sha2::{Digest, Sha256};

use crate::state::Resource;

/// The name of the stack's tables, in both families.
pub fn table_name(stack: &str) -> String {
    format!("stackctl-{stack}")
}

/// The identity of a resource in the comments of its rules: its kind's initial and a digest
/// of everything it holds and of the rules it makes, so that rules written by another
/// version of stackctl, which would make them differently, are made again.
pub fn rule_id(resource: &Resource) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(resource).expect("a resource serializes"));
    for item in render::items(resource) {
        hasher.update(item.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
    format!("{}:{hex}", &resource.kind().name()[..2])
}

/// Whether the host must forward IPv4 between interfaces for the stack: a network that
/// reaches outside needs replies from the uplink forwarded back in.
pub fn needs_forwarding<'a>(firewall: impl IntoIterator<Item = &'a Resource>) -> bool {
    firewall.into_iter().any(|resource| matches!(resource, Resource::Policy(policy) if !policy.internal))
}
