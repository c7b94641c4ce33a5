//! The host's kernel settings a stack holds (`state::Sysctl`): read and written under
//! `/proc/sys` from a thread in the host's namespace, where `net.*` settings are that
//! namespace's own.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::netns;
use crate::state::{FORWARDING, Sysctl, sysctl_value_is_known};

/// The file of a setting stackctl holds; any other name is refused, whatever a record or
/// a saved plan says.
fn path(name: &str) -> io::Result<PathBuf> {
    if name != FORWARDING {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("stackctl sets only {FORWARDING}")));
    }
    Ok(PathBuf::from("/proc/sys").join(name.replace('.', "/")))
}

/// The value of setting `name` in the host's namespace (`None` for the process's own).
pub fn read(host: Option<&File>, name: &str) -> io::Result<String> {
    let path = path(name)?;
    netns::inside(host, || Ok(std::fs::read_to_string(&path)?.trim().to_owned()))
}

/// Sets `sysctl` to `value` in the host's namespace, unless it has it already.
pub fn write(host: Option<&File>, sysctl: &Sysctl, value: &str) -> io::Result<()> {
    if !sysctl_value_is_known(value) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{value:?} is not 0 or 1")));
    }
    let path = path(&sysctl.name)?;
    netns::inside(host, || {
        if std::fs::read_to_string(&path)?.trim() != value {
            std::fs::write(&path, value)?;
        }
        Ok(())
    })
}
