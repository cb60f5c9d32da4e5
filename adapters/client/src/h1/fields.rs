//! Field syntax shared by the request encoder, the response parser and the body
//! decoder: byte classes, list splitting, the framing fields and the search for
//! the empty line that ends a header section.
//!
//! The framing fields are parsed by hand rather than trusted from `http`'s typed
//! headers because their edge cases are where smuggling lives: a list of equal
//! `Content-Length` values is one length, a list of different ones is an attack,
//! and `chunked` counts only as the final transfer coding.

use std::sync::LazyLock;

use arrayvec::ArrayVec;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::HeaderMap;
use memchr::memmem;

use super::Error;

/// Header sections of up to this many fields are parsed into a stack array.
pub(crate) const STACK_HEADERS: usize = 100;

/// `tchar` of RFC 9110 section 5.6.2: the bytes of a field name or a method.
pub(crate) fn is_token(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// A non-empty token.
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// A field value a recipient reads as one value of one field: visible ASCII,
/// space, tab and obs-text, but no CR, LF, NUL or other control byte, which
/// would end the field early or be read differently by different parsers.
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// `s` without optional white space (SP, HTAB) at either end.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated list value, trimmed.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// What the `Connection` fields of a message say about keeping the connection,
/// gathered one field value at a time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
}

impl ConnectionTokens {
    /// Takes one `Connection` field value into account.
    /// One pass over the list, each element compared only with the token of
    /// its length.
    pub(crate) fn add(&mut self, value: &[u8]) {
        // The one token a server usually sends, as the whole value, compared
        // a word at a time: a field value holds no CR, the one byte other than
        // `-` that folding bit 0x20 turns into `-`.
        if folds_to(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        for item in list_items(value) {
            match item.len() {
                5 => self.close |= item.eq_ignore_ascii_case(b"close"),
                10 => self.keep_alive |= item.eq_ignore_ascii_case(b"keep-alive"),
                _ => {}
            }
        }
    }

    /// Whether the connection ends after this message: it says `close`, or it
    /// is HTTP/1.0 and does not say `keep-alive` (RFC 9112 section 9.3).
    pub(crate) fn closes(&self, http10: bool) -> bool {
        self.close || (http10 && !self.keep_alive)
    }
}

/// `1*DIGIT` as a `u64`, or `None` if empty, not all digits, or too large.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => u64::from(b - b'0'),
            _ => return None,
        };
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// The framing fields of a header section (`Content-Length`,
/// `Transfer-Encoding`, `Connection`), read as [`header_map`] goes over the
/// fields, so that none of them is looked up in the map afterwards.
#[derive(Debug, Default)]
pub(crate) struct FramingFields {
    length: LengthFields,
    coding: CodingFields,
    connection: ConnectionTokens,
}

impl FramingFields {
    /// Takes one field into account.
    #[inline]
    fn add(&mut self, name: &HeaderName, value: &[u8]) {
        if *name == CONTENT_LENGTH {
            self.length.add(value);
        } else if *name == TRANSFER_ENCODING {
            self.coding.add(value);
        } else if *name == CONNECTION {
            self.connection.add(value);
        }
    }

    /// The value of the `Content-Length` fields, `None` if there are none.
    ///
    /// Several fields, or one holding a list, are accepted only when every
    /// element is the same number (RFC 9110 section 8.6). Anything else is an
    /// error: a sign, an empty value or list element, a number past `u64::MAX`.
    /// Empty list elements are refused too, although list syntax allows them,
    /// because a length is the one field where reading it differently from a
    /// peer is an attack.
    pub(crate) fn content_length(&self) -> Result<Option<u64>, Error> {
        if self.length.invalid {
            return Err(Error::InvalidContentLength);
        }
        Ok(self.length.value)
    }

    /// Whether there is any `Content-Length` field, valid or not.
    pub(crate) fn has_content_length(&self) -> bool {
        self.length.present
    }

