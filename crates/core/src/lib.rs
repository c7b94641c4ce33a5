//! stackctl's pure core: every decision stackctl makes, as functions of values.
//!
//! It reads a stack file ([`spec`]), validates it into a model ([`model`]), derives the
//! least-privilege graph ([`graph`]), lowers it into the kernel state it wants ([`state`])
//! and plans the steps from one state to another ([`plan`]), with the firewall's rules
//! ([`firewall`]); [`review`] compares two stack files; [`names`] decides what the host's
//! name server answers; [`check`] and [`show`] turn what a live stack does and holds into
//! tables. None of it reads a file, the environment or the clock, or touches the kernel:
//! the crate depends on nothing that could, and `clippy.toml` forbids the standard
//! library's ways (see ARCHITECTURE.md). The `stackctl` crate is the shell around it.

pub mod check;
pub mod diagnostic;
pub mod firewall;
pub mod graph;
pub mod model;
pub mod names;
pub mod plan;
pub mod review;
pub mod show;
pub mod spec;
pub mod state;
