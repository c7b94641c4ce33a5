//! stackctl: a declarative network topology reconciler for Linux containers.
//!
//! Every decision is made in the pure core, the `stackctl-core` crate, whose modules are
//! re-exported here under their own names. This crate is the imperative shell around it:
//! [`kernel`] observes the live kernel and interprets a plan's steps, and [`cli`] parses
//! arguments and prints. See ARCHITECTURE.md.

pub use stackctl_core::{check, diagnostic, firewall, graph, model, names, plan, review, show, spec, state};

pub mod cli;
pub mod kernel;
