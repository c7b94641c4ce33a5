//! Edge clique cover: a few cliques of an undirected graph that together hold every edge.
//! Finding the fewest is NP-hard, so this takes every maximal clique that the caller accepts
//! and greedily picks the one that covers the most edges still uncovered. Petgraph's
//! Bron–Kerbosch finds the maximal cliques of the graph itself.

use std::collections::BTreeSet;

use petgraph::algo::maximal_cliques;
use petgraph::graph::{NodeIndex, UnGraph};

/// Cliques that cover every edge of the graph, each sorted, in the order they were picked.
/// Each clique is trimmed to the vertices of the edges it was picked for, so that no vertex
/// joins a clique it adds nothing to. Vertices without edges are in no clique.
///
/// `neighbours[v]` holds the vertices joined to `v`; the relation must be symmetric and
/// hold no vertex as its own neighbour. `fits` says whether a sorted clique may be used; it
/// must accept every edge on its own and every part of a clique it accepts, so that each
/// edge still lies in some clique it accepts.
pub fn edge_clique_cover(neighbours: &[BTreeSet<usize>], fits: impl Fn(&[usize]) -> bool) -> Vec<Vec<usize>> {
    let mut uncovered: BTreeSet<(usize, usize)> = edges(neighbours).collect();
    let cliques = fitting_cliques(neighbours, fits);
    let mut cover = Vec::new();
    while !uncovered.is_empty() {
        // Every uncovered edge lies in some fitting clique, so the best one covers at least
        // one and the loop ends. Ties go to the first clique, which keeps the result stable.
        let fresh = cliques
            .iter()
            .map(|clique| pairs(clique).filter(|pair| uncovered.contains(pair)).collect::<Vec<_>>())
            .reduce(|best, fresh| if fresh.len() > best.len() { fresh } else { best })
            .expect("an uncovered edge lies in a fitting clique");
        let members: BTreeSet<usize> = fresh.iter().flat_map(|(a, b)| [*a, *b]).collect();
        for pair in &fresh {
            uncovered.remove(pair);
        }
        cover.push(members.into_iter().collect());
    }
    cover
}

/// The edges of the graph, each with its smaller vertex first.
fn edges(neighbours: &[BTreeSet<usize>]) -> impl Iterator<Item = (usize, usize)> + '_ {
    neighbours
        .iter()
        .enumerate()
        .flat_map(|(a, adjacent)| adjacent.iter().filter(move |b| a < **b).map(move |b| (a, *b)))
}

/// Every maximal clique of two or more vertices, each sorted, in sorted order, so that the
/// result does not depend on the hash order of petgraph's sets.
fn cliques(neighbours: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    let graph = UnGraph::<(), ()>::from_edges(edges(neighbours).map(|(a, b)| (NodeIndex::new(a), NodeIndex::new(b))));
    // Petgraph reports a vertex without edges as a clique of one, and a graph without
    // vertices as the empty clique; neither holds an edge to cover.
    let mut cliques: Vec<Vec<usize>> = maximal_cliques(&graph)
        .into_iter()
        .filter(|clique| clique.len() >= 2)
        .map(|clique| {
            let mut vertices: Vec<usize> = clique.into_iter().map(NodeIndex::index).collect();
            vertices.sort_unstable();
            vertices
        })
        .collect();
    cliques.sort();
    cliques
}

/// The maximal cliques among those that `fits` accepts, each sorted, in sorted order. A
/// maximal clique of the graph that `fits` rejects gives way to the parts of it left by
/// taking vertices out one at a time until `fits` accepts what remains.
fn fitting_cliques(neighbours: &[BTreeSet<usize>], fits: impl Fn(&[usize]) -> bool) -> Vec<Vec<usize>> {
    let mut pending = cliques(neighbours);
    let mut tried = BTreeSet::new();
    let mut accepted = BTreeSet::new();
    while let Some(clique) = pending.pop() {
        if !tried.insert(clique.clone()) {
            continue;
        }
        if fits(&clique) {
            accepted.insert(clique);
        } else {
            pending.extend((0..clique.len()).map(|index| [&clique[..index], &clique[index + 1..]].concat()));
        }
    }
    // A part found down one path may lie within one found down another; only the larger is
    // worth offering, since it covers every edge the smaller one does.
    let within =
        |small: &Vec<usize>, large: &Vec<usize>| small != large && small.iter().all(|vertex| large.contains(vertex));
    accepted.iter().filter(|clique| !accepted.iter().any(|other| within(clique, other))).cloned().collect()
}

