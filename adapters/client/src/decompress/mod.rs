//! Response decompression: which content codings the client asks for, which
//! responses it decodes, and the decoders, sans-IO (compressed bytes in,
//! decoded bytes out).
//!
//! # Why this module
//!
//! Servers compress what they send when the client says it can decode it
//! (`Accept-Encoding`); a client that cannot leaves every caller to decode
//! bodies by hand, and one that can must do it as HTTP says (RFC 9110,
//! section 8.4) and without letting a few compressed bytes turn into
//! gigabytes (a decompression bomb). Each coding is a Cargo feature
//! (`gzip`, `deflate`, `brotli`, `zstd`), so a client that wants none
//! builds none, and with none compiled in or [`Decompression::off`] a request
//! pays one branch.
//!
//! What it decides, once per request (`Decompression::prepare`) and once
//! per response (`body::decompressed`, which wraps the body in a
//! [`Decoder`]):
//!
//! - a request gets `Accept-Encoding` listing the enabled codings, unless it
//!   sets its own (its caller then reads the bytes as sent), asks for a range
//!   (`Range`: a part of a compressed body cannot be decoded alone) or is a
//!   `HEAD` (no body to decode);
//! - a response is decoded when its `Content-Encoding` is exactly one enabled
//!   coding, and its status is none of 204, 206 and 304; the decoded
//!   response loses its `Content-Encoding` and `Content-Length`, which
//!   describe the bytes sent. Anything else (no coding, an unknown one, a
//!   list of several) is left as it came.
//!
//! A [`Decoder`] works in bounded steps: each call decodes at most
//! [`CHUNK`] bytes, and checks the limits ([`Decompression::max_ratio`],
//! [`Decompression::max_size`]) before handing them out, so a bomb is
//! stopped within a chunk of its limit, whatever its ratio.

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(all(
    test,
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
mod tests;

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::{Error, ErrorKind};

/// The largest piece a [`Decoder`] decodes at once: 32 KiB.
pub const CHUNK: usize = 32 * 1024;

/// A content coding the client can decode (RFC 9110, section 8.4.1), each
/// behind the Cargo feature of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Coding {
    /// `gzip` (RFC 1952; `x-gzip` is taken as it), feature `gzip`.
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), or, as browsers accept it, a raw
    /// deflate stream (RFC 1951); feature `deflate`.
    Deflate,
    /// `br`: brotli (RFC 7932), feature `brotli`.
    Brotli,
    /// `zstd`: Zstandard (RFC 8878), with windows up to 8 MiB as RFC 9659
    /// asks of HTTP; feature `zstd`.
    Zstd,
}

impl Coding {
    /// Every coding, in the order `Accept-Encoding` lists them.
    pub const ALL: [Coding; 4] = [Coding::Gzip, Coding::Brotli, Coding::Zstd, Coding::Deflate];

