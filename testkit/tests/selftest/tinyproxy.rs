//! The tinyproxy harness against the real binary, with raw requests over std
//! TCP: a tunnel to any port, an absolute-form request forwarded with its
//! `Via`, credentials required when configured, and the request lines it
//! logs.
//!
//! Each test returns early with a message when tinyproxy is not installed,
//! unless `MUXPOOL_REQUIRE_TINYPROXY` is set (CI sets it), in which case it
//! fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use muxpool_testkit::tinyproxy::{self, Tinyproxy, TinyproxyOptions};

/// An origin that answers one request on each of `n` connections with
/// `HTTP/1.1 200` and the request it read as the body.
fn echo_origin(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for _ in 0..n {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                head.len()
            );
            stream.write_all(answer.as_bytes()).unwrap();
            stream.write_all(&head).unwrap();
        }
    });
    (port, thread)
}

/// Sends `request` to the proxy and reads everything it answers.
fn ask(proxy: &Tinyproxy, request: &str) -> String {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn forwards_absolute_form_with_via_and_tunnels_any_port() {
    if !tinyproxy::available_or_skip("forwards_absolute_form_with_via_and_tunnels_any_port") {
        return;
    }
    let proxy = Tinyproxy::start(TinyproxyOptions::default()).expect("tinyproxy starts");
    let (port, origin) = echo_origin(2);
    let answer = ask(
        &proxy,
        &format!("GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
    assert!(
        answer.contains("GET /x HTTP/1.1"),
        "origin form to the origin: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("via: 1.1 "),
        "{answer}"
    );
    // A tunnel, to an unusual port: no ConnectPort line restricts it.
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).contains(" 200 "), "{head:?}");
    stream
        .write_all(b"GET /tunnelled HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.contains("GET /tunnelled HTTP/1.1"), "{answer}");
    origin.join().unwrap();
    assert_eq!(
        proxy.requests(),
        [
            format!("GET http://127.0.0.1:{port}/x HTTP/1.1"),
            format!("CONNECT 127.0.0.1:{port} HTTP/1.1")
        ]
    );
}

#[test]
fn basic_auth_is_required_when_configured() {
    if !tinyproxy::available_or_skip("basic_auth_is_required_when_configured") {
        return;
    }
    let proxy = Tinyproxy::start(TinyproxyOptions {
        basic_auth: Some(("user".into(), "pass".into())),
    })
    .expect("tinyproxy starts");
    let (port, origin) = echo_origin(1);
    let connect = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let refused = ask(&proxy, &format!("{connect}\r\n"));
    assert!(refused.contains(" 407 "), "{refused}");
    // "user:pass"
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).unwrap();
    write!(
        stream,
        "{connect}Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert!(head.ends_with(b" 200"), "{head:?}");
    drop(stream);
    drop(TcpStream::connect(("127.0.0.1", port)));
    origin.join().unwrap();
}
