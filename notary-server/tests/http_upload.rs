//! POST `/v2/{gun}/_trust/tuf/`: multipart parsing and its errors (spec §6.1,
//! §6.2), and the request body limit.

mod http_support;

use actix_web::test::TestRequest;
use http_support::*;

const GUN: &str = "docker.io/library/alpine";
const META: &[u8] = br#"{"signed":{"_type":"Targets","expires":"2099-01-01T00:00:00Z","version":1},"signatures":[{"keyid":"ab","method":"ecdsa","sig":"AAEC"}]}"#;

fn envelope(code: &str, message: &str, detail: Option<&str>) -> String {
    match detail {
        None => format!("{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message}\"}}]}}\n"),
        Some(d) => format!(
            "{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message}\",\"detail\":{d}}}]}}\n"
        ),
    }
}

fn malformed_upload() -> String {
    envelope(
        "MALFORMED_UPLOAD",
        "The body of your request is malformed.",
        None,
    )
}

fn post(content_type: &str, body: Vec<u8>) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/v2/{GUN}/_trust/tuf/"))
        .insert_header(("content-type", content_type))
        .set_payload(body)
}

fn form(parts: &[(&str, &[u8])]) -> TestRequest {
    post("multipart/form-data; boundary=XyZ", multipart("XyZ", parts))
}

async fn upload(req: TestRequest) -> Reply {
    let (state, _) = memory_state();
    call(state, req).await
}

#[actix_web::test]
async fn a_body_that_is_not_multipart_is_malformed_upload() {
    for (ct, body) in [
        ("application/json", META.to_vec()),
        ("text/plain", b"root".to_vec()),
        (
            "multipart/related; boundary=XyZ",
            multipart("XyZ", &[("form-data; filename=\"root\"", META)]),
        ),
        (
            "multipart/form-data",
            multipart("XyZ", &[("form-data; filename=\"root\"", META)]),
        ),
        ("not a media type", Vec::new()),
    ] {
        let r = upload(post(ct, body)).await;
        assert_eq!(r.status, 400, "{ct}");
        assert_eq!(r.text(), malformed_upload(), "{ct}");
        assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
    }
    let r = upload(TestRequest::post().uri(&format!("/v2/{GUN}/_trust/tuf/"))).await;
    assert_eq!(r.text(), malformed_upload(), "no Content-Type at all");
}

#[actix_web::test]
async fn a_broken_multipart_stream_is_malformed_upload() {
    let truncated = {
        let mut b = multipart("XyZ", &[("form-data; filename=\"targets\"", META)]);
        b.truncate(b.len() - 12);
        b
    };
    for body in [
        b"\x00\xff garbage garbage garbage".to_vec(),
        Vec::new(),
        b"--XyZ\r\nno header end".to_vec(),
        truncated,
    ] {
        let r = upload(post("multipart/form-data; boundary=XyZ", body)).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.text(), malformed_upload());
    }
}

#[actix_web::test]
async fn a_part_without_filename_is_no_filename() {
    for cd in [
        "form-data; name=\"files\"",
        "form-data; name=\"files\"; filename=\"\"",
        "form-data; filename=\".json\"",
    ] {
        let r = upload(form(&[(cd, META)])).await;
        assert_eq!(r.status, 400, "{cd}");
        assert_eq!(
            r.text(),
            envelope("NO_FILENAME", "No file/role name provided.", None),
            "{cd}"
        );
    }
}

#[actix_web::test]
async fn an_invalid_role_is_named_in_the_detail() {
    for (filename, role) in [
        ("foo", "foo"),
        ("Targets.json", "Targets"),
        ("targets/../x", "targets/../x"),
        ("targets/a.b", "targets/a.b"),
    ] {
        let cd = format!("form-data; name=\"files\"; filename=\"{filename}\"");
        let r = upload(form(&[(cd.as_str(), META)])).await;
        assert_eq!(r.status, 400, "{filename}");
        assert_eq!(
            r.text(),
            envelope(
                "INVALID_ROLE",
                "The role you are attempting to operate on is invalid.",
                Some(&format!("\"{role}\""))
            ),
            "{filename}"
        );
    }
}

#[actix_web::test]
async fn undecodable_metadata_is_malformed_json() {
    for data in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        br#"{"signed":{"version":"one"}}"#,
    ] {
        let r = upload(form(&[(
            "form-data; name=\"files\"; filename=\"root\"",
            data,
        )]))
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            envelope(
                "MALFORMED_JSON",
                "JSON sent by the client could not be parsed by the server",
                None
            )
        );
    }
}

#[actix_web::test]
async fn checks_stop_at_the_first_failing_part() {
    let r = upload(form(&[
        ("form-data; name=\"files\"; filename=\"root\"", b"broken"),
        ("form-data; name=\"files\"", META),
    ]))
    .await;
    assert_eq!(r.code(), "MALFORMED_JSON");
}

/// These parse, so they reach validation, which refuses a repository without a
/// root: the point is that they are not refused by the parser.
#[actix_web::test]
async fn well_formed_uploads_reach_validation() {
    type Parts<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(&str, Parts<'_>)> = vec![
        (
            "multipart/form-data; boundary=XyZ",
            vec![(
                "form-data; name=\"files\"; filename=\"targets/releases\"",
                META,
            )],
        ),
        (
            "multipart/form-data; boundary=XyZ",
            vec![("form-data; name=\"files\"; filename=\"targets.json\"", META)],
        ),
        (
            "multipart/form-data; boundary=XyZ",
            vec![
                ("form-data; filename=\"snapshot\"", META),
                ("form-data; name=\"x\"; filename=\"timestamp.json\"", META),
            ],
        ),
        (
            "multipart/mixed; boundary=XyZ",
            vec![("attachment; filename=\"targets\"", META)],
        ),
        (
            "Multipart/Form-Data; boundary=\"XyZ\"",
            vec![("form-data; filename=targets/a", META)],
        ),
    ];
    for (ct, parts) in cases {
        let r = upload(post(ct, multipart("XyZ", &parts))).await;
        assert_eq!(r.status, 400, "{ct} {parts:?}");
        assert_eq!(r.code(), "INVALID_UPDATE", "{ct} {parts:?}");
    }
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let body = multipart("XyZ", &[("form-data; filename=\"targets\"", META)]);
    let (mut state, _) = memory_state();
    state.max_request_bytes = (body.len() - 1) as u64;
    let r = call(
        state,
        post("multipart/form-data; boundary=XyZ", body.clone()),
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
    assert_eq!(
        r.text(),
        envelope(
            "REQUEST_TOO_LARGE",
            "The request body is larger than this server accepts.",
            Some(&format!("{{\"limit\":{}}}", body.len() - 1))
        )
    );

    // Exactly at the limit is fine (reaches validation).
    let (mut state, _) = memory_state();
    state.max_request_bytes = body.len() as u64;
    let r = call(state, post("multipart/form-data; boundary=XyZ", body)).await;
    assert_eq!(r.code(), "INVALID_UPDATE");
}
