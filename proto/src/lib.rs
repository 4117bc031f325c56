//! The notary-signer gRPC wire definition (Go package `proto`).
//!
//! `signer.proto` keeps Go Notary's package, service, method and message names and field
//! numbers, so the generated client talks to a Go signer and the generated server answers a
//! Go notary-server. prost renames mixed-case fields (`keyID` becomes `key_id`, `ID` becomes
//! `id`); the wire format is unaffected.
//!
//! The code is generated at build time by `build.rs` with `protox` (no system `protoc`).

#![allow(missing_docs)] // The generated items carry the comments of signer.proto.

/// Messages and the `KeyManagement` / `Signer` clients and servers.
pub mod proto {
    tonic::include_proto!("proto");
}

pub use proto::*;

/// Encoded `FileDescriptorSet` of `signer.proto`, e.g. for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("signer_descriptor");

/// Full gRPC method paths, as the Go implementation names them.
pub mod paths {
    /// `KeyManagement.CreateKey`.
    pub const CREATE_KEY: &str = "/proto.KeyManagement/CreateKey";
    /// `KeyManagement.DeleteKey`.
    pub const DELETE_KEY: &str = "/proto.KeyManagement/DeleteKey";
    /// `KeyManagement.GetKeyInfo`.
    pub const GET_KEY_INFO: &str = "/proto.KeyManagement/GetKeyInfo";
    /// `Signer.Sign`.
    pub const SIGN: &str = "/proto.Signer/Sign";
}

/// Health-check service names the Go notary-server asks the signer about.
pub mod health_names {
    /// Checked by notary-server every 10 s; must be `SERVING`.
    pub const KEY_MANAGEMENT: &str = "grpc.health.v1.Health.KeyManagement";
    /// Checked by notary-server every 10 s; must be `SERVING`.
    pub const SIGNER: &str = "grpc.health.v1.Health.Signer";
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_match_go() {
        // SignatureRequest{keyID: {ID: "ab"}, content: [1]}: field 1 (len-delimited) holds
        // KeyID whose field 1 holds "ab"; field 2 holds the content.
        let req = SignatureRequest {
            key_id: Some(KeyId { id: "ab".into() }),
            content: vec![1],
        };
        assert_eq!(
            req.encode_to_vec(),
            vec![0x0a, 0x04, 0x0a, 0x02, b'a', b'b', 0x12, 0x01, 0x01]
        );
        let create = CreateKeyRequest {
            algorithm: "a".into(),
            gun: "g".into(),
            role: "r".into(),
        };
        assert_eq!(
            create.encode_to_vec(),
            vec![0x0a, 1, b'a', 0x12, 1, b'g', 0x1a, 1, b'r']
        );
        let info = GetKeyInfoResponse {
            key_info: None,
            public_key: vec![7],
            role: "x".into(),
        };
        assert_eq!(info.encode_to_vec(), vec![0x12, 1, 7, 0x1a, 1, b'x']);
    }

    #[test]
    fn descriptor_declares_package_proto() {
        // FileDescriptorProto field 2 (package) = "proto": tag 0x12, length 5.
        let needle = [&[0x12u8, 5][..], b"proto"].concat();
        assert!(FILE_DESCRIPTOR_SET
            .windows(needle.len())
            .any(|w| w == needle.as_slice()));
        for service in ["KeyManagement", "Signer"] {
            assert!(FILE_DESCRIPTOR_SET
                .windows(service.len())
                .any(|w| w == service.as_bytes()));
        }
    }
}