    /// Its name in `Accept-Encoding` and `Content-Encoding`: `gzip`,
    /// `deflate`, `br`, `zstd`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// Whether this build can decode it: its feature is on.
    pub const fn is_compiled(self) -> bool {
        match self {
            Coding::Gzip => cfg!(feature = "gzip"),
            Coding::Deflate => cfg!(feature = "deflate"),
            Coding::Brotli => cfg!(feature = "brotli"),
            Coding::Zstd => cfg!(feature = "zstd"),
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The coding a `Content-Encoding` value names, if it is one of ours.
    fn parse(value: &[u8]) -> Option<Coding> {
        let value = value.trim_ascii();
        Coding::ALL
            .into_iter()
            .find(|c| value.eq_ignore_ascii_case(c.as_str().as_bytes()))
            .or_else(|| {
                value
                    .eq_ignore_ascii_case(b"x-gzip")
                    .then_some(Coding::Gzip)
            })
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much larger than what was received a decoded body may grow, by
/// default: 200 times (past the first [`RATIO_ALLOWANCE`]).
pub const DEFAULT_MAX_RATIO: u32 = 200;

/// What a decoded body may reach whatever its ratio: 1 MiB, so that a small
/// body that compresses very well (a page of one repeated character) is
/// never taken for a bomb.
pub const RATIO_ALLOWANCE: u64 = 1024 * 1024;

/// What the client decompresses, and how far: set with
/// [`ClientBuilder::decompression`](crate::ClientBuilder::decompression).
///
/// The default decodes every coding compiled in (the features `gzip`,
/// `deflate`, `brotli`, `zstd`), and stops a body that decodes to more than
/// [`DEFAULT_MAX_RATIO`] (200) times the compressed bytes it was made from,
/// once past [`RATIO_ALLOWANCE`] (1 MiB), with no limit on its size.
///
/// Why a ratio, and 200: text, HTML, JSON and logs compress 3 to 30 times,
/// very repetitive data 50 to 100 times; a bomb is built to go far beyond
/// (deflate reaches 1,032 times, brotli and zstd millions). Bounding the
/// ratio bounds what a server can make the client do to what it sends, so
/// a bomb is stopped after at most 200 times its own size (plus 1 MiB),
/// while a legitimate body of any size goes through. 200 is Apache
/// httpd's `DeflateInflateRatioLimit`, for the same purpose. A size limit
/// ([`max_size`](Self::max_size)) is off by default for the same reason
/// the client sets none on a body that is not compressed: how much to
/// read is the caller's choice ([`Body::bytes`](crate::Body::bytes) stops
/// at [`max_response_body`](crate::ClientBuilder::max_response_body)).
///
/// A body over a limit fails with [`ErrorKind::Body`] and a
/// [`DecompressionError`] (from [`Error::decompression`]); its connection
/// is closed (an HTTP/2 stream is reset), never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decompression {
    /// The enabled codings, one bit each ([`Coding::bit`]).
    codings: u8,
    max_ratio: Option<u32>,
    max_size: Option<u64>,
}

impl Default for Decompression {
    fn default() -> Self {
        Decompression::new()
    }
}

impl Decompression {
    /// Every coding compiled in, with the default limits.
    pub const fn new() -> Decompression {
        let mut codings = 0;
        let mut i = 0;
        while i < Coding::ALL.len() {
            if Coding::ALL[i].is_compiled() {
                codings |= Coding::ALL[i].bit();
            }
            i += 1;
        }
        Decompression {
            codings,
            max_ratio: Some(DEFAULT_MAX_RATIO),
            max_size: None,
        }
    }

    /// No decompression: no `Accept-Encoding` is added, every body is read
    /// as it was sent.
    pub const fn off() -> Decompression {
        Decompression {
            codings: 0,
            ..Decompression::new()
        }
    }

    /// These settings with `coding` enabled too, if this build can decode it
    /// (see [`Coding::is_compiled`]); otherwise unchanged.
    pub const fn with(mut self, coding: Coding) -> Decompression {
        if coding.is_compiled() {
            self.codings |= coding.bit();
        }
        self
    }

    /// These settings with `coding` disabled: it is not asked for, and a
    /// response in it is left as it came.
    pub const fn without(mut self, coding: Coding) -> Decompression {
        self.codings &= !coding.bit();
        self
    }

    /// The most a decoded body may be, as a multiple of the compressed bytes
    /// it was decoded from, once it is past [`RATIO_ALLOWANCE`]; `None` for
    /// no such limit. Default [`DEFAULT_MAX_RATIO`] (200).
    pub const fn max_ratio(mut self, ratio: Option<u32>) -> Decompression {
        self.max_ratio = ratio;
        self
    }

    /// The most a decoded body may be, in bytes; `None` (the default) for no
    /// such limit.
    pub const fn max_size(mut self, bytes: Option<u64>) -> Decompression {
        self.max_size = bytes;
        self
    }

    /// Whether `coding` is enabled (and compiled in).
    pub const fn is_enabled(&self, coding: Coding) -> bool {
        self.codings & coding.bit() != 0
    }

    /// Whether any coding is enabled.
    pub const fn is_on(&self) -> bool {
        self.codings != 0
    }

    /// The `Accept-Encoding` value these settings send: the enabled codings,
    /// in [`Coding::ALL`]'s order; `None` when none is.
    pub fn accept_encoding(&self) -> Option<HeaderValue> {
        let names: Vec<&str> = Coding::ALL
            .into_iter()
            .filter(|c| self.is_enabled(*c))
            .map(Coding::as_str)
            .collect();
        if names.is_empty() {
            return None;
        }
        HeaderValue::from_str(&names.join(", ")).ok()
    }

    /// Prepares a request to go out: adds `accept` (this configuration's
    /// [`accept_encoding`](Self::accept_encoding)) to its headers and says
    /// whether its response may be decoded. Not for a request that set its
    /// own `Accept-Encoding`, asks for a `Range`, or is a `HEAD`.
    pub(crate) fn prepare(method: &Method, headers: &mut HeaderMap, accept: &HeaderValue) -> bool {
        if method == Method::HEAD
            || headers.contains_key(ACCEPT_ENCODING)
            || headers.contains_key(RANGE)
        {
            return false;
        }
        headers.insert(ACCEPT_ENCODING, accept.clone());
        true
    }

    /// The decoder for a response with `status` and `headers` to a request
    /// [`prepare`](Self::prepare) let through, if it is to be decoded; its
    /// `Content-Encoding` and `Content-Length` are then removed.
    pub(crate) fn decoder_for(
        &self,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> Option<Decoder> {
        if matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
        ) {
            return None;
        }
        let mut values = headers.get_all(CONTENT_ENCODING).into_iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let coding = Coding::parse(value.as_bytes()).filter(|c| self.is_enabled(*c))?;
        let decoder = Decoder::new(coding, self)?;
        headers.remove(CONTENT_ENCODING);
        headers.remove(CONTENT_LENGTH);
        Some(decoder)
    }
}

/// Why a compressed response body could not be read: the cause of an
/// [`Error`] of kind [`ErrorKind::Body`], from [`Error::decompression`].
///
/// What to do: a body over a limit is what the server sent (retrying gets
/// the same); raise the limit ([`Decompression::max_ratio`],
/// [`Decompression::max_size`]) only for a server trusted to send it. A
/// corrupt or truncated body is the server's fault, or a connection's that
/// was cut; a retry may get it whole, and the request can also go out with
/// its own `Accept-Encoding: identity` to get it uncompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecompressionError {
    /// The decoded body grew past [`Decompression::max_ratio`] times the
    /// compressed bytes it came from (and past [`RATIO_ALLOWANCE`]).
    RatioExceeded {
        /// The coding.
        coding: Coding,
        /// The limit.
        max_ratio: u32,
        /// Compressed bytes decoded so far.
        compressed: u64,
        /// What they decoded to.
        decoded: u64,
    },
    /// The decoded body grew past [`Decompression::max_size`].
    SizeExceeded {
        /// The coding.
        coding: Coding,
        /// The limit, in bytes.
        max_size: u64,
    },
    /// The body is not valid in its coding: a bad header, a bad block, a
    /// checksum that does not match, bytes after its end.
    Corrupt {
        /// The coding.
        coding: Coding,
        /// What the decoder found wrong.
        detail: String,
    },
    /// The body ended before its compressed stream did.
    Truncated {
        /// The coding.
        coding: Coding,
    },
}

impl fmt::Display for DecompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecompressionError::RatioExceeded {
                coding,
                max_ratio,
                compressed,
                decoded,
            } => write!(
                f,
                "{compressed} bytes of {coding} decoded to more than {decoded} bytes, past the limit of {max_ratio} times"
            ),
            DecompressionError::SizeExceeded { coding, max_size } => write!(
                f,
                "the {coding} body decoded to more than the limit of {max_size} bytes"
            ),
            DecompressionError::Corrupt { coding, detail } => {
                write!(f, "the {coding} body is corrupt: {detail}")
            }
            DecompressionError::Truncated { coding } => {
                write!(f, "the {coding} body ended before its compressed stream")
            }
        }
    }
}

