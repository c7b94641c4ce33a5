//! A container's namespace, from what was read of it.

use super::NamespaceView;
use crate::state::{Namespace, NamespaceConf, NamespaceName};

pub(super) fn read(view: &NamespaceView) -> Namespace {
    let (name, adopted) = match &view.name {
        NamespaceName::Created(name) => (name.clone(), false),
        NamespaceName::Adopted(path) => (path.clone(), true),
    };
    let lo = view.snapshot.interface("lo");
    Namespace {
        container: view.container.clone(),
        name,
        adopted,
        loopback_up: lo.is_some_and(|lo| lo.up),
        // Read from its loopback, which takes the namespace's `all` settings as every
        // interface does when they are written; a setting not read is one to make again.
        conf: (!adopted).then(|| NamespaceConf {
            forwarding: lo.and_then(|lo| lo.inet_conf).is_none_or(|conf| conf.forwarding),
            ipv6: lo.and_then(|lo| lo.ipv6_disabled).is_none_or(|disabled| !disabled),
        }),
    }
}
