//! What a stack needs of the host's limits beyond what its file can say: open files.

/// Files an apply holds open for each of the stack's namespaces, all at once: a netlink
/// socket inside it (its file is open only while a link is made into it, a few at a time).
const FILES_PER_NAMESPACE: u64 = 1;

/// Files besides: standard streams, the host's netlink sockets, the runtime's, the lock,
/// the record, `nft`, the name server's control socket, and the namespaces and
/// connections of the operations and reads in flight (64 at a time, two files each), with
/// room to spare.
const FILES_BESIDES: u64 = 256;

/// How many open files observing and applying a stack with `namespaces` namespaces may
/// hold at once. Under a smaller limit the apply fails part way, and so does every later
/// one (10,000 containers failed at the 9,982nd under a limit of 20,000, when an apply held
/// two files per namespace).
pub fn open_files_needed(namespaces: usize) -> u64 {
    (namespaces as u64).saturating_mul(FILES_PER_NAMESPACE).saturating_add(FILES_BESIDES)
}

/// The limit on open files that stackctl runs under, once it raised it as far as it may
/// for the stack's namespaces (up to the hard limit, and beyond only with
/// `CAP_SYS_RESOURCE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileLimit {
    /// The namespaces of the stack on the host: those it declares, and those left of
    /// containers since removed.
    pub namespaces: usize,
    /// The limit now.
    pub soft: u64,
    pub hard: u64,
}

/// A limit on open files too small to apply the stack: the apply would fail part way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOfFiles {
    pub limit: FileLimit,
    pub needed: u64,
}

impl std::fmt::Display for ShortOfFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ShortOfFiles { limit: FileLimit { namespaces, soft, hard }, needed } = self;
        write!(
            f,
            "applying the stack's {namespaces} namespaces holds up to {needed} open files at once, but the limit on \
             open files (RLIMIT_NOFILE) is {soft}, hard limit {hard}, and stackctl may not raise it further (that \
             takes CAP_SYS_RESOURCE), so nothing was changed: run stackctl with a limit of at least {needed} (e.g. \
             `prlimit --nofile={needed}:{needed} stackctl ...` as root, or `LimitNOFILE=` for a service)"
        )
    }
}

/// Whether `limit` is too small to apply the stack, checked before any change.
pub fn short_of_files(limit: FileLimit) -> Option<ShortOfFiles> {
    let needed = open_files_needed(limit.namespaces);
    (limit.soft < needed).then_some(ShortOfFiles { limit, needed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_per_namespace_and_some_to_spare() {
        assert_eq!(open_files_needed(0), 256);
        assert_eq!(open_files_needed(600), 856);
        assert_eq!(open_files_needed(10_000), 10_256);
    }

    #[test]
    fn a_limit_short_of_the_namespaces_is_told_with_what_is_needed() {
        let limit = |namespaces: usize, soft: u64| FileLimit { namespaces, soft, hard: soft };
        assert_eq!(short_of_files(limit(600, 856)), None);
        assert_eq!(short_of_files(limit(10_000, 20_000)), None);
        let short = short_of_files(limit(600, 855)).expect("one file short");
        assert_eq!(short.needed, 856);
        insta::assert_snapshot!(short.to_string(), @"applying the stack's 600 namespaces holds up to 856 open files at once, but the limit on open files (RLIMIT_NOFILE) is 855, hard limit 855, and stackctl may not raise it further (that takes CAP_SYS_RESOURCE), so nothing was changed: run stackctl with a limit of at least 856 (e.g. `prlimit --nofile=856:856 stackctl ...` as root, or `LimitNOFILE=` for a service)");
    }
}
