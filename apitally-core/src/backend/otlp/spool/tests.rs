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
    spool.append(Queue::Traces, b"first", 1);
    spool.append(Queue::Traces, b"second", 1);
    spool.append(Queue::Events, b"log", 1);
    assert!(spool.pending().is_empty());
    assert_eq!(spool.rotate_for_export(), [0, 1, 1, 0]);
    let pending = spool.pending();
    // Closed in the queues' order.
    assert_eq!(
        pending.iter().map(|p| p.queue).collect::<Vec<_>>(),
        [Queue::Events, Queue::Traces]
    );
    assert_eq!(pending[1].items, 2);
    let body = spool.read(pending[1].id).unwrap();
    assert_eq!(pending[1].size, body.len() as u64);
    assert_eq!(single_member(&body), b"firstsecond");
    assert_eq!(single_member(&spool.read(pending[0].id).unwrap()), b"log");
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
    spool.append(Queue::Metrics, &half, 1);
    spool.append(Queue::Metrics, &half, 1);
    // Exactly 4,000,000: still one file.
    assert!(spool.pending().is_empty());
    spool.append(Queue::Metrics, b"x", 1);
    let pending = spool.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        single_member(&spool.read(pending[0].id).unwrap()).len(),
        MAX_FILE_UNCOMPRESSED
    );
    // The size rotation counts towards the cycle's budget; the backlog keeps the current
    // file open.
    assert_eq!(spool.rotate_for_export(), [1, 0, 0, 0]);
    assert_eq!(spool.pending().len(), 1);
    assert_eq!(spool.contents().files[Queue::Metrics.index()], 2);
    // A single message above the cap is dropped, with one warning, and counted.
    spool.take_warnings();
    spool.append(Queue::Traces, &vec![0; MAX_FILE_UNCOMPRESSED + 1], 16);
    spool.append(Queue::Traces, &vec![0; MAX_FILE_UNCOMPRESSED + 1], 16);
    assert_eq!(spool.contents().files[Queue::Traces.index()], 0);
    assert_eq!(spool.take_warnings().len(), 1);
    assert_eq!(spool.take_losses().items, [0, 0, 32, 0]);
    assert_eq!(spool.lost_items(Queue::Traces), 32);
}

#[test]
fn ordinary_rotation_closes_only_signals_without_a_waiting_file() {
    let spool = Spool::in_memory();
    spool.append(Queue::Traces, b"t1", 1);
    spool.append(Queue::Events, b"l1", 1);
    assert_eq!(spool.rotate_for_export(), [0, 1, 1, 0]);
    spool.append(Queue::Traces, b"t2", 1);
    spool.append(Queue::Metrics, b"m1", 1);
    // Traces has a file waiting: its current file grows instead.
    assert_eq!(spool.rotate_for_export(), [1, 0, 0, 0]);
    let queues: Vec<_> = spool.pending().iter().map(|p| p.queue).collect();
    assert_eq!(queues, [Queue::Events, Queue::Traces, Queue::Metrics]);
    spool.append(Queue::Traces, b"t3", 1);
    assert_eq!(spool.rotate_for_export(), [0; 4]);
    // The final rotation closes everything.
    spool.close_current_files();
    let pending = spool.pending();
    assert_eq!(pending.len(), 4);
    assert_eq!(single_member(&spool.read(pending[3].id).unwrap()), b"t2t3");
}

#[tokio::test(start_paused = true)]
async fn first_attempt_is_recorded_once_and_expires_after_59_minutes() {
    let spool = Spool::in_memory();
    spool.append(Queue::Events, b"l", 1);
    spool.append(Queue::Metrics, b"m", 1);
    spool.rotate_for_export();
    let [metrics, logs] = spool.pending()[..] else {
        panic!()
    };
    assert_eq!(logs.first_attempt, None);
    let start = Instant::now();
    spool.mark_attempt(logs.id);
    tokio::time::advance(Duration::from_secs(60)).await;
    spool.mark_attempt(logs.id);
    assert_eq!(spool.pending()[1].first_attempt, Some(start));
    // Never attempted files do not expire; attempted ones after more than 59 minutes.
    tokio::time::advance(MAX_RETRY_AFTER_FIRST_ATTEMPT - Duration::from_secs(60)).await;
    assert!(!spool.pending()[1].is_expired(Instant::now()));
    spool.rotate_for_export();
    assert_eq!(spool.pending().len(), 2);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(spool.pending()[1].is_expired(Instant::now()));
    assert!(!spool.pending()[0].is_expired(Instant::now()));
    // Eviction (here after an append) drops the expired file first, counted.
    spool.append(Queue::Traces, b"t", 1);
    assert_eq!(spool.pending(), vec![metrics]);
    assert_eq!(
        spool.take_losses().describe(),
        "events: 1 events in 1 file(s) (not delivered within an hour)"
    );
}

