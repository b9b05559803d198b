//! Payload checks against the hub v2 protocol: field names, types and value rules.

use serde_json::Value;

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
}

fn is_histogram(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.iter()
            .all(|(k, c)| k.parse::<u64>().is_ok() && c.as_u64().is_some())
    })
}

fn string_or_null(v: &Value) -> bool {
    v.is_string() || v.is_null()
}

fn check_items(
    problems: &mut Vec<String>,
    payload: &Value,
    key: &str,
    item_ok: impl Fn(&Value) -> Option<String>,
) {
    match payload.get(key).and_then(Value::as_array) {
        None => problems.push(format!("`{key}` must be an array")),
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(problem) = item_ok(item) {
                    problems.push(format!("{key}[{i}]: {problem}"));
                }
            }
        }
    }
}

/// Problems of a startup payload (§4.2); empty when valid.
pub(crate) fn startup(p: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["instance_uuid", "message_uuid"] {
        if !is_uuid(&p[key]) {
            problems.push(format!("`{key}` must be a UUID"));
        }
    }
    check_items(&mut problems, p, "paths", |item| {
        let method = item["method"].as_str()?;
        if method != method.to_uppercase() || item["path"].as_str().is_none() {
            return Some("needs an uppercase `method` and a `path`".into());
        }
        None
    });
    if !p["versions"]
        .as_object()
        .is_some_and(|v| v.values().all(Value::is_string))
    {
        problems.push("`versions` must be an object of strings".into());
    }
    if !p["client"].is_string() {
        problems.push("`client` must be a string".into());
    }
    if !(p["openapi"].is_null() || p["openapi"].is_string()) {
        problems.push("`openapi` must be a JSON document as a string".into());
    }
    problems
}

/// Problems of a sync payload (§4.3); empty when valid.
pub(crate) fn sync(p: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if !p["timestamp"].is_number() {
        problems.push("`timestamp` must be a number".into());
    }
    for key in ["instance_uuid", "message_uuid"] {
        if !is_uuid(&p[key]) {
            problems.push(format!("`{key}` must be a UUID"));
        }
    }
    check_items(&mut problems, p, "requests", |r| {
        let ok = string_or_null(&r["consumer"])
            && r["method"].as_str().is_some_and(|m| m == m.to_uppercase())
            && r["path"].is_string()
            && r["status_code"].as_u64().is_some_and(|s| s >= 100)
            && r["request_count"].as_u64().is_some()
            && r["request_size_sum"].as_u64().is_some()
            && r["response_size_sum"].as_u64().is_some()
            && ["response_times", "request_sizes", "response_sizes"]
                .iter()
                .all(|h| is_histogram(&r[*h]));
        (!ok).then(|| format!("invalid requests item {r}"))
    });
    check_items(&mut problems, p, "validation_errors", |e| {
        let ok = string_or_null(&e["consumer"])
            && e["method"].is_string()
            && e["path"].is_string()
            && e["loc"]
                .as_array()
                .is_some_and(|l| l.iter().all(Value::is_string))
            && e["msg"].is_string()
            && e["type"].is_string()
            && e["error_count"].as_u64().is_some();
        (!ok).then(|| format!("invalid validation error {e}"))
    });
    check_items(&mut problems, p, "server_errors", |e| {
        let ok = string_or_null(&e["consumer"])
            && e["method"].is_string()
            && e["path"].is_string()
            && e["type"].is_string()
            && e["msg"].as_str().is_some_and(|m| m.chars().count() <= 2048)
            && e["traceback"]
                .as_str()
                .is_some_and(|t| t.chars().count() <= 65536)
            && e.get("sentry_event_id").is_some_and(string_or_null)
            && e["error_count"].as_u64().is_some();
        (!ok).then(|| format!("invalid server error {e}"))
    });
    check_items(&mut problems, p, "consumers", |c| {
        let ok = c["identifier"]
            .as_str()
            .is_some_and(|i| !i.is_empty() && i.chars().count() <= 128)
            && string_or_null(&c["name"])
            && string_or_null(&c["group"]);
        (!ok).then(|| format!("invalid consumer {c}"))
    });
    let resources = &p["resources"];
    if !(resources.is_null()
        || (resources["cpu_percent"].is_number() && resources["memory_rss"].as_u64().is_some()))
    {
        problems.push("`resources` must be null or {cpu_percent, memory_rss}".into());
    }
    problems
}

/// Problems of request-log lines (§9.7); empty when valid.
pub(crate) fn log_lines(lines: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ok = is_uuid(&line["uuid"])
            && line["request"]["timestamp"].is_number()
            && line["request"]["method"].is_string()
            && line["request"]["url"].is_string()
            && line["response"]["status_code"]
                .as_u64()
                .is_some_and(|s| s >= 100)
            && line["response"]["response_time"].is_number();
        if !ok {
            problems.push(format!("line {i}: invalid request log item"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn sync_checks() {
        let good = json!({
            "timestamp": 1.5, "instance_uuid": "3cd8948c-b589-40a2-a33f-a4e604425c81",
            "message_uuid": "2b23aed1-decc-4842-b058-4a89120d92d5",
            "requests": [{"consumer": null, "method": "GET", "path": "/a", "status_code": 200,
                "request_count": 1, "request_size_sum": 0, "response_size_sum": 0,
                "response_times": {"0": 1}, "request_sizes": {}, "response_sizes": {}}],
            "validation_errors": [], "server_errors": [], "consumers": [], "resources": null
        });
        assert!(super::sync(&good).is_empty());
        let mut bad = good.clone();
        bad["requests"][0]["status_code"] = json!(0);
        bad["requests"][0]["response_times"] = json!({"x": 1});
        bad["resources"] = json!({"cpu_percent": 1});
        assert_eq!(super::sync(&bad).len(), 2);
    }
}
