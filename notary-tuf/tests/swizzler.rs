//! Each swizzler breaks a valid file in exactly the advertised way.

use chrono::{Duration, TimeZone as _, Utc};
use notary_tuf::keys::SignatureMethod;
use notary_tuf::test_support::{swizzle, TestRepo};
use notary_tuf::verify::RepoBuilder;
use notary_tuf::{SignedFile, TufError};

#[test]
fn swizzled_targets_fail_for_the_intended_reason() {
    let now = Utc.with_ymd_and_hms(2030, 6, 1, 0, 0, 0).unwrap();
    let r = TestRepo::new_at("example.com/swizzle", now);
    let root = r.root_file();
    let good = r.targets_file("targets");
    let load = |bytes: &[u8]| {
        let mut b = RepoBuilder::new("example.com/swizzle", now);
        b.load("root", &root, 1, false).unwrap();
        b.load("targets", bytes, 1, false)
    };
    load(&good).unwrap();
    load(&swizzle::add_whitespace(&good)).unwrap();
    assert_ne!(swizzle::add_whitespace(&good), good);

    assert!(SignedFile::parse(&swizzle::invalid_json(&good)).is_err());
    assert!(matches!(
        load(&swizzle::invalid_json(&good)),
        Err(TufError::Json(_))
    ));
    for broken in [
        swizzle::set_type(&good, "Root"),
        swizzle::bump_version(&good),
        swizzle::set_expires(&good, now + Duration::days(1)),
        swizzle::corrupt_signature(&good),
        swizzle::set_signature_method(&good, SignatureMethod::Eddsa),
        swizzle::set_signature_keyid(&good, &"0".repeat(64)),
    ] {
        assert!(
            matches!(load(&broken), Err(TufError::RoleThreshold(_))),
            "{}",
            String::from_utf8_lossy(&broken)
        );
    }
    assert_eq!(
        load(&swizzle::remove_signatures(&good)),
        Err(TufError::NoSignatures)
    );
    load(&swizzle::duplicate_signatures(&good)).unwrap();

    // The swizzlers really changed what they claim to change.
    let f = SignedFile::parse(&swizzle::bump_version(&good)).unwrap();
    assert_eq!(f.common.version, 2);
    let f = SignedFile::parse(&swizzle::set_type(&good, "Root")).unwrap();
    assert_eq!(f.common.type_, "Root");
    let f = SignedFile::parse(&swizzle::set_expires(&good, now)).unwrap();
    assert_eq!(f.common.expires, now);
    let f = SignedFile::parse(&swizzle::duplicate_signatures(&good)).unwrap();
    assert_eq!(f.signatures.len(), 2);
}