impl std::error::Error for DecompressionError {}

impl DecompressionError {
    fn into_error(self) -> Error {
        Error::new(ErrorKind::Body)
            .with_message("the response body could not be decompressed")
            .with_source(self)
    }
}

impl Error {
    /// What went wrong decoding a compressed response body, for an error of
    /// kind [`ErrorKind::Body`] that came from one: a limit passed, corrupt
    /// data, a truncated stream.
    pub fn decompression(&self) -> Option<&DecompressionError> {
        std::error::Error::source(self)?.downcast_ref()
    }
}

/// One coding's decoder, without limits: compressed bytes in, decoded bytes
/// out.
enum Codec {
    #[cfg(feature = "gzip")]
    Gzip(Box<gzip::Gzip>),
    #[cfg(feature = "deflate")]
    Deflate(Box<Deflate>),
    #[cfg(feature = "brotli")]
    Brotli(Box<Brotli>),
    #[cfg(feature = "zstd")]
    Zstd(Box<Zstd>),
}

/// What one step of a [`Codec`] did.
struct Step {
    /// Input bytes taken.
    consumed: usize,
    /// Output bytes written.
    produced: usize,
    /// The compressed stream is complete (its end, its checksum, seen):
    /// input may end here.
    ended: bool,
}

impl Codec {
    fn new(coding: Coding) -> Option<Codec> {
        match coding {
            #[cfg(feature = "gzip")]
            Coding::Gzip => Some(Codec::Gzip(Box::default())),
            #[cfg(feature = "deflate")]
            Coding::Deflate => Some(Codec::Deflate(Box::default())),
            #[cfg(feature = "brotli")]
            Coding::Brotli => Some(Codec::Brotli(Box::new(Brotli::new()))),
            #[cfg(feature = "zstd")]
            Coding::Zstd => Some(Codec::Zstd(Box::default())),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Decodes from `input` into `output`; with no input, gives out what the
    /// decoder holds.
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, String> {
        match self {
            #[cfg(feature = "gzip")]
            Codec::Gzip(gzip) => gzip.step(input, output),
            #[cfg(feature = "deflate")]
            Codec::Deflate(deflate) => deflate.step(input, output),
            #[cfg(feature = "brotli")]
            Codec::Brotli(brotli) => brotli.step(input, output),
            #[cfg(feature = "zstd")]
            Codec::Zstd(zstd) => zstd.step(input, output),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = (input, output);
                Err("no decoder".into())
            }
        }
    }
}

/// Decodes one response body, step by step, within the limits of the
/// [`Decompression`] it was made with. Public only with the `unstable`
/// feature, for fuzzing.
pub struct Decoder {
    coding: Coding,
    codec: Codec,
    max_ratio: Option<u32>,
    max_size: Option<u64>,
    /// Compressed bytes the codec took, and what they decoded to.
    compressed: u64,
    decoded: u64,
    /// The compressed stream is complete so far.
    ended: bool,
    /// The last step filled its output: the codec may hold more.
    full: bool,
    /// Where decoded pieces are written; what a piece leaves of its
    /// capacity serves the next one.
    out: BytesMut,
}

impl Decoder {
    /// A decoder of `coding` within `settings`' limits; `None` when the
    /// coding is not compiled in.
    pub fn new(coding: Coding, settings: &Decompression) -> Option<Decoder> {
        Some(Decoder {
            coding,
            codec: Codec::new(coding)?,
            max_ratio: settings.max_ratio,
            max_size: settings.max_size,
            compressed: 0,
            decoded: 0,
            ended: false,
            full: false,
            out: BytesMut::new(),
        })
    }

