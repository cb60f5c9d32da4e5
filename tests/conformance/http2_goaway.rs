//! A GOAWAY names the last stream its server may have processed (RFC 9113,
//! section 6.8). A stream above it was not processed: its request goes out
//! again on a new connection, whatever its method, and the caller sees only
//! the answer. A stream at or below it is the server's to finish: it
//! completes with the server's answer, or fails as the server says (reset,
//! or cut when the server closes), and is never sent twice.
//!
//! The server, written frame by frame, holds a burst of requests in flight on
//! one connection and sends its GOAWAY only once it has read them all, naming
//! a stream in the middle of the burst. The requests go out one by one, each
//! once the server has read the one before, so request `i` of the burst is
//! stream `3 + 2i` (stream 1 is the request that opens the connection). Every
//! answer says which stream of which connection it came from.

use std::io;

use crate::support::{self, request, spawn, wait_until, Adapter};
use http::Method;
use muxpool::client::Client;
use muxpool::{Body, Error};
use muxpool_testkit::h2_frames::{
    answer_for, answered_by, Event, FrameConn, FrameServer, INTERNAL_ERROR, NO_ERROR,
};

/// What the first connection does with a stream at or below its GOAWAY's
/// last stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Answers it.
    Answer,
    /// Resets it with INTERNAL_ERROR: it was processed, and failed.
    Reset,
    /// Never answers it, and closes the connection under it.
    Cut,
}

/// A server whose first connection answers its first stream, holds the next
/// `burst`, sends GOAWAY naming `last`, and then treats each stream at or
/// below it as `fates` says (in stream order); it closes its side if it cut
/// one, else waits for the client to close. Every other connection answers
/// every stream.
fn goaway_server(burst: usize, last: u32, fates: &'static [Fate]) -> FrameServer {
    FrameServer::start(move |mut conn| async move {
        conn.handshake(&[]).await?;
        if conn.index() == 0 {
            first_connection(conn, burst, last, fates).await
        } else {
            conn.answer_all().await
        }
    })
}

async fn first_connection(
    mut conn: FrameConn,
    burst: usize,
    last: u32,
    fates: &[Fate],
) -> io::Result<()> {
    conn.hold(1).await?;
    conn.answer(1).await?;
    let held = conn.hold(burst).await?;
    conn.go_away(last, NO_ERROR).await?;
    let kept = held.into_iter().filter(|&stream| stream <= last);
    for (stream, fate) in kept.zip(fates) {
        match fate {
            Fate::Answer => conn.answer(stream).await?,
            Fate::Reset => conn.reset(stream, INTERNAL_ERROR).await?,
            Fate::Cut => {}
        }
    }
    if fates.contains(&Fate::Cut) {
        return conn.close().await;
    }
    // The client closes a connection going away once its streams are done.
    while conn.next().await? != Event::Closed {}
    Ok(())
}

/// An h2c client's request that opens the connection, then `burst`'s
/// requests sent one by one, each once the server has read the one before;
/// the client, and what each request of the burst ended with: its answer's
/// text or its error.
async fn send_burst<R: Adapter>(
    server: &FrameServer,
    burst: Vec<(Method, &'static str)>,
) -> (Client<R>, Vec<Result<String, Error>>) {
    let client = Client::<R>::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let first = client
        .send(request(Method::GET, server.url("/"), Body::empty()))
        .await
        .expect("the first request is answered");
    assert_eq!(
        first.into_body().text().await.expect("text"),
        answer_for(0, 1)
    );
    let mut tasks = Vec::new();
    for (i, (method, body)) in burst.into_iter().enumerate() {
        let sender = client.clone();
        let body = match body {
            "" => Body::empty(),
            text => Body::from(text),
        };
        let request = request(method, server.url("/"), body);
        tasks.push(spawn::<R, _>(async move {
            sender.send(request).await?.into_body().text().await
        }));
        // At least: once the last is read, the requests above the last stream
        // may come again at once.
        wait_until("the server reads the request", || {
            server.requests().len() >= i + 2
        })
        .await;
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("the task ran"));
    }
    (client, results)
}

/// The h2 error behind `error`, if any.
fn h2_cause(error: &Error) -> Option<&h2::Error> {
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return Some(h2);
        }
        next = cause.source();
    }
    None
}

