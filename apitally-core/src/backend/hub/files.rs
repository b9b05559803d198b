//! For the request-log files of hub v2, see [`LogFiles`] (protocol.md §9.8).

use std::{
    collections::VecDeque,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use flate2::{write::GzEncoder, Compression};
use uuid::Uuid;

use crate::{
    backend::LogSink,
    diag::debug,
    request_log::{mask, to_line, RequestLogItem},
    util::lock,
};

/// The most closed files kept; older ones are deleted.
pub(crate) const MAX_FILES: usize = 50;
/// The most files uploaded per sync cycle.
pub(crate) const MAX_FILES_PER_CYCLE: usize = 10;
/// Uncompressed bytes between two flushes of the gzip stream (which make the compressed size,
/// the rotation criterion, visible in the file). Flushing per batch would cost a compressor
/// round per batch.
const FLUSH_EVERY: u64 = 256 * 1024;

/// A closed log file waiting for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFile {
    pub(crate) uuid: Uuid,
    pub(crate) path: PathBuf,
    /// The logged requests (lines) in it.
    pub(crate) lines: usize,
}

/// A closed file taken out of the queue for its upload, so that the limit on closed files
/// ([`MAX_FILES`]) cannot delete it while it is read and sent (the writer deletes the oldest
/// files *in the queue*). Dropped, the file goes back to the front of the queue: its upload
/// failed or was cut short. [`remove`](Self::remove) deletes it once delivered,
/// [`lose`](Self::lose) when it never will be.
#[derive(Debug)]
pub(crate) struct TakenFile<'a> {
    files: &'a LogFiles,
    file: Option<LogFile>,
}

impl TakenFile<'_> {
    pub(crate) fn file(&self) -> &LogFile {
        // Only `remove`, `lose` and `drop` take it, and all consume the guard.
        self.file
            .as_ref()
            .expect("a taken file is held until removed or dropped")
    }

    /// Deletes the file once uploaded.
    pub(crate) fn remove(mut self) {
        if let Some(file) = self.file.take() {
            remove(&file.path);
        }
    }

    /// Deletes the file, which will never be delivered (refused for good, unreadable): its
    /// requests count as dropped in the totals.
    pub(crate) fn lose(mut self) {
        if let Some(file) = self.file.take() {
            remove(&file.path);
            self.files
                .lost
                .fetch_add(file.lines as u64, Ordering::Relaxed);
        }
    }
}

impl Drop for TakenFile<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            lock(&self.files.state).closed.push_front(file);
        }
    }
}

