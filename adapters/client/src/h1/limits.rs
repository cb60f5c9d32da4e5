//! How much a server may make the codec hold or scan.
//!
//! A response head is buffered whole before it is parsed, so without a cap a
//! server (or anything between it and us) could make the client buffer without
//! end; the same holds for the trailer section of a chunked body and for a
//! chunk-size line, whose extensions are otherwise unbounded. Each limit is a
//! plain number checked before the bytes are kept, so no input can grow the
//! memory the codec holds past them.

/// The limits the response parser and body decoder enforce.
///
/// ```
/// use muxpool_client::H1Limits;
///
/// let limits = H1Limits::default().with_max_headers(50);
/// assert_eq!(limits.max_headers(), 50);
/// assert_eq!(limits.max_header_bytes(), 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_header_bytes: usize,
    max_headers: usize,
    max_chunk_line: usize,
}

impl Limits {
    /// 64 KiB for a head or trailer section, 100 fields, 4 KiB for a chunk-size
    /// line (size and extensions).
    pub const DEFAULT: Limits = Limits {
        max_header_bytes: 64 * 1024,
        max_headers: 100,
        max_chunk_line: 4 * 1024,
    };

    /// The most bytes a response head (status line, fields and the empty line
    /// that ends it) or a trailer section may take.
    pub fn max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }

    /// The most fields a response head or a trailer section may have. Up to 100
    /// are parsed with no allocation; a larger limit costs one allocation of that
    /// many slots (at most one per three bytes of the head) per parse.
    pub fn max_headers(&self) -> usize {
        self.max_headers
    }

    /// The most bytes one chunk-size line may take, from the first hex digit to
    /// its CRLF, extensions included.
    pub fn max_chunk_line(&self) -> usize {
        self.max_chunk_line
    }

    /// These limits with `max_header_bytes` set.
    #[must_use]
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Limits {
        self.max_header_bytes = bytes;
        self
    }

    /// These limits with `max_headers` set.
    #[must_use]
    pub fn with_max_headers(mut self, count: usize) -> Limits {
        self.max_headers = count;
        self
    }

    /// These limits with `max_chunk_line` set.
    #[must_use]
    pub fn with_max_chunk_line(mut self, bytes: usize) -> Limits {
        self.max_chunk_line = bytes;
        self
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}
