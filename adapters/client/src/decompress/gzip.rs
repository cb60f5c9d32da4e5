//! `gzip` (RFC 1952): a header, a raw deflate stream, and a trailer with
//! the CRC-32 and length of what it decodes to, checked; members may follow
//! one another, as RFC 1952 allows, and decode as one body.
//!
//! The header is read a byte at a time as it arrives, so nothing of it is
//! buffered, however it is split across frames.

use flate2::{Crc, Decompress, Status};

use super::{inflate_step, Step};

/// The gzip header's flags (RFC 1952, section 2.3.1).
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xe0;

/// Where in a member the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The ten fixed bytes: magic, method, flags, time, extra flags, OS.
    Fixed,
    /// The two bytes of the extra field's length.
    ExtraLen,
    /// The extra field, skipped.
    Extra,
    /// The file name, up to its zero byte.
    Name,
    /// The comment, up to its zero byte.
    Comment,
    /// The header's own CRC-16.
    HeaderCrc,
    /// The deflate stream.
    Body,
    /// The CRC-32 and the length, eight bytes.
    Trailer,
    /// A member ended, its checks passed; another may follow.
    Done,
}

pub(crate) struct Gzip {
    state: State,
    /// Bytes of the current field seen (or, for `Extra`, left to skip).
    n: usize,
    /// What fixed-size fields collect: the fixed header, the extra length,
    /// the header CRC, the trailer.
    field: [u8; 10],
    flags: u8,
    /// The CRC-32 of the header so far, for `FHCRC`.
    header_crc: Crc,
    inflate: Decompress,
    /// The CRC-32 and length of what the member decoded to.
    crc: Crc,
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip {
            state: State::Fixed,
            n: 0,
            field: [0; 10],
            flags: 0,
            header_crc: Crc::new(),
            inflate: Decompress::new(false),
            crc: Crc::new(),
        }
    }
}

impl Gzip {
    /// Decodes from `input` into `output`: header and trailer bytes are
    /// taken as they come, and a step returns as soon as it decoded
    /// something.
    pub(crate) fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, String> {
        let mut consumed = 0;
        loop {
            if self.state == State::Body {
                let (c, produced, status) =
                    inflate_step(&mut self.inflate, &input[consumed..], output)?;
                consumed += c;
                self.crc.update(&output[..produced]);
                let ended = status == Status::StreamEnd;
                if ended {
                    self.enter(State::Trailer);
                }
                if produced > 0 || !ended {
                    return Ok(Step {
                        consumed,
                        produced,
                        ended: false,
                    });
                }
                continue;
            }
            let Some(&byte) = input.get(consumed) else {
                return Ok(Step {
                    consumed,
                    produced: 0,
                    ended: self.state == State::Done,
                });
            };
            if self.state == State::Done {
                // Another member follows.
                *self = Gzip::default();
            }
            consumed += 1;
            self.header_byte(byte)?;
        }
    }

    fn enter(&mut self, state: State) {
        self.state = state;
        self.n = 0;
    }

    /// Takes one byte of a header or trailer.
    fn header_byte(&mut self, byte: u8) -> Result<(), String> {
        if !matches!(self.state, State::HeaderCrc | State::Trailer) {
            self.header_crc.update(&[byte]);
        }
        match self.state {
            State::Fixed => {
                self.field[self.n] = byte;
                self.n += 1;
                if self.n == 10 {
                    let fixed = self.field;
                    if fixed[..2] != [0x1f, 0x8b] {
                        return Err("not a gzip header".into());
                    }
                    if fixed[2] != 8 {
                        return Err(format!("unknown compression method {}", fixed[2]));
                    }
                    if fixed[3] & RESERVED != 0 {
                        return Err("reserved header flags set".into());
                    }
                    self.flags = fixed[3];
                    self.next_field(State::ExtraLen);
                }
            }
            State::ExtraLen => {
                self.field[self.n] = byte;
                self.n += 1;
                if self.n == 2 {
                    let len = usize::from(u16::from_le_bytes([self.field[0], self.field[1]]));
                    self.enter(State::Extra);
                    self.n = len;
                    if len == 0 {
                        self.next_field(State::Name);
                    }
                }
            }
            State::Extra => {
                self.n -= 1;
                if self.n == 0 {
                    self.next_field(State::Name);
                }
            }
            State::Name => {
                if byte == 0 {
                    self.next_field(State::Comment);
                }
            }
            State::Comment => {
                if byte == 0 {
                    self.next_field(State::HeaderCrc);
                }
            }
            State::HeaderCrc => {
                self.field[self.n] = byte;
                self.n += 1;
                if self.n == 2 {
                    let expected = u16::from_le_bytes([self.field[0], self.field[1]]);
                    // The low 16 bits of the header's CRC-32.
                    if expected != self.header_crc.sum() as u16 {
                        return Err("the header's CRC does not match".into());
                    }
                    self.enter(State::Body);
                }
            }
            State::Trailer => {
                self.field[self.n] = byte;
                self.n += 1;
                if self.n == 8 {
                    let f = self.field;
                    let crc = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
                    let len = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                    if crc != self.crc.sum() {
                        return Err("the CRC-32 does not match the data".into());
                    }
                    if len != self.crc.amount() {
                        return Err("the length does not match the data".into());
                    }
                    self.enter(State::Done);
                }
            }
            // `step` decodes these itself, never a byte at a time.
            State::Body | State::Done => return Err("a header byte out of place".into()),
        }
        Ok(())
    }

    /// Moves to `state`, or past it to the next field the flags say is
    /// there.
    fn next_field(&mut self, state: State) {
        let mut state = state;
        loop {
            let present = match state {
                State::ExtraLen => self.flags & FEXTRA != 0,
                State::Name => self.flags & FNAME != 0,
                State::Comment => self.flags & FCOMMENT != 0,
                State::HeaderCrc => self.flags & FHCRC != 0,
                _ => true,
            };
            if present {
                break;
            }
            state = match state {
                State::ExtraLen | State::Extra => State::Name,
                State::Name => State::Comment,
                State::Comment => State::HeaderCrc,
                _ => State::Body,
            };
        }
        self.enter(state);
    }
}
