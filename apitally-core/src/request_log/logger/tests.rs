use super::*;
use crate::{LoggedRequest, LoggedResponse};

fn test_logger(
    max_buffer_bytes: usize,
) -> (
    RequestLogger,
    std::path::PathBuf,
    Arc<crate::backend::hub::files::LogFiles>,
) {
    let dir = std::env::temp_dir().join(format!("apitally-spares-{}", uuid::Uuid::new_v4()));
    let config = RequestLoggingConfig {
        max_buffer_bytes,
        ..RequestLoggingConfig::new()
    };
    let (logger, files) = crate::backend::hub::files::logger(config, dir.clone()).unwrap();
    (logger, dir, files)
}

fn filled(i: usize) -> RequestLogItem {
    let mut item = RequestLogItem::default();
    item.request.method.push_str("GET");
    item.request.url = format!("http://localhost/items/{i}");
    item.request.headers.push("x-n", &i.to_string());
    item.response.status_code = 200;
    item
}

#[test]
fn written_items_come_back_empty_as_bounded_spares() {
    let (logger, dir, files) = test_logger(16 << 20);
    let mut stash = Vec::new();
    logger.take_spares(&mut stash, 10);
    assert!(stash.is_empty(), "no spares before anything was written");
    for i in 0..200 {
        logger.log(filled(i));
    }
    logger.flush();
    // As many spares as the batch had, each empty but with its buffers.
    logger.take_spares(&mut stash, 1_000);
    assert_eq!(stash.len(), 200);
    for item in &stash {
        assert_eq!(item.request, LoggedRequest::default());
        assert_eq!(item.response, LoggedResponse::default());
        assert!(item.request.url.capacity() >= "http://localhost/items/0".len());
    }
    // Filled again and logged, they are written like new ones.
    for (i, mut item) in stash.drain(..).enumerate() {
        item.request.method.push_str("GET");
        item.request.url.push_str("http://localhost/again");
        item.request.headers.push("x-n", &i.to_string());
        logger.log(item);
    }
    logger.flush();
    assert_eq!(files.current_lines(), 400);
    // An idle writer (empty batches) keeps no more than the minimum.
    logger.flush();
    assert_eq!(lock(&logger.spares).items.len(), Spares::MIN_KEPT);
    // Spares never hold more than half the buffer's bytes.
    let (small, small_dir, _) = test_logger(64 << 10);
    for i in 0..200 {
        small.log(filled(i));
    }
    small.flush();
    let spares = lock(&small.spares);
    assert!(spares.bytes <= (64 << 10) / 2, "{}", spares.bytes);
    assert!(!spares.items.is_empty());
    assert_eq!(
        spares.bytes,
        spares.items.iter().map(|i| i.spare_bytes()).sum::<usize>()
    );
    drop(spares);
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(small_dir).ok();
}

#[test]
fn totals_count_the_process_and_each_sync_reports_the_difference() {
    let (logger, dir, _) = test_logger(4096);
    for i in 0..3 {
        logger.log(filled(i));
    }
    // Excluded at the request's start, before sampling.
    assert!(logger.excludes("/health", None));
    assert!(!logger.excludes("/items", Some("curl/8")));
    let mut large = filled(10);
    large.request.body = Some(vec![b'x'; 8192]);
    logger.log(large);
    logger.note_sampled_out();
    logger.note_sampled_out();
    logger.flush();
    let totals = Totals {
        logged: 3,
        sampled_out: 2,
        excluded: 1,
        dropped: 1,
    };
    assert_eq!(logger.totals(), totals);
    assert_eq!(
        totals.header_value(),
        "logged=3, sampled-out=2, excluded=1, dropped=1"
    );
    assert_eq!(
        logger.take_left_out(),
        LeftOut {
            sampled_out: 2,
            excluded: 1,
            log_records_dropped: 0
        }
    );
    assert_eq!(logger.take_dropped(), 1);
    // The next sync reports only what happened since; the totals keep counting.
    logger.note_sampled_out();
    logger.log(filled(11));
    logger.flush();
    assert_eq!(
        logger.take_left_out(),
        LeftOut {
            sampled_out: 1,
            ..LeftOut::default()
        }
    );
    assert_eq!(logger.take_dropped(), 0);
    assert_eq!(
        logger.totals(),
        Totals {
            logged: 4,
            sampled_out: 3,
            ..totals
        }
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn json_bodies_are_masked_compacted_or_kept_in_place() {
    let dir = std::env::temp_dir().join(format!("apitally-bodies-{}", uuid::Uuid::new_v4()));
    let config = RequestLoggingConfig::new()
        .log_request_body(true)
        .log_response_body(true);
    let (logger, _files) = crate::backend::hub::files::logger(config, dir.clone()).unwrap();
    // The bodies after processing, and whether each is still in its original buffer.
    let processed = |request: &[u8], response: &[u8]| {
        let mut item = filled(0);
        item.request.body = Some(request.to_vec());
        item.response.body = Some(response.to_vec());
        let buffers = (
            item.request.body.as_ref().unwrap().as_ptr(),
            item.response.body.as_ref().unwrap().as_ptr(),
        );
        item.request_content_type = Some("application/json".into());
        item.response_content_type = Some("application/json; charset=utf-8".into());
        assert!(logger.process(&mut item));
        let (req, res) = (item.request.body.unwrap(), item.response.body.unwrap());
        let in_place = (req.as_ptr() == buffers.0, res.as_ptr() == buffers.1);
        (req, res, in_place)
    };
    let body = |request: &[u8], response: &[u8]| {
        let (req, res, _) = processed(request, response);
        (req, res)
    };
    // Masked, and compacted.
    let (req, res) = body(b"{\"password\": \"x\", \"n\": 1}", b"[{\"token\":\"t\"}]");
    assert_eq!(req, b"{\"password\":\"******\",\"n\":1}");
    assert_eq!(res, b"[{\"token\":\"******\"}]");
    // Kept as they are (in the same buffer), trailing whitespace cut.
    let (req, res, in_place) = processed(b"{\"a\":[1,2.5e3,true,null]}\r\n", b"\"text\"");
    assert_eq!(req, b"{\"a\":[1,2.5e3,true,null]}");
    assert_eq!(res, b"\"text\"");
    assert_eq!(in_place, (true, true));
    // Changed: a new buffer.
    let (_, _, in_place) = processed(b"{\"token\":\"t\"}", b"[1, 2]");
    assert_eq!(in_place, (false, false));
    // JSON that does not parse: masked where keys can be told, else not logged.
    let (req, res) = body(b"{\"password\": \"x\",}", b"01");
    assert_eq!(req, b"{\"password\": \"******\",}");
    assert_eq!(res, BODY_MASKED);
    std::fs::remove_dir_all(dir).ok();
}
