//! Identifiers: the rules that the names of stacks, networks and containers follow, and
//! "did you mean" for a mistyped one. The names DNS serves are another matter (`crate::names`).

use crate::spec::NAME_MAX_LEN;

/// Why a name breaks Docker's rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 63 characters),
/// or `None` when it follows it.
pub fn name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Some("a name cannot be empty".to_owned()),
        Some(first) if !first.is_ascii_alphanumeric() => {
            return Some(format!("a name must start with a letter or digit, not `{first}`"));
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Some(format!("`{bad}` is not allowed in a name: use letters, digits, `_`, `.` and `-`"));
    }
    if name.len() > NAME_MAX_LEN {
        return Some(format!("a name has at most {NAME_MAX_LEN} characters, this one has {}", name.len()));
    }
    None
}

/// The candidate closest to a mistyped name, when one is close enough to be what was meant.
pub fn suggest_name<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(&input.to_lowercase(), &candidate.to_lowercase()), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_are_accepted() {
        for name in ["ContainerA", "web_nw", "cat-db", "a", "9lives", "v1.2"] {
            assert_eq!(name_problem(name), None, "{name}");
        }
    }

    #[test]
    fn bad_names_are_explained() {
        let cases = [
            ("", "a name cannot be empty"),
            ("-db", "a name must start with a letter or digit, not `-`"),
            ("db nw", "` ` is not allowed in a name: use letters, digits, `_`, `.` and `-`"),
            ("db/1", "`/` is not allowed in a name: use letters, digits, `_`, `.` and `-`"),
        ];
        for (name, problem) in cases {
            assert_eq!(name_problem(name).as_deref(), Some(problem), "{name}");
        }
        let long = "a".repeat(64);
        assert_eq!(name_problem(&long).as_deref(), Some("a name has at most 63 characters, this one has 64"));
    }

    #[test]
    fn suggestions_pick_the_nearest_name() {
        assert_eq!(suggest_name("db_nv", ["web_nw", "db_nw"]), Some("db_nw"));
        assert_eq!(suggest_name("subnt", ["subnet", "gateway", "internal"]), Some("subnet"));
        assert_eq!(suggest_name("zzz", ["web_nw", "db_nw"]), None);
    }
}
