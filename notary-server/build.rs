//! Rebuild when the embedded SQL migrations change: `embed_migrations!` reads
//! them at compile time, and cargo does not track those files by itself.
fn main() {
    println!("cargo:rerun-if-changed=../migrations/server");
}
