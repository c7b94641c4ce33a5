//! What proves a live stack: the probes the core chooses, made from inside the containers
//! and from the host, and the truth table of their outcomes (`stackctl check`, and
//! `apply --verify` once its changes are made).

use std::time::Duration;

use super::proposal::refuse_unusable;
use super::{Notice, Progress, ReconcileError, Reconciler};
use crate::check::{TruthTable, survey};
use crate::model::Stack;
use crate::state::Key;

impl Reconciler {
    /// Probes the stack as the kernel has it now, each probe waiting up to `timeout`.
    pub fn check(
        &self,
        stack: &Stack,
        timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<TruthTable, ReconcileError> {
        let kernel = self.existing(stack)?;
        let scope = self.scope(stack);
        let observation = kernel.observe(&scope)?;
        refuse_unusable(&scope, &observation)?;
        let survey = survey(stack, &observation.state, &observation.host);
        // A probe must start inside its source's namespace: without one, the stack is not
        // applied, and that is the thing to say.
        let unapplied: Vec<String> = survey
            .containers
            .iter()
            .filter(|container| observation.state.get(&Key::Namespace { container: (*container).clone() }).is_none())
            .cloned()
            .collect();
        if !unapplied.is_empty() {
            return Err(ReconcileError::Unprobed { stack: stack.name.clone(), containers: unapplied });
        }
        if let Some(pacing) = kernel.pacing(&survey.probes) {
            progress.notice(&Notice::Pacing(pacing));
        }
        let outcomes = kernel.probe(&scope, &survey.probes, timeout)?;
        // After the probes between containers, so that no witness listens while they run.
        let deliveries = kernel.probe_from_host(&scope, &survey.published.probes, timeout)?;
        Ok(survey.table(&outcomes, &deliveries))
    }
}