    /// The framing meaning of the `Transfer-Encoding` fields, `None` if there
    /// are none. Every coding must be a token (parameters after `;` are
    /// allowed); `chunked` twice, or a field with no coding at all, is an error.
    pub(crate) fn transfer_coding(&self) -> Result<Option<TransferCoding>, Error> {
        let c = &self.coding;
        if let Some(error) = c.error {
            return Err(error);
        }
        match (c.present, c.last_chunked) {
            (false, _) => Ok(None),
            (true, None) => Err(Error::InvalidHead("empty Transfer-Encoding")),
            (true, Some(true)) => Ok(Some(TransferCoding::Chunked)),
            (true, Some(false)) => Ok(Some(TransferCoding::NotChunked)),
        }
    }

    /// What the `Connection` fields say.
    pub(crate) fn connection(&self) -> ConnectionTokens {
        self.connection
    }
}

/// The `Content-Length` fields so far.
#[derive(Debug, Default)]
struct LengthFields {
    present: bool,
    invalid: bool,
    value: Option<u64>,
}

impl LengthFields {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        if self.invalid {
            return;
        }
        for item in value.split(|&b| b == b',') {
            match parse_decimal(trim_ows(item)) {
                Some(n) if self.value.is_none_or(|seen| seen == n) => self.value = Some(n),
                _ => {
                    self.invalid = true;
                    return;
                }
            }
        }
    }
}

/// The `Transfer-Encoding` fields so far.
#[derive(Debug, Default)]
struct CodingFields {
    present: bool,
    /// Whether the last coding seen is `chunked`; `None` before any.
    last_chunked: Option<bool>,
    chunked_seen: bool,
    /// The first fault found.
    error: Option<Error>,
}

impl CodingFields {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        if self.error.is_some() {
            return;
        }
        for item in list_items(value) {
            let name = trim_ows(item.split(|&b| b == b';').next().unwrap_or(item));
            if !is_token_str(name) {
                self.error = Some(Error::InvalidHead("malformed Transfer-Encoding"));
                return;
            }
            let chunked = name.eq_ignore_ascii_case(b"chunked");
            if chunked && self.chunked_seen {
                self.error = Some(Error::InvalidHead("chunked applied more than once"));
                return;
            }
            self.chunked_seen |= chunked;
            self.last_chunked = Some(chunked);
        }
    }
}

/// What the `Transfer-Encoding` fields say about framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// The final coding is `chunked` (and it appears nowhere else).
    Chunked,
    /// There are codings, and `chunked` is not the final one.
    NotChunked,
}

/// The index just past the first empty line in `buf` whose terminating LF is at
/// or after `from`: the end of a header section. Both CRLF and bare LF line
/// endings count, as `httparse` accepts both.
///
/// An empty line is an LF followed by LF or by CRLF, so the end is the first of
/// the two patterns: one vectorized search for `\n\r\n` over the whole
/// section, the usual ending, and one for `\n\n` over what precedes it, rather
/// than a search per line.
pub(crate) fn find_empty_line(buf: &[u8], from: usize) -> Option<usize> {
    static CRLF: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\n\r\n"));
    static LF: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"\n\n"));
    let haystack = buf.get(from..)?;
    let crlf = CRLF.find(haystack);
    // A bare-LF ending counts only if it comes first: its first LF is before
    // the CRLF ending's.
    let before = crlf.map_or(haystack, |at| &haystack[..=at]);
    let end = match LF.find(before) {
        Some(at) => at + 2,
        None => crlf? + 3,
    };
    from.checked_add(end)
}

/// The field name `name`, a token (as `httparse` checked), as a `HeaderName`.
fn field_name(name: &[u8]) -> Result<HeaderName, Error> {
    match common_name(name) {
        Some(known) => Ok(known),
        None => HeaderName::from_bytes(name).map_err(|_| Error::InvalidHead("invalid header name")),
    }
}

