//! Metadata GETs: ETags and `If-None-Match` (304), gzip negotiation, `Vary`, and that each
//! file is compressed once (spec additions; see `notary_server::http::conditional`).

mod http_support;

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use actix_web::test::{self, TestRequest};
use actix_web::web;
use http_support::*;
use notary_server::cache::CacheOptions;
use notary_server::http::conditional::GZIP_MIN_BYTES;
use notary_server::http::AppState;
use notary_server::storage::{MetaStore, MetaUpdate, SqlStore};
use notary_tuf::crypto::{CryptoService, MemoryCryptoService};
use notary_tuf::keys::KeyType;
use notary_tuf::test_support::{RepoFiles, TestRepo};

const GUN: &str = "docker.io/library/alpine";

/// State on a SQLite store with its cache (what production runs), which is where gzip
/// variants are remembered.
fn cached_state() -> (AppState, Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
    store.run_migrations().unwrap();
    let store = store.with_cache(CacheOptions {
        poll_interval: Duration::ZERO,
        max_staleness: Duration::from_secs(3600),
        ..CacheOptions::default()
    });
    store.sync_cache().unwrap();
    let store = Arc::new(store);
    let crypto: Arc<dyn CryptoService> = Arc::new(MemoryCryptoService::new());
    let state = AppState::new(store.clone(), crypto, KeyType::Ecdsa);
    (state, store, dir)
}

/// A signed repository whose targets file lists `targets` entries; stored at version 1.
async fn publish(store: &dyn MetaStore, targets: usize) -> RepoFiles {
    let mut repo = TestRepo::new(GUN);
    for i in 0..targets {
        repo.add_target("targets", &format!("target-{i}"), format!("{i}").as_bytes());
    }
    let files = repo.build();
    let updates = [
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
        ("snapshot", &files.snapshot),
        ("timestamp", &files.timestamp),
    ]
    .into_iter()
    .map(|(role, data)| MetaUpdate {
        role: role.into(),
        version: 1,
        data: data.clone(),
    })
    .collect();
    store.update_many(GUN, updates).await.unwrap();
    files
}

fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/{path}"))
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn quoted(sha: &str, suffix: &str) -> String {
    format!("\"{sha}{suffix}\"")
}

/// The headers a 304 must keep from the 200.
const KEPT: [&str; 5] = ["etag", "cache-control", "last-modified", "vary", "pragma"];

