//! Edge clique cover: a few cliques of an undirected graph that together hold every edge.
//! Finding the fewest is NP-hard, so this takes every maximal clique (Bron–Kerbosch with
//! pivoting) and greedily picks the one that covers the most edges still uncovered.

use std::collections::BTreeSet;

/// Cliques that cover every edge of the graph, each sorted, in the order they were picked.
/// Each clique is trimmed to the vertices of the edges it was picked for, so that no vertex
/// joins a clique it adds nothing to. Vertices without edges are in no clique.
///
/// `neighbours[v]` holds the vertices joined to `v`; the relation must be symmetric and
/// hold no vertex as its own neighbour.
pub fn edge_clique_cover(neighbours: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    let mut uncovered: BTreeSet<(usize, usize)> = neighbours
        .iter()
        .enumerate()
        .flat_map(|(a, adjacent)| adjacent.iter().filter(move |b| a < **b).map(move |b| (a, *b)))
        .collect();
    let cliques = maximal_cliques(neighbours);
    let mut cover = Vec::new();
    while !uncovered.is_empty() {
        // Every uncovered edge lies in some maximal clique, so the best one covers at least
        // one and the loop ends. Ties go to the first clique, which keeps the result stable.
        let fresh = cliques
            .iter()
            .map(|clique| pairs(clique).filter(|pair| uncovered.contains(pair)).collect::<Vec<_>>())
            .reduce(|best, fresh| if fresh.len() > best.len() { fresh } else { best })
            .expect("an uncovered edge lies in a maximal clique");
        let members: BTreeSet<usize> = fresh.iter().flat_map(|(a, b)| [*a, *b]).collect();
        for pair in &fresh {
            uncovered.remove(pair);
        }
        cover.push(members.into_iter().collect());
    }
    cover
}

/// Every maximal clique of two or more vertices, each sorted, in sorted order.
fn maximal_cliques(neighbours: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    let connected: BTreeSet<usize> = (0..neighbours.len()).filter(|vertex| !neighbours[*vertex].is_empty()).collect();
    let mut found = Vec::new();
    // With no edge at all, the search would report the empty clique.
    if connected.is_empty() {
        return found;
    }
    expand(&mut Vec::new(), connected, BTreeSet::new(), neighbours, &mut found);
    for clique in &mut found {
        clique.sort_unstable();
    }
    found.sort();
    found
}

/// Bron–Kerbosch: reports every maximal clique that extends `clique` with vertices of
/// `candidates` and none of `excluded`. The pivot, the vertex with the most neighbours among
/// the candidates, spares the branches that could only find cliques through it.
fn expand(
    clique: &mut Vec<usize>,
    mut candidates: BTreeSet<usize>,
    mut excluded: BTreeSet<usize>,
    neighbours: &[BTreeSet<usize>],
    found: &mut Vec<Vec<usize>>,
) {
    let Some(pivot) = candidates
        .iter()
        .chain(&excluded)
        .copied()
        .max_by_key(|vertex| (candidates.intersection(&neighbours[*vertex]).count(), std::cmp::Reverse(*vertex)))
    else {
        found.push(clique.clone());
        return;
    };
    let branches: Vec<usize> = candidates.difference(&neighbours[pivot]).copied().collect();
    for vertex in branches {
        clique.push(vertex);
        expand(
            clique,
            candidates.intersection(&neighbours[vertex]).copied().collect(),
            excluded.intersection(&neighbours[vertex]).copied().collect(),
            neighbours,
            found,
        );
        clique.pop();
        candidates.remove(&vertex);
        excluded.insert(vertex);
    }
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

    #[test]
    fn maximal_cliques_are_found_once_each() {
        let cases: &[Case] = &[
            (3, &[], &[]),
            (3, &[(0, 1), (1, 2), (0, 2)], &[&[0, 1, 2]]),
            (4, &[(0, 1), (1, 2), (0, 2), (2, 3)], &[&[0, 1, 2], &[2, 3]]),
            (4, &[(0, 1), (1, 2), (2, 3), (3, 0)], &[&[0, 1], &[0, 3], &[1, 2], &[2, 3]]),
            (5, &[(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (3, 4)], &[&[0, 1, 2, 3], &[3, 4]]),
        ];
        for (vertices, edges, expected) in cases {
            let expected: Vec<Vec<usize>> = expected.iter().map(|clique| clique.to_vec()).collect();
            assert_eq!(maximal_cliques(&graph(*vertices, edges)), expected, "{edges:?}");
        }
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
        for (vertices, edges, expected) in cases {
            let neighbours = graph(*vertices, edges);
            let cover = edge_clique_cover(&neighbours);
            let expected: Vec<Vec<usize>> = expected.iter().map(|clique| clique.to_vec()).collect();
            assert_eq!(cover, expected, "{edges:?}");
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
        let cover = edge_clique_cover(&graph(8, &edges));
        assert_eq!(cover, vec![vec![0, 1, 2, 3], vec![0, 5, 6, 7], vec![1, 2, 5]]);
    }
}
