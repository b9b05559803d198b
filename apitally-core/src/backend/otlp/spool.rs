//! For the spool, see [`Spool`] (protocol-v1.md §1.5, §1.10).

use std::{
    collections::VecDeque,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use tokio::time::Instant;

use crate::util::lock;

mod losses;
mod queue;
mod storage;
mod writing;

use self::storage::{
    create_spool_file, delete_data, is_writable, Closed, Current, Data, Gzip, Sink,
};
pub(crate) use self::{
    losses::{DropReason, Losses},
    queue::{Queue, Signal},
    storage::cleanup_orphans,
};

/// A file is closed before an append would take it past this many uncompressed bytes; a single
/// message above it is dropped (§1.5).
pub(crate) const MAX_FILE_UNCOMPRESSED: usize = 4_000_000;
/// Cap of the disk spool, compressed bytes (§1.10).
pub(crate) const MAX_SIZE_DISK: u64 = 50_000_000;
/// Cap of the in-memory spool, compressed bytes (§1.10).
pub(crate) const MAX_SIZE_MEMORY: u64 = 10_000_000;
/// A file first attempted longer ago than this is dropped: a retry landing outside the server's
/// one-hour dedup window could double-ingest (§1.8).
pub(crate) const MAX_RETRY_AFTER_FIRST_ATTEMPT: Duration = Duration::from_secs(59 * 60);
/// Files `apitally-*.gz` in the spool directory untouched for longer are left over from dead
/// processes and deleted at construction (§1.10); live ones are touched every cycle.
pub(crate) const ORPHAN_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// A spool file, unique within the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(u64);

/// A closed file waiting to be sent, as of [`Spool::pending_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingFile {
    pub(crate) id: FileId,
    pub(crate) queue: Queue,
    /// Compressed bytes.
    pub(crate) size: u64,
    /// The items its messages carry (see [`Queue::items`]).
    pub(crate) items: u64,
    /// When its first send started (monotonic).
    pub(crate) first_attempt: Option<Instant>,
}

impl PendingFile {
    pub(crate) fn signal(&self) -> Signal {
        self.queue.signal()
    }

    /// Whether its first attempt was more than 59 minutes before `now`.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.first_attempt
            .is_some_and(|t| now.saturating_duration_since(t) > MAX_RETRY_AFTER_FIRST_ATTEMPT)
    }
}

/// Why a pending file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// It is no longer in the spool (evicted since [`Spool::pending_in`]).
    #[error("the file is no longer spooled")]
    Gone,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the spool holds, for a shutdown report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpoolContents {
    /// Closed and current files per queue (in [`Queue::ALL`] order).
    pub(crate) files: [usize; 4],
    /// Compressed bytes per queue.
    pub(crate) bytes: [u64; 4],
    /// Items per queue.
    pub(crate) items: [u64; 4],
}

struct State {
    current: [Option<Current>; 4],
    /// Oldest first, all queues.
    closed: VecDeque<Closed>,
    closed_since_rotation: [usize; 4],
    write_error_warned: bool,
    oversize_warned: bool,
    next_id: u64,
    unlogged: Vec<String>,
    /// Dropped since the last [`Spool::take_losses`].
    losses: Losses,
    /// Items dropped per queue since the spool was made.
    lost_items: [u64; 4],
    /// The deflate state of the last file closed, for the next one (see [`Gzip`]).
    spare_deflate: Option<DeflateEncoder<Sink>>,
    #[cfg(test)]
    warnings: Vec<String>,
    #[cfg(test)]
    fail_writes: bool,
}

impl State {
    /// Queues a warning, logged once the lock is released (a logger that feeds telemetry
    /// back into the spool must not find it locked).
    fn warn(&mut self, message: String) {
        #[cfg(test)]
        self.warnings.push(message.clone());
        self.unlogged.push(message);
    }

    fn lose(&mut self, queue: Queue, items: u64, reason: DropReason) {
        self.losses.add(queue, items, reason);
        self.lost_items[queue.index()] += items;
    }

    /// Fails when a test asked for write errors.
    fn injected_failure(&self) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_writes {
            return Err(io::Error::other("injected write error"));
        }
        Ok(())
    }
}

/// The locked state; logs the warnings queued under the lock after releasing it.
struct Locked<'a>(Option<std::sync::MutexGuard<'a, State>>);

impl std::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.0.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.0.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let messages = self
            .0
            .as_mut()
            .map(|state| std::mem::take(&mut state.unlogged))
            .unwrap_or_default();
        drop(self.0.take());
        for message in messages {
            log::warn!(target: "apitally", "{message}");
        }
    }
}

