//! The codec driven end to end: a whole response through the parser and the
//! body decoder, fed in any pieces, with the codec's own promises checked on
//! the way (an event is never empty, trailers come once, decoding always
//! converges). The codec's tests drive it, and so does its fuzz target, whose
//! committed corpus the suite replays through [`fuzz`].
//!
//! Public only with the `unstable` feature.

use bytes::BytesMut;
use http::{HeaderMap, Method, StatusCode, Version};

use super::{
    BodyDecoder, BodyEvent, CloseReason, Error, Framing, KeepAlive, Limits, RequestInfo,
    ResponseHead, ResponseParser,
};

/// Everything observed from one response.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The final response's status.
    pub status: StatusCode,
    /// Its HTTP version.
    pub version: Version,
    /// Its fields.
    pub headers: HeaderMap,
    /// How its body is delimited.
    pub framing: Framing,
    /// The keep-alive decision its head allows.
    pub head_keep_alive: KeepAlive,
    /// The body's bytes, as decoded.
    pub body: Vec<u8>,
    /// The trailers, if any came.
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
    let mut state: Option<(Outcome, BodyDecoder)> = None;
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

fn start(head: &ResponseHead, parser: &ResponseParser) -> (Outcome, BodyDecoder) {
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
    state: &mut Option<(Outcome, BodyDecoder)>,
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
    }
}

/// One fuzz input: the response to a `GET` or a `HEAD`, under the default
/// limits or tight ones, read whole and read in the pieces the input names.
/// Panics when the two readings disagree (one fails and not the other, or
/// they see different responses) or when the codec breaks a promise.
///
/// The first byte chooses: bit 0 a `HEAD` request, bit 1 tight limits (4
/// fields, 256 bytes of head, 16 of a chunk line), bits 2 to 5 how many of
/// the next bytes are piece sizes (each at least 1, used in turn). The rest
/// is what the server sent, then the end of the connection.
pub fn fuzz(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let request = RequestInfo::new(if flags & 1 == 1 {
        &Method::HEAD
    } else {
        &Method::GET
    });
    let limits = if flags & 2 == 2 {
        Limits::default()
            .with_max_headers(4)
            .with_max_header_bytes(256)
            .with_max_chunk_line(16)
    } else {
        Limits::default()
    };
    let (sizes, input) = rest.split_at(usize::from(flags >> 2 & 0x0f).min(rest.len()));
    let whole = drive(request, limits, [input], true);
    let split = drive(request, limits, pieces(input, sizes), true);
    match (whole, split) {
        (Ok(whole), Ok(mut split)) => {
            // Bytes after the body make the decoder close the connection only
            // if they are there when the body ends; read in pieces, they may
            // come after, when the pool's idle check finds them instead.
            if !whole.leftover.is_empty()
                && whole.end.and_then(|k| k.close_reason()) == Some(CloseReason::UnexpectedData)
                && split.end.is_some_and(|k| k.is_reusable())
            {
                split.end = whole.end;
            }
            assert_eq!(whole, split, "read whole, and in pieces");
        }
        (Err(_), Err(_)) => {}
        (whole, split) => panic!("read whole: {whole:?}; in pieces: {split:?}"),
    }
}

/// `input` cut into pieces of `sizes` bytes in turn (one piece if there are
/// none).
fn pieces<'a>(input: &'a [u8], sizes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0;
    let mut size = sizes.iter().map(|&s| usize::from(s.max(1))).cycle();
    std::iter::from_fn(move || {
        if at >= input.len() && !(at == 0 && input.is_empty()) {
            return None;
        }
        let end = match size.next() {
            Some(n) => (at + n).min(input.len()),
            None => input.len(),
        };
        let piece = &input[at..end];
        at = end.max(at + 1);
        Some(piece)
    })
}