    /// Whether the codec may hold decoded bytes not yet given out: call
    /// [`decode`](Self::decode) again, with no input, before waiting for
    /// more.
    pub fn has_output(&self) -> bool {
        self.full
    }

    /// Decodes from `input` (advancing it past what was taken) until a piece
    /// of at most [`CHUNK`] bytes is decoded, or `input` is used up with
    /// nothing decoded (`None`). With empty `input`, gives out what the codec
    /// holds.
    ///
    /// # Errors
    ///
    /// An [`Error`] of kind [`ErrorKind::Body`] with a
    /// [`DecompressionError`]: a limit passed, or corrupt data.
    pub fn decode(&mut self, input: &mut Bytes) -> Result<Option<Bytes>, Error> {
        loop {
            if input.is_empty() && !self.full {
                return Ok(None);
            }
            self.out.resize(CHUNK, 0);
            let step = self
                .codec
                .step(input, &mut self.out[..])
                .map_err(|detail| self.corrupt(detail))?;
            let had_input = !input.is_empty();
            bytes::Buf::advance(input, step.consumed);
            self.compressed += step.consumed as u64;
            self.decoded += step.produced as u64;
            self.ended = step.ended;
            self.full = step.produced == CHUNK;
            self.out.truncate(step.produced);
            self.check_limits()?;
            if step.produced > 0 {
                return Ok(Some(self.out.split().freeze()));
            }
            if had_input && step.consumed == 0 {
                // Input offered, none taken, nothing decoded: only a stream
                // that already ended refuses more.
                let detail = match self.ended {
                    true => "bytes follow the end of the compressed stream",
                    false => "the decoder made no progress",
                };
                return Err(self.corrupt(detail.into()));
            }
        }
    }

