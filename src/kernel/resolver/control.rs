//! The control protocol: JSON lines over the server's unix socket, one request and one
//! reply each. `reload` carries every stack's zone, as its file holds it, and the host's
//! `resolv.conf`: the server, which keeps no privilege to read them, reads no file. It
//! replies once the new zones answer queries, with the digest of each stack's zone as the
//! server got it, which is how apply knows its names are served.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The version of the requests and replies below. 2: `reload` carries the zones, which the
/// server no longer reads from files.
pub const PROTOCOL_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "request")]
pub enum Request {
    /// Serve these zones (the text of each stack's zone file, by stack) in place of those
    /// served, and forward to the name servers of this `resolv.conf`.
    Reload { zones: BTreeMap<String, String>, resolv_conf: String },
    /// What the server serves.
    Status,
    /// Stop serving and exit.
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum Reply {
    Status(Status),
    Reloaded(Status),
    Stopping,
    Refused { message: String },
}

/// What a server serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    /// The digest of each stack's zone file, as the server got it.
    pub zones: BTreeMap<String, String>,
    /// Zones the server could not read, with why, by stack.
    pub rejected: BTreeMap<String, String>,
    /// The gateways it listens on.
    pub listening: Vec<Ipv4Addr>,
    /// The gateways it cannot listen on, with why.
    pub unbound: BTreeMap<Ipv4Addr, String>,
}

/// Asks the server listening on the socket at `path`, waiting at most `timeout` for each
/// step; a server that does not answer in time is as good as gone.
pub fn ask(path: &Path, request: &Request, timeout: Duration) -> io::Result<Reply> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_json_lines() {
        assert_eq!(serde_json::to_string(&Request::Status).expect("serializes"), r#"{"request":"status"}"#);
        let reload = Request::Reload {
            zones: BTreeMap::from([("shop".to_owned(), "{}".to_owned())]),
            resolv_conf: "nameserver 192.0.2.53\n".to_owned(),
        };
        let text = serde_json::to_string(&reload).expect("serializes");
        assert_eq!(text, r#"{"request":"reload","zones":{"shop":"{}"},"resolv_conf":"nameserver 192.0.2.53\n"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).expect("parses"), reload);
        let status = Status {
            pid: 7,
            version: "0.1.0+zone1".to_owned(),
            zones: BTreeMap::from([("shop".to_owned(), "ab12".to_owned())]),
            listening: vec![Ipv4Addr::new(10, 89, 0, 1)],
            ..Status::default()
        };
        let text = serde_json::to_string(&Reply::Reloaded(status.clone())).expect("serializes");
        assert_eq!(
            text,
            r#"{"reply":"reloaded","pid":7,"version":"0.1.0+zone1","zones":{"shop":"ab12"},"rejected":{},"listening":["10.89.0.1"],"unbound":{}}"#
        );
        assert_eq!(serde_json::from_str::<Reply>(&text).expect("parses"), Reply::Reloaded(status));
    }
}
