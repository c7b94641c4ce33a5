//! What the host's copy of the stack's tables holds, read back from `nft -j` listings.

use std::collections::HashMap;

use serde_json::Value;
use thiserror::Error;

use super::render::{Family, Object, ObjectKind, Objects, item_count};
use super::rule_id;
use crate::state::{KernelState, Resource, Stray};

/// How many rules and set elements of the stack's tables carry each comment, and how many
/// there are in all; and which chains, sets and maps the tables have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    comments: HashMap<String, usize>,
    items: usize,
    objects: Objects,
}

#[derive(Debug, Error)]
#[error("unexpected output of `nft -j list table`: {0}")]
pub struct FoundError(String);

/// The objects of an `nft -j` listing: its `nftables` array.
fn objects(json: &str) -> Result<Vec<Value>, FoundError> {
    let mut listing: Value = serde_json::from_str(json).map_err(|error| FoundError(error.to_string()))?;
    match listing.get_mut("nftables").map(Value::take) {
        Some(Value::Array(objects)) => Ok(objects),
        _ => Err(FoundError("no `nftables` array".to_owned())),
    }
}

impl Found {
    /// Reads the listing of one table (`nft -j list table FAMILY NAME`); the comments of
    /// several tables add up.
    pub fn add_listing(&mut self, json: &str) -> Result<(), FoundError> {
        for item in objects(json)? {
            if let Some(rule) = item.get("rule") {
                self.count(rule.get("comment"));
            }
            let others = ObjectKind::OTHERS.map(|kind| (kind, ObjectKind::Other(kind)));
            let kinds = [("chain", ObjectKind::Chain), ("set", ObjectKind::Set), ("map", ObjectKind::Map)];
            for (key, kind) in kinds.into_iter().chain(others) {
                let Some(object) = item.get(key) else { continue };
                let text = |field: &str| object.get(field).and_then(Value::as_str);
                if let (Some(family), Some(name)) = (text("family").and_then(Family::of), text("name")) {
                    self.objects.insert(Object { family, kind, name: name.to_owned() });
                }
            }
            for object in ["set", "map"] {
                let elements = item.get(object).and_then(|set| set.get("elem")).and_then(Value::as_array);
                for element in elements.into_iter().flatten() {
                    self.count(element.get("elem").and_then(|element| element.get("comment")));
                }
            }
        }
        Ok(())
    }

    fn count(&mut self, comment: Option<&Value>) {
        self.items += 1;
        if let Some(comment) = comment.and_then(Value::as_str) {
            *self.comments.entry(comment.to_owned()).or_default() += 1;
        }
    }

    /// The chains, sets and maps of the tables.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// Whether every rule and element of `resource` is there.
    pub fn holds(&self, resource: &Resource) -> bool {
        let expected = item_count(resource);
        expected > 0 && self.comments.get(&rule_id(resource)).copied() == Some(expected)
    }
}

/// The forward base chains of other tables whose policy drops, as `FAMILY TABLE CHAIN`,
/// from `nft -j list chains`. A packet must pass every table's chains, so such a chain
/// (Docker's `ip filter FORWARD`) drops what the stack routes, whatever its own tables
/// accept.
pub fn dropping_forward_chains(json: &str, own_table: &str) -> Result<Vec<String>, FoundError> {
    let items = objects(json)?;
    let text = |chain: &Value, key: &str| chain.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(items
        .iter()
        .filter_map(|item| item.get("chain"))
        .filter(|chain| text(chain, "hook") == "forward" && text(chain, "policy") == "drop")
        .filter(|chain| text(chain, "table") != own_table)
        .map(|chain| format!("{} {} {}", text(chain, "family"), text(chain, "table"), text(chain, "name")))
        .collect())
}

