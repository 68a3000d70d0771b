//! Compiles the admin API in proto/ with a protoc shipped as a crate, so a build needs nothing
//! installed on the machine. `$PROTOC`, when set, wins.
//!
//! It also tells the tests whether their PostgreSQL variants run: `cfg(hookgate_postgres)` is set
//! when `HOOKGATE_TEST_DATABASE_URL` is, and in CI (`CI` set), where those variants then fail
//! loudly without a URL. Without it they are built `#[ignore]`d, so a run without PostgreSQL
//! counts them as ignored in its summary instead of as passed.
//!
//! The same for the console's browser tests: `cfg(hookgate_browser)` is set when a chromedriver
//! is installed at `/usr/bin/chromedriver` (Debian's `chromium-driver`), when
//! `HOOKGATE_BROWSER` is set, and in CI, where a missing browser is then a failure. Without it
//! they are built `#[ignore]`d. (Installing the driver later: `touch build.rs`, or set
//! `HOOKGATE_BROWSER=1`.)

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    // The well-known types (Duration, Timestamp, FieldMask) ship beside the vendored protoc.
    let well_known = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "receivers",
        "deliveries",
        "repositories",
        "changesets",
        "events",
    ]
    .map(|name| PathBuf::from(format!("proto/hookgate/v1/{name}.proto")));
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("hookgate_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from("proto"), well_known])?;
    println!("cargo::rerun-if-changed=proto");
    println!("cargo::rustc-check-cfg=cfg(hookgate_postgres)");
    println!("cargo::rerun-if-env-changed=HOOKGATE_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CI");
    let has_url =
        std::env::var("HOOKGATE_TEST_DATABASE_URL").is_ok_and(|url| !url.trim().is_empty());
    if has_url || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=hookgate_postgres");
    }
    println!("cargo::rustc-check-cfg=cfg(hookgate_browser)");
    println!("cargo::rerun-if-env-changed=HOOKGATE_BROWSER");
    let driver = std::path::Path::new("/usr/bin/chromedriver");
    if driver.exists() {
        println!("cargo::rerun-if-changed=/usr/bin/chromedriver");
    }
    if driver.exists()
        || std::env::var_os("HOOKGATE_BROWSER").is_some()
        || std::env::var_os("CI").is_some()
    {
        println!("cargo::rustc-cfg=hookgate_browser");
    }
    Ok(())
}