    /// Called once the body ended, after [`decode`](Self::decode) gave out
    /// all it held: an error unless the compressed stream ended too (or
    /// never began: an empty body is taken as empty).
    pub fn finish(&self) -> Result<(), Error> {
        if self.ended || self.compressed == 0 {
            return Ok(());
        }
        Err(DecompressionError::Truncated {
            coding: self.coding,
        }
        .into_error())
    }

    fn check_limits(&self) -> Result<(), Error> {
        if let Some(max_size) = self.max_size {
            if self.decoded > max_size {
                return Err(DecompressionError::SizeExceeded {
                    coding: self.coding,
                    max_size,
                }
                .into_error());
            }
        }
        if let Some(max_ratio) = self.max_ratio {
            if self.decoded > RATIO_ALLOWANCE
                && self.decoded > self.compressed.saturating_mul(u64::from(max_ratio))
            {
                return Err(DecompressionError::RatioExceeded {
                    coding: self.coding,
                    max_ratio,
                    compressed: self.compressed,
                    decoded: self.decoded,
                }
                .into_error());
            }
        }
        Ok(())
    }

    fn corrupt(&self, detail: String) -> Error {
        DecompressionError::Corrupt {
            coding: self.coding,
            detail,
        }
        .into_error()
    }
}

/// `deflate`: a zlib stream, or a raw deflate one, told apart by the first
/// two bytes (a zlib header is a multiple of 31 naming method 8).
#[cfg(feature = "deflate")]
#[derive(Default)]
struct Deflate {
    /// The first byte, held until the second tells which.
    first: Option<u8>,
    inflate: Option<flate2::Decompress>,
    ended: bool,
}

#[cfg(feature = "deflate")]
impl Deflate {
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, String> {
        let Some(inflate) = &mut self.inflate else {
            let Some(&byte) = input.first() else {
                return Ok(Step {
                    consumed: 0,
                    produced: 0,
                    ended: false,
                });
            };
            let Some(first) = self.first else {
                self.first = Some(byte);
                return Ok(Step {
                    consumed: 1,
                    produced: 0,
                    ended: false,
                });
            };
            let zlib = first & 0x0f == 8
                && first >> 4 <= 7
                && (u16::from(first) << 8 | u16::from(byte)) % 31 == 0;
            let mut inflate = flate2::Decompress::new(zlib);
            inflate
                .decompress(&[first], output, flate2::FlushDecompress::None)
                .map_err(|e| e.to_string())?;
            // One header byte decodes to nothing.
            debug_assert_eq!(inflate.total_out(), 0);
            self.inflate = Some(inflate);
            return self.step(input, output);
        };
        if self.ended {
            return Ok(Step {
                consumed: 0,
                produced: 0,
                ended: true,
            });
        }
        let (consumed, produced, status) = inflate_step(inflate, input, output)?;
        self.ended = status == flate2::Status::StreamEnd;
        Ok(Step {
            consumed,
            produced,
            ended: self.ended,
        })
    }
}

/// One step of a flate2 inflater: what it took, what it gave, its status.
#[cfg(any(feature = "gzip", feature = "deflate"))]
fn inflate_step(
    inflate: &mut flate2::Decompress,
    input: &[u8],
    output: &mut [u8],
) -> Result<(usize, usize, flate2::Status), String> {
    let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
    let status = inflate
        .decompress(input, output, flate2::FlushDecompress::None)
        .map_err(|e| e.to_string())?;
    // Both totals grow by at most the slices' lengths, which fit a usize.
    let consumed = usize::try_from(inflate.total_in() - before_in).unwrap_or(input.len());
    let produced = usize::try_from(inflate.total_out() - before_out).unwrap_or(output.len());
    Ok((consumed, produced, status))
}

/// `br`: brotli-decompressor's stream decoder, with the standard window
/// sizes only (up to 16 MiB; no large-window streams).
#[cfg(feature = "brotli")]
struct Brotli {
    state: brotli_decompressor::BrotliState<
        brotli_decompressor::StandardAlloc,
        brotli_decompressor::StandardAlloc,
        brotli_decompressor::StandardAlloc,
    >,
    ended: bool,
}

#[cfg(feature = "brotli")]
impl Brotli {
    fn new() -> Brotli {
        use brotli_decompressor::StandardAlloc;
        Brotli {
            state: brotli_decompressor::BrotliState::new_strict(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            ended: false,
        }
    }

    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, String> {
        use brotli_decompressor::BrotliResult;
        if self.ended {
            return Ok(Step {
                consumed: 0,
                produced: 0,
                ended: true,
            });
        }
        let (mut available_in, mut input_offset) = (input.len(), 0);
        let (mut available_out, mut output_offset, mut total) = (output.len(), 0, 0);
        let result = brotli_decompressor::BrotliDecompressStream(
            &mut available_in,
            &mut input_offset,
            input,
            &mut available_out,
            &mut output_offset,
            output,
            &mut total,
            &mut self.state,
        );
        match result {
            BrotliResult::ResultFailure => {
                Err(format!("invalid brotli data ({:?})", self.state.error_code))
            }
            BrotliResult::ResultSuccess
            | BrotliResult::NeedsMoreInput
            | BrotliResult::NeedsMoreOutput => {
                self.ended = matches!(result, BrotliResult::ResultSuccess);
                Ok(Step {
                    consumed: input_offset,
                    produced: output_offset,
                    ended: self.ended,
                })
            }
        }
    }
}

/// `zstd`: the reference library's streaming decoder, its window limited to
/// 8 MiB (RFC 9659: what HTTP's encoders stay within, and so the most a
/// decoder needs to hold). Frames may follow one another.
#[cfg(feature = "zstd")]
#[derive(Default)]
struct Zstd {
    /// Made at the first step (making one can fail).
    decoder: Option<zstd::stream::raw::Decoder<'static>>,
    /// The last step finished a frame and gave out all of it.
    ended: bool,
}

#[cfg(feature = "zstd")]
impl Zstd {
    /// RFC 9659's limit, 8 MiB, as a power of two.
    const WINDOW_LOG_MAX: u32 = 23;

    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, String> {
        use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            None => {
                let mut decoder = Decoder::new().map_err(|e| e.to_string())?;
                decoder
                    .set_parameter(DParameter::WindowLogMax(Self::WINDOW_LOG_MAX))
                    .map_err(|e| e.to_string())?;
                self.decoder.insert(decoder)
            }
        };
        if input.is_empty() && self.ended {
            return Ok(Step {
                consumed: 0,
                produced: 0,
                ended: true,
            });
        }
        let mut src = InBuffer::around(input);
        let mut dst = OutBuffer::around(output);
        let hint = decoder.run(&mut src, &mut dst).map_err(|e| e.to_string())?;
        let (consumed, produced) = (src.pos(), dst.pos());
        if consumed > 0 || produced > 0 {
            // A frame is done once the library says so (all of its output
            // given out); bytes after it start the next frame.
            self.ended = hint == 0;
        }
        Ok(Step {
            consumed,
            produced,
            ended: self.ended,
        })
    }
}
