//! What the writer thread does to each item before its sink gets it: exclusions by callback,
//! bodies decoded and masked, headers and queries masked, request attributes and captured
//! logs and spans masked and bounded (protocol.md §9.2 steps 4 to 8).

use super::*;

impl RequestLogger {
    /// Masks an item and decides whether it is logged at all (§9.2 steps 4 to 8).
    pub(super) fn process(&self, item: &mut RequestLogItem) -> bool {
        let c = &self.config;
        // The app's request attributes: a sensitive-looking key's value is masked first, so
        // that the callbacks and every protocol see it masked.
        for (key, value) in &mut item.request.attributes {
            if self.masks.fields.matches(key) {
                *value = crate::AttributeValue::String(self.sink.masked().to_owned());
            }
        }
        // Excluded paths and user agents were left out at the request's start (`excludes`).
        if let Some(exclude) = &c.exclude {
            match catch_unwind(AssertUnwindSafe(|| exclude(&item.request, &item.response))) {
                Ok(true) => {
                    self.excluded.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                Ok(false) => {}
                Err(_) => {
                    log::error!(target: "apitally", "apitally: the request logging exclude callback panicked; the request is logged")
                }
            }
        }
        // Bodies: kept only for a content type masking can read; a compressed body is
        // decoded first; then the mask callback, the size check, and field masking.
        let request_kind = (c.log_request_body)
            .then(|| item.request_content_type.as_deref().and_then(body_kind))
            .flatten();
        let response_kind = (c.log_response_body)
            .then(|| item.response_content_type.as_deref().and_then(body_kind))
            .flatten();
        if request_kind.is_none() {
            item.request.body = None;
        }
        if response_kind.is_none() {
            item.response.body = None;
        }
        decode_body(
            &mut item.request.body,
            item.request_content_encoding.as_deref(),
        );
        decode_body(
            &mut item.response.body,
            item.response_content_encoding.as_deref(),
        );
        if let (Some(callback), Some(body)) = (&c.mask_request_body, &item.request.body) {
            if !is_marker(body) {
                item.request.body = Some(
                    catch_unwind(AssertUnwindSafe(|| callback(&item.request)))
                        .unwrap_or_else(|_| {
                            log::error!(target: "apitally", "apitally: the mask_request_body callback panicked; the body is logged as <masked>");
                            None
                        })
                        .unwrap_or_else(|| BODY_MASKED.to_vec()),
                );
            }
        }
        if let (Some(callback), Some(body)) = (&c.mask_response_body, &item.response.body) {
            if !is_marker(body) {
                item.response.body = Some(
                    catch_unwind(AssertUnwindSafe(|| callback(&item.request, &item.response)))
                        .unwrap_or_else(|_| {
                            log::error!(target: "apitally", "apitally: the mask_response_body callback panicked; the body is logged as <masked>");
                            None
                        })
                        .unwrap_or_else(|| BODY_MASKED.to_vec()),
                );
            }
        }
        for (body, kind) in [
            (&mut item.request.body, request_kind),
            (&mut item.response.body, response_kind),
        ] {
            if let (Some(bytes), Some(kind)) = (body.as_mut(), kind) {
                if bytes.len() > MAX_BODY_SIZE {
                    *bytes = BODY_TOO_LARGE.to_vec();
                } else if !is_marker(bytes) {
                    mask_body(bytes, kind, &self.masks.body);
                }
            }
        }
        if c.log_request_headers {
            mask::mask_headers(
                &mut item.request.headers,
                &self.masks.headers,
                &self.masks.query,
            );
        } else {
            item.request.headers.clear();
        }
        if c.log_response_headers {
            mask::mask_headers(
                &mut item.response.headers,
                &self.masks.headers,
                &self.masks.query,
            );
        } else {
            item.response.headers.clear();
        }
        // Without a query there is nothing to mask or strip (and nothing to copy).
        if item.request.url.contains('?') {
            item.request.url = if c.log_query_params {
                mask::mask_query(&item.request.url, &self.masks.query)
            } else {
                mask::strip_query(&item.request.url)
            };
        }
        if !c.log_exception {
            item.exception = None;
        } else if let Some(exception) = &mut item.exception {
            exception.resolve();
        }
        if !item.logs.is_empty() || !item.spans.is_empty() {
            self.mask_captured(item);
        }
        true
    }

    /// Masks the captured log records' fields and the spans' attributes by name, runs the
    /// `mask_log_record` and `mask_span` callbacks, and appends each record's fields to its
    /// message, bounded.
    fn mask_captured(&self, item: &mut RequestLogItem) {
        let c = &self.config;
        // Each protocol's word for a masked value.
        let masked = self.sink.masked();
        let before = item.logs.len();
        item.logs.retain_mut(|record| {
            for (name, value) in &mut record.fields {
                if self.masks.fields.matches(name) {
                    value.clear();
                    value.push_str(masked);
                }
            }
            let keep = match &c.mask_log_record {
                Some(mask) => catch_unwind(AssertUnwindSafe(|| mask(record))).unwrap_or_else(|_| {
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        log::error!(target: "apitally", "apitally: the mask_log_record callback panicked; the record is dropped");
                    }
                    false
                }),
                None => true,
            };
            if keep {
                for (name, value) in record.fields.drain(..) {
                    record.message.push(' ');
                    record.message.push_str(&name);
                    record.message.push('=');
                    record.message.push_str(&value);
                }
                // A record's message may have grown: the bound holds after masking too.
                crate::request_log::item::truncate_log_message(&mut record.message);
            }
            keep
        });
        self.log_records_dropped
            .fetch_add((before - item.logs.len()) as u64, Ordering::Relaxed);
        item.spans.retain_mut(|span| {
            for (name, value) in &mut span.attributes {
                if self.masks.fields.matches(name) {
                    *value = serde_json::Value::String(masked.to_owned());
                }
            }
            match &c.mask_span {
                Some(mask) => catch_unwind(AssertUnwindSafe(|| mask(span))).unwrap_or_else(|_| {
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        log::error!(target: "apitally", "apitally: the mask_span callback panicked; the span is dropped");
                    }
                    false
                }),
                None => true,
            }
        });
    }
}

