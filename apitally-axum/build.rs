//! Finds the axum version the app is built with, for `versions.axum` in the startup
//! data: read from the Cargo.lock next to the target directory, when there is one.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| find_lock(&out))
        .and_then(|lock| {
            println!("cargo:rerun-if-changed={}", lock.display());
            std::fs::read_to_string(lock).ok()
        })
        .and_then(|text| axum_version(&text))
        .unwrap_or_default();
    println!("cargo:rustc-env=APITALLY_AXUM_VERSION={version}");
}

/// Walks up from OUT_DIR (`<workspace>/target/<profile>/build/<pkg>/out`) to a Cargo.lock.
fn find_lock(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|candidate| candidate.is_file())
}

fn axum_version(lock: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"axum\"" {
            let next = lines.next()?;
            return next
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_owned);
        }
    }
    None
}
