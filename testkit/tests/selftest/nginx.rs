//! The nginx harness against the real binary, with raw requests over std TCP
//! and rustls: every listener kind, every served path, the keep-alive options
//! and the accepted-connections count.
//!
//! Each test returns early with a message when nginx is not installed, unless
//! `MUXPOOL_REQUIRE_NGINX` is set (CI sets it), in which case it fails.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use muxpool_testkit::certs::{self, Ca};
use muxpool_testkit::h2_frames::{Frame, MAX_CONCURRENT_STREAMS, PREFACE};
use muxpool_testkit::nginx::{self, Nginx, NginxOptions, Stop, BYTES_SIZES, CHUNKED_BODY, HELLO};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

/// A response read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// How many chunks a chunked body came in (0 if not chunked).
    chunks: usize,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `body` as one HTTP/1.1 request on `stream`.
fn send(stream: &mut impl Write, method: &str, path: &str, body: &[u8]) -> io::Result<()> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    stream.flush()
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one response (framed by Content-Length or chunked) from `reader`.
fn receive(reader: &mut impl BufRead) -> io::Result<Response> {
    let status_line = read_line(reader)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header line has a colon");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        chunks: 0,
    };
    if response.header("transfer-encoding") == Some("chunked") {
        loop {
            let size_line = read_line(reader)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .map_err(|e| io::Error::other(format!("chunk size {size_line:?}: {e}")))?;
            if size == 0 {
                assert_eq!(read_line(reader)?, "", "no trailers expected");
                break;
            }
            response.chunks += 1;
            let start = response.body.len();
            response.body.resize(start + size, 0);
            reader.read_exact(&mut response.body[start..])?;
            assert_eq!(read_line(reader)?, "", "CRLF after chunk data");
        }
    } else {
        let len: usize = response
            .header("content-length")
            .expect("a response framed by Content-Length or chunked")
            .parse()
            .unwrap();
        response.body.resize(len, 0);
        reader.read_exact(&mut response.body)?;
    }
    Ok(response)
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(stream)
}

/// One request on a new connection to `port`.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> Response {
    let mut conn = connect(port);
    send(conn.get_mut(), method, path, body).expect("send");
    receive(&mut conn).expect("receive")
}

fn start(options: NginxOptions) -> Nginx {
    Nginx::start(options).unwrap_or_else(|e| panic!("starting nginx: {e}"))
}

/// A directory for certificate files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("muxpool-nginx-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// nginx with a TLS listener whose certificate `ca` issued for localhost and
/// 127.0.0.1.
fn start_tls(ca: &Ca, dir: &TempDir, h2: bool) -> Nginx {
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    start(NginxOptions {
        tls: Some(leaf.write_pem(&dir.0)),
        h2,
        ..NginxOptions::default()
    })
}

fn tls_connect(
    ca: &Ca,
    port: u16,
    alpn: &[&[u8]],
) -> BufReader<StreamOwned<ClientConnection, TcpStream>> {
    let config = certs::client_config(ca, alpn);
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = ClientConnection::new(Arc::clone(&config), name).unwrap();
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    BufReader::new(stream)
}

#[test]
fn plain_serves_hello_bytes_and_404() {
    if !nginx::available_or_skip("plain_serves_hello_bytes_and_404") {
        return;
    }
    let server = start(NginxOptions::default());
    let port = server.http_port().unwrap();
    assert_eq!(server.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(server.https_port(), None);
    assert_eq!(server.h2c_port(), None);

    let hello = request(port, "GET", "/", b"");
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("content-length"), Some("6"));
    assert_eq!(hello.body, HELLO.as_bytes());

    // All sizes on one keep-alive connection.
    let mut conn = connect(port);
    for n in BYTES_SIZES {
        send(conn.get_mut(), "GET", &format!("/bytes/{n}"), b"").unwrap();
        let response = receive(&mut conn).unwrap();
        assert_eq!(response.status, 200, "/bytes/{n}");
        assert_eq!(
            response.header("content-length"),
            Some(n.to_string().as_str())
        );
        assert!(response.body == nginx::pattern(n), "/bytes/{n} content");
    }
    assert_eq!(request(port, "GET", "/nope", b"").status, 404);
    assert_eq!(request(port, "GET", "/bytes/7", b"").status, 404);
}

#[test]
fn chunked_comes_in_three_chunks() {
    if !nginx::available_or_skip("chunked_comes_in_three_chunks") {
        return;
    }
    let server = start(NginxOptions::default());
    let response = request(server.http_port().unwrap(), "GET", "/chunked", b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.body, CHUNKED_BODY.as_bytes());
    assert_eq!(response.chunks, 3);
}

