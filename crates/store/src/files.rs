//! The SQLite files are readable by their owner only, whatever the umask:
//! they hold password hashes, sealed secrets and session hashes.

use std::path::Path;

/// Makes the database's folder (0700) and file (0600) before SQLite opens
/// it, and narrows them if they exist already. SQLite gives the `-wal` and
/// `-shm` files it makes the database file's permissions; those left by an
/// earlier version are narrowed too.
pub(crate) fn private_sqlite_files(path: &Path) -> Result<(), String> {
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        private(folder, 0o700)?;
    }
    create_private(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = Path::new(&companion);
        if companion.exists() {
            private(companion, 0o600)?;
        }
    }
    private(path, 0o600)
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

#[cfg(unix)]
fn private(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot make {} private: {e}", path.display()))
}

#[cfg(not(unix))]
fn create_private(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(not(unix))]
fn private(_: &Path, _: u32) -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_folder_and_files_are_the_owner_s_only() {
        let root = std::env::temp_dir().join(format!("usher-files-{}", std::process::id()));
        let folder = root.join(".usher");
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        let database = folder.join("database.sqlite");
        let wal = folder.join("database.sqlite-wal");
        std::fs::write(&wal, b"").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666))
            .unwrap_or_else(|e| panic!("{e}"));
        private_sqlite_files(&database).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&database), 0o600);
        assert_eq!(mode(&wal), 0o600);
        let _ = std::fs::remove_dir_all(root);
    }
}
