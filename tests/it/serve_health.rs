//! `drover health` (a container's HEALTHCHECK) against a real `drover
//! serve`: 0 while it serves, 1 when nothing answers, something else
//! answers, or the answer does not come within --timeout.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::serve_common::*;

/// `drover health ARGS...`: its exit code and stderr.
fn health(args: &[&str], env: Option<&str>) -> (i32, String, String) {
    let mut cmd = drover();
    cmd.arg("health")
        .args(args)
        .env_remove("DROVER_HEALTH_ADDR");
    if let Some(addr) = env {
        cmd.env("DROVER_HEALTH_ADDR", addr);
    }
    let out = cmd.output().expect("run drover health");
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn a_serving_server_is_healthy_until_it_stops() {
    let state = tempfile::tempdir().unwrap();
    let server = Server::start(state.path(), &[], None);
    let addr = server.url.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    // HOST:PORT, a bare port, the unspecified address --listen takes, and
    // $DROVER_HEALTH_ADDR: each asks the same server.
    for args in [
        vec!["--addr", addr.as_str()],
        vec!["--addr", port.as_str()],
        vec!["--addr", &format!("0.0.0.0:{port}")],
    ] {
        let (code, out, err) = health(&args, None);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}: nothing on stdout");
    }
    let (code, _, err) = health(&[], Some(&addr));
    assert_eq!(code, 0, "$DROVER_HEALTH_ADDR: {err}");
    assert_eq!(server.stop(), 0);
    let (code, _, err) = health(&["--addr", &addr], None);
    assert_eq!(code, 1, "a stopped server: {err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn nothing_listening_is_unhealthy() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = health(&["--addr", &port.to_string()], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    let (code, _, err) = health(&["--addr", "not an address"], None);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn another_answer_than_200_is_unhealthy() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let n = conn.read(&mut request).unwrap();
        conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let (code, _, err) = health(&["--addr", &addr], None);
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request:?}"
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("503"), "{err}");
}

#[test]
fn a_server_that_does_not_answer_is_unhealthy_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepted (the kernel's backlog), never answered.
    let started = Instant::now();
    let (code, _, err) = health(&["--addr", &addr, "--timeout", "300ms"], None);
    let took = started.elapsed();
    drop(listener);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no answer within 300ms"), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