#[test]
fn echo_returns_the_request_body() {
    if !nginx::available_or_skip("echo_returns_the_request_body") {
        return;
    }
    let server = start(NginxOptions::default());
    let port = server.http_port().unwrap();
    let mut conn = connect(port);
    // Empty, a few KiB, and one past the in-memory limit (buffered to a file).
    for len in [0, 5000, nginx::ECHO_MEMORY_BODY + 4096] {
        let body = nginx::pattern(len);
        send(conn.get_mut(), "POST", "/echo", &body).unwrap();
        let response = receive(&mut conn).unwrap();
        assert_eq!(response.status, 200, "echo of {len} bytes");
        assert!(response.body == body, "echo of {len} bytes differs");
    }
}

#[test]
fn accepted_connections_counts_only_the_callers() {
    if !nginx::available_or_skip("accepted_connections_counts_only_the_callers") {
        return;
    }
    let server = start(NginxOptions::default());
    assert_eq!(server.accepted_connections().unwrap(), 0);
    assert_eq!(server.accepted_connections().unwrap(), 0, "status requests");

    let port = server.http_port().unwrap();
    let mut conns: Vec<_> = (0..3).map(|_| connect(port)).collect();
    for conn in &mut conns {
        for _ in 0..2 {
            send(conn.get_mut(), "GET", "/", b"").unwrap();
            assert_eq!(receive(conn).unwrap().status, 200);
        }
    }
    assert_eq!(server.accepted_connections().unwrap(), 3);
    let status = server.status().unwrap();
    assert_eq!(status.waiting, 3, "three idle keep-alive connections");
    assert_eq!(status.active, 4, "three idle plus the status request");
    drop(conns);
    request(port, "GET", "/", b"");
    assert_eq!(server.accepted_connections().unwrap(), 4);
}

