//! What a stack's tables hold that none of its resources made.

use serde::{Deserialize, Serialize};

use super::{Key, Object};

/// Rules and set elements in the stack's tables that carry no comment of a resource the
/// stack has, and chains and sets that none of its resources makes: added by hand, or made
/// by an apply whose record is lost. Never desired, so the next apply (or destroy) leaves
/// the tables without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stray {
    pub rules: usize,
}

impl Object for Stray {
    fn key(&self) -> Key {
        Key::Stray
    }

    fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![("rules", self.rules.to_string())]
    }
}