/// Counts bytes written through it: the compressed size of the current file.
struct Counting {
    file: File,
    written: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

struct Current {
    file: LogFile,
    encoder: GzEncoder<Counting>,
    lines: usize,
    unflushed: u64,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    closed: VecDeque<LogFile>,
    /// Files (and their lines) deleted over [`MAX_FILES`] since the last report.
    deleted_files: u64,
    deleted_lines: u64,
    /// The serialised lines of a batch, reused.
    lines: Vec<u8>,
}

/// The request-log files of hub v2: the writer thread appends NDJSON lines to the current gzip
/// file, closed once it holds [`max_file_size`](crate::RequestLoggingConfig) compressed bytes
/// (and at each upload); at most [`MAX_FILES`] closed files wait for upload, the oldest beyond
/// that are deleted and counted. The sync loop takes the oldest for upload.
pub(crate) struct LogFiles {
    dir: PathBuf,
    max_file_size: u64,
    state: Mutex<State>,
    /// Requests written and then deleted undelivered.
    lost: AtomicU64,
}

impl std::fmt::Debug for LogFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFiles")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LogFiles {
    /// Files in `dir`, created and checked writable.
    pub(crate) fn new(dir: PathBuf, max_file_size: u64) -> Result<Self, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let probe = dir.join(format!("probe_{}", Uuid::new_v4().simple()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
        Ok(Self {
            dir,
            max_file_size,
            state: Mutex::default(),
            lost: AtomicU64::new(0),
        })
    }

    fn write_lines(&self, state: &mut State, count: usize) -> u64 {
        if count == 0 {
            return 0;
        }
        let lines = std::mem::take(&mut state.lines);
        let result = self.append(state, &lines, count);
        state.lines = lines;
        if let Err(err) = result {
            log::warn!(target: "apitally", "apitally: cannot write request logs: {err}");
            return 0;
        }
        if state
            .current
            .as_ref()
            .is_some_and(|c| c.encoder.get_ref().written >= self.max_file_size)
        {
            self.rotate_locked(state);
        }
        count as u64
    }

    fn append(&self, state: &mut State, lines: &[u8], count: usize) -> std::io::Result<()> {
        if state.current.is_none() {
            let uuid = Uuid::new_v4();
            let path = self.dir.join(format!("request_logs_{uuid}.gz"));
            let file = File::create(&path)?;
            state.current = Some(Current {
                file: LogFile {
                    uuid,
                    path,
                    lines: 0,
                },
                encoder: GzEncoder::new(Counting { file, written: 0 }, Compression::fast()),
                lines: 0,
                unflushed: 0,
            });
        }
        if let Some(current) = state.current.as_mut() {
            current.encoder.write_all(lines)?;
            current.lines += count;
            current.unflushed += lines.len() as u64;
            // Push the compressed bytes to the file now and then, so that its size (the
            // rotation criterion) is known within FLUSH_EVERY uncompressed bytes; a small
            // maximum file size (tests) flushes every batch.
            if current.unflushed >= FLUSH_EVERY.min(self.max_file_size) {
                current.encoder.flush()?;
                current.unflushed = 0;
            }
        }
        Ok(())
    }

    /// Closes the current file (writing the gzip trailer) and queues it for upload.
    pub(crate) fn rotate(&self) {
        self.rotate_locked(&mut lock(&self.state));
    }

    fn rotate_locked(&self, state: &mut State) {
        if let Some(current) = state.current.take() {
            match current.encoder.finish() {
                Ok(_) if current.lines > 0 => state.closed.push_back(LogFile {
                    lines: current.lines,
                    ..current.file
                }),
                Ok(_) => remove(&current.file.path),
                Err(err) => {
                    log::warn!(target: "apitally", "apitally: cannot close a request log file: {err}");
                    remove(&current.file.path);
                    self.lost.fetch_add(current.lines as u64, Ordering::Relaxed);
                }
            }
        }
        // Counted, and reported once per sync cycle (a busy app rotates many times a second).
        // A file taken for upload is not in the queue, so never deleted here.
        while state.closed.len() > MAX_FILES {
            if let Some(old) = state.closed.pop_front() {
                remove(&old.path);
                state.deleted_files += 1;
                state.deleted_lines += old.lines as u64;
                self.lost.fetch_add(old.lines as u64, Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest closed file out of the queue, to upload it (see [`TakenFile`]).
    pub(crate) fn take_file(&self) -> Option<TakenFile<'_>> {
        let file = lock(&self.state).closed.pop_front()?;
        Some(TakenFile {
            files: self,
            file: Some(file),
        })
    }

    /// Whether closed files wait for upload.
    pub(crate) fn has_closed_files(&self) -> bool {
        !lock(&self.state).closed.is_empty()
    }

    /// Files (and their requests) deleted over [`MAX_FILES`] since the last call.
    pub(crate) fn take_deleted(&self) -> (u64, u64) {
        let mut state = lock(&self.state);
        (
            std::mem::take(&mut state.deleted_files),
            std::mem::take(&mut state.deleted_lines),
        )
    }

    #[cfg(test)]
    pub(crate) fn closed_len(&self) -> usize {
        lock(&self.state).closed.len()
    }

    #[cfg(test)]
    pub(crate) fn current_lines(&self) -> usize {
        lock(&self.state).current.as_ref().map_or(0, |c| c.lines)
    }
}

/// A request logger writing into files in `dir` (no writer thread): for tests and benchmarks.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn logger(
    config: crate::RequestLoggingConfig,
    dir: PathBuf,
) -> Result<(crate::request_log::RequestLogger, std::sync::Arc<LogFiles>), String> {
    let files = std::sync::Arc::new(LogFiles::new(dir, config.max_file_size)?);
    let logger = crate::request_log::RequestLogger::new(config, files.clone())?;
    Ok((logger, files))
}

impl LogSink for LogFiles {
    fn write(&self, items: &[&RequestLogItem]) -> u64 {
        let mut state = lock(&self.state);
        let mut written = 0;
        let mut count = 0;
        state.lines.clear();
        for item in items {
            let mut lines = std::mem::take(&mut state.lines);
            match to_line(item, &mut lines) {
                Ok(()) => count += 1,
                Err(err) => {
                    log::warn!(target: "apitally", "apitally: cannot serialise a request log item: {err}")
                }
            }
            state.lines = lines;
            // Written in chunks of at most a file's size, so that a large batch is spread over
            // files of the right size.
            if state.lines.len() as u64 >= self.max_file_size {
                written += self.write_lines(&mut state, count);
                state.lines.clear();
                count = 0;
            }
        }
        written += self.write_lines(&mut state, count);
        state.lines.clear();
        // A burst's larger buffer is not kept.
        state.lines.shrink_to(2 << 20);
        written
    }

    fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn masked(&self) -> &'static str {
        mask::MASKED
    }

    fn is_empty(&self) -> bool {
        let state = lock(&self.state);
        state.current.is_none() && state.closed.is_empty()
    }

    fn clear(&self) -> (usize, usize) {
        let mut state = lock(&self.state);
        let (mut files, mut lines) = (0, 0);
        if let Some(current) = state.current.take() {
            drop(current.encoder.finish());
            remove(&current.file.path);
            files += 1;
            lines += current.lines;
        }
        for file in state.closed.drain(..) {
            remove(&file.path);
            files += 1;
            lines += file.lines;
        }
        self.lost.fetch_add(lines as u64, Ordering::Relaxed);
        (files, lines)
    }
}

impl Drop for LogFiles {
    fn drop(&mut self) {
        // Files that were never uploaded are not left behind in the temp dir.
        let _ = self.clear();
    }
}

fn remove(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        if err.kind() != std::io::ErrorKind::NotFound {
            debug!("cannot delete {}: {err}", path.display());
        }
    }
}

#[cfg(test)]
mod tests;
