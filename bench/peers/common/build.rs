// Build script shared by the Rust peers: exposes the resolved version (from the
// peer's Cargo.lock) of the crate the peer measures as PEER_CRATE_VERSION. The
// crate is the peer's package name without "-bench" (rdkafka-bench -> rdkafka).
fn main() {
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let wanted = format!("name = \"{}\"", pkg.trim_end_matches("-bench"));
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_pkg = false;
    for line in lock.lines() {
        if line == wanted {
            in_pkg = true;
        } else if in_pkg && line.starts_with("version = ") {
            version = line.trim_start_matches("version = ").trim_matches('"').to_string();
            break;
        } else if line.is_empty() {
            in_pkg = false;
        }
    }
    println!("cargo:rustc-env=PEER_CRATE_VERSION={version}");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
