//! Issue 13 (3): decoding a metadata file takes memory for one decoded copy of it, not
//! two. `SignedFile::parse` used to clone `signed` (most of the file) out of the decoded
//! envelope while the envelope was still alive.
//!
//! This binary counts every allocation (its own global allocator), so it holds one test
//! only: nothing else may allocate while it measures.

use notary_tuf::SignedFile;
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Peak bytes allocated while `f` runs, above what was live when it started.
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let base = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    drop(f());
    ALLOCATOR.peak_usage() - base
}

#[test]
fn parse_holds_one_decoded_copy() {
    // 2^17 short strings: `signed` is nearly the whole file.
    let items = vec!["\"abcdefgh\""; 1 << 17].join(",");
    let bytes = format!(
        r#"{{"signed":{{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":1,"x":[{items}]}},"signatures":[]}}"#
    )
    .into_bytes();

    let one_value = peak_of(|| serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
    let parse = peak_of(|| SignedFile::parse(&bytes).unwrap());
    // One decoded copy plus `raw` (the file's bytes) and a little slack; a second copy of
    // `signed` adds about 40 bytes per 11-byte item (a `Value` and its string).
    let allowed = one_value + bytes.len() + bytes.len() / 4;
    assert!(
        parse <= allowed,
        "parse peaked at {parse} bytes; one decoded Value peaks at {one_value}, file {} bytes",
        bytes.len()
    );
}
