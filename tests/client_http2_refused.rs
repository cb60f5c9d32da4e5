//! A stream the server refuses without processing it (RST_STREAM with
//! REFUSED_STREAM, RFC 9113 section 8.7) is sent again, transparently: the
//! caller sees only the answer. The server here, built on the `h2` crate's
//! server side, refuses every other stream: the first, the third, ...

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use muxpool::{Body, Client};
use tokio::net::TcpListener;

struct Refuser {
    url: String,
    streams: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn refuse_every_other_stream() -> Refuser {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    let streams = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&streams);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let mut seen = 0;
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    seen += 1;
                    if seen % 2 == 1 {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let response = http::Response::new(());
                    if let Ok(mut send) = respond.send_response(response, false) {
                        let _ = send.send_data(Bytes::from_static(b"ok"), true);
                    }
                }
            });
        }
    });
    Refuser { url, streams, task }
}

#[tokio::test]
async fn a_refused_stream_is_sent_again() {
    let server = refuse_every_other_stream().await;
    let client = Client::builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("a valid configuration");
    let request = http::Request::get(&server.url)
        .body(Body::empty())
        .expect("a request");
    let response = client.send(request).await.expect("the retry is answered");
    assert_eq!(response.into_body().text().await.expect("text"), "ok");
    assert_eq!(
        server.streams.load(Ordering::SeqCst),
        2,
        "refused once, then answered"
    );

    // An in-memory body is sent again too.
    let request = http::Request::post(&server.url)
        .body(Body::from("payload"))
        .expect("a request");
    let response = client.send(request).await.expect("the retry is answered");
    assert_eq!(response.into_body().text().await.expect("text"), "ok");
    assert_eq!(server.streams.load(Ordering::SeqCst), 4);
}
