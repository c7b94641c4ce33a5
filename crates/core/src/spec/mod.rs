//! The stack file as written: serde types that keep the source position of every value a
//! diagnostic may point at. Nothing here is checked beyond YAML's own structure; the
//! [`crate::model`] layer turns a [`StackSpec`] into a validated [`crate::model::Stack`].

mod entries;
mod load;
mod scalar;
mod schema;

pub use entries::Entries;
use entries::{Name, empty_when_null, nullable};
pub use load::{SourceFile, load};
pub use scalar::Text;
pub use schema::stack_schema;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The pattern every stack, network, container and alias name must match (Docker's rule).
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$";

/// The longest name accepted: kernel objects get short derived names, so this limit only
/// keeps labels and hosts files readable.
pub const NAME_MAX_LEN: usize = 63;

/// A stack file: one stack of networks and containers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stackctl stack file", rename = "StackFile")]
pub struct StackSpec {
    /// The stack's name; every kernel object the stack creates carries it.
    #[schemars(with = "String", regex(pattern = NAME_PATTERN), length(max = NAME_MAX_LEN))]
    pub name: Spanned<String>,
    /// Bridge networks, by name.
    #[serde(default)]
    pub networks: Entries<NetworkSpec>,
    /// Containers, by name.
    #[serde(default)]
    pub containers: Entries<ContainerSpec>,
    /// How long a swap waits for the established connections of a container that an alias
    /// leaves, before that container is disconnected or removed: `30s`, `2m`, `500ms`.
    /// New connections go to the alias's new containers at once. Defaults to 30s.
    #[schemars(with = "Option<String>", example = "30s")]
    pub drain: Option<Spanned<String>>,
}

/// One bridge network.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = nullable)]
pub struct NetworkSpec {
    /// IPv4 subnet in CIDR form, such as `10.20.0.0/24`; picked automatically when absent.
    #[schemars(with = "Option<String>", example = "10.20.0.0/24")]
    pub subnet: Option<Spanned<String>>,
    /// The bridge's own address; defaults to the first host address of the subnet.
    #[schemars(with = "Option<String>", example = "10.20.0.1")]
    pub gateway: Option<Spanned<String>>,
    /// No route or NAT to anything outside the stack.
    #[serde(default)]
    pub internal: bool,
    /// Which traffic passes between members of this network.
    #[schemars(with = "Option<Isolation>")]
    pub isolation: Option<Spanned<Isolation>>,
}

/// Which traffic passes between members of one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Only the declared `talks_to` flows pass between members.
    #[default]
    Flows,
    /// Every member reaches every member, as on a Docker network.
    Open,
}

/// One container.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = nullable)]
pub struct ContainerSpec {
    /// The networks this container joins: a list of names, or a map of names to settings.
    #[serde(default)]
    pub networks: Memberships,
    /// Flows this container opens: `TARGET[:PORT[-PORT]][/tcp|/udp]`, where TARGET is a
    /// container name, an alias, or `host` (the host itself); no port means every port.
    #[serde(default, deserialize_with = "empty_when_null")]
    #[schemars(with = "Option<Vec<String>>")]
    pub talks_to: Vec<Spanned<String>>,
    /// Published ports, in Docker's syntax: `[HOST_IP:][HOST_PORT[-END]:]PORT[-END][/tcp|/udp]`.
    #[serde(default, deserialize_with = "empty_when_null")]
    #[schemars(with = "Option<Vec<Text>>")]
    pub ports: Vec<Text>,
    /// `none` (loopback only) or `host` (the host's own network stack).
    #[schemars(with = "Option<NetworkMode>")]
    pub network_mode: Option<Spanned<NetworkMode>>,
    /// Adopt this existing network namespace instead of creating one.
    #[schemars(with = "Option<String>", example = "/run/netns/legacy")]
    pub netns: Option<Spanned<String>>,
}

/// A container's network stack when it joins no bridge network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Only a loopback interface.
    None,
    /// The host's own network stack: no networks and no published ports.
    Host,
}

/// A container's networks, in either of the two forms the file allows.
#[derive(Debug, Default)]
pub struct Memberships(pub Vec<(Spanned<String>, MembershipSpec)>);

/// Per-network settings of one container.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = nullable)]
pub struct MembershipSpec {
    /// Extra names for this container on this network; a name shared by several containers
    /// spreads new connections over all of them.
    #[serde(default, deserialize_with = "empty_when_null")]
    #[schemars(with = "Option<Vec<Name>>")]
    pub aliases: Vec<Spanned<String>>,
    /// A static IPv4 address inside the network's subnet.
    #[schemars(with = "Option<String>", example = "10.20.1.10")]
    pub ipv4: Option<Spanned<String>>,
}