/// Per-queue gzip spool between the encoders and the export worker.
///
/// Each [`Queue`] has at most one current file: a single gzip member to which encoded
/// `Export*ServiceRequest` messages are appended (concatenated messages decode as one). A file is
/// closed before an append would pass 4,000,000 uncompressed bytes, when the worker rotates, or
/// at shutdown; closed files wait until the worker deletes them. Files are `apitally-<uuid>.gz`
/// with mode 0600 in the temp dir; if it is not writable (probed at construction), everything
/// stays in memory. Total size is capped (compressed bytes: closed files plus what current files
/// have written so far): 50,000,000 on disk, 10,000,000 in memory; eviction after every append
/// and rotation drops files whose first attempt is over 59 minutes old, then the oldest closed
/// file of the sampled queues (traces, application logs), then of events, then of metrics
/// (which carry the request counts and the liveness signal). Every file dropped unsent is
/// counted with its items ([`take_losses`](Self::take_losses)).
///
/// Thread-safe: batches append from any thread while the worker rotates, reads and deletes.
/// Disk writes happen under the spool's lock; reading a file for sending does not.
pub(crate) struct Spool {
    state: Mutex<State>,
    /// `None`: in memory.
    dir: Option<PathBuf>,
    max_size: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// A spool in the system temp dir, or in memory if it is not writable.
    pub(crate) fn new() -> Self {
        Self::new_in(std::env::temp_dir())
    }

    /// A spool in `dir` (deleting orphans there first), or in memory if `dir` is not writable
    /// (with one warning).
    pub(crate) fn new_in(dir: PathBuf) -> Self {
        if is_writable(&dir) {
            cleanup_orphans(&dir, SystemTime::now());
            Self::with(Some(dir), MAX_SIZE_DISK)
        } else {
            let spool = Self::with(None, MAX_SIZE_MEMORY);
            spool.lock().warn(
                "Unable to create temporary files, buffering telemetry in memory (max 10 MB)"
                    .to_owned(),
            );
            spool
        }
    }

    #[cfg(test)]
    /// A spool in memory.
    pub(crate) fn in_memory() -> Self {
        Self::with(None, MAX_SIZE_MEMORY)
    }

