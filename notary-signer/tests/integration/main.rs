//! Integration tests of notary-signer: key stores on SQLite and MySQL, Go JWE vectors, and
//! the gRPC server with real mutual TLS. One test binary keeps link time down.
//!
//! MySQL variants need `NOTARY_TEST_MYSQL_URL` (e.g.
//! `mysql://notary_test:notary_test_pw@127.0.0.1:3306`); each test creates and drops a
//! randomly named database. Without the variable they print a skip notice and pass.
//! The PKCS#11 tests ([`pkcs11`]) run signer processes on SoftHSM2 tokens.

mod cli;
mod go_vectors;
mod grpc;
mod keystore;
mod pkcs11;
mod support;
