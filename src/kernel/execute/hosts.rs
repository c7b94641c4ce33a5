//! A container's names: its hosts file and `resolv.conf` under `/etc/netns`.

use std::io;

use super::{Executor, Outcome};
use crate::kernel::hosts_file;
use crate::kernel::writing::{Access, Holder, directory, write_file};
use crate::names::render_resolv_conf;
use crate::state::Hosts;

impl Executor<'_> {
    /// Writes the container's hosts file and its `resolv.conf`, which sends its programs to
    /// the name server on its gateways. The names themselves are served once apply
    /// publishes the stack's zone.
    pub(super) fn write_hosts(&self, hosts: &Hosts) -> Outcome {
        let path = self.kernel.places.hosts_file(self.scope, &hosts.container);
        // The container's programs read both, whoever they run as; only root writes them.
        directory(&self.kernel.places.etc_netns, Access::Everyone, Holder::Shared)?;
        directory(path.parent().expect("a hosts file is in a directory"), Access::Everyone, Holder::Stackctl)?;
        let text = hosts_file::render(&hosts.container, &hosts.records);
        write_file(&path, text.as_bytes(), Access::Everyone)?;
        let resolv_conf = self.kernel.places.resolv_conf(self.scope, &hosts.container);
        write_file(&resolv_conf, render_resolv_conf(&hosts.nameservers).as_bytes(), Access::Everyone)
    }

    /// Removes the container's hosts file and `resolv.conf`, where they are, and their
    /// directory, when nothing else is in it (another tool's files keep it). Deleting a
    /// namespace removes them too.
    pub(super) fn remove_name_files(&self, container: &str) -> Outcome {
        let places = &self.kernel.places;
        for path in [places.hosts_file(self.scope, container), places.resolv_conf(self.scope, container)] {
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        if let Some(directory) = places.hosts_file(self.scope, container).parent() {
            let _ = std::fs::remove_dir(directory);
        }
        Ok(())
    }
}