/// The bodies of the requests the server read on connection `conn`, in
/// stream order.
fn bodies_on(server: &FrameServer, conn: usize) -> Vec<(u32, String)> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.conn == conn)
        .map(|r| (r.stream, String::from_utf8(r.body).expect("a UTF-8 body")))
        .collect()
}

async fn streams_above_the_last_stream_id_are_sent_again<R: Adapter>() {
    // Streams 3, 5 and 7 are at or below the last stream and answered; 9, 11
    // and 13 are above it.
    let server = goaway_server(6, 7, &[Fate::Answer; 3]);
    let burst = vec![
        (Method::GET, ""),
        (Method::POST, "below"),
        (Method::GET, ""),
        (Method::GET, ""),
        (Method::POST, "above"),
        (Method::GET, ""),
    ];
    let (client, results) = send_burst::<R>(&server, burst).await;
    let answers: Vec<String> = results
        .into_iter()
        .map(|result| result.expect("every request is answered"))
        .collect();
    // At or below the last stream: the first connection's own answers.
    assert_eq!(
        answers[..3],
        [answer_for(0, 3), answer_for(0, 5), answer_for(0, 7)]
    );
    // Above it: answered on a second connection, the POST among them (the
    // server said it did not process it).
    for (i, text) in answers[3..].iter().enumerate() {
        assert_eq!(
            answered_by(text).map(|(c, _)| c),
            Some(1),
            "request {}: {text}",
            i + 3
        );
    }

    // The server's side: the burst once on the first connection, the three
    // above the last stream once more on the second, nothing else.
    assert_eq!(server.accepted(), 2);
    let first: Vec<u32> = bodies_on(&server, 0).iter().map(|(s, _)| *s).collect();
    assert_eq!(first, [1, 3, 5, 7, 9, 11, 13]);
    let mut again: Vec<String> = bodies_on(&server, 1).into_iter().map(|(_, b)| b).collect();
    again.sort();
    assert_eq!(again, ["", "", "above"]);
    assert_eq!(server.requests().len(), 10);

    // The connection going away ends once its last stream is done; the new
    // one stays.
    wait_until("the connection going away ends", || {
        client.stats().open == 1
    })
    .await;
    let stats = client.stats();
    assert_eq!(stats.connects, 2, "{stats:#?}");
    support::assert_quiescent(&client).await;
}

async fn streams_at_or_below_the_last_stream_id_end_as_the_server_says<R: Adapter>() {
    // Stream 3 is answered, 5 (a POST) and 7 (a GET) reset, 9 (a POST) cut
    // by the server closing; 11 (a POST) is above the last stream.
    let fates = &[Fate::Answer, Fate::Reset, Fate::Reset, Fate::Cut];
    let server = goaway_server(5, 9, fates);
    let burst = vec![
        (Method::GET, ""),
        (Method::POST, "reset"),
        (Method::GET, ""),
        (Method::POST, "cut"),
        (Method::POST, "above"),
    ];
    let (client, results) = send_burst::<R>(&server, burst).await;
    assert_eq!(
        results[0].as_ref().expect("stream 3 is answered"),
        &answer_for(0, 3)
    );
    // A reset stream fails with the server's error code, the GET as the POST:
    // the server processed them, and said how that ended.
    for i in [1, 2] {
        let error = results[i].as_ref().expect_err("a reset stream fails");
        let h2 = h2_cause(error).unwrap_or_else(|| panic!("request {i}: {error:#}"));
        assert_eq!(h2.reason(), Some(h2::Reason::INTERNAL_ERROR), "{error:#}");
    }
    // A POST cut by the connection closing may have been processed: it fails,
    // and is not sent again.
    let error = results[3].as_ref().expect_err("the cut POST fails");
    assert!(h2_cause(error).is_some_and(h2::Error::is_io), "{error:#}");
    // Above the last stream: sent again, and answered on a new connection.
    assert_eq!(
        results[4].as_ref().expect("the POST above is answered"),
        &answer_for(1, 1)
    );

    assert_eq!(server.accepted(), 2);
    let first: Vec<u32> = bodies_on(&server, 0).iter().map(|(s, _)| *s).collect();
    assert_eq!(first, [1, 3, 5, 7, 9, 11]);
    assert_eq!(bodies_on(&server, 1), [(1, "above".to_owned())]);
    assert_eq!(server.requests().len(), 7);
    support::assert_quiescent(&client).await;
}

support::conformance!(
    streams_above_the_last_stream_id_are_sent_again,
    streams_at_or_below_the_last_stream_id_end_as_the_server_says,
);