#[actix_web::test]
async fn etag_and_not_modified_on_every_route_form() {
    let (state, store) = memory_state();
    let s = seed(store.as_ref(), GUN, 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let root_sha = sha256_hex(&s.root);
    for (path, data) in [
        ("root.json".to_string(), &s.root),
        (format!("root.{root_sha}.json"), &s.root),
        ("1.root.json".to_string(), &s.root),
        ("timestamp.json".to_string(), &s.timestamp),
        ("snapshot.json".to_string(), &s.snapshot),
    ] {
        let tag = quoted(&sha256_hex(data), "");
        let full = send(&app, get(&path).to_request()).await;
        assert_eq!(full.status, 200, "{path}");
        assert_eq!(&full.body, data, "{path}");
        assert_eq!(full.header("etag"), Some(tag.as_str()), "{path}");
        assert_eq!(full.header("vary"), Some("Accept-Encoding"), "{path}");
        assert_eq!(full.header("content-encoding"), None, "{path}");

        for inm in [
            tag.clone(),
            format!("W/{tag}"),
            "*".to_string(),
            format!("\"other\", {tag}"),
            format!("W/\"x\",W/{tag}"),
        ] {
            let r = send(
                &app,
                get(&path)
                    .insert_header(("if-none-match", inm.as_str()))
                    .to_request(),
            )
            .await;
            assert_eq!(r.status, 304, "{path} {inm}");
            assert!(r.body.is_empty(), "{path} {inm}");
            for name in KEPT {
                assert_eq!(r.header(name), full.header(name), "{path} {inm}: {name}");
            }
            assert_eq!(r.header("content-type"), None, "{path}");
        }
        for inm in [
            quoted(&sha256_hex(data), "-gzip"),
            quoted(&sha256_hex(b"other"), ""),
            sha256_hex(data),
            format!("{tag}junk"),
        ] {
            let r = send(
                &app,
                get(&path)
                    .insert_header(("if-none-match", inm.as_str()))
                    .to_request(),
            )
            .await;
            assert_eq!(r.status, 200, "{path} {inm}");
            assert_eq!(&r.body, data, "{path} {inm}");
            assert_eq!(r.header("etag"), Some(tag.as_str()));
        }
    }
    // Errors carry neither ETag nor Vary, and If-None-Match: * does not turn a 404 into 304.
    let r = send(
        &app,
        get("2.root.json")
            .insert_header(("if-none-match", "*"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("etag"), None);
    assert_eq!(r.header("vary"), None);
}

#[actix_web::test]
async fn not_modified_keeps_the_no_cache_headers() {
    let (mut state, store) = memory_state();
    state.caching.current_max_age = 0;
    let s = seed(store.as_ref(), GUN, 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let full = send(&app, get("root.json").to_request()).await;
    let r = send(
        &app,
        get("root.json")
            .insert_header(("if-none-match", quoted(&sha256_hex(&s.root), "")))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("pragma"), Some("no-cache"));
    for name in KEPT {
        assert_eq!(r.header(name), full.header(name), "{name}");
    }
}

#[actix_web::test]
async fn gzip_on_every_route_form_when_accepted() {
    let (state, store, _dir) = cached_state();
    let files = publish(store.as_ref(), 100).await;
    let targets = &files.targets["targets"];
    assert!(targets.len() > 10 * GZIP_MIN_BYTES);
    let sha = sha256_hex(targets);
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let (plain_tag, gzip_tag) = (quoted(&sha, ""), quoted(&sha, "-gzip"));
    for path in [
        "targets.json".to_string(),
        format!("targets.{sha}.json"),
        "1.targets.json".to_string(),
    ] {
        for accept in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1, gzip;q=0.5",
            "*",
            "x-gzip",
        ] {
            let r = send(
                &app,
                get(&path)
                    .insert_header(("accept-encoding", accept))
                    .to_request(),
            )
            .await;
            assert_eq!(r.status, 200, "{path} {accept}");
            assert_eq!(
                r.header("content-encoding"),
                Some("gzip"),
                "{path} {accept}"
            );
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            assert_eq!(r.header("etag"), Some(gzip_tag.as_str()));
            assert_eq!(r.header("content-type"), Some("application/json"));
            // Hashes are random and do not compress; the JSON around them does.
            assert!(
                r.body.len() < targets.len() / 10 * 7,
                "{path}: {}",
                r.body.len()
            );
            assert_eq!(
                &gunzip(&r.body),
                targets,
                "{path} {accept}: exact stored bytes"
            );
        }
        for accept in [
            None,
            Some(""),
            Some("identity"),
            Some("gzip;q=0"),
            Some("deflate, br"),
            Some("gzip;q=0.5, identity"),
            Some("*;q=0"),
        ] {
            let mut req = get(&path);
            if let Some(accept) = accept {
                req = req.insert_header(("accept-encoding", accept));
            }
            let r = send(&app, req.to_request()).await;
            assert_eq!(r.status, 200, "{path} {accept:?}");
            assert_eq!(r.header("content-encoding"), None, "{path} {accept:?}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            assert_eq!(r.header("etag"), Some(plain_tag.as_str()));
            assert_eq!(&r.body, targets, "{path} {accept:?}");
        }

        // If-None-Match against the variant the request would get.
        let conditional = |accept: Option<&str>, inm: &str| {
            let mut req = get(&path).insert_header(("if-none-match", inm.to_string()));
            if let Some(accept) = accept {
                req = req.insert_header(("accept-encoding", accept.to_string()));
            }
            req.to_request()
        };
        let r = send(&app, conditional(Some("gzip"), &gzip_tag)).await;
        assert_eq!(r.status, 304, "{path}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(gzip_tag.as_str()));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(r.header("cache-control").is_some() && r.header("last-modified").is_some());
        let r = send(&app, conditional(Some("gzip"), &format!("W/{gzip_tag}"))).await;
        assert_eq!(r.status, 304, "{path}");
        let r = send(&app, conditional(Some("gzip"), &plain_tag)).await;
        assert_eq!(r.status, 200, "{path}: identity tag, gzip variant");
        assert_eq!(r.header("etag"), Some(gzip_tag.as_str()));
        assert_eq!(&gunzip(&r.body), targets);
        let both = format!("{plain_tag}, {gzip_tag}");
        let r = send(&app, conditional(Some("gzip"), &both)).await;
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some(gzip_tag.as_str()));
        let r = send(&app, conditional(None, &both)).await;
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some(plain_tag.as_str()));
        let r = send(&app, conditional(None, &gzip_tag)).await;
        assert_eq!(r.status, 200, "{path}: gzip tag, identity variant");
        assert_eq!(r.header("etag"), Some(plain_tag.as_str()));
        assert_eq!(&r.body, targets);
        let r = send(&app, conditional(Some("gzip;q=0"), &plain_tag)).await;
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some(plain_tag.as_str()));
    }
}

#[actix_web::test]
async fn small_files_are_not_compressed() {
    let (state, store, _dir) = cached_state();
    let files = publish(store.as_ref(), 0).await;
    assert!(
        files.timestamp.len() < GZIP_MIN_BYTES,
        "{}",
        files.timestamp.len()
    );
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let tag = quoted(&sha256_hex(&files.timestamp), "");
    for path in ["timestamp.json", "1.timestamp.json"] {
        let r = send(
            &app,
            get(path)
                .insert_header(("accept-encoding", "gzip"))
                .to_request(),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path}");
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert_eq!(r.body, files.timestamp);
    }
    // The root (certificates, signatures) is above the threshold.
    assert!(files.root.len() >= GZIP_MIN_BYTES);
    let r = send(
        &app,
        get("root.json")
            .insert_header(("accept-encoding", "gzip"))
            .to_request(),
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), files.root);
}

#[actix_web::test]
async fn a_store_without_a_cache_does_not_compress() {
    // Compressing on every request would cost more than it saves: the memory store (tests,
    // demos) has no cache to remember the result in, so it sends the identity encoding.
    let (state, store) = memory_state();
    let files = publish(store.as_ref(), 100).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let r = send(
        &app,
        get("targets.json")
            .insert_header(("accept-encoding", "gzip"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, files.targets["targets"]);
}

#[actix_web::test]
async fn each_file_is_compressed_once() {
    let (state, store, _dir) = cached_state();
    let files = publish(store.as_ref(), 100).await;
    let cache = store.cache().unwrap();
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let targets = &files.targets["targets"];
    let sha = sha256_hex(targets);
    let gz = |path: String| {
        get(&path)
            .insert_header(("accept-encoding", "gzip"))
            .to_request()
    };
    assert_eq!(cache.stats().gzip_compressions, 0);
    let before = cache.stats().bytes;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        for path in [
            "targets.json".to_string(),
            format!("targets.{sha}.json"),
            "1.targets.json".to_string(),
        ] {
            let r = send(&app, gz(path)).await;
            assert_eq!(r.header("content-encoding"), Some("gzip"));
            bodies.push(r.body);
        }
    }
    assert_eq!(
        cache.stats().gzip_compressions,
        1,
        "one file, nine requests"
    );
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "the same bytes each time"
    );
    // The variant is accounted in the cache's memory budget.
    let after = cache.stats().bytes;
    assert!(after >= before + bodies[0].len(), "{before} -> {after}");
    // A 304 and an identity answer compress nothing.
    let r = send(
        &app,
        get("targets.json")
            .insert_header(("accept-encoding", "gzip"))
            .insert_header(("if-none-match", quoted(&sha, "-gzip")))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 304);
    send(&app, get("root.json").to_request()).await;
    assert_eq!(cache.stats().gzip_compressions, 1);
    // Another file is compressed once as well.
    for _ in 0..3 {
        send(&app, gz("root.json".into())).await;
    }
    assert_eq!(cache.stats().gzip_compressions, 2);

    // A new targets version: compressed once; the old one's variant leaves with it.
    let mut repo_targets: serde_json::Value = serde_json::from_slice(targets).unwrap();
    repo_targets["signed"]["version"] = 2.into();
    let newer = serde_json::to_vec(&repo_targets).unwrap();
    store
        .update_many(
            GUN,
            vec![MetaUpdate {
                role: "targets".into(),
                version: 2,
                data: newer.clone(),
            }],
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let r = send(&app, gz("2.targets.json".into())).await;
        assert_eq!(gunzip(&r.body), newer);
    }
    assert_eq!(cache.stats().gzip_compressions, 3);
    // Version 1 left the cache with its variant: read from the database again, it is
    // compressed again (once) when asked for.
    for _ in 0..2 {
        let r = send(&app, gz("1.targets.json".into())).await;
        assert_eq!(gunzip(&r.body), *targets);
    }
    assert_eq!(cache.stats().gzip_compressions, 4);
}

#[actix_web::test]
async fn concurrent_first_requests_compress_once() {
    let (state, store, _dir) = cached_state();
    let files = publish(store.as_ref(), 100).await;
    let targets = &files.targets["targets"];
    let sha = sha256_hex(targets);
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let requests = (0..16).map(|i| {
        let path = match i % 3 {
            0 => "targets.json".to_string(),
            1 => format!("targets.{sha}.json"),
            _ => "1.targets.json".to_string(),
        };
        send(
            &app,
            get(&path)
                .insert_header(("accept-encoding", "gzip"))
                .to_request(),
        )
    });
    let replies = futures_util::future::join_all(requests).await;
    assert_eq!(store.cache().unwrap().stats().gzip_compressions, 1);
    // While the first compresses, the others get the identity encoding, with its own ETag.
    for r in replies {
        assert_eq!(r.status, 200);
        match r.header("content-encoding") {
            Some("gzip") => {
                assert_eq!(r.header("etag"), Some(quoted(&sha, "-gzip").as_str()));
                assert_eq!(&gunzip(&r.body), targets);
            }
            None => {
                assert_eq!(r.header("etag"), Some(quoted(&sha, "").as_str()));
                assert_eq!(&r.body, targets);
            }
            other => panic!("{other:?}"),
        }
    }
    let r = send(
        &app,
        get("targets.json")
            .insert_header(("accept-encoding", "gzip"))
            .to_request(),
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(store.cache().unwrap().stats().gzip_compressions, 1);
}

/// Bytes on the wire (status line, headers and body, over a real socket) of a
/// `targets.json` listing 10,000 targets, with and without gzip. Run with `--nocapture`
/// to see the figures.
#[actix_web::test]
async fn wire_bytes_of_a_10000_target_targets_json() {
    let (state, store, _dir) = cached_state();
    let files = publish(store.as_ref(), 10_000).await;
    let targets = files.targets["targets"].clone();
    let data = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || notary_server::build_app(data.clone()))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    // A plain socket, so that every byte is counted (blocking: off the runtime's thread).
    let fetch = |accept: Option<&'static str>| async move {
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let accept = accept
                .map(|a| format!("Accept-Encoding: {a}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "GET /v2/{GUN}/_trust/tuf/targets.json HTTP/1.1\r\nHost: notary\r\n\
                 User-Agent: Go-http-client/1.1\r\n{accept}Connection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).unwrap();
            let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let body = response[split..].to_vec();
            (request.len(), response.len(), body)
        })
        .await
        .unwrap()
    };
    let (_, identity_bytes, identity_body) = fetch(None).await;
    assert_eq!(identity_body, targets);
    let (request_bytes, gzip_bytes, gzip_body) = fetch(Some("gzip")).await;
    assert_eq!(gunzip(&gzip_body), targets);
    handle.stop(true).await;

    let fast = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &targets).unwrap();
        e.finish().unwrap().len()
    };
    println!(
        "targets.json with 10000 targets: {} bytes stored; response on the wire: \
         {identity_bytes} bytes identity, {gzip_bytes} bytes gzip ({:.1}%, best \
         compression; level 1 would give a {fast}-byte body); request {request_bytes} bytes",
        targets.len(),
        100.0 * gzip_bytes as f64 / identity_bytes as f64,
    );
    // The docker CLI lists only a sha256 per target: less random data, better ratio.
    let mut repo = TestRepo::new(GUN);
    for i in 0..10_000 {
        repo.add_target("targets", &format!("target-{i}"), format!("{i}").as_bytes());
    }
    for meta in repo
        .targets
        .get_mut("targets")
        .unwrap()
        .targets
        .values_mut()
    {
        meta.hashes.remove("sha512");
    }
    let sha256_only = repo.targets_file("targets");
    let gz = notary_server::http::conditional::gzip(&sha256_only).unwrap();
    println!(
        "same with sha256 only (docker trust sign): {} bytes, gzip body {} bytes ({:.1}%)",
        sha256_only.len(),
        gz.len(),
        100.0 * gz.len() as f64 / sha256_only.len() as f64,
    );
    assert!(targets.len() > 1_500_000, "{}", targets.len());
    assert!(
        gzip_bytes < identity_bytes / 10 * 6,
        "{gzip_bytes} vs {identity_bytes}"
    );
}
