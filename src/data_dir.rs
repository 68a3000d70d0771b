//! The data directory and the SQLite database are private to the user hookgate runs as: the
//! database holds every delivery's headers and body as the code host sent them. A data directory
//! hookgate makes is mode 0700, and an SQLite database file it makes is 0600 before SQLite first
//! opens it (SQLite gives the `-wal` and `-shm` files it makes the database file's mode; the
//! secret key file is written 0600 by `secret_key`). A directory or database file that exists
//! already and is open to its group or others is used as it is, with a warning that says what
//! to run, as the secret key file is: refusing would stop a service over a mount's defaults.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of a data directory hookgate makes.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a database file hookgate makes.
pub const FILE_MODE: u32 = 0o600;

/// Makes `dir` (and its missing parents) with mode 0700 when it is missing; warns when it
/// exists and its group or others may enter it.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        warn_if_open_to_others(dir, "data directory", "700");
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    // The umask can only take bits away, but say 0700 outright all the same.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// For an SQLite `url` that may create its file (`mode=rwc`), makes the missing file empty with
/// mode 0600 before SQLite opens it; warns when an existing one is open to group or others.
/// Other URLs (PostgreSQL, in-memory, read-write only) are left alone.
pub fn prepare_sqlite_file(url: &str) -> std::io::Result<()> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    if path.exists() {
        warn_if_open_to_others(&path, "database file", "600");
        return Ok(());
    }
    // An empty file is an empty SQLite database; `create_new` never touches one made meanwhile.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&path)
    {
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The file of an SQLite URL that asks for it to be created (`sqlite://<path>?mode=rwc`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let (path, mode) = sqlite_file_and_mode(url)?;
    (mode.as_deref() == Some("rwc")).then_some(path)
}

/// The file of an SQLite URL, read as sqlx reads it (percent-decoded), and its `mode`
/// parameter (`rwc`, `rw`, `ro`) when it has one; `None` for other URLs and a database in
/// memory.
pub(crate) fn sqlite_file_and_mode(url: &str) -> Option<(PathBuf, Option<String>)> {
    use std::str::FromStr;
    let query = url
        .strip_prefix("sqlite:")?
        .split_once('?')
        .map_or("", |(_, q)| q);
    let mode = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.into_owned());
    if url.contains(":memory:") || mode.as_deref() == Some("memory") {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty()).then(|| (path.to_owned(), mode))
}

fn warn_if_open_to_others(path: &Path, what: &str, wanted: &str) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:04o}"),
            "the {what} may be read by its group or others, and it holds deliveries' headers and bodies: run `chmod {wanted} {}`",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_creating_sqlite_url_names_a_file_to_make() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/hookgate/hookgate.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/hookgate/hookgate.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://./hookgate-data/hookgate.db?mode=rwc"),
            Some(PathBuf::from("./hookgate-data/hookgate.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///srv/hook%3Fgate.db?mode=rwc"),
            Some(PathBuf::from("/srv/hook?gate.db"))
        );
        assert_eq!(sqlite_file("sqlite://hookgate.db?mode=rw"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://:memory:?mode=rwc"), None);
        assert_eq!(sqlite_file("postgres://postgres@localhost/hookgate"), None);
        assert_eq!(
            sqlite_file_and_mode("sqlite:///srv/hookgate.db?mode=ro"),
            Some((PathBuf::from("/srv/hookgate.db"), Some("ro".to_owned())))
        );
        assert_eq!(
            sqlite_file_and_mode("sqlite:///srv/hookgate.db"),
            Some((PathBuf::from("/srv/hookgate.db"), None))
        );
        assert_eq!(sqlite_file_and_mode("sqlite://x.db?mode=memory"), None);
    }
}
