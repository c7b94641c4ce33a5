//! The apply record: the state each apply left, kept to tell drift (changes made outside
//! stackctl) from changes to the stack file. It lives in `/run`, like the objects it
//! describes, which do not survive a reboot either.

use std::io;
use std::path::PathBuf;

use super::writing::{Access, partial, write_file};
use super::{HostNamespace, Places};
use crate::state::KernelState;

pub(super) fn path(places: &Places, host: &HostNamespace, stack: &str) -> PathBuf {
    places.state.join(host.tag()).join(format!("{stack}.record.json"))
}

/// The state the last apply of `stack` left, if there was one.
pub fn read_record(places: &Places, host: &HostNamespace, stack: &str) -> Option<KernelState> {
    let file = std::io::BufReader::new(std::fs::File::open(path(places, host, stack)).ok()?);
    let mut record: KernelState = serde_json::from_reader(file).ok()?;
    record.share_records();
    Some(record)
}

/// Keeps the state an apply left; an empty state removes the record.
pub fn write_record(places: &Places, host: &HostNamespace, stack: &str, state: &KernelState) -> io::Result<()> {
    let path = path(places, host, stack);
    if state.is_empty() {
        super::files::remove_file(&partial(&path))?;
        return super::files::remove_file(&path);
    }
    places.run_directory(host)?;
    write_file(&path, &serde_json::to_vec(state).map_err(io::Error::other)?, Access::RootOnly)
}

/// The stacks with an apply record on `host`, by name.
pub(super) fn stacks(places: &Places, host: &HostNamespace) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(places.state.join(host.tag())) else { return Vec::new() };
    let mut stacks: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".record.json").map(str::to_owned))
        .collect();
    stacks.sort();
    stacks
}
