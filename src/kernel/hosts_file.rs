//! The hosts file of a container, `/etc/netns/<namespace>/hosts`: localhost and the
//! container's own name. Every other name comes from the host's name server (see
//! `resolver`). `ip netns exec` and `stackctl exec` bind it over `/etc/hosts` inside the
//! container.

use std::net::Ipv4Addr;

/// The first line, which marks the file as stackctl's.
const HEADER: &str = "# stackctl: this container's own names; the others come from its name servers";

/// The file's text for `container`, whose names are among `records` (name, address): its
/// own name on each of its networks.
pub fn render(container: &str, records: &[(String, Ipv4Addr)]) -> String {
    let mut text = format!("{HEADER}\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, address) in records.iter().filter(|(name, _)| name == container) {
        text.push_str(&format!("{address}\t{name}\n"));
    }
    text
}

/// Whether stackctl wrote this file.
pub fn is_stackctls(text: &str) -> bool {
    text.lines().next() == Some(HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_localhost_and_the_containers_own_names() {
        let records = vec![
            ("app".to_owned(), Ipv4Addr::new(10, 89, 0, 2)),
            ("db".to_owned(), Ipv4Addr::new(10, 20, 0, 2)),
            ("flaskapp".to_owned(), Ipv4Addr::new(10, 20, 0, 3)),
            ("flaskapp".to_owned(), Ipv4Addr::new(10, 89, 0, 2)),
        ];
        let text = render("flaskapp", &records);
        assert_eq!(
            text,
            format!(
                "{HEADER}\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.20.0.3\tflaskapp\n10.89.0.2\tflaskapp\n"
            )
        );
        assert!(is_stackctls(&text));
    }

    #[test]
    fn a_file_stackctl_did_not_write_is_not_its() {
        assert!(!is_stackctls("127.0.0.1 localhost\n10.0.0.2 db\n"));
    }
}
