//! Rebuild when the embedded migrations change (`embed_migrations!` cannot tell cargo).

fn main() {
    println!("cargo:rerun-if-changed=../migrations/signer");
}
