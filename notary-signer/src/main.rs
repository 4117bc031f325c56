//! notary-signer: see the `notary_signer` library.

fn main() -> std::process::ExitCode {
    notary_signer::run()
}