/// The names servers send in most responses, found by comparing whole words
/// with the name of the same length, rather than by `http`'s general parse,
/// which lower-cases the name byte by byte into a copy and then matches it
/// against every standard name. `None` for any other name.
///
/// `name` must be a token: the comparison folds case by setting bit `0x20` of
/// every byte, which is exact for letters and leaves digits and `-` as they are,
/// and could confuse only control bytes, which no token holds.
fn common_name(name: &[u8]) -> Option<HeaderName> {
    use http::header::{
        ACCEPT_RANGES, AGE, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, DATE, ETAG, EXPIRES,
        LAST_MODIFIED, LOCATION, SERVER, SET_COOKIE, VARY,
    };
    debug_assert!(is_token_str(name));
    let candidates: &[HeaderName] = match name.len() {
        3 => &[AGE],
        4 => &[DATE, ETAG, VARY],
        6 => &[SERVER],
        7 => &[EXPIRES],
        8 => &[LOCATION],
        10 => &[CONNECTION, SET_COOKIE],
        12 => &[CONTENT_TYPE],
        13 => &[LAST_MODIFIED, ACCEPT_RANGES, CACHE_CONTROL],
        14 => &[CONTENT_LENGTH],
        16 => &[CONTENT_ENCODING],
        17 => &[TRANSFER_ENCODING],
        _ => return None,
    };
    candidates
        .iter()
        .find(|known| folds_to(name, known.as_str().as_bytes()))
        .cloned()
}

/// Whether the token `name` is `lower` (lower-case letters, digits and `-`) in
/// any case: eight bytes at a time, each with bit `0x20` set.
fn folds_to(name: &[u8], lower: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    if name.len() != lower.len() {
        return false;
    }
    let mut words = name.chunks_exact(8);
    let mut lower_words = lower.chunks_exact(8);
    for (word, lower_word) in (&mut words).zip(&mut lower_words) {
        let (Ok(word), Ok(lower_word)) =
            (<[u8; 8]>::try_from(word), <[u8; 8]>::try_from(lower_word))
        else {
            return false;
        };
        if u64::from_ne_bytes(word) | FOLD != u64::from_ne_bytes(lower_word) {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .zip(lower_words.remainder())
        .all(|(b, lower)| b | 0x20 == *lower)
}

/// Where a parsed field's name and value lie in the bytes of its section, as
/// offsets from the section's start.
///
/// `httparse` hands out slices borrowed from the buffer it parsed. Noted as
/// offsets, the fields outlive that borrow: the section can then be split off
/// the read buffer and frozen, and the map built with values that share it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// Room on the stack for the spans of up to 32 fields, about three times what a
/// server usually sends; a longer head notes them in a `Vec`.
pub(crate) type StackSpans = ArrayVec<FieldSpan, 32>;

/// The spans of `fields` within `section`, the bytes they were parsed from:
/// in `stack` when they fit (it starts empty, and no slot is written before it
/// is used), else in `heap`.
pub(crate) fn field_spans<'s>(
    fields: &[httparse::Header<'_>],
    section: &[u8],
    stack: &'s mut StackSpans,
    heap: &'s mut Vec<FieldSpan>,
) -> &'s [FieldSpan] {
    let base = section.as_ptr() as usize;
    let span = |field: &httparse::Header<'_>| FieldSpan {
        name: offsets(field.name.as_bytes(), base),
        value: offsets(field.value, base),
    };
    if fields.len() <= stack.capacity() {
        for field in fields {
            stack.push(span(field));
        }
        stack
    } else {
        heap.extend(fields.iter().map(span));
        heap
    }
}

/// Where `part`, a slice `httparse` took from the section starting at `base`
/// (empty ones included), starts and ends in it.
fn offsets(part: &[u8], base: usize) -> (usize, usize) {
    let start = (part.as_ptr() as usize).wrapping_sub(base);
    (start, start.wrapping_add(part.len()))
}

