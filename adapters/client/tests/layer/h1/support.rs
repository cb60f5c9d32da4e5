//! Helpers shared by the HTTP/1.1 codec tests: build requests, and drive a whole
//! response through the parser and the body decoder, fed in any pieces.

use bytes::BytesMut;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use muxpool_client::h1::{
    BodyEvent, Error, Framing, KeepAlive, Limits, RequestInfo, ResponseParser,
};

/// The parts of a request with `method` and `uri` and no fields.
pub fn parts(method: Method, uri: &str) -> http::request::Parts {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .expect("valid test request")
        .into_parts()
        .0
}

/// `RequestInfo` for a GET.
pub fn get() -> RequestInfo {
    RequestInfo::new(&Method::GET)
}

/// Everything observed from one response.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    pub head_keep_alive: KeepAlive,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    /// The final decision, if the body ended.
    pub end: Option<KeepAlive>,
    /// What was left in the buffer: bytes after the end of the body, or the
    /// start of an upgraded protocol.
    pub leftover: Vec<u8>,
    /// Whether a 100 Continue was seen.
    pub continued: bool,
}

/// Feeds `pieces` one at a time into a parser and decoder for the response to
/// `request`, then, if `eof`, reports the end of the connection. Stops decoding
/// at the end of the body; later pieces stay in `leftover`.
pub fn drive<'a>(
    request: RequestInfo,
    limits: Limits,
    pieces: impl IntoIterator<Item = &'a [u8]>,
    eof: bool,
) -> Result<Outcome, Error> {
    let mut parser = ResponseParser::new(request, limits);
    let mut buf = BytesMut::new();
    let mut state: Option<(Outcome, muxpool_client::h1::BodyDecoder)> = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        step(&mut parser, &mut state, &mut buf)?;
    }
    if eof {
        if state.is_none() {
            let head = parser.parse_eof(&mut buf)?;
            state = Some(start(&head, &parser));
        }
        let (outcome, decoder) = state.as_mut().expect("head parsed");
        let mut steps = 0usize;
        while outcome.end.is_none() {
            steps += 1;
            assert!(steps < 1_000_000, "decode_eof does not converge");
            let event = decoder.decode_eof(&mut buf)?;
            record(outcome, event);
        }
    }
    let (mut outcome, _) = state.expect("the head is incomplete and there was no EOF");
    outcome.continued |= parser.received_continue();
    outcome.leftover = buf.to_vec();
    Ok(outcome)
}

/// Feeds all of `input` at once, then EOF.
pub fn whole(request: RequestInfo, input: &[u8]) -> Result<Outcome, Error> {
    drive(request, Limits::default(), [input], true)
}

/// Feeds all of `input` at once, without EOF.
pub fn open(request: RequestInfo, input: &[u8]) -> Result<Outcome, Error> {
    drive(request, Limits::default(), [input], false)
}

/// Feeds `input` one byte at a time, then EOF if asked.
pub fn bytewise(request: RequestInfo, input: &[u8], eof: bool) -> Result<Outcome, Error> {
    drive(request, Limits::default(), input.chunks(1), eof)
}

fn start(
    head: &muxpool_client::h1::ResponseHead,
    parser: &ResponseParser,
) -> (Outcome, muxpool_client::h1::BodyDecoder) {
    let outcome = Outcome {
        status: head.status(),
        version: head.version(),
        headers: head.headers().clone(),
        framing: head.framing(),
        head_keep_alive: head.keep_alive(),
        body: Vec::new(),
        trailers: None,
        end: None,
        leftover: Vec::new(),
        continued: parser.received_continue(),
    };
    (outcome, head.body_decoder())
}

fn step(
    parser: &mut ResponseParser,
    state: &mut Option<(Outcome, muxpool_client::h1::BodyDecoder)>,
    buf: &mut BytesMut,
) -> Result<(), Error> {
    if state.is_none() {
        match parser.parse(buf)? {
            Some(head) => *state = Some(start(&head, parser)),
            None => return Ok(()),
        }
    }
    let (outcome, decoder) = state.as_mut().expect("head parsed");
    let mut steps = 0usize;
    while outcome.end.is_none() {
        steps += 1;
        assert!(steps < 1_000_000, "decode does not converge");
        match decoder.decode(buf)? {
            Some(event) => record(outcome, event),
            None => break,
        }
    }
    Ok(())
}

fn record(outcome: &mut Outcome, event: BodyEvent) {
    match event {
        BodyEvent::Data(data) => {
            assert!(!data.is_empty(), "empty data event");
            outcome.body.extend_from_slice(&data);
        }
        BodyEvent::Trailers(trailers) => {
            assert!(outcome.trailers.is_none(), "trailers twice");
            assert!(!trailers.is_empty(), "empty trailers event");
            outcome.trailers = Some(trailers);
        }
        BodyEvent::End(keep_alive) => outcome.end = Some(keep_alive),
        other => panic!("unknown event {other:?}"),
    }
}