#[test]
fn tls_serves_http1_and_offers_h2() {
    if !nginx::available_or_skip("tls_serves_http1_and_offers_h2") {
        return;
    }
    let ca = Ca::new("muxpool nginx test CA");
    let dir = TempDir::new("tls");
    let server = start_tls(&ca, &dir, true);
    let port = server.https_port().unwrap();
    assert_eq!(server.https_base_url(), format!("https://127.0.0.1:{port}"));

    let mut conn = tls_connect(&ca, port, &[b"http/1.1"]);
    assert_eq!(conn.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    for path in ["/", "/bytes/65536", "/chunked"] {
        send(conn.get_mut(), "GET", path, b"").unwrap();
        let response = receive(&mut conn).unwrap();
        assert_eq!(response.status, 200, "{path} over TLS");
        let expected = match path {
            "/" => HELLO.as_bytes().to_vec(),
            "/chunked" => CHUNKED_BODY.as_bytes().to_vec(),
            _ => nginx::pattern(65536),
        };
        assert!(response.body == expected, "{path} over TLS");
    }

    let conn = tls_connect(&ca, port, &[b"h2", b"http/1.1"]);
    assert_eq!(conn.get_ref().conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(server.accepted_connections().unwrap(), 2);
}

#[test]
fn tls_without_h2_refuses_h2() {
    if !nginx::available_or_skip("tls_without_h2_refuses_h2") {
        return;
    }
    let ca = Ca::new("muxpool nginx test CA");
    let dir = TempDir::new("tls-h1");
    let server = start_tls(&ca, &dir, false);
    let conn = tls_connect(&ca, server.https_port().unwrap(), &[b"h2", b"http/1.1"]);
    assert_eq!(conn.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// Reads HTTP/2 frames until the server's first SETTINGS frame and returns its
/// settings as (identifier, value) pairs.
fn read_server_settings(stream: &mut impl Read) -> Vec<(u16, u32)> {
    let mut buf = Vec::new();
    loop {
        while let Some((frame, len)) = Frame::decode(&buf).unwrap() {
            buf.drain(..len);
            if let Frame::Settings { ack: false, params } = frame {
                return params;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed before its SETTINGS");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn h2c_speaks_http2_with_the_configured_stream_limit() {
    if !nginx::available_or_skip("h2c_speaks_http2_with_the_configured_stream_limit") {
        return;
    }
    let server = start(NginxOptions {
        plain: false,
        h2c: true,
        http2_max_concurrent_streams: Some(7),
        ..NginxOptions::default()
    });
    assert_eq!(server.http_port(), None);
    let port = server.h2c_port().unwrap();
    assert_eq!(server.h2c_base_url(), format!("http://127.0.0.1:{port}"));
    let mut conn = connect(port);
    // The preface and an empty SETTINGS frame.
    let mut hello = PREFACE.to_vec();
    hello.extend(
        Frame::Settings {
            ack: false,
            params: Vec::new(),
        }
        .encode(),
    );
    conn.get_mut().write_all(&hello).unwrap();
    let settings = read_server_settings(&mut conn);
    assert!(
        settings.contains(&(MAX_CONCURRENT_STREAMS, 7)),
        "server settings {settings:?} lack MAX_CONCURRENT_STREAMS = 7"
    );
    assert_eq!(server.accepted_connections().unwrap(), 1);
}

#[test]
fn keepalive_requests_closes_after_the_limit() {
    if !nginx::available_or_skip("keepalive_requests_closes_after_the_limit") {
        return;
    }
    let server = start(NginxOptions {
        keepalive_requests: Some(2),
        ..NginxOptions::default()
    });
    let mut conn = connect(server.http_port().unwrap());
    send(conn.get_mut(), "GET", "/", b"").unwrap();
    assert_eq!(
        receive(&mut conn).unwrap().header("connection"),
        Some("keep-alive")
    );
    send(conn.get_mut(), "GET", "/", b"").unwrap();
    assert_eq!(
        receive(&mut conn).unwrap().header("connection"),
        Some("close")
    );
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nginx closed after the second response");
}

#[test]
fn keepalive_timeout_closes_idle_connections() {
    if !nginx::available_or_skip("keepalive_timeout_closes_idle_connections") {
        return;
    }
    let server = start(NginxOptions {
        keepalive_timeout: Some(Duration::from_millis(200)),
        ..NginxOptions::default()
    });
    let mut conn = connect(server.http_port().unwrap());
    send(conn.get_mut(), "GET", "/", b"").unwrap();
    assert_eq!(receive(&mut conn).unwrap().status, 200);
    let idle = Instant::now();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    let waited = idle.elapsed();
    assert!(rest.is_empty());
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "idle connection closed after {waited:?}"
    );
}

#[test]
fn workers_and_stop() {
    if !nginx::available_or_skip("workers_and_stop") {
        return;
    }
    let mut server = start(NginxOptions {
        workers: 2,
        access_log: true,
        ..NginxOptions::default()
    });
    let dir = server.dir().to_path_buf();
    assert!(dir.join("nginx.conf").exists());
    assert_eq!(server.worker_pids().len(), 2);
    let port = server.http_port().unwrap();
    assert_eq!(request(port, "GET", "/", b"").status, 200);
    // nginx logs a request after sending its response: wait for the line.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        if log.contains("\"GET / HTTP/1.1\" 200") {
            break;
        }
        assert!(Instant::now() < deadline, "access log: {log}");
        std::thread::sleep(Duration::from_millis(10));
    }

    server.stop().unwrap();
    assert_eq!(server.pid(), None);
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    server.stop().unwrap();
    drop(server);
    assert!(!dir.exists(), "the directory is removed on drop");
}

#[test]
fn restart_comes_back_on_the_same_ports() {
    if !nginx::available_or_skip("restart_comes_back_on_the_same_ports") {
        return;
    }
    let mut server = start(NginxOptions {
        workers: 2,
        ..NginxOptions::default()
    });
    let port = server.http_port().unwrap();
    let status_port = server.status_port();
    for how in [Stop::Graceful, Stop::Fast, Stop::Kill] {
        // An idle keep-alive connection open across the stop.
        let mut idle = connect(port);
        send(idle.get_mut(), "GET", "/", b"").unwrap();
        assert_eq!(receive(&mut idle).unwrap().status, 200);
        let (pid, workers) = (server.pid().unwrap(), server.worker_pids());
        assert_eq!(workers.len(), 2);

        server.stop_with(how).unwrap();
        assert_eq!(server.pid(), None, "{how:?}");
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "nothing listens once {how:?} returns"
        );
        // The idle connection was closed (or reset) by the stop.
        let mut rest = Vec::new();
        assert!(
            matches!(idle.read_to_end(&mut rest), Ok(0) | Err(_)),
            "{how:?}: {rest:?}"
        );

        server.start_again().unwrap();
        assert_ne!(server.pid(), Some(pid), "a new master after {how:?}");
        assert_eq!(server.http_port(), Some(port));
        assert_eq!(server.status_port(), status_port);
        assert_eq!(request(port, "GET", "/", b"").body, HELLO.as_bytes());
        assert_eq!(server.accepted_connections().unwrap(), 1, "{how:?}");
    }

    let started = Instant::now();
    server
        .restart(Stop::Kill, Duration::from_millis(200))
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(request(port, "GET", "/", b"").status, 200);
    assert!(
        server.start_again().is_err(),
        "starting a running server fails"
    );
    let dir = server.dir().to_path_buf();
    drop(server);
    assert!(!dir.exists(), "the directory is removed on drop");
}

#[test]
fn a_bad_configuration_fails_with_the_error_log() {
    if !nginx::available_or_skip("a_bad_configuration_fails_with_the_error_log") {
        return;
    }
    let missing = PathBuf::from("/nonexistent/muxpool-cert.pem");
    let error = Nginx::start(NginxOptions {
        tls: Some((missing.clone(), missing)),
        ..NginxOptions::default()
    })
    .expect_err("a missing certificate fails the start");
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/muxpool-cert.pem"),
        "the error carries error.log: {message}"
    );
}