    fn with(dir: Option<PathBuf>, max_size: u64) -> Self {
        Self {
            state: Mutex::new(State {
                current: [None, None, None, None],
                closed: VecDeque::new(),
                closed_since_rotation: [0; 4],
                write_error_warned: false,
                oversize_warned: false,
                next_id: 0,
                unlogged: Vec::new(),
                losses: Losses::default(),
                lost_items: [0; 4],
                spare_deflate: None,
                #[cfg(test)]
                warnings: Vec::new(),
                #[cfg(test)]
                fail_writes: false,
            }),
            dir,
            max_size,
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked(Some(lock(&self.state)))
    }

    #[cfg(test)]
    /// Whether the spool fell back to memory.
    pub(crate) fn is_in_memory(&self) -> bool {
        self.dir.is_none()
    }

    /// An ordinary cycle's rotation: closes each queue's current file unless a closed file of
    /// that queue is already waiting (a backlog grows the current file instead of adding one
    /// per cycle), evicts, and returns how many files of each queue were closed since the
    /// previous call, size rotations included (the cycle's extra send budget per queue).
    pub(crate) fn rotate_for_export(&self) -> [usize; 4] {
        let mut state = self.lock();
        for queue in Queue::ALL {
            let waiting = state.closed.iter().any(|f| f.queue == queue);
            if state.current[queue.index()].is_some() && !waiting {
                self.rotate_locked(&mut state, queue);
            }
        }
        self.evict_locked(&mut state);
        std::mem::take(&mut state.closed_since_rotation)
    }

    /// The final cycle's rotation: closes every current file.
    pub(crate) fn close_current_files(&self) {
        let mut state = self.lock();
        for queue in Queue::ALL {
            self.rotate_locked(&mut state, queue);
        }
        self.evict_locked(&mut state);
    }

    #[cfg(test)]
    /// The closed files, oldest first.
    pub(crate) fn pending(&self) -> Vec<PendingFile> {
        self.lock().closed.iter().map(Closed::pending).collect()
    }

    /// The closed files of one queue, oldest first.
    pub(crate) fn pending_in(&self, queue: Queue) -> Vec<PendingFile> {
        self.lock()
            .closed
            .iter()
            .filter(|f| f.queue == queue)
            .map(Closed::pending)
            .collect()
    }

    /// Records the start of a send, the first time only.
    pub(crate) fn mark_attempt(&self, id: FileId) {
        let mut state = self.lock();
        if let Some(file) = state.closed.iter_mut().find(|f| f.id == id) {
            file.first_attempt.get_or_insert_with(Instant::now);
        }
    }

    /// The bytes of a closed file, to send verbatim.
    pub(crate) fn read(&self, id: FileId) -> Result<Bytes, ReadError> {
        let path = {
            let state = self.lock();
            match state.closed.iter().find(|f| f.id == id).map(|f| &f.data) {
                None => return Err(ReadError::Gone),
                Some(Data::Memory(bytes)) => return Ok(bytes.clone()),
                Some(Data::File(path)) => path.clone(),
            }
        };
        match std::fs::read(&path) {
            Ok(body) => Ok(Bytes::from(body)),
            Err(_) if !self.lock().closed.iter().any(|f| f.id == id) => Err(ReadError::Gone),
            Err(err) => Err(ReadError::Io(err)),
        }
    }

    /// Deletes a delivered file.
    pub(crate) fn delete(&self, id: FileId) {
        self.remove(id, None);
    }

    /// Deletes a file that will never be delivered (rejected, unreadable, expired), counting
    /// its items as lost.
    pub(crate) fn drop_file(&self, id: FileId, reason: DropReason) {
        self.remove(id, Some(reason));
    }

    fn remove(&self, id: FileId, lost: Option<DropReason>) {
        let mut state = self.lock();
        if let Some(i) = state.closed.iter().position(|f| f.id == id) {
            if let Some(file) = state.closed.remove(i) {
                if let Some(reason) = lost {
                    state.lose(file.queue, file.items, reason);
                }
                delete_data(file.data);
            }
        }
    }

    /// What was dropped unsent since the last call.
    pub(crate) fn take_losses(&self) -> Losses {
        std::mem::take(&mut self.lock().losses)
    }

    /// Items of `queue` dropped unsent since the spool was made.
    pub(crate) fn lost_items(&self, queue: Queue) -> u64 {
        self.lock().lost_items[queue.index()]
    }

    /// Refreshes the mtime of every spool file, so that no other process's orphan cleanup
    /// takes them.
    pub(crate) fn touch_files(&self) {
        let state = self.lock();
        let now = SystemTime::now();
        for current in state.current.iter().flatten() {
            if let Sink::File { file, .. } = current.encoder.get_ref() {
                let _ = file.set_modified(now);
            }
        }
        for file in &state.closed {
            if let Data::File(path) = &file.data {
                let _ = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_modified(now));
            }
        }
    }

    #[cfg(test)]
    /// Compressed bytes held: closed files plus what current files have written so far.
    pub(crate) fn total_size(&self) -> u64 {
        total_size(&self.lock())
    }

    /// Files, bytes and items held per queue.
    pub(crate) fn contents(&self) -> SpoolContents {
        let state = self.lock();
        let mut contents = SpoolContents::default();
        for file in &state.closed {
            let i = file.queue.index();
            contents.files[i] += 1;
            contents.bytes[i] += file.size;
            contents.items[i] += file.items;
        }
        for (i, current) in state.current.iter().enumerate() {
            if let Some(current) = current {
                contents.files[i] += 1;
                contents.bytes[i] += current.encoder.get_ref().written();
                contents.items[i] += current.items;
            }
        }
        contents
    }

    /// Deletes everything (after the final drain), counting what was held as lost at
    /// shutdown.
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        for queue in Queue::ALL {
            if let Some(items) = state.current[queue.index()].as_ref().map(|c| c.items) {
                state.lose(queue, items, DropReason::Shutdown);
            }
            self.discard_current_locked(&mut state, queue);
        }
        for file in std::mem::take(&mut state.closed) {
            state.lose(file.queue, file.items, DropReason::Shutdown);
            delete_data(file.data);
        }
    }

    #[cfg(test)]
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().warnings)
    }

    #[cfg(test)]
    fn set_fail_writes(&self, fail: bool) {
        self.lock().fail_writes = fail;
    }

    #[cfg(test)]
    pub(crate) fn with_max_size(dir: Option<PathBuf>, max_size: u64) -> Self {
        Self::with(dir, max_size)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Leave nothing behind that no process will send (go deletes what is left at
        // shutdown; files of a crashed process go to the next orphan cleanup).
        self.clear();
    }
}

fn total_size(state: &State) -> u64 {
    let closed: u64 = state.closed.iter().map(|f| f.size).sum();
    let current: u64 = state
        .current
        .iter()
        .flatten()
        .map(|c| c.encoder.get_ref().written())
        .sum();
    closed + current
}

#[cfg(test)]
pub(crate) mod tests;
