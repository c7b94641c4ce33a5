//! A container's names, from the host's name server and the container's files.

use std::sync::Arc;

use super::NamespaceView;
use crate::names::Served;
use crate::state::Hosts;

/// The container's names, when the host's name server serves them (`served`) and its
/// hosts file is stackctl's.
pub(super) fn read(view: &NamespaceView, served: Option<&Served>) -> Option<Hosts> {
    let served = served.filter(|_| view.hosts_file)?;
    Some(Hosts {
        container: view.container.clone(),
        records: Arc::clone(&served.records),
        nameservers: view.nameservers.clone().unwrap_or_default(),
        upstream: served.upstream,
    })
}
