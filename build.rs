//! Compiles the admin API in proto/ with a protoc shipped as a crate, so a build needs nothing
//! installed on the machine. `$PROTOC`, when set, wins.

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
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