/// The pairs of a sorted clique, each with its smaller vertex first.
fn pairs(clique: &[usize]) -> impl Iterator<Item = (usize, usize)> + '_ {
    clique.iter().enumerate().flat_map(move |(index, a)| clique[index + 1..].iter().map(move |b| (*a, *b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph's vertex count and edges, and the cliques expected of it.
    type Case = (usize, &'static [(usize, usize)], &'static [&'static [usize]]);

    fn graph(vertices: usize, edges: &[(usize, usize)]) -> Vec<BTreeSet<usize>> {
        let mut neighbours = vec![BTreeSet::new(); vertices];
        for (a, b) in edges {
            neighbours[*a].insert(*b);
            neighbours[*b].insert(*a);
        }
        neighbours
    }

    fn expected(cliques: &[&[usize]]) -> Vec<Vec<usize>> {
        cliques.iter().map(|clique| clique.to_vec()).collect()
    }

    #[test]
    fn maximal_cliques_are_found_once_each() {
        let cases: &[Case] = &[
            (0, &[], &[]),
            (3, &[], &[]),
            (3, &[(0, 1), (1, 2), (0, 2)], &[&[0, 1, 2]]),
            // Vertex 4 has no edge, so it is no clique of its own.
            (5, &[(0, 1), (1, 2), (0, 2), (2, 3)], &[&[0, 1, 2], &[2, 3]]),
            (4, &[(0, 1), (1, 2), (2, 3), (3, 0)], &[&[0, 1], &[0, 3], &[1, 2], &[2, 3]]),
            (5, &[(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (3, 4)], &[&[0, 1, 2, 3], &[3, 4]]),
        ];
        for (vertices, edges, cliques_expected) in cases {
            assert_eq!(cliques(&graph(*vertices, edges)), expected(cliques_expected), "{edges:?}");
        }
    }

    #[test]
    fn a_rejected_clique_gives_way_to_its_largest_accepted_parts() {
        // Of the four vertices, 0, 1 and 2 may not all meet; every other part of 0-1-2-3 may.
        let fits = |clique: &[usize]| ![0, 1, 2].iter().all(|vertex| clique.contains(vertex));
        let complete = graph(4, &[(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]);
        assert_eq!(fitting_cliques(&complete, fits), expected(&[&[0, 1, 3], &[0, 2, 3], &[1, 2, 3]]));
        // Without vertex 3, only the edges of the triangle remain, and each needs its own clique.
        let triangle = graph(3, &[(0, 1), (0, 2), (1, 2)]);
        assert_eq!(edge_clique_cover(&triangle, fits), expected(&[&[0, 1], &[0, 2], &[1, 2]]));
    }

    #[test]
    fn covers_hold_every_edge_in_few_cliques() {
        let cases: &[Case] = &[
            (2, &[], &[]),
            (2, &[(0, 1)], &[&[0, 1]]),
            // A triangle with a pendant: the triangle, then the pendant edge.
            (4, &[(0, 1), (1, 2), (0, 2), (2, 3)], &[&[0, 1, 2], &[2, 3]]),
            // A square has no triangle, so each edge needs its own clique.
            (4, &[(0, 1), (1, 2), (2, 3), (3, 0)], &[&[0, 1], &[0, 3], &[1, 2], &[2, 3]]),
            // Two triangles sharing vertex 2 (the Pets app: admin beside each tenant).
            (5, &[(0, 1), (0, 2), (1, 2), (2, 3), (2, 4), (3, 4)], &[&[0, 1, 2], &[2, 3, 4]]),
            // Two triangles sharing the edge 1-2: the second is picked for 1-3 and 2-3.
            (4, &[(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)], &[&[0, 1, 2], &[1, 2, 3]]),
            (4, &[(0, 1), (0, 2), (0, 3)], &[&[0, 1], &[0, 2], &[0, 3]]),
        ];
        for (vertices, edges, cover_expected) in cases {
            let neighbours = graph(*vertices, edges);
            let cover = edge_clique_cover(&neighbours, |_| true);
            assert_eq!(cover, expected(cover_expected), "{edges:?}");
            for (a, b) in *edges {
                assert!(cover.iter().any(|clique| clique.contains(a) && clique.contains(b)), "{a}-{b} uncovered");
            }
            for clique in &cover {
                assert!(pairs(clique).all(|(a, b)| neighbours[a].contains(&b)), "{clique:?} is no clique");
            }
        }
    }

    #[test]
    fn a_clique_keeps_only_the_vertices_of_its_new_edges() {
        // {0,1,2,3} and {0,5,6,7} are picked first; the clique {0,1,2,5} is then picked for
        // 1-5 and 2-5 alone, and vertex 0, whose edges there are covered, stays out of it.
        let square = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
        let other = [(0, 5), (0, 6), (0, 7), (5, 6), (5, 7), (6, 7)];
        let edges: Vec<(usize, usize)> = square.into_iter().chain(other).chain([(1, 5), (2, 5)]).collect();
        let cover = edge_clique_cover(&graph(8, &edges), |_| true);
        assert_eq!(cover, vec![vec![0, 1, 2, 3], vec![0, 5, 6, 7], vec![1, 2, 5]]);
    }
}
