//! A tunnel through an HTTP proxy: `CONNECT host:port`, and the connection it
//! leaves, on which the client then speaks to the origin (TLS for `https`
//! and `wss`, or straight HTTP/2 or a WebSocket).
//!
//! The exchange is HTTP/1.1, framed by the crate's codec ([`crate::h1`]):
//! the request is encoded as any other (authority form, `Host`, and the
//! proxy's credentials), and the proxy's answer is parsed under the codec's
//! default [`Limits`], so a proxy that sends an endless head is refused
//! after 64 KiB. The time it may take is the connect's: the whole connect
//! runs under the pool's connect timeout. Whatever the proxy sent after its
//! `2xx` head already belongs to the origin (a server that speaks first, an
//! h2c SETTINGS) and is read before the connection itself.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::PROXY_AUTHORIZATION;
use http::{Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_util::io::poll_read_buf;

use super::PoolKey;
use crate::error::{Error, ErrorKind};
use crate::h1::{encode_request, Limits, RequestBody, ResponseParser, TargetForm};
use crate::proxy::Endpoint;
use crate::runtime::Io;

/// What one read of the proxy's answer asks for.
const READ_SIZE: usize = 4 * 1024;

/// Asks the proxy at the other end of `io` for a tunnel to `origin`, and
/// returns the tunnel once the proxy answered `2xx`.
///
/// # Errors
///
/// [`ErrorKind::Proxy`] with the proxy's status when it refused;
/// [`ErrorKind::Protocol`] when its answer is not HTTP, too large, or cut
/// short; the I/O error when writing or reading failed.
pub(super) async fn open<T: Io>(
    mut io: T,
    origin: &PoolKey,
    proxy: &Endpoint,
) -> Result<Tunnel<T>, Error> {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let request = connect_request(origin, proxy)?;
    let (parts, ()) = request.into_parts();
    let encoded = encode_request(&parts, RequestBody::Empty, TargetForm::Origin, &mut buf)
        .map_err(|e| Error::new(ErrorKind::Request).with_source(e))?;
    io.write_all(&buf)
        .await
        .map_err(|e| io_error("writing CONNECT to the proxy failed", e))?;
    io.flush()
        .await
        .map_err(|e| io_error("writing CONNECT to the proxy failed", e))?;
    buf.clear();
    let mut parser = ResponseParser::new(encoded.info, Limits::default());
    let invalid = |e| {
        Error::new(ErrorKind::Protocol)
            .with_message("the proxy's answer to CONNECT is not valid")
            .with_source(e)
    };
    let head = loop {
        if let Some(head) = parser.parse(&mut buf).map_err(invalid)? {
            break head;
        }
        if buf.capacity() - buf.len() < READ_SIZE / 2 {
            buf.reserve(READ_SIZE);
        }
        let read = std::future::poll_fn(|cx| poll_read_buf(Pin::new(&mut io), cx, &mut buf))
            .await
            .map_err(|e| io_error("reading the proxy's answer to CONNECT failed", e))?;
        if read == 0 {
            break parser.parse_eof(&mut buf).map_err(invalid)?;
        }
    };
    if !head.status().is_success() {
        return Err(Error::proxy_refused(head.status()));
    }
    Ok(Tunnel {
        io,
        early: buf.freeze(),
    })
}

/// `CONNECT host:port` for `origin`, with the proxy's credentials.
fn connect_request(origin: &PoolKey, proxy: &Endpoint) -> Result<Request<()>, Error> {
    let host = origin.host();
    let authority = if host.contains(':') {
        format!("[{host}]:{}", origin.port())
    } else {
        format!("{host}:{}", origin.port())
    };
    let uri = Uri::try_from(authority).map_err(|e| {
        Error::new(ErrorKind::Request)
            .with_message("the origin cannot be named in a CONNECT")
            .with_source(e)
    })?;
    let mut request = Request::new(());
    *request.method_mut() = Method::CONNECT;
    *request.uri_mut() = uri;
    if let Some(authorization) = proxy.authorization() {
        request
            .headers_mut()
            .insert(PROXY_AUTHORIZATION, authorization.clone());
    }
    Ok(request)
}

fn io_error(message: &'static str, e: io::Error) -> Error {
    let kind = if e.kind() == io::ErrorKind::TimedOut {
        ErrorKind::Timeout
    } else {
        ErrorKind::Protocol
    };
    Error::new(kind).with_message(message).with_source(e)
}

/// A tunnel through a proxy: its connection, and what the proxy sent after
/// its answer, which is the origin's and read first.
pub(super) struct Tunnel<T> {
    io: T,
    early: Bytes,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tunnel<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            buf.put_slice(&self.early[..n]);
            self.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tunnel<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn key(uri: &str) -> PoolKey {
        let tls = crate::tls::TlsConfig::builder().build().unwrap().identity();
        PoolKey::from_uri(&uri.parse().unwrap(), tls).unwrap()
    }

    fn endpoint(url: &str) -> Arc<Endpoint> {
        Arc::new(crate::Proxy::all(url).unwrap().endpoint().clone())
    }

    /// Runs `open` against a proxy that answers `answer`, and returns what
    /// the proxy read and the outcome.
    fn exchange(
        origin: &str,
        proxy: &str,
        answer: &'static [u8],
    ) -> (String, Result<Vec<u8>, Error>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, mut server) = tokio::io::duplex(64 * 1024);
            let origin = key(origin);
            let proxy = endpoint(proxy);
            let serve = async {
                let mut got = vec![0; 4096];
                let n = server.read(&mut got).await.unwrap();
                got.truncate(n);
                server.write_all(answer).await.unwrap();
                server.shutdown().await.unwrap();
                String::from_utf8(got).unwrap()
            };
            let (got, tunnel) = tokio::join!(serve, open(client, &origin, &proxy));
            let after = match tunnel {
                Ok(mut tunnel) => {
                    let mut rest = Vec::new();
                    tunnel.read_to_end(&mut rest).await.unwrap();
                    Ok(rest)
                }
                Err(e) => Err(e),
            };
            (got, after)
        })
    }

    #[test]
    fn connect_names_the_origin_and_carries_the_credentials() {
        let (sent, after) = exchange(
            "https://Example.com/path?q",
            "http://user:pass@p:1",
            b"HTTP/1.1 200 Connection established\r\n\r\nearly bytes",
        );
        assert_eq!(
            sent,
            "CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\
             proxy-authorization: Basic dXNlcjpwYXNz\r\n\r\n"
        );
        assert_eq!(
            after.unwrap(),
            b"early bytes",
            "the origin's bytes come first"
        );
        let (sent, after) = exchange(
            "http://[::1]:8080/",
            "http://p:1",
            b"HTTP/1.0 200 OK\r\n\r\n",
        );
        assert_eq!(
            sent,
            "CONNECT [::1]:8080 HTTP/1.1\r\nhost: [::1]:8080\r\n\r\n"
        );
        assert_eq!(after.unwrap(), b"");
    }

    #[test]
    fn a_refusal_is_the_proxy_s_status() {
        let (_, after) = exchange(
            "https://example.com/",
            "http://p:1",
            b"HTTP/1.0 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n<html>",
        );
        let error = after.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Proxy);
        assert_eq!(
            error.status(),
            Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
        );
    }

    #[test]
    fn garbage_and_silence_are_protocol_errors() {
        for answer in [
            &b"\x00\x01 not http\r\n\r\n"[..],
            b"",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            let (_, after) = exchange("https://example.com/", "http://p:1", answer);
            let error = after.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Protocol, "{answer:?}: {error:#}");
        }
    }
}
