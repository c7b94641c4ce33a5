//! A container's namespace, from what was read of it.

use super::NamespaceView;
use crate::state::{Namespace, NamespaceName};

pub(super) fn read(view: &NamespaceView) -> Namespace {
    let (name, adopted) = match &view.name {
        NamespaceName::Created(name) => (name.clone(), false),
        NamespaceName::Adopted(path) => (path.clone(), true),
    };
    Namespace {
        container: view.container.clone(),
        name,
        adopted,
        loopback_up: view.snapshot.interface("lo").is_some_and(|lo| lo.up),
    }
}
