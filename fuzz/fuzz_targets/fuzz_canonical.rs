//! Fuzz target `canonical`: see `notary_fuzz::canonical`. A libFuzzer target under `cargo fuzz`,
//! otherwise the stand-alone driver (`notary_fuzz::driver`).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| notary_fuzz::canonical(data));

#[cfg(not(fuzzing))]
fn main() {
    notary_fuzz::driver::main("canonical", notary_fuzz::canonical);
}
