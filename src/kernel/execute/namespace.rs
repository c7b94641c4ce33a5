//! A container's network namespace: created under the stack's name, or adopted from a
//! `netns:` path, with its loopback up; deleted with the processes the user asked to end,
//! and only released when adopted.

use std::io;

use super::{Executor, Outcome, set_up};
use crate::kernel::{Connected, netns, processes};
use crate::state::{Namespace, NamespaceConf};

impl Executor<'_> {
    pub(super) async fn create_namespace(&self, namespace: &Namespace) -> Outcome {
        let runtime = self.kernel.runtime.handle();
        let (_, handle) = if namespace.adopted {
            netns::connect(self.namespace_file(&namespace.container)?, runtime).await?
        } else {
            let conf = namespace.conf.unwrap_or_else(NamespaceConf::for_a_container);
            netns::create(&self.kernel.places.netns.join(&namespace.name), runtime, conf).await?
        };
        let connected = self.kernel.remember(&namespace.container, Connected { handle });
        // The loopback interface is always index 1 in a network namespace.
        set_up(&connected.handle, 1).await
    }

    /// Sets the loopback interface up again, and the namespace's settings, when they are
    /// the stack's to set.
    pub(super) async fn update_namespace(&self, namespace: &Namespace) -> Outcome {
        let connected = self.namespace(&namespace.container).await?;
        set_up(&connected.handle, 1).await?;
        let Some(conf) = namespace.conf else { return Ok(()) };
        let file = self.namespace_file(&namespace.container)?;
        tokio::task::spawn_blocking(move || netns::inside(Some(&file), || netns::write_conf(conf)))
            .await
            .map_err(io::Error::other)?
    }

    pub(super) async fn delete_namespace(&self, namespace: &Namespace) -> Outcome {
        self.kernel.forget(&namespace.container);
        // Names that were not observed (their server was gone) are not deleted on
        // their own: their files go with the namespace.
        self.remove_name_files(&namespace.container)?;
        // An adopted namespace belongs to whoever made it: it is released, never deleted.
        if namespace.adopted {
            return Ok(());
        }
        let path = self.kernel.places.netns.join(&namespace.name);
        // The user's processes inside, when the user asked for them to be ended: as
        // they are now, with those started since the plan was read (a swap's drain
        // can last minutes).
        if self.stranded.ends() {
            let inside = path.clone();
            tokio::task::spawn_blocking(move || processes::end(&inside, &processes::running_at(&inside)?))
                .await
                .map_err(io::Error::other)??;
        }
        netns::delete(&path)
    }
}
