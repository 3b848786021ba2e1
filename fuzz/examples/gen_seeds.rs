//! Writes the seed corpus to `fuzz/seeds/<target>/<name>`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, name, data) in herald_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), &data)?;
        println!("{target}/{name}: {} bytes", data.len());
    }
    Ok(())
}