#[test]
fn over_the_cap_the_samples_go_first_oldest_first_then_events_then_metrics() {
    let spool = Spool::with_max_size(None, 3_000);
    for (queue, seed) in [(Queue::Metrics, 1), (Queue::Events, 2), (Queue::Traces, 3)] {
        spool.append(queue, &noise(900, seed), 10);
        spool.close_current_files();
    }
    assert_eq!(spool.pending().len(), 3);
    assert!(spool.total_size() < 3_000);
    // The fourth file passes the cap: the traces file goes, though it is the newest.
    spool.append(Queue::Metrics, &noise(900, 4), 10);
    spool.close_current_files();
    let queues: Vec<_> = spool.pending().iter().map(|p| p.queue).collect();
    assert_eq!(queues, [Queue::Metrics, Queue::Events, Queue::Metrics]);
    assert_eq!(
        spool.take_losses().describe(),
        "traces: 10 requests in 1 file(s) (the buffer limit was reached)"
    );
    // No samples left: then events.
    spool.append(Queue::Metrics, &noise(900, 5), 10);
    spool.close_current_files();
    let queues: Vec<_> = spool.pending().iter().map(|p| p.queue).collect();
    assert_eq!(queues, [Queue::Metrics, Queue::Metrics, Queue::Metrics]);
    // Only metrics left: the oldest of them goes.
    let oldest = spool.pending()[0].id;
    spool.append(Queue::Metrics, &noise(900, 6), 1);
    spool.close_current_files();
    assert_eq!(spool.pending().len(), 3);
    assert!(spool.pending().iter().all(|p| p.id != oldest));
    assert!(spool.total_size() <= 3_000);
}

#[test]
fn the_cap_counts_what_current_files_have_written() {
    let spool = Spool::with_max_size(None, 2_000);
    spool.append(Queue::Events, &noise(900, 1), 1);
    spool.rotate_for_export();
    // A current file flushes its compressed bytes as they come: 256 KiB of noise passes
    // the cap while open, and the closed logs file is evicted.
    spool.append(Queue::Traces, &noise(256 * 1024, 2), 1);
    assert!(spool.total_size() > 2_000, "{}", spool.total_size());
    assert!(spool.pending().is_empty());
}

#[test]
fn write_errors_drop_the_current_file_and_warn_once_until_writes_succeed() {
    let dir = temp_dir("write-errors");
    let spool = Spool::new_in(dir.clone());
    spool.append(Queue::Traces, b"kept", 1);
    spool.rotate_for_export();
    spool.append(Queue::Traces, b"lost", 1);
    spool.set_fail_writes(true);
    spool.append(Queue::Traces, b"fails", 1);
    spool.append(Queue::Events, b"fails too", 1);
    assert_eq!(
        spool.take_warnings(),
        ["Error writing telemetry to disk, dropping buffered traces: injected write error"]
    );
    // The current traces file is gone from disk; the closed one is untouched.
    assert_eq!(spool_files(&dir).len(), 1);
    assert_eq!(spool.contents().files, [0, 0, 1, 0]);
    // The current file's two messages and the failed one.
    assert_eq!(spool.take_losses().items, [0, 1, 2, 0]);
    spool.set_fail_writes(false);
    spool.append(Queue::Traces, b"ok again", 1);
    spool.set_fail_writes(true);
    spool.append(Queue::Traces, b"fails again", 1);
    assert_eq!(spool.take_warnings().len(), 1);
    // A failing close drops the file too.
    spool.set_fail_writes(false);
    spool.append(Queue::Events, b"l", 1);
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
    spool.append(Queue::Metrics, b"m", 1);
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
    spool.append(Queue::Events, b"in memory", 1);
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
    spool.append(Queue::Traces, b"closed", 1);
    spool.rotate_for_export();
    spool.append(Queue::Traces, b"current", 1);
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
    spool.append(Queue::Events, b"l", 1);
    spool.rotate_for_export();
    for path in spool_files(&dir) {
        std::fs::remove_file(path).unwrap();
    }
    let id = spool.pending()[0].id;
    assert!(matches!(spool.read(id), Err(ReadError::Io(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A spool file is byte for byte what `GzEncoder` writes, also when its deflate state comes
/// from the file closed before it (and is decoded back to what went in).
#[test]
fn reused_deflate_state_writes_what_gz_encoder_writes() {
    let payloads: [Vec<u8>; 3] = [
        b"first file".repeat(1_000),
        Vec::new(),
        (0..200_000u32)
            .flat_map(|i| (i * 7919).to_le_bytes())
            .collect(),
    ];
    let mut spare = None;
    for payload in &payloads {
        let mut gzip = Gzip::new(Sink::Memory(Vec::new()), spare.take());
        for chunk in payload.chunks(10_000) {
            gzip.write_all(chunk).unwrap();
        }
        let (finished, next) = gzip.finish();
        let Sink::Memory(ours) = finished.unwrap() else {
            panic!("memory sink")
        };
        assert!(next.is_some(), "the state is kept for the next file");
        spare = next;
        let mut reference = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        reference.write_all(payload).unwrap();
        assert_eq!(ours, reference.finish().unwrap());
        let mut decoded = Vec::new();
        GzDecoder::new(&ours[..]).read_to_end(&mut decoded).unwrap();
        assert_eq!(&decoded, payload);
    }
}
