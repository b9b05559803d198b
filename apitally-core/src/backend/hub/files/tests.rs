use std::io::Read;

use super::*;

fn filled(i: usize) -> RequestLogItem {
    let mut item = RequestLogItem::default();
    item.request.method.push_str("GET");
    item.request.url = format!("http://localhost/items/{i}");
    item.request.headers.push("x-n", &i.to_string());
    item.response.status_code = 200;
    item
}

/// The writer thread deletes the oldest closed files over [`MAX_FILES`] while the sync
/// thread uploads the oldest: a file taken for upload must not be among them (it was, and
/// its upload failed with "cannot read request log file", or its requests were counted as
/// lost after all).
#[test]
fn a_file_taken_for_upload_is_never_deleted_over_the_limit() {
    let dir = std::env::temp_dir().join(format!("apitally-taken-{}", Uuid::new_v4()));
    // A file per item.
    let config = crate::RequestLoggingConfig::new().test_max_file_size(1);
    let (logger, files) = logger(config, dir.clone()).unwrap();
    for i in 0..MAX_FILES {
        logger.log(filled(i));
    }
    logger.flush();
    assert_eq!(files.closed_len(), MAX_FILES);
    let taken = files.take_file().unwrap();
    assert_eq!(taken.file().lines, 1);
    // While it is uploaded, the writer closes three more files: two over the limit.
    for i in 0..3 {
        logger.log(filled(100 + i));
    }
    logger.flush();
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        File::open(&taken.file().path).expect("the file being uploaded is still there"),
    )
    .read_to_string(&mut text)
    .unwrap();
    assert!(text.contains("http://localhost/items/0\""), "{text}");
    assert_eq!(files.take_deleted(), (2, 2));
    assert_eq!(files.take_deleted(), (0, 0));
    assert_eq!(files.lost(), 2);
    // An upload that fails puts it back at the front; one that succeeds deletes it.
    let uuid = taken.file().uuid;
    drop(taken);
    assert_eq!(files.closed_len(), MAX_FILES + 1);
    let taken = files.take_file().unwrap();
    assert_eq!(taken.file().uuid, uuid);
    let path = taken.file().path.clone();
    taken.remove();
    assert!(!path.exists());
    // What is left is counted when cleared.
    logger.log(filled(200));
    logger.log(filled(201));
    assert_eq!(
        logger.clear(),
        crate::request_log::Cleared {
            files: MAX_FILES,
            lines: MAX_FILES,
            pending: 2
        }
    );
    assert!(logger.is_idle());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(dir).ok();
}
