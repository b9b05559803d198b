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
use flate2::{write::GzEncoder, Compression};
use tokio::time::Instant;

use crate::metrics::lock;

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

/// The three signals, in the order of the spool's per-signal files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub(crate) const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// `traces`, `logs` or `metrics`: the path segment of `/v1/{signal}` and the word in log
    /// lines.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A spool file, unique within the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(u64);

/// A closed file waiting to be sent, as of [`Spool::pending`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingFile {
    pub(crate) id: FileId,
    pub(crate) signal: Signal,
    /// Compressed bytes.
    pub(crate) size: u64,
    /// When its first send started (monotonic).
    pub(crate) first_attempt: Option<Instant>,
}

impl PendingFile {
    /// Whether its first attempt was more than 59 minutes before `now`.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.first_attempt
            .is_some_and(|t| now.saturating_duration_since(t) > MAX_RETRY_AFTER_FIRST_ATTEMPT)
    }
}

/// Why a pending file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// It is no longer in the spool (evicted since [`Spool::pending`]).
    #[error("the file is no longer spooled")]
    Gone,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What the spool holds, for a shutdown report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpoolContents {
    /// Closed and current files per signal (in [`Signal::ALL`] order).
    pub(crate) files: [usize; 3],
    /// Compressed bytes per signal.
    pub(crate) bytes: [u64; 3],
}

/// Where the compressed bytes of a current file go, counting them.
enum Sink {
    File {
        file: File,
        path: PathBuf,
        written: u64,
    },
    Memory(Vec<u8>),
}

