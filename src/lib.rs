//! stackctl: a declarative network topology reconciler for Linux containers.
//!
//! Every decision is made in the pure core, the `stackctl-core` crate, whose modules are
//! re-exported here under their own names. This crate is the imperative shell around it:
//! [`kernel`] observes the live kernel and interprets a plan's steps, [`reconcile`] is the
//! one way a stack is reconciled with a host (observe, plan, check, apply, record), and
//! [`cli`] parses arguments, prints and asks. See ARCHITECTURE.md.

pub use stackctl_core::{check, diagnostic, firewall, graph, model, names, plan, review, show, spec, state};

pub mod cli;
// The kernel's observations and changes are the kernel's own and `reconcile`'s: the root
// `clippy.toml` forbids them everywhere else, so `cli` cannot orchestrate.
#[allow(clippy::disallowed_methods)]
pub mod kernel;
#[allow(clippy::disallowed_methods)]
pub mod reconcile;