/// The firewall resources among `candidates` (what the last apply made, as its record
/// says) that the tables hold whole, and what the tables hold beyond them: rules,
/// elements, chains and sets. A resource
/// with a rule missing is not there: the next apply makes it again. Rules of no candidate
/// (added by hand, or made by an apply whose record is lost) are one `Stray`, which nothing desires: the next apply or destroy replaces the tables without
/// them.
pub fn recognise<'a>(found: &'a Found, candidates: impl IntoIterator<Item = &'a Resource> + 'a) -> Vec<Resource> {
    let candidates: Vec<&Resource> = candidates.into_iter().filter(|resource| resource.kind().is_firewall()).collect();
    let mut recognised: Vec<Resource> =
        candidates.iter().filter(|resource| found.holds(resource)).map(|resource| (*resource).clone()).collect();
    // The rules of a resource that is there only in part are not strays: it is made again.
    let ids: std::collections::HashSet<String> = candidates.iter().map(|resource| rule_id(resource)).collect();
    let accounted: usize = ids.iter().filter_map(|id| found.comments.get(id)).sum();
    // Chains and sets that no candidate makes (an empty chain added by hand still decides
    // with its policy) are strays too.
    let state: KernelState = candidates.iter().map(|resource| (*resource).clone()).collect::<Vec<_>>().into();
    let made = super::render::objects(&state);
    let foreign = found.objects.iter().filter(|object| !made.contains(*object)).count();
    let strays = found.items.saturating_sub(accounted) + foreign;
    if strays > 0 {
        recognised.push(Resource::Stray(Stray { rules: strays }));
    }
    recognised
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRange, Protocol, Traffic};
    use crate::state::Flow;

    fn flow() -> Resource {
        Resource::Flow(Flow {
            network: "n".to_owned(),
            source: "a".to_owned(),
            destination: "b".to_owned(),
            traffic: Traffic::Ports { protocol: Protocol::Tcp, ports: PortRange::single(80) },
            from: "10.89.0.2".parse().expect("address"),
            to: "10.89.0.3".parse().expect("address"),
        })
    }

    fn listing(comment: &str) -> String {
        format!(
            r#"{{"nftables": [{{"metainfo": {{"version": "1.0.6"}}}}, {{"table": {{"family": "inet", "name": "stackctl-s"}}}},
            {{"set": {{"family": "inet", "name": "flows", "table": "stackctl-s", "elem": [
                {{"elem": {{"val": {{"concat": ["10.89.0.2", "10.89.0.3", "tcp", 80]}}, "comment": "{comment}"}}}}]}}}},
            {{"rule": {{"family": "inet", "table": "stackctl-s", "chain": "forward", "expr": [], "comment": "other"}}}}]}}"#
        )
    }

    #[test]
    fn a_resource_is_there_when_all_its_items_are_and_the_rest_is_a_stray() {
        let resource = flow();
        let mut found = Found::default();
        found.add_listing(&listing(&rule_id(&resource))).expect("a listing");
        assert_eq!(recognise(&found, [&resource]), vec![resource.clone(), Resource::Stray(Stray { rules: 1 })]);
    }

    #[test]
    fn rules_made_for_another_version_of_the_resource_are_strays() {
        let resource = flow();
        let mut found = Found::default();
        found.add_listing(&listing("fl:0000000000000000")).expect("a listing");
        assert_eq!(recognise(&found, [&resource]), vec![Resource::Stray(Stray { rules: 2 })]);
    }

    #[test]
    fn forward_chains_that_drop_are_named_but_not_our_own() {
        let json = r#"{"nftables": [{"metainfo": {}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "fw", "name": "fwd", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
            {"chain": {"family": "inet", "table": "stackctl-s", "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "filter", "name": "DOCKER"}}]}"#;
        assert_eq!(dropping_forward_chains(json, "stackctl-s").expect("a listing"), ["ip filter FORWARD"]);
    }

    #[test]
    fn a_listing_that_is_not_one_is_an_error() {
        assert!(Found::default().add_listing("{}").is_err());
    }
}
