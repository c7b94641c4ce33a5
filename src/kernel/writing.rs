//! How stackctl makes its files and directories: with the mode each needs, set on the
//! open object whatever the umask (which may only have taken bits away), never through a
//! symbolic link, and never into a file or directory that another user owns. A file is
//! written whole into a new file beside it (`O_CREAT|O_EXCL|O_NOFOLLOW`) and renamed over
//! its path, so that no reader sees half of it and no existing file is written through.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Who may read a file, or enter a directory, that stackctl makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Root only: locks, apply records, the name server's files, saved plans (0600, 0700).
    RootOnly,
    /// Everyone reads, root writes: the files a container's programs read as their
    /// `/etc/hosts` and `/etc/resolv.conf`, and the directories that hold them (0644, 0755).
    Everyone,
}

impl Access {
    pub fn file_mode(self) -> u32 {
        match self {
            Access::RootOnly => 0o600,
            Access::Everyone => 0o644,
        }
    }

    pub fn directory_mode(self) -> u32 {
        match self {
            Access::RootOnly => 0o700,
            Access::Everyone => 0o755,
        }
    }
}

/// Whose a directory is, which says whether an existing one gets its mode set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// stackctl's own (its run directory, a container's directory of name files): its mode
    /// is set, also when it exists, so one left by an older stackctl is made right.
    Stackctl,
    /// Shared with other tools (`/run/netns`, `/etc/netns`): made with the mode when it is
    /// missing, and otherwise left as it is.
    Shared,
}

/// Makes sure `path` is a directory of this user's (not a symbolic link), making it and
/// its missing parents (with the same access) if needed.
pub fn directory(path: &Path, access: Access, holder: Holder) -> io::Result<()> {
    let mode = access.directory_mode();
    let made = match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty()).ok_or(error)?;
            directory(parent, access, holder)?;
            match DirBuilder::new().mode(mode).create(path) {
                Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
                made => made.is_ok(),
            }
        }
        Err(error) => return Err(error),
    };
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|error| refused_link(path, error))?;
    owned(path, &opened.metadata()?)?;
    if made || holder == Holder::Stackctl {
        opened.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Writes `bytes` as the whole file at `path`, readable as `access` says. An existing file
/// there must be a regular file of this user's: it is replaced, never written through.
pub fn write_file(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(existing) if existing.file_type().is_symlink() => return Err(symbolic_link(path)),
        Ok(existing) if !existing.is_file() => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file", path.display())));
        }
        Ok(existing) => owned(path, &existing)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let partial = partial(path);
    // A partial file is one an interrupted write left: it was never renamed into place.
    super::files::remove_file(&partial)?;
    let written = new_file(&partial, access).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    });
    if written.is_err() {
        let _ = super::files::remove_file(&partial);
    }
    written
}

/// Opens the file at `path` for appending (a log), making it if needed; an existing one
/// must be a regular file of this user's, and gets the mode `access` says.
pub fn append_file(path: &Path, access: Access) -> io::Result<File> {
    open_own(path, access, OpenOptions::new().append(true))
}

/// Opens the file at `path` to lock it (and read and write it), making it if needed; an
/// existing one must be a regular file of this user's, and gets the mode `access` says. A
/// file that another user made, or could open, would let that user hold the lock.
pub fn lock_file(path: &Path, access: Access) -> io::Result<File> {
    open_own(path, access, OpenOptions::new().read(true).write(true).truncate(false))
}

/// Opens `path` as `options` say, never through a symbolic link, making it with the mode
/// `access` says; an existing one must be a regular file of this user's, and gets that mode.
fn open_own(path: &Path, access: Access, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .create(true)
        .mode(access.file_mode())
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|error| refused_link(path, error))?;
    own_file(path, &file, access)?;
    Ok(file)
}

/// A new file at `path`, which must not exist, with the mode `access` says.
pub fn new_file(path: &Path, access: Access) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(access.file_mode())
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(access.file_mode()))?;
    Ok(file)
}

/// Where [`write_file`] writes a file before it renames it over `path`.
pub fn partial(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Checks that an opened file is a regular file of this user's, and sets its mode.
fn own_file(path: &Path, file: &File, access: Access) -> io::Result<()> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file", path.display())));
    }
    owned(path, &metadata)?;
    if metadata.mode() & 0o7777 != access.file_mode() {
        file.set_permissions(Permissions::from_mode(access.file_mode()))?;
    }
    Ok(())
}

