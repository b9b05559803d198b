//! The instance UUID: stable across restarts of a process slot, distinct for processes running
//! side by side, in lock files interoperable with the Python and Go SDKs (protocol.md §5).

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Slots per (client id, env): at most this many processes on one machine get stable UUIDs.
pub(crate) const MAX_SLOTS: usize = 100;
/// A slot's UUID is replaced when its file was last written longer ago than this.
pub(crate) const MAX_LOCK_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The first 8 hex digits of SHA-256 of `"{client_id}:{env}"`.
pub(crate) fn app_env_hash(client_id: &str, env: &str) -> String {
    let digest = Sha256::digest(format!("{client_id}:{env}").as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The instance UUID and, when one was acquired, the locked slot file that reserves it for this
/// process. Dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct InstanceId {
    pub(crate) uuid: Uuid,
    /// Held open for the life of the client: the open file is the lock.
    _lock: Option<File>,
    pub(crate) path: Option<PathBuf>,
}

impl InstanceId {
    /// The instance of an Apitally 1.x process: `service.instance.id`, random per process and
    /// not persisted (protocol-v1.md §2).
    #[cfg(test)]
    pub(crate) fn per_process(uuid: Uuid) -> Self {
        Self {
            uuid,
            _lock: None,
            path: None,
        }
    }

    /// Acquires a slot in `<temp dir>/apitally`.
    pub(crate) fn acquire(client_id: &str, env: &str) -> Self {
        Self::acquire_in(&std::env::temp_dir().join("apitally"), client_id, env)
    }

    pub(crate) fn acquire_in(dir: &Path, client_id: &str, env: &str) -> Self {
        if let Err(err) = std::fs::create_dir_all(dir) {
            log::debug!(
                "apitally: cannot create {}: {err}; using a random instance UUID",
                dir.display()
            );
            return Self::random();
        }
        let hash = app_env_hash(client_id, env);
        for slot in 0..MAX_SLOTS {
            let path = dir.join(format!("instance_{hash}_{slot}.lock"));
            match try_slot(&path) {
                Ok(Some((uuid, file))) => {
                    return Self {
                        uuid,
                        _lock: Some(file),
                        path: Some(path),
                    }
                }
                Ok(None) => continue,
                Err(err) => {
                    log::debug!("apitally: cannot use {}: {err}", path.display());
                    continue;
                }
            }
        }
        log::debug!("apitally: all {MAX_SLOTS} instance slots are taken; using a random UUID");
        Self::random()
    }

    fn random() -> Self {
        Self {
            uuid: Uuid::new_v4(),
            _lock: None,
            path: None,
        }
    }
}

/// Locks the slot file at `path` if no other process holds it, and returns its UUID (reused when
/// valid and fresh, else newly written). `Ok(None)` when another process holds the slot.
fn try_slot(path: &Path) -> std::io::Result<Option<(Uuid, File)>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(err)) => return Err(err),
    }
    let mut buf = Vec::with_capacity(64);
    (&mut file).take(64).read_to_end(&mut buf)?;
    let text: String = String::from_utf8_lossy(&buf).replace('\0', "");
    let fresh = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|mtime| SystemTime::now().duration_since(mtime).ok())
        .is_some_and(|age| age <= MAX_LOCK_AGE);
    if let (Ok(uuid), true) = (Uuid::try_parse(text.trim()), fresh) {
        return Ok(Some((uuid, file)));
    }
    let uuid = Uuid::new_v4();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(uuid.hyphenated().to_string().as_bytes())?;
    file.flush()?;
    Ok(Some((uuid, file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9";

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "apitally-test-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn hash_matches_the_python_and_go_sdks() {
        assert_eq!(app_env_hash(ID, "prod"), "0ee479ef");
    }

    #[test]
    fn slots_are_distinct_while_held_and_reused_after_release() {
        let dir = temp_dir("slots");
        let first = InstanceId::acquire_in(&dir, ID, "prod");
        let second = InstanceId::acquire_in(&dir, ID, "prod");
        assert_ne!(first.uuid, second.uuid);
        assert_eq!(
            first.path.as_deref(),
            Some(dir.join("instance_0ee479ef_0.lock").as_path())
        );
        assert_eq!(
            second.path.as_deref(),
            Some(dir.join("instance_0ee479ef_1.lock").as_path())
        );
        let content = std::fs::read_to_string(dir.join("instance_0ee479ef_0.lock")).unwrap();
        assert_eq!(content, first.uuid.hyphenated().to_string());
        let (uuid0, uuid1) = (first.uuid, second.uuid);
        drop(first);
        // Slot 0 is free again: a restart gets its UUID back.
        let again = InstanceId::acquire_in(&dir, ID, "prod");
        assert_eq!(again.uuid, uuid0);
        drop(second);
        drop(again);
        let (a, b) = (
            InstanceId::acquire_in(&dir, ID, "prod"),
            InstanceId::acquire_in(&dir, ID, "prod"),
        );
        assert_eq!((a.uuid, b.uuid), (uuid0, uuid1));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn invalid_or_stale_content_is_replaced() {
        let dir = temp_dir("stale");
        let path = dir.join(format!("instance_{}_0.lock", app_env_hash(ID, "dev")));
        std::fs::write(&path, "garbage\0").unwrap();
        let id = InstanceId::acquire_in(&dir, ID, "dev");
        assert_ne!(id.uuid.to_string(), "garbage");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), id.uuid.to_string());
        drop(id);

        // A UUID written with NULs and white space around it is read as py reads it.
        let known = Uuid::new_v4();
        std::fs::write(&path, format!("\0 {known}\n")).unwrap();
        assert_eq!(InstanceId::acquire_in(&dir, ID, "dev").uuid, known);

        // Older than 24 h: regenerated.
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - MAX_LOCK_AGE - Duration::from_secs(60))
            .unwrap();
        drop(file);
        assert_ne!(InstanceId::acquire_in(&dir, ID, "dev").uuid, known);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unusable_directory_gives_a_random_uuid() {
        let dir = temp_dir("unusable");
        let file = dir.join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let id = InstanceId::acquire_in(&file.join("apitally"), ID, "prod");
        assert!(id.path.is_none());
        assert_eq!(id.uuid.get_version_num(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn all_slots_taken_gives_a_random_uuid() {
        let dir = temp_dir("full");
        let held: Vec<_> = (0..MAX_SLOTS)
            .map(|_| InstanceId::acquire_in(&dir, ID, "prod"))
            .collect();
        assert!(held.iter().all(|h| h.path.is_some()));
        let extra = InstanceId::acquire_in(&dir, ID, "prod");
        assert!(extra.path.is_none());
        assert!(held.iter().all(|h| h.uuid != extra.uuid));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
