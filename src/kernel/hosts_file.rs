//! The hosts file of a container, `/etc/netns/<namespace>/hosts`: the names it resolves.
//! `ip netns exec` and `stackctl exec` bind it over `/etc/hosts` inside the container.

use std::net::Ipv4Addr;

/// The first line, which marks the file as stackctl's.
const HEADER: &str = "# stackctl: names this container resolves; apply rewrites this file";

/// The file's text for `records` (name, address).
pub fn render(records: &[(String, Ipv4Addr)]) -> String {
    let mut text = format!("{HEADER}\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, address) in records {
        text.push_str(&format!("{address}\t{name}\n"));
    }
    text
}

/// The records of a file stackctl wrote; `None` for any other file. Lines that are not
/// records (edited by hand) are left out, so that the next apply rewrites the file.
pub fn parse(text: &str) -> Option<Vec<(String, Ipv4Addr)>> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return None;
    }
    let records = lines
        .filter_map(|line| {
            let (address, name) = line.split_once('\t')?;
            let address: Ipv4Addr = address.parse().ok()?;
            (!address.is_loopback()).then(|| (name.to_owned(), address))
        })
        .collect();
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let records =
            vec![("db".to_owned(), Ipv4Addr::new(10, 89, 1, 2)), ("app".to_owned(), Ipv4Addr::new(10, 89, 0, 3))];
        assert_eq!(parse(&render(&records)), Some(records));
    }

    #[test]
    fn a_file_stackctl_did_not_write_is_not_read() {
        assert_eq!(parse("127.0.0.1 localhost\n10.0.0.2 db\n"), None);
    }
}
