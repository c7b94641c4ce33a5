//! A host's kernel setting that the stack holds, written under `/proc/sys` by
//! `kernel::sysctl`.

use super::{Executor, Outcome};
use crate::kernel::sysctl::write;
use crate::state::Sysctl;

impl Executor<'_> {
    /// Sets the setting to the stack's value.
    pub(super) fn set_sysctl(&self, sysctl: &Sysctl) -> Outcome {
        write(self.kernel.host_file.as_ref(), sysctl, &sysctl.value)
    }

    /// Gives the setting back as it was before; an unknown value is left as it is.
    pub(super) fn restore_sysctl(&self, sysctl: &Sysctl) -> Outcome {
        match &sysctl.before {
            Some(before) => write(self.kernel.host_file.as_ref(), sysctl, before),
            None => Ok(()),
        }
    }
}
