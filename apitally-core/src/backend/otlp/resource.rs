//! The resource of all three signals (protocol-v1.md §2).

use std::sync::LazyLock;

use super::model::Attribute;

/// `telemetry.sdk.version`: the version of the `opentelemetry-proto` crate the messages are
/// built with (a test checks it against `Cargo.lock`).
pub(crate) const SDK_VERSION: &str = "0.33.1";
/// `telemetry.distro.name` (extrapolated from `apitally-py`/`apitally-go`, §11).
pub(crate) const DISTRO_NAME: &str = "apitally-rs";
/// `telemetry.distro.version`.
pub(crate) const DISTRO_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub(crate) const DEFAULT_SERVICE_NAME: &str = "unknown_service";

/// `service.instance.id`: a random UUID v4 per process start, the same for every signal and
/// every client of the process ("the server treats a restarted process as a new instance").
pub(crate) fn instance_id() -> &'static str {
    static ID: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().to_string());
    &ID
}

/// The resource attributes, reading `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
/// through `lookup` (e.g. `|k| std::env::var(k).ok()`).
///
/// As the OTel SDKs build it: the SDK's `telemetry.sdk.*` keys, overridden by
/// `OTEL_RESOURCE_ATTRIBUTES`; `service.name` from `OTEL_SERVICE_NAME`, else from
/// `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service`; then the four Apitally keys on top
/// (`service.instance.id`, `deployment.environment.name` = `env`, `telemetry.distro.*`).
pub(crate) fn resource_attributes(
    env: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Attribute> {
    resource_attributes_with(env, lookup, instance_id())
}

pub(crate) fn resource_attributes_with(
    env: &str,
    lookup: impl Fn(&str) -> Option<String>,
    instance_id: &str,
) -> Vec<Attribute> {
    let from_env = lookup("OTEL_RESOURCE_ATTRIBUTES")
        .map(|s| parse_resource_attributes(&s))
        .unwrap_or_default();
    let env_value = |key: &str| {
        from_env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let service_name = lookup("OTEL_SERVICE_NAME")
        .filter(|s| !s.is_empty())
        .or_else(|| env_value("service.name"))
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());

    let apitally_keys = [
        ("service.instance.id", instance_id.to_owned()),
        ("deployment.environment.name", env.to_owned()),
        ("telemetry.distro.name", DISTRO_NAME.to_owned()),
        ("telemetry.distro.version", DISTRO_VERSION.to_owned()),
    ];
    let sdk_keys = [
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.version", SDK_VERSION),
    ];
    let mut attributes = vec![Attribute::new("service.name", service_name)];
    for (key, value) in sdk_keys {
        attributes.push(Attribute::new(
            key,
            env_value(key).unwrap_or_else(|| value.to_owned()),
        ));
    }
    // The other keys of OTEL_RESOURCE_ATTRIBUTES, in order, the last of a repeated key winning.
    for (i, (key, value)) in from_env.iter().enumerate() {
        let repeated_later = from_env[i + 1..].iter().any(|(k, _)| k == key);
        let taken = key == "service.name"
            || sdk_keys.iter().any(|(k, _)| k == key)
            || apitally_keys.iter().any(|(k, _)| k == key);
        if !repeated_later && !taken {
            attributes.push(Attribute::new(key.clone(), value.clone()));
        }
    }
    for (key, value) in apitally_keys {
        attributes.push(Attribute::new(key, value));
    }
    attributes
}

/// `key1=value1,key2=value2`: entries without `=` or with an empty key are skipped; keys and
/// values are trimmed and values percent-decoded (the W3C Baggage format, as the OTel Python
/// SDK reads it).
pub(crate) fn parse_resource_attributes(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|entry| {
            let (key, value) = entry.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), percent_decode(value.trim())))
        })
        .collect()
}

/// Decodes `%XX` escapes; malformed escapes stay as they are, invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::otlp::model::AttrValue;

    fn as_pairs(attributes: &[Attribute]) -> Vec<(String, String)> {
        attributes
            .iter()
            .map(|a| match &a.value {
                AttrValue::String(s) => (a.key.to_string(), s.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_otel_variables() {
        let attributes = resource_attributes_with("prod", |_| None, "3ed003cf");
        assert_eq!(
            as_pairs(&attributes),
            pairs(&[
                ("service.name", "unknown_service"),
                ("telemetry.sdk.language", "rust"),
                ("telemetry.sdk.name", "opentelemetry"),
                ("telemetry.sdk.version", "0.33.1"),
                ("service.instance.id", "3ed003cf"),
                ("deployment.environment.name", "prod"),
                ("telemetry.distro.name", "apitally-rs"),
                ("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
            ])
        );
    }

    #[test]
    fn otel_variables_apply_under_the_apitally_keys() {
        let lookup = |key: &str| match key {
            "OTEL_RESOURCE_ATTRIBUTES" => Some(
                " team = core ,service.name=from-attrs,deployment.environment.name=x,\
                 noequals,=v,region=eu%2Dwest%201,team=api,telemetry.sdk.language=rust2,bad=%zz%4"
                    .to_owned(),
            ),
            "OTEL_SERVICE_NAME" => Some("checkout".to_owned()),
            _ => None,
        };
        let attributes = resource_attributes_with("dev", lookup, "id");
        assert_eq!(
            as_pairs(&attributes),
            pairs(&[
                ("service.name", "checkout"),
                ("telemetry.sdk.language", "rust2"),
                ("telemetry.sdk.name", "opentelemetry"),
                ("telemetry.sdk.version", "0.33.1"),
                ("region", "eu-west 1"),
                ("team", "api"),
                ("bad", "%zz%4"),
                ("service.instance.id", "id"),
                ("deployment.environment.name", "dev"),
                ("telemetry.distro.name", "apitally-rs"),
                ("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
            ])
        );
        // Without OTEL_SERVICE_NAME (or with an empty one), service.name comes from the list.
        let lookup = |key: &str| match key {
            "OTEL_RESOURCE_ATTRIBUTES" => Some("service.name=from-attrs".to_owned()),
            "OTEL_SERVICE_NAME" => Some(String::new()),
            _ => None,
        };
        let attributes = resource_attributes_with("dev", lookup, "id");
        assert_eq!(as_pairs(&attributes)[0].1, "from-attrs");
        assert_eq!(attributes.len(), 8);
    }

    #[test]
    fn instance_id_is_one_uuid_v4_per_process() {
        let id = instance_id();
        assert_eq!(id, instance_id());
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(id, parsed.hyphenated().to_string());
    }

    #[test]
    fn sdk_version_is_the_opentelemetry_proto_version_in_the_lock_file() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let entry = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"opentelemetry-proto\""))
            .unwrap();
        assert!(
            entry.contains(&format!("version = \"{SDK_VERSION}\"")),
            "{entry}"
        );
    }
}
