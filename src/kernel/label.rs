//! The label stackctl writes into the alias of each interface it owns: which stack, and
//! which resource. The alias survives in the kernel and is dumped with the link, so the
//! objects carry their own identity and no state file is needed to find them.

use crate::model::Isolation;
use crate::state::Key;

const MAGIC: &str = "stackctl/1";

/// What a label says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub stack: String,
    pub key: Key,
    /// Declared network attributes that the kernel objects do not show: recorded on the
    /// bridge so that a change to them is seen as one.
    pub internal: bool,
    pub isolation: Isolation,
}

/// The label of a bridge.
pub fn bridge_label(stack: &str, network: &str, internal: bool, isolation: Isolation) -> String {
    let isolation = match isolation {
        Isolation::Flows => "flows",
        Isolation::Open => "open",
    };
    format!("{MAGIC} stack={stack} network={network} internal={internal} isolation={isolation}")
}

/// The label of the host end of a container's veth pair.
pub fn link_label(stack: &str, container: &str, network: &str) -> String {
    format!("{MAGIC} stack={stack} container={container} network={network}")
}

/// Reads a label; `None` for an alias that is not one of stackctl's.
pub fn parse(alias: &str) -> Option<Label> {
    let mut words = alias.split(' ');
    if words.next() != Some(MAGIC) {
        return None;
    }
    let (mut stack, mut container, mut network) = (None, None, None);
    let (mut internal, mut isolation) = (false, Isolation::default());
    for word in words {
        let (name, value) = word.split_once('=')?;
        match name {
            "stack" => stack = Some(value.to_owned()),
            "container" => container = Some(value.to_owned()),
            "network" => network = Some(value.to_owned()),
            "internal" => internal = value == "true",
            "isolation" => isolation = if value == "open" { Isolation::Open } else { Isolation::Flows },
            _ => return None,
        }
    }
    let network = network?;
    let key = match container {
        Some(container) => Key::Link { container, network },
        None => Key::Bridge { network },
    };
    Some(Label { stack: stack?, key, internal, isolation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_back_as_written() {
        let bridge = parse(&bridge_label("web", "db_nw", true, Isolation::Open)).expect("a label");
        assert_eq!(bridge.stack, "web");
        assert_eq!(bridge.key, Key::Bridge { network: "db_nw".to_owned() });
        assert!(bridge.internal);
        assert_eq!(bridge.isolation, Isolation::Open);
        let link = parse(&link_label("web", "nginx", "web_nw")).expect("a label");
        assert_eq!(link.key, Key::Link { container: "nginx".to_owned(), network: "web_nw".to_owned() });
    }

    #[test]
    fn other_aliases_are_not_labels() {
        for alias in ["", "uplink to the rack", "stackctl/2 stack=a network=b", "stackctl/1 stack=a", "stackctl/1 x"] {
            assert_eq!(parse(alias), None, "{alias:?}");
        }
    }
}