/// Whether a body is one of the markers logged in place of a body.
fn is_marker(body: &[u8]) -> bool {
    body == BODY_TOO_LARGE || body == BODY_MASKED
}

/// Replaces a compressed body with what it decodes to, or with a marker when it cannot be
/// decoded (another coding, corrupt, cut short) or is too large decoded: a compressed body is
/// never logged as it is, since it would inflate to what masking never saw.
fn decode_body(body: &mut Option<Vec<u8>>, content_encoding: Option<&str>) {
    let Some(bytes) = body.as_mut() else {
        return;
    };
    if is_marker(bytes) {
        return;
    }
    match body::decode(content_encoding, bytes, MAX_BODY_SIZE) {
        Ok(None) => {}
        Ok(Some(decoded)) => *bytes = decoded,
        Err(Undecodable::TooLarge) => *bytes = BODY_TOO_LARGE.to_vec(),
        Err(Undecodable::Opaque) => *bytes = BODY_MASKED.to_vec(),
    }
}

/// Masks a body of a loggable kind in place. JSON that does not parse is masked by the
/// tolerant scan, or replaced by [`BODY_MASKED`] when no key can be told; text is kept.
fn mask_body(bytes: &mut Vec<u8>, kind: BodyKind, fields: &Patterns) {
    match kind {
        BodyKind::Text => {}
        BodyKind::Json => match mask::mask_json(bytes, fields) {
            // A body that masking leaves as it is (borrowed, at most without trailing
            // whitespace) stays where it is: always a prefix of the body.
            Some(Cow::Borrowed(kept)) => {
                debug_assert_eq!(kept.as_ptr(), bytes.as_ptr());
                let len = kept.len();
                bytes.truncate(len);
            }
            Some(Cow::Owned(masked)) => *bytes = masked,
            None => {
                *bytes = body::mask_tolerant(bytes, fields).unwrap_or_else(|| BODY_MASKED.to_vec());
            }
        },
        BodyKind::Ndjson => *bytes = body::mask_ndjson(bytes, fields),
    }
}
