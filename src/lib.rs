//! stackctl: a declarative network topology reconciler for Linux containers.
//!
//! The pure core reads a stack file ([`spec`]), validates it into a model ([`model`]),
//! derives the least-privilege graph ([`graph`]), lowers it into the kernel state it wants
//! ([`state`]) and plans the operations from one state to another ([`plan`]); [`review`]
//! compares two stack files; [`names`] decides what the host's name server answers. None
//! of these modules does I/O: see ARCHITECTURE.md.

pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod firewall;
pub mod graph;
pub mod kernel;
pub mod model;
pub mod names;
pub mod plan;
pub mod review;
pub mod show;
pub mod spec;
pub mod state;
