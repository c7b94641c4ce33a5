//! The host's kernel settings a stack needs, as resources: observed, planned, and given
//! back like any other. Today one: IPv4 forwarding, which a network that reaches outside
//! needs for the replies to its containers' connections (Docker turns it on too, and
//! never turns it off).
//!
//! Several stacks may need a setting at once. Each one that holds it keeps in its record
//! the value the host had before the first of them set it; destroy gives that value back
//! only when no other stack holds the setting (`Desired::held_elsewhere`), so the last
//! stack to leave restores the host as it found it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Key, Kind, Object, Resource};
use crate::firewall::needs_forwarding;
use crate::state::KernelState;

/// A setting of the host's kernel that the stack needs: IPv4 forwarding, for the replies to
/// its containers' connections out. The host had it as `before` when the first stack that
/// holds it set it; every stack that holds it keeps that value, and the last one to let
/// it go gives it back (`Desired::held_elsewhere` says whether others still hold it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// The name, as `sysctl` writes it: `net.ipv4.ip_forward`.
    pub name: String,
    pub value: String,
    /// What the host had before any stack set it; unknown when planned without a host.
    pub before: Option<String>,
}

impl Object for Sysctl {
    fn key(&self) -> Key {
        Key::Sysctl { name: self.name.clone() }
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        let mut attributes = vec![("value", self.value.clone())];
        // Unknown when planned without a host (`diff`).
        if let Some(before) = &self.before {
            attributes.push(("before", before.clone()));
        }
        attributes
    }
}

/// `net.ipv4.ip_forward`: the host forwards IPv4 between its interfaces.
pub const FORWARDING: &str = "net.ipv4.ip_forward";

/// Whether `value` is one stackctl writes to a setting it holds: each of them is on or
/// off. Saved plans and records are read back as untrusted input, and a setting's values
/// are written to `/proc/sys`.
pub fn sysctl_value_is_known(value: &str) -> bool {
    matches!(value, "0" | "1")
}

/// A setting of the host as the shell read it: its value, and the other stacks whose
/// records hold it, with the value before that they keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSetting {
    pub name: String,
    pub value: String,
    /// Other stacks on the host that hold the setting, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_by: Vec<String>,
    /// The value before any stack set it, as those stacks keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// The settings `state` needs (forwarding, when a network of it reaches outside), each
/// with the value the host had before: as this stack keeps it, else as the other stacks
/// that hold it keep it, else as the host has it now; unknown without a host.
pub fn desired(state: &KernelState, observed: &KernelState, settings: &[HostSetting]) -> Vec<Sysctl> {
    if !needs_forwarding(state.of_kind(Kind::Policy)) {
        return Vec::new();
    }
    let name = FORWARDING.to_owned();
    let kept = match observed.get(&Key::Sysctl { name: name.clone() }) {
        Some(Resource::Sysctl(sysctl)) => sysctl.before.clone(),
        _ => None,
    };
    let setting = settings.iter().find(|setting| setting.name == FORWARDING);
    let before = kept
        .or_else(|| setting.and_then(|setting| setting.before.clone()))
        .or_else(|| setting.map(|setting| setting.value.clone()));
    vec![Sysctl { name, value: "1".to_owned(), before }]
}

/// The host's forwarding as observed, the host having it as `value`: the fact `lower`
/// needs (its value, which other stacks hold it and the value they keep as before), and
/// this stack's hold on it, from the stack's `record`, with the value it has now. Another
/// stack holds forwarding when its record does, or when it has a bridge: every bridge
/// forwards, and turning the host's forwarding off turns off its interfaces'.
pub fn observe_forwarding(
    value: String,
    record: &KernelState,
    others: &[(String, KernelState)],
) -> (HostSetting, Option<Sysctl>) {
    let key = Key::Sysctl { name: FORWARDING.to_owned() };
    let mut setting =
        HostSetting { name: FORWARDING.to_owned(), value: value.clone(), held_by: Vec::new(), before: None };
    for (stack, other) in others {
        let held = other.get(&key);
        if let Some(Resource::Sysctl(held)) = held {
            setting.before = setting.before.or_else(|| held.before.clone());
        }
        if held.is_some() || other.of_kind(Kind::Bridge).next().is_some() {
            setting.held_by.push(stack.clone());
        }
    }
    let held = match record.get(&key) {
        Some(Resource::Sysctl(held)) => Some(Sysctl { value, ..held.clone() }),
        _ => None,
    };
    (setting, held)
}

/// The settings that other stacks on the host still hold: letting them go gives nothing
/// back.
pub fn held_elsewhere(settings: &[HostSetting]) -> BTreeSet<String> {
    settings.iter().filter(|setting| !setting.held_by.is_empty()).map(|setting| setting.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Bridge, InetConf};

    fn forwarding(before: &str) -> Resource {
        Resource::Sysctl(Sysctl { name: FORWARDING.to_owned(), value: "1".to_owned(), before: Some(before.to_owned()) })
    }

    fn bridge() -> Resource {
        Resource::Bridge(Bridge {
            network: "n".to_owned(),
            ifname: "stbn".to_owned(),
            address: "10.0.0.1/24".parse().expect("an address"),
            internal: true,
            isolation: crate::model::Isolation::Flows,
            up: true,
            conf: InetConf::for_a_network(),
            virtual_addresses: Vec::new(),
        })
    }

    /// Another stack holds forwarding when its record does or when it has a bridge; the
    /// value before is the one the holders keep; this stack's hold comes with the value now.
    #[test]
    fn holders_are_the_stacks_that_record_forwarding_or_keep_a_bridge() {
        let others = [
            ("keeper".to_owned(), KernelState::from(vec![forwarding("0")])),
            ("internal".to_owned(), KernelState::from(vec![bridge()])),
            ("empty".to_owned(), KernelState::default()),
        ];
        let record = KernelState::from(vec![forwarding("0")]);
        let (setting, held) = observe_forwarding("1".to_owned(), &record, &others);
        assert_eq!(setting.held_by, ["keeper", "internal"]);
        assert_eq!(setting.before.as_deref(), Some("0"));
        assert_eq!(setting.value, "1");
        assert_eq!(held.map(|held| (held.value, held.before)), Some(("1".to_owned(), Some("0".to_owned()))));
        let (alone, none) = observe_forwarding("0".to_owned(), &KernelState::default(), &[]);
        assert!(alone.held_by.is_empty() && alone.before.is_none() && none.is_none());
    }
}