/// The map of `fields`, which `httparse` parsed from `section` itself (so no
/// split comes between the parse and the map): see [`header_map`].
pub(crate) fn section_map(
    section: &Bytes,
    fields: &[httparse::Header<'_>],
) -> Result<(HeaderMap, FramingFields), Error> {
    let (mut stack, mut heap) = (StackSpans::new(), Vec::new());
    header_map(section, field_spans(fields, section, &mut stack, &mut heap))
}

/// The fields at `spans` of `section` as a map whose values share `section`'s
/// memory, and what its framing fields say.
pub(crate) fn header_map(
    section: &Bytes,
    spans: &[FieldSpan],
) -> Result<(HeaderMap, FramingFields), Error> {
    let mut map = HeaderMap::with_capacity(spans.len());
    let mut framing = FramingFields::default();
    for span in spans {
        let (name, value) = (span.name.0..span.name.1, span.value.0..span.value.1);
        // Spans are the parser's own, always inside the section; a range
        // outside it is refused rather than trusted.
        let (Some(name), Some(raw)) = (section.get(name), section.get(value.clone())) else {
            return Err(Error::InvalidHead("malformed header field"));
        };
        let name = field_name(name)?;
        framing.add(&name, raw);
        map.append(name, parsed_value(section.slice(value)));
    }
    Ok((map, framing))
}

/// A field value `httparse` has parsed, as a `HeaderValue` sharing its memory.
///
/// `HeaderValue`'s checked constructors test every byte again, which is a
/// fifth of the cost of a response head, for a rule the parser has already
/// applied: `httparse` accepts in a field value exactly tab, the bytes from
/// space to `~`, and obs-text (`0x80..=0xFF`), which is the set `HeaderValue`
/// accepts, and with obsolete line folding off (the default, which muxpool
/// keeps) a value holds no CR or LF. The
/// `parsed_values_are_valid_header_values` test checks the two rules byte by
/// byte; `malformed_fields_are_refused` (`tests/h1_hostile.rs`) fails if the
/// response parser ever lets a folded line through; and in debug builds `http`
/// checks every value again and panics on a mismatch.
#[allow(unsafe_code)]
fn parsed_value(value: Bytes) -> HeaderValue {
    // SAFETY: `value` is a field value `httparse` accepted (see above), so
    // every byte is one `HeaderValue` allows; that is the constructor's only
    // requirement.
    unsafe { HeaderValue::from_maybe_shared_unchecked(value) }
}

/// The codec error for an `httparse` error.
pub(crate) fn from_httparse(error: httparse::Error) -> Error {
    match error {
        httparse::Error::TooManyHeaders => Error::TooManyHeaders,
        httparse::Error::HeaderName => Error::InvalidHead("invalid header name"),
        httparse::Error::HeaderValue => Error::InvalidHead("invalid header value"),
        httparse::Error::NewLine => Error::InvalidHead("invalid line ending"),
        httparse::Error::Status => Error::InvalidHead("invalid status code"),
        httparse::Error::Token => Error::InvalidHead("invalid token"),
        httparse::Error::Version => Error::InvalidHead("invalid HTTP version"),
    }
}

/// How many header slots to give `httparse` for a section of at most
/// `max_bytes` bytes: a field line takes at least three bytes (`a:` and LF), so
/// more slots than that could never be filled.
pub(crate) fn header_slots(max_headers: usize, max_bytes: usize) -> usize {
    max_headers.min(max_bytes / 3 + 1)
}

/// Appends `n` in decimal.
pub(crate) fn put_decimal(dst: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[start..]);
}

