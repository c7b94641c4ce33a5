//! Pacing `check`'s probes: which sources probe together. The kernel's neighbour (ARP)
//! table is one table for every namespace; a probe straight to an address on a shared
//! network makes an entry at each end, and a probe through the host one pair in all. When
//! the probes need more entries than the table has room for, sources go in rounds that fit.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::Probe;

/// The probes of one source.
pub struct Source<'a> {
    pub name: &'a str,
    /// Indices into the probes.
    pub probes: Vec<usize>,
    /// How many neighbour entries its probes may make, at both ends.
    pub neighbours: usize,
}

/// The probes grouped by source, sources in the order they first appear.
pub fn sources(probes: &[Probe]) -> Vec<Source<'_>> {
    let mut sources: Vec<Source> = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (index, probe) in probes.iter().enumerate() {
        let position = *index_of.entry(&probe.source).or_insert_with(|| {
            sources.push(Source { name: &probe.source, probes: Vec::new(), neighbours: 0 });
            sources.len() - 1
        });
        sources[position].probes.push(index);
    }
    for source in &mut sources {
        let made = source.probes.iter().map(|index| &probes[*index]);
        let direct: HashSet<Ipv4Addr> = made.clone().filter(|probe| probe.direct).map(|probe| probe.address).collect();
        // Probes through the host make one pair of entries: the source's for its gateway,
        // and the host's for the source.
        let routed = made.clone().any(|probe| !probe.direct);
        source.neighbours = 2 * (direct.len() + usize::from(routed));
    }
    sources
}

/// Cuts the sources into rounds of at most `at_most` sources whose neighbour entries
/// fit in `room` (a source that alone needs more has a round of its own). Also says whether
/// the sources need more room than there is, so that the rounds must be spaced.
pub fn rounds<'s, 'a>(sources: &'s [Source<'a>], room: usize, at_most: usize) -> (Vec<&'s [Source<'a>]>, bool) {
    let mut rounds = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (index, source) in sources.iter().enumerate() {
        if index > start && (used + source.neighbours > room || index - start == at_most) {
            rounds.push(&sources[start..index]);
            (start, used) = (index, 0);
        }
        used += source.neighbours;
    }
    if start < sources.len() {
        rounds.push(&sources[start..]);
    }
    (rounds, sources.iter().map(|source| source.neighbours).sum::<usize>() > room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Expected;
    use crate::model::Protocol;

    fn probe(source: &str, address: [u8; 4], direct: bool) -> Probe {
        Probe {
            source: source.to_owned(),
            destination: "d".to_owned(),
            network: "n".to_owned(),
            address: Ipv4Addr::from(address),
            protocol: Protocol::Tcp,
            port: 9,
            expected: Expected::Blocked,
            direct,
        }
    }

    #[test]
    fn each_direct_address_and_the_gateway_cost_an_entry_at_each_end() {
        let probes = [
            probe("a", [10, 0, 0, 2], true),
            probe("a", [10, 0, 0, 2], true),
            probe("b", [10, 0, 0, 1], true),
            probe("a", [10, 0, 0, 3], true),
            probe("a", [10, 1, 0, 2], false),
            probe("a", [10, 1, 0, 3], false),
        ];
        let sources = sources(&probes);
        let found: Vec<(&str, &[usize], usize)> =
            sources.iter().map(|source| (source.name, source.probes.as_slice(), source.neighbours)).collect();
        assert_eq!(found, [("a", &[0, 1, 3, 4, 5][..], 6), ("b", &[2][..], 2)]);
    }

    #[test]
    fn rounds_fit_the_neighbour_table_and_the_threads() {
        let names: Vec<String> = (0..200).map(|index| format!("s{index}")).collect();
        let sources: Vec<Source> =
            names.iter().map(|name| Source { name, probes: Vec::new(), neighbours: 10 }).collect();
        let sizes = |(rounds, paced): (Vec<&[Source]>, bool)| (rounds.iter().map(|round| round.len()).collect(), paced);
        assert_eq!(sizes(rounds(&sources, 100_000, 64)), (vec![64, 64, 64, 8], false));
        assert_eq!(sizes(rounds(&sources[..10], 35, 64)), (vec![3, 3, 3, 1], true));
        // A source that needs more than the room still gets its round.
        assert_eq!(sizes(rounds(&sources[..2], 5, 64)), (vec![1, 1], true));
    }
}
