//! Runs the local hub on `HUB_BIND` (default `127.0.0.1:8001`) until Ctrl-C.

fn main() -> std::io::Result<()> {
    let bind = std::env::var("HUB_BIND").unwrap_or_else(|_| "127.0.0.1:8001".into());
    let hub = local_hub::LocalHub::start(&bind)?;
    println!("local Apitally hub on {}", hub.url());
    println!("  dashboard:  {}/", hub.url());
    println!(
        "  point the SDK at it with APITALLY_HUB_BASE_URL={}",
        hub.url()
    );
    hub.wait();
    Ok(())
}
