//! Configuration from the environment. One test in its own binary, because it changes the
//! process environment.

use apitally_core::adapter::ClientConfig;
use apitally_core::ConfigError;
use apitally_test_hub::TestHub;

const ID: &str = "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9";

#[test]
fn from_env_and_hub_base_url_override() {
    std::env::remove_var("APITALLY_CLIENT_ID");
    std::env::remove_var("APITALLY_ENV");
    std::env::remove_var("APITALLY_HUB_BASE_URL");
    std::env::remove_var("APITALLY_WRITE_TOKEN");
    std::env::remove_var("APITALLY_OTLP_ENDPOINT");
    assert_eq!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::MissingCredential)
    );

    std::env::set_var("APITALLY_CLIENT_ID", format!(" {ID} "));
    let config = ClientConfig::from_env();
    assert_eq!(config.get_client_id(), ID);
    assert_eq!(config.get_env(), "dev");
    assert!(config.validate().is_ok());

    std::env::set_var("APITALLY_ENV", "staging");
    assert_eq!(ClientConfig::from_env().get_env(), "staging");
    std::env::set_var("APITALLY_ENV", "bad env");
    assert_eq!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::InvalidEnv {
            value: "bad env".into()
        })
    );
    std::env::set_var("APITALLY_ENV", "prod");

    // A blank override is unset; a bad one is reported; a good one is used.
    std::env::set_var("APITALLY_HUB_BASE_URL", "   ");
    assert!(ClientConfig::from_env().validate().is_ok());
    std::env::set_var("APITALLY_HUB_BASE_URL", "hub.example");
    assert!(matches!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::InvalidHubBaseUrl { .. })
    ));
    let hub = TestHub::start();
    std::env::set_var("APITALLY_HUB_BASE_URL", format!("{}/", hub.url()));
    let client = apitally_core::adapter::ApitallyClient::try_new(
        ClientConfig::from_env(),
        apitally_core::adapter::StartupData::default(),
    )
    .unwrap();
    assert!(
        hub.wait_until(std::time::Duration::from_secs(15), |r| r.iter().any(|r| r
            .endpoint
            == "startup"
            && r.client_id == ID
            && r.env == "prod"))
    );
    client.shutdown_blocking();
    // An explicit URL in code wins over the environment.
    std::env::set_var("APITALLY_HUB_BASE_URL", "not a url");
    assert!(ClientConfig::from_env()
        .hub_base_url(hub.url())
        .validate()
        .is_ok());

    std::env::remove_var("APITALLY_HUB_BASE_URL");

    // The 1.x credential: a write token; with the client id too, a clear error, not a choice.
    std::env::set_var("APITALLY_WRITE_TOKEN", " apt_0123456789abcdefghijABCD ");
    assert_eq!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::ConflictingCredentials)
    );
    std::env::remove_var("APITALLY_CLIENT_ID");
    let config = ClientConfig::from_env();
    assert_eq!(
        config.get_protocol(),
        apitally_core::adapter::Protocol::Otlp
    );
    assert!(config.validate().is_ok());
    // Never shown whole.
    assert!(!format!("{config:?}").contains("0123456789abcdefghijABCD"));
    std::env::set_var("APITALLY_WRITE_TOKEN", "apt_tooshort");
    let err = ClientConfig::from_env().validate().unwrap_err();
    assert_eq!(
        err,
        ConfigError::InvalidWriteToken {
            start: "apt_toos".into()
        }
    );
    std::env::set_var("APITALLY_WRITE_TOKEN", "apt_0123456789abcdefghijABCD");
    std::env::set_var("APITALLY_OTLP_ENDPOINT", "otlp.example");
    assert!(matches!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::InvalidOption {
            option: "otlp_endpoint",
            ..
        })
    ));
    std::env::set_var("APITALLY_OTLP_ENDPOINT", " ");
    assert!(ClientConfig::from_env().validate().is_ok());
    std::env::remove_var("APITALLY_WRITE_TOKEN");
    std::env::remove_var("APITALLY_OTLP_ENDPOINT");
}