/// Refuses what another user owns: whoever owns a file or directory can change it, and so
/// what stackctl keeps in it.
fn owned(path: &Path, metadata: &std::fs::Metadata) -> io::Result<()> {
    let user = nix::unistd::geteuid().as_raw();
    if metadata.uid() == user {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is owned by uid {}, not by uid {user}, which runs stackctl: it is left as it is; remove it if it \
             should not be there",
            path.display(),
            metadata.uid()
        ),
    ))
}

/// `O_NOFOLLOW` fails on a symbolic link (`ELOOP`, or `ENOTDIR` with `O_DIRECTORY`): said
/// as such.
fn refused_link(path: &Path, error: io::Error) -> io::Error {
    let link = std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_symlink());
    if link { symbolic_link(path) } else { error }
}

fn symbolic_link(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is a symbolic link, and stackctl never writes through one", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    #[test]
    fn files_and_directories_get_their_modes_whatever_is_there() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let made = root.path().join("a").join("b");
        directory(&made, Access::RootOnly, Holder::Stackctl).expect("make it");
        assert_eq!((mode(&root.path().join("a")), mode(&made)), (0o700, 0o700));
        std::fs::set_permissions(&made, Permissions::from_mode(0o777)).expect("widen it");
        directory(&made, Access::RootOnly, Holder::Stackctl).expect("make it again");
        assert_eq!(mode(&made), 0o700, "stackctl's own directory is made right");
        std::fs::set_permissions(&made, Permissions::from_mode(0o775)).expect("widen it");
        directory(&made, Access::Everyone, Holder::Shared).expect("a shared directory");
        assert_eq!(mode(&made), 0o775, "a shared directory that exists is left as it is");

        let file = made.join("f");
        write_file(&file, b"one", Access::Everyone).expect("write");
        assert_eq!(mode(&file), 0o644);
        std::fs::set_permissions(&file, Permissions::from_mode(0o666)).expect("widen it");
        write_file(&file, b"two", Access::RootOnly).expect("write again");
        assert_eq!((mode(&file), std::fs::read(&file).expect("read")), (0o600, b"two".to_vec()));
        assert!(!partial(&file).exists());
    }

    #[test]
    fn nothing_is_written_through_a_symbolic_link() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let target = root.path().join("target");
        std::fs::write(&target, "kept").expect("write the target");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        let refused = |error: io::Error| error.to_string();
        assert!(refused(write_file(&link, b"x", Access::RootOnly).unwrap_err()).contains("is a symbolic link"));
        assert!(refused(lock_file(&link, Access::RootOnly).unwrap_err()).contains("is a symbolic link"));
        assert!(refused(append_file(&link, Access::RootOnly).unwrap_err()).contains("is a symbolic link"));
        let linked_directory = root.path().join("linked");
        std::os::unix::fs::symlink(root.path(), &linked_directory).expect("link");
        let error = directory(&linked_directory, Access::RootOnly, Holder::Stackctl).unwrap_err();
        assert!(refused(error).contains("is a symbolic link"));
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "kept");
        assert!(std::fs::symlink_metadata(&link).expect("stat").file_type().is_symlink());
    }

    /// Another user's file or directory is neither replaced nor used (as root, which may
    /// give a file away).
    #[test]
    fn another_users_file_or_directory_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().expect("a temporary directory");
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        let file = root.path().join("theirs");
        std::fs::write(&file, "theirs").expect("write");
        std::os::unix::fs::chown(&file, nobody.map(|uid| uid.as_raw()), None).expect("give it away");
        let error = write_file(&file, b"x", Access::RootOnly).unwrap_err().to_string();
        assert!(error.contains("is owned by uid 65534"), "{error}");
        assert!(lock_file(&file, Access::RootOnly).is_err());
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "theirs");
        let theirs = root.path().join("their-directory");
        std::fs::create_dir(&theirs).expect("make it");
        std::os::unix::fs::chown(&theirs, nobody.map(|uid| uid.as_raw()), None).expect("give it away");
        assert!(directory(&theirs, Access::RootOnly, Holder::Stackctl).is_err());
    }

    /// A partial file that is a symbolic link (left, or planted) is removed, not followed.
    #[test]
    fn a_planted_partial_file_is_not_followed() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let target = root.path().join("target");
        std::fs::write(&target, "kept").expect("write the target");
        let file = root.path().join("f");
        std::os::unix::fs::symlink(&target, partial(&file)).expect("plant a link");
        write_file(&file, b"new", Access::RootOnly).expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "kept");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "new");
    }
}
