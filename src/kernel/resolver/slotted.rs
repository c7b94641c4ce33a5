//! Work that holds a slot of the core's [`Slots`] while it runs, one task each: a TCP
//! connection or a forwarded query. When the core gives a task's slot to another client,
//! the task is aborted, which closes what it holds.

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::AbortHandle;

use crate::names::{Limits, Slots, Ticket};

/// The tasks holding the slots of one kind, by ticket.
pub struct Slotted {
    state: Mutex<State>,
}

struct State {
    slots: Slots<Ipv4Addr>,
    tasks: HashMap<Ticket, AbortHandle>,
}

impl Slotted {
    pub fn new(limits: Limits) -> Arc<Slotted> {
        Arc::new(Slotted { state: Mutex::new(State { slots: Slots::new(limits), tasks: HashMap::new() }) })
    }

    /// Runs `work` for `client` in a task of its own, holding a slot, if the core gives
    /// the client one; otherwise drops `work`, which closes what it holds.
    pub fn spawn(self: &Arc<Self>, client: Ipv4Addr, work: impl Future<Output = ()> + Send + 'static) {
        let evicted = {
            let mut state = self.lock();
            let Some(grant) = state.slots.take(client) else { return };
            let release = Release { slotted: Arc::clone(self), ticket: grant.ticket };
            let task = tokio::spawn(async move {
                work.await;
                drop(release);
            });
            // Inserted before the lock goes: the task, should it end at once, removes it.
            state.tasks.insert(grant.ticket, task.abort_handle());
            grant.evicted.and_then(|ticket| state.tasks.remove(&ticket))
        };
        // Aborted once the lock is let go: the aborted task gives its slot back (already
        // taken away) as it is dropped.
        if let Some(task) = evicted {
            task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays whole whatever panicked while holding it: every change is one
        // call to the core or the map.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Gives a slot back when its task ends, aborted or not.
struct Release {
    slotted: Arc<Slotted>,
    ticket: Ticket,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut state = self.slotted.lock();
        state.slots.give_back(self.ticket);
        state.tasks.remove(&self.ticket);
    }
}
