//! Protocol buffers by hand: tags, varints, length-delimited fields and OTLP key-values,
//! written straight into the output buffer.

use crate::{backend::otlp::encode::MAX_SPAN_VALUE_CHARS, util::truncate_chars};

pub(super) const WIRE_VARINT: u8 = 0;
pub(super) const WIRE_FIXED64: u8 = 1;
pub(super) const WIRE_LEN: u8 = 2;
pub(super) const WIRE_FIXED32: u8 = 5;

pub(super) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(super) fn tag(buf: &mut Vec<u8>, field: u8, wire: u8) {
    // One byte for fields below 16; the span's `flags` (16) takes two.
    varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

pub(super) fn bytes_field(buf: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    tag(buf, field, WIRE_LEN);
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

pub(super) fn fixed64_field(buf: &mut Vec<u8>, field: u8, v: u64) {
    tag(buf, field, WIRE_FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn varint_field(buf: &mut Vec<u8>, field: u8, v: u64) {
    tag(buf, field, WIRE_VARINT);
    varint(buf, v);
}

/// A length-delimited field whose content `write` appends: one byte is reserved for the
/// length, and the content moved when its length needs more.
pub(super) fn message(buf: &mut Vec<u8>, field: u8, write: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, WIRE_LEN);
    let at = buf.len();
    buf.push(0);
    write(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(5);
    varint(&mut prefix, len as u64);
    let extra = prefix.len() - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(at + 1..at + 1 + len, at + 1 + extra);
    buf[at..at + prefix.len()].copy_from_slice(&prefix);
}

/// `KeyValue { key, value: AnyValue { string_value } }` as field `field`.
pub(super) fn kv_str(buf: &mut Vec<u8>, field: u8, key: &str, value: &str) {
    message(buf, field, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        message(buf, 2, |buf| {
            bytes_field(
                buf,
                1,
                truncate_chars(value, MAX_SPAN_VALUE_CHARS).as_bytes(),
            );
        });
    });
}

pub(super) fn kv_int(buf: &mut Vec<u8>, field: u8, key: &str, value: i64) {
    message(buf, field, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        message(buf, 2, |buf| varint_field(buf, 3, value as u64));
    });
}

pub(super) fn kv_value(buf: &mut Vec<u8>, field: u8, key: &str, value: &serde_json::Value) {
    use serde_json::Value;
    message(buf, field, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        message(buf, 2, |buf| match value {
            Value::String(s) => {
                bytes_field(buf, 1, truncate_chars(s, MAX_SPAN_VALUE_CHARS).as_bytes());
            }
            Value::Bool(b) => varint_field(buf, 2, u64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => varint_field(buf, 3, i as u64),
                None => {
                    tag(buf, 4, WIRE_FIXED64);
                    buf.extend_from_slice(&n.as_f64().unwrap_or_default().to_le_bytes());
                }
            },
            Value::Null => {}
            other => bytes_field(buf, 1, other.to_string().as_bytes()),
        });
    });
}

/// A request attribute the app set, with its type.
pub(super) fn kv_attribute(buf: &mut Vec<u8>, key: &str, value: &crate::AttributeValue) {
    use crate::AttributeValue;
    message(buf, 9, |buf| {
        bytes_field(buf, 1, key.as_bytes());
        message(buf, 2, |buf| match value {
            AttributeValue::String(s) => {
                bytes_field(buf, 1, truncate_chars(s, MAX_SPAN_VALUE_CHARS).as_bytes());
            }
            AttributeValue::Bool(b) => varint_field(buf, 2, u64::from(*b)),
            AttributeValue::Int(i) => varint_field(buf, 3, *i as u64),
            AttributeValue::Float(x) => {
                tag(buf, 4, WIRE_FIXED64);
                buf.extend_from_slice(&x.to_le_bytes());
            }
            AttributeValue::None => {}
        });
    });
}
