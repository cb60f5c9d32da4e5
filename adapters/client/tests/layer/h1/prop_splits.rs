//! Property: a valid response parses to the same result however the network
//! splits it into reads: all at once, one byte at a time, or at random points;
//! and that result is the response that was generated.

use super::support::{drive, Outcome};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use muxpool_client::h1::{Framing, Limits, RequestInfo};
use proptest::prelude::*;

/// How the generated body is framed on the wire.
#[derive(Clone, Debug)]
enum Body {
    Length(Vec<u8>),
    /// Chunks (each non-empty), whether to add extensions, and trailers.
    Chunked(Vec<Vec<u8>>, bool, Vec<(String, String)>),
    UntilClose(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Response {
    head_request: bool,
    informational: Vec<u16>,
    http10: bool,
    status: u16,
    fields: Vec<(String, String)>,
    connection: Option<&'static str>,
    body: Body,
    /// Bytes after a 101 head, which belong to the new protocol.
    upgraded: Vec<u8>,
}

fn field() -> impl Strategy<Value = (String, String)> {
    ("x-[a-z0-9-]{1,10}", "[!-~]([ -~]{0,20}[!-~])?")
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn response() -> impl Strategy<Value = Response> {
    let body = prop_oneof![
        bytes(200).prop_map(Body::Length),
        (
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..60), 0..6),
            any::<bool>(),
            proptest::collection::vec(field(), 0..3),
        )
            .prop_map(|(chunks, ext, trailers)| Body::Chunked(chunks, ext, trailers)),
        bytes(200).prop_map(Body::UntilClose),
    ];
    (
        any::<bool>(),
        proptest::collection::vec(prop_oneof![Just(100u16), Just(102), Just(103)], 0..3),
        any::<bool>(),
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(204),
            Just(304),
            Just(404),
            Just(503),
            Just(101)
        ],
        proptest::collection::vec(field(), 0..6),
        prop_oneof![Just(None), Just(Some("close")), Just(Some("keep-alive"))],
        body,
        bytes(40),
    )
        .prop_map(
            |(head_request, informational, http10, status, fields, connection, body, upgraded)| {
                // HTTP/1.0 has no chunked coding.
                let body = match (http10, body) {
                    (true, Body::Chunked(chunks, _, _)) => Body::Length(chunks.concat()),
                    (_, body) => body,
                };
                Response {
                    head_request,
                    informational,
                    http10,
                    status,
                    fields,
                    connection,
                    body,
                    upgraded,
                }
            },
        )
}

impl Response {
    fn request(&self) -> RequestInfo {
        RequestInfo::new(if self.head_request {
            &Method::HEAD
        } else {
            &Method::GET
        })
    }

    fn has_body(&self) -> bool {
        !self.head_request && !matches!(self.status, 101 | 204 | 304)
    }

    fn wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for code in &self.informational {
            out.extend_from_slice(
                format!("HTTP/1.1 {code} Info\r\nX-Info: {code}\r\n\r\n").as_bytes(),
            );
        }
        let version = if self.http10 { "1.0" } else { "1.1" };
        out.extend_from_slice(
            format!("HTTP/{version} {} Reason Phrase\r\n", self.status).as_bytes(),
        );
        for (name, value) in &self.fields {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if let Some(connection) = self.connection {
            out.extend_from_slice(format!("Connection: {connection}\r\n").as_bytes());
        }
        match &self.body {
            Body::Length(data) => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", data.len()).as_bytes())
            }
            Body::Chunked(..) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Body::UntilClose(_) => {}
        }
        out.extend_from_slice(b"\r\n");
        if self.status == 101 {
            out.extend_from_slice(&self.upgraded);
            return out;
        }
        if !self.has_body() {
            return out;
        }
        match &self.body {
            Body::Length(data) | Body::UntilClose(data) => out.extend_from_slice(data),
            Body::Chunked(chunks, ext, trailers) => {
                for chunk in chunks {
                    out.extend_from_slice(format!("{:X}", chunk.len()).as_bytes());
                    if *ext {
                        out.extend_from_slice(b" ;name=\"v;al\";x");
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                for (name, value) in trailers {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    /// What parsing must find, checked against the outcome of a whole read.
    fn check(&self, out: &Outcome) -> Result<(), TestCaseError> {
        prop_assert_eq!(out.status, StatusCode::from_u16(self.status).unwrap());
        prop_assert_eq!(
            out.version,
            if self.http10 {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            }
        );
        let mut fields = HeaderMap::new();
        for (name, value) in &self.fields {
            fields.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let mut got = out.headers.clone();
        for name in ["connection", "content-length", "transfer-encoding"] {
            got.remove(name);
        }
        prop_assert_eq!(got, fields);
        prop_assert_eq!(out.continued, self.informational.contains(&100));

        let (expected_body, expected_trailers) = match (&self.body, self.has_body()) {
            (_, false) => (Vec::new(), None),
            (Body::Length(data) | Body::UntilClose(data), true) => (data.clone(), None),
            (Body::Chunked(chunks, _, trailers), true) => {
                let trailers = (!trailers.is_empty()).then(|| {
                    let mut map = HeaderMap::new();
                    for (name, value) in trailers {
                        map.append(
                            HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            HeaderValue::from_str(value).unwrap(),
                        );
                    }
                    map
                });
                (chunks.concat(), trailers)
            }
        };
        prop_assert_eq!(&out.body, &expected_body);
        prop_assert_eq!(&out.trailers, &expected_trailers);

        let expected_framing = match (&self.body, self.status) {
            (_, 101) => Framing::Upgrade,
            _ if !self.has_body() => Framing::Empty,
            (Body::Length(data), _) => Framing::Length(data.len() as u64),
            (Body::Chunked(..), _) => Framing::Chunked,
            (Body::UntilClose(_), _) => Framing::CloseDelimited,
        };
        prop_assert_eq!(out.framing, expected_framing);
        let server_keeps = match (self.http10, self.connection) {
            (_, Some("close")) => false,
            (true, connection) => connection == Some("keep-alive"),
            (false, _) => true,
        };
        let reusable =
            server_keeps && !matches!(expected_framing, Framing::Upgrade | Framing::CloseDelimited);
        prop_assert_eq!(out.end.map(|k| k.is_reusable()), Some(reusable));
        let leftover: &[u8] = if self.status == 101 {
            &self.upgraded
        } else {
            &[]
        };
        prop_assert_eq!(&out.leftover[..], leftover);
        Ok(())
    }
}

fn run<'a>(response: &Response, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    drive(response.request(), Limits::default(), pieces, true).expect("a valid response parses")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_valid_response_parses_the_same_however_it_is_split(
        response in response(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire = response.wire();
        let whole = run(&response, [&wire[..]]);
        response.check(&whole)?;

        let bytewise = run(&response, wire.chunks(1));
        prop_assert_eq!(&bytewise, &whole);

        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        points.dedup();
        let pieces: Vec<&[u8]> = points.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
        let split = run(&response, pieces);
        prop_assert_eq!(&split, &whole);
    }
}
