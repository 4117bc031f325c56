//! Fuzz target `token`: see `notary_fuzz::token`. A libFuzzer target under `cargo fuzz`,
//! otherwise the stand-alone driver (`notary_fuzz::driver`).
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| notary_fuzz::token(data));

#[cfg(not(fuzzing))]
fn main() {
    notary_fuzz::driver::main("token", notary_fuzz::token);
}