impl Sink {
    fn written(&self) -> u64 {
        match self {
            Sink::File { written, .. } => *written,
            Sink::Memory(buf) => buf.len() as u64,
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File { file, written, .. } => {
                let n = file.write(buf)?;
                *written += n as u64;
                Ok(n)
            }
            Sink::Memory(mem) => mem.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File { file, .. } => file.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// The open file of a signal: one gzip member being written.
struct Current {
    id: FileId,
    encoder: GzEncoder<Sink>,
    uncompressed: usize,
}

impl Current {
    fn path(&self) -> Option<&Path> {
        match self.encoder.get_ref() {
            Sink::File { path, .. } => Some(path),
            Sink::Memory(_) => None,
        }
    }
}

enum Data {
    File(PathBuf),
    Memory(Bytes),
}

/// A closed file: a complete gzip member, sent verbatim as one request body.
struct Closed {
    id: FileId,
    signal: Signal,
    size: u64,
    first_attempt: Option<Instant>,
    data: Data,
}

impl Closed {
    fn pending(&self) -> PendingFile {
        PendingFile {
            id: self.id,
            signal: self.signal,
            size: self.size,
            first_attempt: self.first_attempt,
        }
    }
}

struct State {
    current: [Option<Current>; 3],
    /// Oldest first.
    closed: VecDeque<Closed>,
    closed_since_rotation: usize,
    write_error_warned: bool,
    oversize_warned: bool,
    next_id: u64,
    unlogged: Vec<String>,
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

/// Per-signal gzip spool between the encoders and the export worker.
///
/// Each signal has at most one current file: a single gzip member to which encoded
/// `Export*ServiceRequest` messages are appended (concatenated messages decode as one). A file is
/// closed before an append would pass 4,000,000 uncompressed bytes, when the worker rotates, or
/// at shutdown; closed files wait, oldest first, until the worker deletes them. Files are
/// `apitally-<uuid>.gz` with mode 0600 in the temp dir; if it is not writable (probed at
/// construction), everything stays in memory. Total size is capped (compressed bytes: closed
/// files plus what current files have written so far): 50,000,000 on disk, 10,000,000 in
/// memory; eviction after every append and rotation drops files whose first attempt is over 59
/// minutes old, then the oldest closed non-metrics file (metrics carry the liveness signal),
/// else the oldest closed file.
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
                current: [None, None, None],
                closed: VecDeque::new(),
                closed_since_rotation: 0,
                write_error_warned: false,
                oversize_warned: false,
                next_id: 0,
                unlogged: Vec::new(),
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

    /// Appends one encoded message to the signal's current file, closing it first if the
    /// message would take it past 4,000,000 uncompressed bytes, then evicts.
    ///
    /// A write error drops the signal's current file (its messages are lost) and warns once
    /// until a write succeeds again; the spool does not switch to memory.
    pub(crate) fn append(&self, signal: Signal, payload: &[u8]) {
        let mut state = self.lock();
        if payload.len() > MAX_FILE_UNCOMPRESSED {
            if !state.oversize_warned {
                state.oversize_warned = true;
                state.warn(format!(
                    "Apitally dropped {} of {} bytes, more than a request may carry",
                    signal.as_str(),
                    payload.len()
                ));
            }
            return;
        }
        let slot = signal.index();
        if state.current[slot]
            .as_ref()
            .is_some_and(|c| c.uncompressed + payload.len() > MAX_FILE_UNCOMPRESSED)
        {
            self.rotate_locked(&mut state, signal);
        }
        match self.write_locked(&mut state, signal, payload) {
            Ok(()) => state.write_error_warned = false,
            Err(err) => {
                if !state.write_error_warned {
                    state.write_error_warned = true;
                    state.warn(format!(
                        "Error writing telemetry to disk, dropping buffered {}: {err}",
                        signal.as_str()
                    ));
                }
                self.discard_current_locked(&mut state, signal);
            }
        }
        self.evict_locked(&mut state);
    }

    fn write_locked(
        &self,
        state: &mut Locked<'_>,
        signal: Signal,
        payload: &[u8],
    ) -> io::Result<()> {
        state.injected_failure()?;
        let slot = signal.index();
        if state.current[slot].is_none() {
            let sink = match &self.dir {
                Some(dir) => {
                    let (file, path) = create_spool_file(dir)?;
                    Sink::File {
                        file,
                        path,
                        written: 0,
                    }
                }
                None => Sink::Memory(Vec::new()),
            };
            let id = FileId(state.next_id);
            state.next_id += 1;
            state.current[slot] = Some(Current {
                id,
                encoder: GzEncoder::new(sink, Compression::fast()),
                uncompressed: 0,
            });
        }
        let Some(current) = state.current[slot].as_mut() else {
            return Ok(());
        };
        current.encoder.write_all(payload)?;
        current.uncompressed += payload.len();
        Ok(())
    }

    /// Closes the signal's current file; a failure drops it (warning once).
    fn rotate_locked(&self, state: &mut Locked<'_>, signal: Signal) {
        let Some(current) = state.current[signal.index()].take() else {
            return;
        };
        let id = current.id;
        let path = current.path().map(Path::to_path_buf);
        let finished = state
            .injected_failure()
            .and_then(|()| current.encoder.finish());
        let sink = match finished {
            Ok(sink) => sink,
            Err(err) => {
                if !state.write_error_warned {
                    state.write_error_warned = true;
                    state.warn(format!(
                        "Error writing telemetry to disk, dropping buffered {}: {err}",
                        signal.as_str()
                    ));
                }
                if let Some(path) = path {
                    let _ = std::fs::remove_file(path);
                }
                return;
            }
        };
        state.write_error_warned = false;
        let size = sink.written();
        let data = match sink {
            Sink::File { path, .. } => Data::File(path),
            Sink::Memory(buf) => Data::Memory(Bytes::from(buf)),
        };
        state.closed.push_back(Closed {
            id,
            signal,
            size,
            first_attempt: None,
            data,
        });
        state.closed_since_rotation += 1;
    }

    fn discard_current_locked(&self, state: &mut Locked<'_>, signal: Signal) {
        if let Some(current) = state.current[signal.index()].take() {
            if let Some(path) = current.path().map(Path::to_path_buf) {
                drop(current);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn evict_locked(&self, state: &mut Locked<'_>) {
        let now = Instant::now();
        let mut i = 0;
        while i < state.closed.len() {
            if state.closed[i].pending().is_expired(now) {
                if let Some(file) = state.closed.remove(i) {
                    state.warn(format!(
                        "Buffered {} could not be delivered within an hour and was dropped",
                        file.signal.as_str()
                    ));
                    delete_data(file.data);
                }
            } else {
                i += 1;
            }
        }
        while total_size(state) > self.max_size {
            let victim = state
                .closed
                .iter()
                .position(|f| f.signal != Signal::Metrics)
                .or(if state.closed.is_empty() {
                    None
                } else {
                    Some(0)
                });
            let Some(file) = victim.and_then(|i| state.closed.remove(i)) else {
                break;
            };
            state.warn(format!(
                "Buffer size limit reached, dropping oldest buffered {}",
                file.signal.as_str()
            ));
            delete_data(file.data);
        }
    }

    /// An ordinary cycle's rotation: closes each signal's current file unless a closed file of
    /// that signal is already waiting (a backlog grows the current file instead of adding one
    /// per cycle), evicts, and returns how many files were closed since the previous call,
    /// size rotations included (the cycle's extra send budget).
    pub(crate) fn rotate_for_export(&self) -> usize {
        let mut state = self.lock();
        for signal in Signal::ALL {
            let waiting = state.closed.iter().any(|f| f.signal == signal);
            if state.current[signal.index()].is_some() && !waiting {
                self.rotate_locked(&mut state, signal);
            }
        }
        self.evict_locked(&mut state);
        std::mem::take(&mut state.closed_since_rotation)
    }

    /// The final cycle's rotation: closes every current file.
    pub(crate) fn close_current_files(&self) {
        let mut state = self.lock();
        for signal in Signal::ALL {
            self.rotate_locked(&mut state, signal);
        }
        self.evict_locked(&mut state);
    }

    /// The closed files, oldest first.
    pub(crate) fn pending(&self) -> Vec<PendingFile> {
        self.lock().closed.iter().map(Closed::pending).collect()
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

    /// Deletes a closed file (sent, rejected, unreadable or expired).
    pub(crate) fn delete(&self, id: FileId) {
        let mut state = self.lock();
        if let Some(i) = state.closed.iter().position(|f| f.id == id) {
            if let Some(file) = state.closed.remove(i) {
                delete_data(file.data);
            }
        }
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

    /// Files and bytes held per signal.
    pub(crate) fn contents(&self) -> SpoolContents {
        let state = self.lock();
        let mut contents = SpoolContents::default();
        for file in &state.closed {
            contents.files[file.signal.index()] += 1;
            contents.bytes[file.signal.index()] += file.size;
        }
        for (i, current) in state.current.iter().enumerate() {
            if let Some(current) = current {
                contents.files[i] += 1;
                contents.bytes[i] += current.encoder.get_ref().written();
            }
        }
        contents
    }

    /// Deletes everything (after the final drain).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        for signal in Signal::ALL {
            self.discard_current_locked(&mut state, signal);
        }
        for file in std::mem::take(&mut state.closed) {
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

fn delete_data(data: Data) {
    if let Data::File(path) = data {
        let _ = std::fs::remove_file(path);
    }
}

/// Creates `apitally-<uuid>.gz`, readable and writable by the owner only.
fn create_spool_file(dir: &Path) -> io::Result<(File, PathBuf)> {
    let path = dir.join(format!("apitally-{}.gz", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok((options.open(&path)?, path))
}

/// Creates and deletes a file in `dir`.
fn is_writable(dir: &Path) -> bool {
    let path = dir.join(format!("apitally-{}.probe", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(file) => {
            drop(file);
            std::fs::remove_file(&path).is_ok()
        }
        Err(_) => false,
    }
}

/// Deletes the regular files `apitally-*.gz` in `dir` whose mtime is more than 2 hours before
/// `now`; returns how many.
pub(crate) fn cleanup_orphans(dir: &Path, now: SystemTime) -> usize {
    let Some(cutoff) = now.checked_sub(ORPHAN_AGE) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut deleted = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with("apitally-") && name.ends_with(".gz")) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.is_file()
            && meta.modified().is_ok_and(|m| m < cutoff)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            deleted += 1;
        }
    }
    deleted
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    /// A fresh directory per test.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "apitally-spool-test-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Incompressible bytes.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..len).map(|_| rng.u8(..)).collect()
    }

    /// Decompresses exactly one gzip member and checks nothing follows it.
    fn single_member(bytes: &[u8]) -> Vec<u8> {
        let mut decoder = GzDecoder::new(bytes);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "{} bytes after the first gzip member",
            rest.len()
        );
        out
    }

    fn spool_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn constants_of_protocol_v1() {
        assert_eq!(MAX_FILE_UNCOMPRESSED, 4_000_000);
        assert_eq!(MAX_SIZE_DISK, 50_000_000);
        assert_eq!(MAX_SIZE_MEMORY, 10_000_000);
        assert_eq!(MAX_RETRY_AFTER_FIRST_ATTEMPT, Duration::from_secs(3_540));
        assert_eq!(ORPHAN_AGE, Duration::from_secs(7_200));
        let dir = temp_dir("constants");
        assert_eq!(Spool::new_in(dir.clone()).max_size, MAX_SIZE_DISK);
        assert_eq!(Spool::in_memory().max_size, MAX_SIZE_MEMORY);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_gzip_member_of_concatenated_messages_per_file() {
        let dir = temp_dir("member");
        let spool = Spool::new_in(dir.clone());
        spool.append(Signal::Traces, b"first");
        spool.append(Signal::Traces, b"second");
        spool.append(Signal::Logs, b"log");
        assert!(spool.pending().is_empty());
        assert_eq!(spool.rotate_for_export(), 2);
        let pending = spool.pending();
        assert_eq!(
            pending.iter().map(|p| p.signal).collect::<Vec<_>>(),
            [Signal::Traces, Signal::Logs]
        );
        let body = spool.read(pending[0].id).unwrap();
        assert_eq!(pending[0].size, body.len() as u64);
        assert_eq!(single_member(&body), b"firstsecond");
        assert_eq!(single_member(&spool.read(pending[1].id).unwrap()), b"log");
        // Files apitally-<uuid>.gz, owner-only.
        let files = spool_files(&dir);
        assert_eq!(files.len(), 2);
        for file in &files {
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("apitally-") && name.ends_with(".gz"),
                "{name}"
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
        spool.delete(pending[0].id);
        spool.delete(pending[1].id);
        assert!(spool_files(&dir).is_empty());
        assert!(matches!(spool.read(pending[0].id), Err(ReadError::Gone)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_is_closed_before_an_append_would_pass_four_million_bytes() {
        let spool = Spool::in_memory();
        let half = vec![b'a'; MAX_FILE_UNCOMPRESSED / 2];
        spool.append(Signal::Metrics, &half);
        spool.append(Signal::Metrics, &half);
        // Exactly 4,000,000: still one file.
        assert!(spool.pending().is_empty());
        spool.append(Signal::Metrics, b"x");
        let pending = spool.pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            single_member(&spool.read(pending[0].id).unwrap()).len(),
            MAX_FILE_UNCOMPRESSED
        );
        // The size rotation counts towards the cycle's budget; the backlog keeps the current
        // file open.
        assert_eq!(spool.rotate_for_export(), 1);
        assert_eq!(spool.pending().len(), 1);
        assert_eq!(spool.contents().files[Signal::Metrics.index()], 2);
        // A single message above the cap is dropped, with one warning.
        spool.take_warnings();
        spool.append(Signal::Traces, &vec![0; MAX_FILE_UNCOMPRESSED + 1]);
        spool.append(Signal::Traces, &vec![0; MAX_FILE_UNCOMPRESSED + 1]);
        assert_eq!(spool.contents().files[Signal::Traces.index()], 0);
        assert_eq!(spool.take_warnings().len(), 1);
    }

    #[test]
    fn ordinary_rotation_closes_only_signals_without_a_waiting_file() {
        let spool = Spool::in_memory();
        spool.append(Signal::Traces, b"t1");
        spool.append(Signal::Logs, b"l1");
        assert_eq!(spool.rotate_for_export(), 2);
        spool.append(Signal::Traces, b"t2");
        spool.append(Signal::Metrics, b"m1");
        // Traces has a file waiting: its current file grows instead.
        assert_eq!(spool.rotate_for_export(), 1);
        let signals: Vec<_> = spool.pending().iter().map(|p| p.signal).collect();
        assert_eq!(signals, [Signal::Traces, Signal::Logs, Signal::Metrics]);
        spool.append(Signal::Traces, b"t3");
        assert_eq!(spool.rotate_for_export(), 0);
        // The final rotation closes everything.
        spool.close_current_files();
        let pending = spool.pending();
        assert_eq!(pending.len(), 4);
        assert_eq!(single_member(&spool.read(pending[3].id).unwrap()), b"t2t3");
    }

    #[tokio::test(start_paused = true)]
    async fn first_attempt_is_recorded_once_and_expires_after_59_minutes() {
        let spool = Spool::in_memory();
        spool.append(Signal::Logs, b"l");
        spool.append(Signal::Metrics, b"m");
        spool.rotate_for_export();
        let [logs, metrics] = spool.pending()[..] else {
            panic!()
        };
        assert_eq!(logs.first_attempt, None);
        let start = Instant::now();
        spool.mark_attempt(logs.id);
        tokio::time::advance(Duration::from_secs(60)).await;
        spool.mark_attempt(logs.id);
        assert_eq!(spool.pending()[0].first_attempt, Some(start));
        // Never attempted files do not expire; attempted ones after more than 59 minutes.
        tokio::time::advance(MAX_RETRY_AFTER_FIRST_ATTEMPT - Duration::from_secs(60)).await;
        assert!(!spool.pending()[0].is_expired(Instant::now()));
        spool.rotate_for_export();
        assert_eq!(spool.pending().len(), 2);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(spool.pending()[0].is_expired(Instant::now()));
        assert!(!spool.pending()[1].is_expired(Instant::now()));
        spool.take_warnings();
        // Eviction (here after an append) drops the expired file first.
        spool.append(Signal::Traces, b"t");
        assert_eq!(spool.pending(), vec![metrics]);
        assert_eq!(
            spool.take_warnings(),
            ["Buffered logs could not be delivered within an hour and was dropped"]
        );
    }

    #[test]
    fn over_the_cap_the_oldest_non_metrics_file_goes_first() {
        let spool = Spool::with_max_size(None, 3_000);
        for (signal, seed) in [(Signal::Metrics, 1), (Signal::Traces, 2), (Signal::Logs, 3)] {
            spool.append(signal, &noise(900, seed));
            spool.close_current_files();
        }
        assert_eq!(spool.pending().len(), 3);
        assert!(spool.total_size() < 3_000);
        spool.take_warnings();
        // The fourth file passes the cap: the oldest non-metrics file (traces) is dropped.
        spool.append(Signal::Metrics, &noise(900, 4));
        spool.close_current_files();
        let signals: Vec<_> = spool.pending().iter().map(|p| p.signal).collect();
        assert_eq!(signals, [Signal::Metrics, Signal::Logs, Signal::Metrics]);
        assert_eq!(
            spool.take_warnings(),
            ["Buffer size limit reached, dropping oldest buffered traces"]
        );
        spool.append(Signal::Metrics, &noise(900, 5));
        spool.close_current_files();
        let signals: Vec<_> = spool.pending().iter().map(|p| p.signal).collect();
        assert_eq!(signals, [Signal::Metrics, Signal::Metrics, Signal::Metrics]);
        // Only metrics left: the oldest of them goes.
        let oldest = spool.pending()[0].id;
        spool.append(Signal::Metrics, &noise(900, 6));
        spool.close_current_files();
        assert_eq!(spool.pending().len(), 3);
        assert!(spool.pending().iter().all(|p| p.id != oldest));
        assert!(spool.total_size() <= 3_000);
    }

    #[test]
    fn the_cap_counts_what_current_files_have_written() {
        let spool = Spool::with_max_size(None, 2_000);
        spool.append(Signal::Logs, &noise(900, 1));
        spool.rotate_for_export();
        // A current file flushes its compressed bytes as they come: 256 KiB of noise passes
        // the cap while open, and the closed logs file is evicted.
        spool.append(Signal::Traces, &noise(256 * 1024, 2));
        assert!(spool.total_size() > 2_000, "{}", spool.total_size());
        assert!(spool.pending().is_empty());
    }

    #[test]
    fn write_errors_drop_the_current_file_and_warn_once_until_writes_succeed() {
        let dir = temp_dir("write-errors");
        let spool = Spool::new_in(dir.clone());
        spool.append(Signal::Traces, b"kept");
        spool.rotate_for_export();
        spool.append(Signal::Traces, b"lost");
        spool.set_fail_writes(true);
        spool.append(Signal::Traces, b"fails");
        spool.append(Signal::Logs, b"fails too");
        assert_eq!(
            spool.take_warnings(),
            ["Error writing telemetry to disk, dropping buffered traces: injected write error"]
        );
        // The current traces file is gone from disk; the closed one is untouched.
        assert_eq!(spool_files(&dir).len(), 1);
        assert_eq!(spool.contents().files, [1, 0, 0]);
        spool.set_fail_writes(false);
        spool.append(Signal::Traces, b"ok again");
        spool.set_fail_writes(true);
        spool.append(Signal::Traces, b"fails again");
        assert_eq!(spool.take_warnings().len(), 1);
        // A failing close drops the file too.
        spool.set_fail_writes(false);
        spool.append(Signal::Logs, b"l");
        spool.set_fail_writes(true);
        spool.close_current_files();
        spool.set_fail_writes(false);
        assert_eq!(spool.pending().len(), 1);
        assert_eq!(spool_files(&dir).len(), 1);
        // A directory that disappeared: creating the file fails the same way.
        drop(spool);
        let spool = Spool::new_in(dir.clone());
        std::fs::remove_dir_all(&dir).unwrap();
        spool.take_warnings();
        spool.append(Signal::Metrics, b"m");
        assert_eq!(spool.take_warnings().len(), 1);
        assert_eq!(spool.contents(), SpoolContents::default());
        assert!(!spool.is_in_memory());
    }

    #[test]
    fn unwritable_dir_falls_back_to_memory_with_one_warning() {
        let file = temp_dir("not-a-dir").join("file");
        std::fs::write(&file, b"").unwrap();
        let spool = Spool::new_in(file.clone());
        assert!(spool.is_in_memory());
        assert_eq!(spool.max_size, MAX_SIZE_MEMORY);
        assert_eq!(
            spool.take_warnings(),
            ["Unable to create temporary files, buffering telemetry in memory (max 10 MB)"]
        );
        spool.append(Signal::Logs, b"in memory");
        spool.close_current_files();
        let pending = spool.pending();
        assert_eq!(
            single_member(&spool.read(pending[0].id).unwrap()),
            b"in memory"
        );
        std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    }

    #[test]
    fn orphans_older_than_two_hours_are_deleted_at_construction() {
        let dir = temp_dir("orphans");
        let now = SystemTime::now();
        let make = |name: &str, age: Duration| {
            let path = dir.join(name);
            let file = File::create(&path).unwrap();
            file.set_modified(now - age).unwrap();
            path
        };
        let old = make("apitally-old.gz", Duration::from_secs(3 * 3600));
        let young = make("apitally-young.gz", Duration::from_secs(3600));
        let other = make("other-old.gz", Duration::from_secs(3 * 3600));
        let not_gz = make("apitally-old.txt", Duration::from_secs(3 * 3600));
        std::fs::create_dir(dir.join("apitally-dir.gz")).unwrap();
        // Just past and just short of the 2 hours.
        assert_eq!(
            cleanup_orphans(&dir, now - Duration::from_secs(3 * 3600) + ORPHAN_AGE),
            0
        );
        let spool = Spool::new_in(dir.clone());
        assert!(!old.exists());
        assert!(young.exists() && other.exists() && not_gz.exists());
        assert!(dir.join("apitally-dir.gz").exists());
        assert_eq!(
            cleanup_orphans(&dir, now + Duration::from_secs(3600 + 1)),
            1
        );
        assert!(!young.exists());
        drop(spool);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn touching_refreshes_the_mtime_of_current_and_closed_files() {
        let dir = temp_dir("touch");
        let spool = Spool::new_in(dir.clone());
        spool.append(Signal::Traces, b"closed");
        spool.rotate_for_export();
        spool.append(Signal::Traces, b"current");
        let old = SystemTime::now() - Duration::from_secs(3 * 3600);
        for path in spool_files(&dir) {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        spool.touch_files();
        for path in spool_files(&dir) {
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            assert!(modified > old + Duration::from_secs(3600), "{path:?}");
        }
        // So a sibling process's cleanup leaves them.
        assert_eq!(cleanup_orphans(&dir, SystemTime::now()), 0);
        drop(spool);
        assert!(spool_files(&dir).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unreadable_files_report_io_errors() {
        let dir = temp_dir("unreadable");
        let spool = Spool::new_in(dir.clone());
        spool.append(Signal::Logs, b"l");
        spool.rotate_for_export();
        for path in spool_files(&dir) {
            std::fs::remove_file(path).unwrap();
        }
        let id = spool.pending()[0].id;
        assert!(matches!(spool.read(id), Err(ReadError::Io(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
