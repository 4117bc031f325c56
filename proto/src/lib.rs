//! signer.proto
