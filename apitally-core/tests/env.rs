//! Configuration from the environment. One test in its own binary, because it changes the
//! process environment.

use apitally_core::{ClientConfig, ConfigError};
use apitally_test_hub::TestHub;

const ID: &str = "76b5cb91-a0a4-4ea0-a894-57d2b9fcb2c9";

#[test]
fn from_env_and_hub_base_url_override() {
    std::env::remove_var("APITALLY_CLIENT_ID");
    std::env::remove_var("APITALLY_ENV");
    std::env::remove_var("APITALLY_HUB_BASE_URL");
    assert_eq!(
        ClientConfig::from_env().validate(),
        Err(ConfigError::MissingClientId)
    );

    std::env::set_var("APITALLY_CLIENT_ID", format!(" {ID} "));
    let config = ClientConfig::from_env();
    assert_eq!(config.client_id(), ID);
    assert_eq!(config.env(), "dev");
    assert!(config.validate().is_ok());

    std::env::set_var("APITALLY_ENV", "staging");
    assert_eq!(ClientConfig::from_env().env(), "staging");
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
    let client = apitally_core::ApitallyClient::try_new(
        ClientConfig::from_env(),
        apitally_core::StartupData::default(),
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
}
