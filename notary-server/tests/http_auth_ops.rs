//! The server binary's operational behaviour, over real sockets: the request time limit
//! (slow headers and slow bodies get 408 and a closed connection), graceful shutdown on
//! SIGTERM (an upload in flight still gets its 200 and the process exits 0), and the
//! JSON access log with request IDs.
//!
//! Each test starts `notary-server` (the debug build Cargo made for this test) on its
//! own loopback port with the memory store and the local trust service, and kills it by
//! PID when done.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use notary_tuf::test_support::TestRepo;
use notary_tuf::PublicKey;
use serde_json::Value;

/// A running server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(port: u16, request_timeout_secs: u64) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.json");
        std::fs::write(
            &config,
            serde_json::json!({
                "server": {"http_addr": format!("127.0.0.1:{port}"),
                           "request_timeout_secs": request_timeout_secs},
                "trust_service": {"type": "local"},
                "storage": {"backend": "memory"},
                "logging": {"level": "info"}
            })
            .to_string(),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_notary-server"))
            .arg("-config")
            .arg(&config)
            .arg("-logf")
            .arg("json")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) =
                server.try_request("GET /_notary_server/health HTTP/1.1\r\nHost: x\r\n\r\n")
            {
                if r.starts_with("HTTP/1.1 200") {
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited early ({status}):\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(s)
    }

    /// Sends one request (with `Connection: close` semantics) and reads the whole answer.
    fn try_request(&self, raw: &str) -> std::io::Result<String> {
        let mut s = self.connect()?;
        let raw = raw.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
        s.write_all(raw.as_bytes())?;
        read_all(&mut s)
    }

    /// The log so far. Lines are written by the server's log thread, a moment after the
    /// request: read until the file has stopped growing (or 3 s passed).
    fn log(&self) -> String {
        let read =
            || std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut last = read();
        let mut stable = 0;
        while stable < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = read();
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
        }
        last
    }

    /// The JSON log lines.
    fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all(s: &mut TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split_once("\r\n\r\n")?.0;
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

#[test]
fn slow_clients_get_408_and_a_closed_connection() {
    let server = Server::start(24461, 2);

    // Body promised but never finished: the handler's time limit answers.
    let mut s = server.connect().unwrap();
    s.write_all(
        b"POST /v2/slow/body/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-body-1\r\n\
          Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n--B\r\n",
    )
    .unwrap();
    // read_to_end only returns once the server has closed the connection.
    let r = read_all(&mut s).unwrap();
    assert_eq!(status_line(&r), "HTTP/1.1 408 Request Timeout", "{r}");
    assert_eq!(header(&r, "x-request-id"), Some("slow-body-1"));
    let envelope: Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(envelope["errors"][0]["code"], "REQUEST_TIMEOUT");
    assert_eq!(envelope["errors"][0]["detail"]["limit_seconds"], 2);

    // Headers never finished: actix's header timeout answers.
    let mut s = server.connect().unwrap();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    let r = read_all(&mut s).unwrap();
    assert!(status_line(&r).starts_with("HTTP/1.1 408"), "{r}");

    // The server is still fine afterwards, and logged the timed-out request.
    let r = server
        .try_request("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(status_line(&r).starts_with("HTTP/1.1 200"), "{r}");
    let lines = server.log_lines();
    assert!(
        lines.iter().any(|l| l["msg"] == "response completed"
            && l["request_id"] == "slow-body-1"
            && l["status"] == 408
            && l["gun"] == "slow/body"),
        "no access-log line for the timed-out request:\n{}",
        server.log()
    );
    // Events logged while serving carry the request's ID too (through its span).
    assert!(
        lines
            .iter()
            .any(|l| l["msg"] == "request timed out" && l["request_id"] == "slow-body-1"),
        "the timeout warning lacks the request ID:\n{}",
        server.log()
    );
}

#[test]
fn access_log_has_one_json_line_per_request_with_its_id() {
    let server = Server::start(24463, 60);
    let r = server
        .try_request("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Request-Id: ops-ping-7\r\nUser-Agent: ops-test\r\n\r\n")
        .unwrap();
    assert!(status_line(&r).starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(header(&r, "x-request-id"), Some("ops-ping-7"));
    let r = server
        .try_request("GET /v2/docker.io/a/_trust/tuf/root.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(status_line(&r).starts_with("HTTP/1.1 404"), "{r}");
    let generated = header(&r, "x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 32);

    let lines = server.log_lines();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["msg"] == "response completed")
        .collect();
    let ping: Vec<&&Value> = access
        .iter()
        .filter(|l| l["request_id"] == "ops-ping-7")
        .collect();
    assert_eq!(ping.len(), 1, "{}", server.log());
    let ping = ping[0];
    assert_eq!(ping["level"], "info");
    assert_eq!(ping["method"], "GET");
    assert_eq!(ping["path"], "/v2/");
    assert_eq!(ping["status"], 200);
    assert_eq!(ping["gun"], "");
    assert_eq!(ping["user_agent"], "ops-test");
    assert!(ping["duration_us"].is_u64(), "{ping}");
    assert!(ping["time"].is_string());
    let miss: Vec<&&Value> = access
        .iter()
        .filter(|l| l["request_id"] == generated.as_str())
        .collect();
    assert_eq!(miss.len(), 1, "{}", server.log());
    assert_eq!(miss[0]["gun"], "docker.io/a");
    assert_eq!(miss[0]["status"], 404);
}

/// A multipart upload that creates a new repository on a server whose (local) trust
/// service holds the timestamp key.
fn first_upload(server: &Server, gun: &str) -> Vec<u8> {
    let r = server
        .try_request(&format!(
            "GET /v2/{gun}/_trust/tuf/timestamp.key HTTP/1.1\r\nHost: x\r\n\r\n"
        ))
        .unwrap();
    assert!(status_line(&r).starts_with("HTTP/1.1 200"), "{r}");
    let key = PublicKey::from_json_value(&serde_json::from_str(body(&r)).unwrap()).unwrap();
    let mut repo = TestRepo::new(gun);
    repo.set_role_key("timestamp", key);
    repo.add_target("targets", "v1", b"hello");
    let files = repo.build();
    let mut b = Vec::new();
    for (role, data) in [
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
        ("snapshot", &files.snapshot),
    ] {
        b.extend_from_slice(
            format!("--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--B--\r\n");
    b
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_then_exits_zero() {
    let mut server = Server::start(24462, 30);
    let gun = "example.com/shutdown";
    let upload = first_upload(&server, gun);
    let (first, rest) = upload.split_at(upload.len() / 2);

    let mut s = server.connect().unwrap();
    s.write_all(
        format!(
            "POST /v2/{gun}/_trust/tuf/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
            upload.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(first).unwrap();
    // Let the server start on the request before the signal arrives.
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited with a request in flight:\n{}",
        server.log()
    );
    s.write_all(rest).unwrap();
    let r = read_all(&mut s).unwrap();
    assert!(
        status_line(&r).starts_with("HTTP/1.1 200"),
        "{r}\n{}",
        server.log()
    );

    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("notary-server stopped"), "{log}");
    // Nothing listens any more.
    assert!(server.connect().is_err());
}