/// Appends `n` in lower-case hexadecimal, without leading zeros.
pub(crate) fn put_hex(dst: &mut BytesMut, mut n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_with_line_breaks_or_controls_are_refused() {
        assert!(is_field_value(b"text/html; charset=utf-8"));
        assert!(is_field_value(b"a\tb \x80\xff"));
        for bad in [
            &b"a\r\nX-Injected: 1"[..],
            b"a\nb",
            b"a\rb",
            b"a\0b",
            b"a\x7fb",
            b"\x1b",
        ] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn parsed_values_are_valid_header_values() {
        // Every byte, alone and between letters, in a one-field head: what
        // httparse accepts as a value, `HeaderValue` must accept too.
        let mut accepted_between = 0;
        for b in 0..=u8::MAX {
            for (between, value) in [(false, vec![b]), (true, vec![b'a', b, b'z'])] {
                let mut head = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
                head.extend_from_slice(&value);
                head.extend_from_slice(b"\r\n\r\n");
                let mut fields = [httparse::EMPTY_HEADER; 1];
                let mut response = httparse::Response::new(&mut fields);
                if let Ok(httparse::Status::Complete(_)) = response.parse(&head) {
                    let parsed = response.headers[0].value;
                    assert!(
                        HeaderValue::from_bytes(parsed).is_ok(),
                        "byte {b:#04x}: httparse accepted {parsed:?}"
                    );
                    assert!(is_field_value(parsed), "byte {b:#04x}");
                    accepted_between += usize::from(between);
                }
            }
        }
        // Tab, space to `~`, and obs-text: httparse took every one of them.
        assert_eq!(accepted_between, 1 + 95 + 128);
    }

    #[test]
    fn a_parsed_head_keeps_its_values_byte_for_byte() {
        let section = Bytes::from_static(
            b"HTTP/1.1 200 OK\r\nx-a: one \t two\r\nx-b: \x80\xff\r\nx-c:\r\n\r\n",
        );
        let mut fields = [httparse::EMPTY_HEADER; 4];
        let mut response = httparse::Response::new(&mut fields);
        let status = response.parse(&section).expect("a valid head");
        assert!(status.is_complete());
        let (map, _) = section_map(&section, response.headers).expect("a valid head");
        assert_eq!(map["x-a"].as_bytes(), b"one \t two");
        assert_eq!(map["x-b"].as_bytes(), b"\x80\xff");
        assert_eq!(map["x-c"].as_bytes(), b"");
    }

    #[test]
    fn tokens_are_rfc_9110_tchars() {
        assert!(is_token_str(b"x-custom-Header_1"));
        for bad in [
            &b""[..],
            b"a b",
            b"a:b",
            b"a\r",
            b"(a)",
            b"a/b",
            b"\xc3\xa9",
        ] {
            assert!(!is_token_str(bad), "{bad:?}");
        }
    }

    #[test]
    fn decimals_refuse_signs_spaces_and_overflow() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b"-1",
            b"1 2",
            b"0x10",
            b"1e3",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn empty_lines_are_found_with_either_line_ending() {
        assert_eq!(find_empty_line(b"a\r\n\r\nrest", 0), Some(5));
        assert_eq!(find_empty_line(b"a\n\nrest", 0), Some(3));
        assert_eq!(find_empty_line(b"a\r\nb\r\n", 0), None);
        assert_eq!(find_empty_line(b"a\r\n\r", 0), None);
        // Resuming past the start of a terminator misses it; callers resume two
        // bytes early.
        assert_eq!(find_empty_line(b"a\r\n\r\n", 2), Some(5));
        // Whichever ending comes first ends the section.
        assert_eq!(find_empty_line(b"a\n\nb\r\n\r\n", 0), Some(3));
        assert_eq!(find_empty_line(b"a\r\n\r\nb\n\n", 0), Some(5));
        assert_eq!(find_empty_line(b"a\nb\n\r\n", 0), Some(6));
        assert_eq!(find_empty_line(b"a\r\nb\n\n", 0), Some(6));
        assert_eq!(find_empty_line(b"", 0), None);
        assert_eq!(find_empty_line(b"a", 5), None);
    }

    /// The two searches agree with the definition: the first LF, at or after
    /// `from`, followed by LF or CRLF.
    #[test]
    fn empty_line_search_matches_a_scan_line_by_line() {
        fn by_lines(buf: &[u8], from: usize) -> Option<usize> {
            (from..buf.len()).find_map(|lf| match &buf[lf..] {
                [b'\n', b'\n', ..] => Some(lf + 2),
                [b'\n', b'\r', b'\n', ..] => Some(lf + 3),
                _ => None,
            })
        }
        let alphabet = [b'\r', b'\n', b'a'];
        // Every buffer of up to 7 bytes over CR, LF and one other byte.
        for len in 0..=7u32 {
            for code in 0..3usize.pow(len) {
                let buf: Vec<u8> = (0..len)
                    .scan(code, |c, _| {
                        let b = alphabet[*c % 3];
                        *c /= 3;
                        Some(b)
                    })
                    .collect();
                for from in 0..=buf.len() {
                    assert_eq!(
                        find_empty_line(&buf, from),
                        by_lines(&buf, from),
                        "{buf:?} {from}"
                    );
                }
            }
        }
    }

    /// The common names are found in any case, and every token, common or
    /// not, gets the name `http` would give it.
    #[test]
    fn common_names_are_the_names_http_parses() {
        use http::header;
        let common = [
            header::AGE,
            header::DATE,
            header::ETAG,
            header::VARY,
            header::SERVER,
            header::EXPIRES,
            header::LOCATION,
            header::CONNECTION,
            header::SET_COOKIE,
            header::CONTENT_TYPE,
            header::LAST_MODIFIED,
            header::ACCEPT_RANGES,
            header::CACHE_CONTROL,
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
            header::TRANSFER_ENCODING,
        ];
        for known in &common {
            let lower = known.as_str();
            for spelling in [
                lower.to_string(),
                lower.to_ascii_uppercase(),
                lower
                    .split('-')
                    .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                    .collect::<Vec<_>>()
                    .join("-"),
            ] {
                assert_eq!(
                    common_name(spelling.as_bytes()).as_ref(),
                    Some(known),
                    "{spelling}"
                );
                assert_eq!(field_name(spelling.as_bytes()).ok().as_ref(), Some(known));
            }
        }
        // Names one byte away from a common one, of the same length: a letter
        // changed, `-` replaced by other tokens that fold near it, a digit.
        for known in &common {
            let lower = known.as_str().as_bytes();
            for at in 0..lower.len() {
                for b in [
                    b'm', b'M', b'\x27', b'_', b'.', b'0', b'~', b'|', b'`', b'^',
                ] {
                    let mut name = lower.to_vec();
                    name[at] = b;
                    let expected = HeaderName::from_bytes(&name).expect("a token");
                    assert_eq!(field_name(&name).expect("a token"), expected, "{name:?}");
                }
            }
        }
        assert_eq!(common_name(b"x-served-by"), None);
        assert_eq!(field_name(b"X-Served-By").unwrap().as_str(), "x-served-by");
    }

    proptest::proptest! {
        /// Any token gets exactly the name `http` parses from it.
        #[test]
        fn any_token_gets_the_name_http_parses(
            name in "[-!#$%&'*+.^_`|~0-9a-zA-Z]{1,20}",
        ) {
            let expected = HeaderName::from_bytes(name.as_bytes()).expect("a token");
            proptest::prop_assert_eq!(field_name(name.as_bytes()).expect("a token"), expected);
        }
    }

    #[test]
    fn connection_tokens_are_list_elements_in_any_case() {
        let tokens = |values: &[&[u8]]| {
            let mut t = ConnectionTokens::default();
            values.iter().for_each(|v| t.add(v));
            t
        };
        assert!(tokens(&[b"Close"]).closes(false));
        assert!(tokens(&[b"upgrade , close"]).closes(false));
        assert!(tokens(&[b"te", b"\tCLOSE "]).closes(false));
        assert!(!tokens(&[b"closed", b"xclose", b"close-ish"]).closes(false));
        assert!(!tokens(&[b"Keep-Alive"]).closes(true));
        assert!(!tokens(&[b"foo,keep-alive"]).closes(true));
        assert!(tokens(&[b"keep-alive2", b"keepalive"]).closes(true));
        assert!(!tokens(&[]).closes(false));
        assert!(tokens(&[]).closes(true));
    }

    #[test]
    fn numbers_are_written_in_decimal_and_hex() {
        let mut dst = BytesMut::new();
        put_decimal(&mut dst, 0);
        dst.put_u8(b' ');
        put_decimal(&mut dst, u64::MAX);
        dst.put_u8(b' ');
        put_hex(&mut dst, 0);
        dst.put_u8(b' ');
        put_hex(&mut dst, 0xfeed);
        dst.put_u8(b' ');
        put_hex(&mut dst, u64::MAX);
        assert_eq!(&dst[..], b"0 18446744073709551615 0 feed ffffffffffffffff");
    }
}
