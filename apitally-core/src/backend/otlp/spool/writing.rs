//! Writing into the spool: appending a message to its queue's current file, closing files
//! (rotation), and evicting what is over the size limit or too old.

use super::*;

impl Spool {
    /// Appends one encoded message carrying `items` items to the queue's current file, closing
    /// it first if the message would take it past 4,000,000 uncompressed bytes, then evicts.
    ///
    /// A write error drops the queue's current file (its messages are lost, and counted) and
    /// warns once until a write succeeds again; the spool does not switch to memory.
    pub(crate) fn append(&self, queue: Queue, payload: &[u8], items: u64) {
        let mut state = self.lock();
        if payload.len() > MAX_FILE_UNCOMPRESSED {
            state.lose(queue, items, DropReason::Oversize);
            if !state.oversize_warned {
                state.oversize_warned = true;
                state.warn(format!(
                    "Apitally dropped {} of {} bytes, more than a request may carry",
                    queue.signal().as_str(),
                    payload.len()
                ));
            }
            return;
        }
        let slot = queue.index();
        if state.current[slot]
            .as_ref()
            .is_some_and(|c| c.uncompressed + payload.len() > MAX_FILE_UNCOMPRESSED)
        {
            self.rotate_locked(&mut state, queue);
        }
        match self.write_locked(&mut state, queue, payload, items) {
            Ok(()) => state.write_error_warned = false,
            Err(err) => {
                if !state.write_error_warned {
                    state.write_error_warned = true;
                    state.warn(format!(
                        "Error writing telemetry to disk, dropping buffered {}: {err}",
                        queue.signal().as_str()
                    ));
                }
                let written = state.current[slot].as_ref().map_or(0, |c| c.items);
                state.lose(queue, written + items, DropReason::Io);
                self.discard_current_locked(&mut state, queue);
            }
        }
        self.evict_locked(&mut state);
    }

    pub(super) fn write_locked(
        &self,
        state: &mut Locked<'_>,
        queue: Queue,
        payload: &[u8],
        items: u64,
    ) -> io::Result<()> {
        state.injected_failure()?;
        let slot = queue.index();
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
            let encoder = Gzip::new(sink, state.spare_deflate.take());
            let id = FileId(state.next_id);
            state.next_id += 1;
            state.current[slot] = Some(Current {
                id,
                encoder,
                uncompressed: 0,
                items: 0,
            });
        }
        let Some(current) = state.current[slot].as_mut() else {
            return Ok(());
        };
        current.encoder.write_all(payload)?;
        current.uncompressed += payload.len();
        current.items += items;
        Ok(())
    }

    /// Closes the queue's current file; a failure drops it (warning once, counted).
    pub(super) fn rotate_locked(&self, state: &mut Locked<'_>, queue: Queue) {
        let Some(current) = state.current[queue.index()].take() else {
            return;
        };
        let (id, items) = (current.id, current.items);
        let path = current.path().map(Path::to_path_buf);
        let finished = state.injected_failure().and_then(|()| {
            let (finished, spare) = current.encoder.finish();
            state.spare_deflate = spare;
            finished
        });
        let sink = match finished {
            Ok(sink) => sink,
            Err(err) => {
                if !state.write_error_warned {
                    state.write_error_warned = true;
                    state.warn(format!(
                        "Error writing telemetry to disk, dropping buffered {}: {err}",
                        queue.signal().as_str()
                    ));
                }
                state.lose(queue, items, DropReason::Io);
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
            queue,
            size,
            items,
            first_attempt: None,
            data,
        });
        state.closed_since_rotation[queue.index()] += 1;
    }

    pub(super) fn discard_current_locked(&self, state: &mut Locked<'_>, queue: Queue) {
        if let Some(current) = state.current[queue.index()].take() {
            if let Some(path) = current.path().map(Path::to_path_buf) {
                drop(current);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    pub(super) fn evict_locked(&self, state: &mut Locked<'_>) {
        let now = Instant::now();
        let mut i = 0;
        while i < state.closed.len() {
            if state.closed[i].pending().is_expired(now) {
                if let Some(file) = state.closed.remove(i) {
                    state.lose(file.queue, file.items, DropReason::Expired);
                    delete_data(file.data);
                }
            } else {
                i += 1;
            }
        }
        while total_size(state) > self.max_size {
            // The oldest file of the first queue, in eviction order, that has a closed file.
            let victim = Queue::ALL
                .iter()
                .rev()
                .find_map(|q| state.closed.iter().position(|f| f.queue == *q));
            let Some(file) = victim.and_then(|i| state.closed.remove(i)) else {
                break;
            };
            state.lose(file.queue, file.items, DropReason::OverCap);
            delete_data(file.data);
        }
    }
}
