//! Whether this process may read and change network namespaces.

/// `CAP_NET_ADMIN` changes interfaces, addresses and routes; `CAP_SYS_ADMIN` enters and
/// mounts namespaces.
const NEEDED: [u32; 2] = [12, 21];

/// Whether the process holds the capabilities stackctl needs on the live kernel.
pub fn has_privileges() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| effective_has(&status, &NEEDED))
}

/// Whether the `CapEff` line of a `/proc/<pid>/status` text holds every capability of `needed`.
fn effective_has(status: &str, needed: &[u32]) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| needed.iter().all(|capability| mask & (1 << capability) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        assert!(effective_has("Name:\tx\nCapEff:\t000001ffffffffff\n", &NEEDED));
        assert!(!effective_has("CapEff:\t0000000000000000\n", &NEEDED));
        assert!(!effective_has("CapEff:\t0000000000001000\n", &NEEDED));
        assert!(!effective_has("Name:\tx\n", &NEEDED));
    }
}
