//! Where spool files live: gzip files in the spool directory, or memory when it is not writable; and the cleanup of files left by dead processes.

use super::*;

/// Where the compressed bytes of a current file go, counting them.
pub(super) enum Sink {
    File {
        file: File,
        path: PathBuf,
        written: u64,
    },
    Memory(Vec<u8>),
}

impl Sink {
    pub(super) fn written(&self) -> u64 {
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

/// One gzip member, written through a deflate state kept from file to file: a new
/// `GzEncoder` allocates and clears zlib's few hundred KB of state, and every export of every
/// signal opens a file (every 15 s by default). The bytes are those `GzEncoder` writes at
/// `Compression::fast()`.
pub(super) struct Gzip {
    deflate: DeflateEncoder<Sink>,
    crc: flate2::Crc,
    /// Whether the header is written (on the first write, as `GzEncoder` does, so that a
    /// write error takes the path every write error takes).
    header: bool,
}

/// `GzEncoder`'s header at `Compression::fast()`: deflate, no flags, no time, "fastest" (4),
/// unknown OS (255).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

impl Gzip {
    /// Starts a member in `sink`, with `spare` (the cleared state of a closed member, holding
    /// an empty placeholder) when there is one. No I/O.
    pub(super) fn new(sink: Sink, spare: Option<DeflateEncoder<Sink>>) -> Self {
        let deflate = match spare {
            Some(mut deflate) => {
                *deflate.get_mut() = sink;
                deflate
            }
            None => DeflateEncoder::new(sink, flate2::Compression::fast()),
        };
        Self {
            deflate,
            crc: flate2::Crc::new(),
            header: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header {
            self.deflate.get_mut().write_all(&GZIP_HEADER)?;
            self.header = true;
        }
        Ok(())
    }

    pub(super) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_header()?;
        self.deflate.write_all(data)?;
        self.crc.update(data);
        Ok(())
    }

    pub(super) fn get_ref(&self) -> &Sink {
        self.deflate.get_ref()
    }

    /// Ends the member (the deflate stream, then the CRC-32 and length of what was written):
    /// its sink, and the deflate state, cleared, for the next member unless finishing failed.
    pub(super) fn finish(mut self) -> (io::Result<Sink>, Option<DeflateEncoder<Sink>>) {
        if let Err(err) = self.write_header() {
            return (Err(err), None);
        }
        // Finishes the stream into the sink, clears the state and swaps a placeholder in.
        let mut sink = match self.deflate.reset(Sink::Memory(Vec::new())) {
            Ok(sink) => sink,
            Err(err) => return (Err(err), None),
        };
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        let finished = sink.write_all(&trailer).map(|()| sink);
        (finished, Some(self.deflate))
    }
}

/// The open file of a queue: one gzip member being written.
pub(super) struct Current {
    pub(super) id: FileId,
    pub(super) encoder: Gzip,
    pub(super) uncompressed: usize,
    pub(super) items: u64,
}

impl Current {
    pub(super) fn path(&self) -> Option<&Path> {
        match self.encoder.get_ref() {
            Sink::File { path, .. } => Some(path),
            Sink::Memory(_) => None,
        }
    }
}

pub(super) enum Data {
    File(PathBuf),
    Memory(Bytes),
}

/// A closed file: a complete gzip member, sent verbatim as one request body.
pub(super) struct Closed {
    pub(super) id: FileId,
    pub(super) queue: Queue,
    pub(super) size: u64,
    pub(super) items: u64,
    pub(super) first_attempt: Option<Instant>,
    pub(super) data: Data,
}

impl Closed {
    pub(super) fn pending(&self) -> PendingFile {
        PendingFile {
            id: self.id,
            queue: self.queue,
            size: self.size,
            items: self.items,
            first_attempt: self.first_attempt,
        }
    }
}

pub(super) fn delete_data(data: Data) {
    if let Data::File(path) = data {
        let _ = std::fs::remove_file(path);
    }
}

/// Creates `apitally-<uuid>.gz`, readable and writable by the owner only.
pub(super) fn create_spool_file(dir: &Path) -> io::Result<(File, PathBuf)> {
    let path = dir.join(format!("apitally-{}.gz", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok((options.open(&path)?, path))
}

/// Creates and deletes a file in `dir`.
pub(super) fn is_writable(dir: &Path) -> bool {
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
