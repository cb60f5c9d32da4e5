//! Replays the committed corpora of the `client_exchange`, `ws_handshake` and
//! `decode` fuzz targets (`fuzz/corpus/`) through the same harness the fuzzer runs
//! (`muxpool_testkit::scripted`), so every input the fuzzer kept, and every
//! crash it found, stays a test.

use std::path::{Path, PathBuf};

use muxpool_client::ErrorKind;
use muxpool_testkit::scripted::{fuzz_http, fuzz_websocket, Ended};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            (path, data)
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 10, "{target}'s corpus is committed");
    inputs
}

fn replay(target: &str, run: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for (path, data) in corpus(target) {
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: inputs that fail: {failed:#?}");
}

#[test]
fn client_exchange_corpus() {
    replay("client_exchange", |data| {
        let _ = fuzz_http(data);
    });
}

#[test]
fn ws_handshake_corpus() {
    replay("ws_handshake", |data| {
        let _ = fuzz_websocket(data);
    });
}

/// The `decode` target's corpus and seeds, with every coding compiled in.
#[cfg(all(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
mod decode {
    #[test]
    fn decode_corpus() {
        super::replay("decode", |data| {
            let _ = muxpool_testkit::decode::fuzz_decode(data);
        });
    }

    /// The decode seeds decode to what was encoded, and a bomb stops at its
    /// limit.
    #[test]
    fn decode_seeds_end_as_their_bodies_say() {
        use muxpool_testkit::decode::{fuzz_decode, Decoded, MAX_SIZE};
        for coding in ["gzip", "deflate", "br", "zstd"] {
            let decode =
                |name: &str| fuzz_decode(&super::seed("decode", &format!("{coding}-{name}")));
            assert_eq!(decode("small"), Decoded::Whole(300), "{coding}");
            assert_eq!(decode("large"), Decoded::Whole(70_000), "{coding}");
            assert_eq!(decode("empty"), Decoded::Whole(0), "{coding}");
            if coding != "br" {
                match decode("bomb") {
                    Decoded::Failed(n) => assert!(n < MAX_SIZE / 2, "{coding}: {n}"),
                    other => panic!("{coding}: the bomb ended {other:?}"),
                }
            }
        }
    }
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
        .join(format!("seed-{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn http(name: &str) -> Vec<Ended> {
    fuzz_http(&seed("client_exchange", name))
}

fn websocket(name: &str) -> Result<usize, ErrorKind> {
    fuzz_websocket(&seed("ws_handshake", name))
}

const fn ok(status: u16, body: usize) -> Ended {
    Ended::Response {
        status,
        body,
        error: None,
    }
}

/// The harness really exchanges: the seeds end as a real server's answers
/// would make them end.
#[test]
fn http_seeds_end_as_their_servers_answer() {
    assert_eq!(http("h1-content-length"), [ok(200, 5)]);
    assert_eq!(http("h1-chunked-trailers"), [ok(200, 8)]);
    assert_eq!(http("h1-keep-alive-two"), [ok(200, 5), ok(200, 0)]);
    assert_eq!(http("h1-stale-keep-alive"), [ok(200, 5), ok(200, 0)]);
    assert_eq!(http("h1-continue-post"), [ok(201, 0)]);
    assert_eq!(
        http("h1-truncated-body"),
        [Ended::Response {
            status: 200,
            body: 3,
            error: Some(ErrorKind::Body)
        }]
    );
    assert_eq!(http("h1-garbage"), [Ended::Failed(ErrorKind::Protocol)]);
    assert_eq!(http("h1-silent"), [Ended::Failed(ErrorKind::Timeout)]);
    assert_eq!(http("h2-one"), [ok(200, 5)]);
    assert_eq!(http("h2-two-concurrent"), [ok(200, 5), ok(200, 0)]);
    assert_eq!(http("h2-goaway-retry"), [ok(200, 5), ok(200, 0)]);
    assert_eq!(http("h2-refused-stream"), [ok(200, 2)]);
}

/// An HTTP/2 connection cut before any byte of the response (its server
/// went away) costs an idempotent request nothing: it is sent once more, on
/// a fresh connection. A POST, which the server may have acted on, is not.
#[test]
fn an_idempotent_request_cut_on_http2_is_sent_again() {
    assert_eq!(http("h2-cut-then-served"), [ok(200, 5)]);
    assert_eq!(http("h2-post-cut"), [Ended::Failed(ErrorKind::Protocol)]);
}

/// A server that accepts a connection for HTTP/2 and never sends its
/// SETTINGS fails the connect at the connect timeout, and the connect task
/// ends with its transport (the harness checks that none outlives the
/// client). The request waits for the next connect, which the script
/// refuses.
#[test]
fn an_http2_server_that_never_speaks_fails_the_connect() {
    assert_eq!(
        http("h2-silent-after-accept"),
        [Ended::Failed(ErrorKind::Connect)]
    );
}

#[test]
fn websocket_seeds_end_as_their_servers_answer() {
    assert_eq!(websocket("ws-echo-close"), Ok(2));
    assert_eq!(websocket("ws-wrong-accept"), Err(ErrorKind::WebSocket));
    assert_eq!(websocket("ws-rejected"), Err(ErrorKind::WebSocket));
}

/// A message the server sends right after the handshake, before the request
/// that opened the WebSocket has picked it up, is that request's: it neither
/// ends the WebSocket nor is lost.
#[test]
fn a_message_before_pickup_is_the_holders() {
    assert_eq!(websocket("ws-ping"), Ok(1));
}

/// A connection that closes between its grant and its pickup had nothing sent
/// on it: the request asks again instead of failing.
#[test]
fn a_connection_gone_before_pickup_is_asked_for_again() {
    assert_eq!(websocket("ws-closed-at-once-then-open"), Ok(1));
}

/// After the holder's close, a silent server is waited for only a while:
/// the WebSocket's task ends and drops its transport (the harness checks).
#[test]
fn a_closed_websocket_whose_server_is_silent_ends() {
    assert_eq!(websocket("ws-silent-close"), Ok(0));
}
