//! One connection as the pool keeps it: its state, and where that state puts
//! it in its key's counts and lists.
//!
//! A connection's state changes in many places (a grant, a release, a peer's new
//! limit, a timeout), but where it is counted (its gauge, whether it is usable or
//! evictable) and listed (idle, partly used, or neither) follows from its state
//! alone. [`Conn::place`] is the one function that works that out, packed in a
//! [`Place`] byte, so the bookkeeping compares two places and moves only what
//! differs, and [`Gauges`] count a key's connections by the class bits of their
//! places.

use std::fmt;

use crate::action::CloseReason;
use crate::event::Mode;
use crate::id::{KeyId, Lease, LeaseId};
use crate::list::Link;
use crate::time::Instant;

/// A connection's state, as [`Pool::conn_info`](crate::Pool::conn_info) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// The open action was issued; no outcome yet.
    Connecting,
    /// Up, and taking leases up to its capacity.
    Ready,
    /// Idle, with a health check out; takes no lease until it is answered.
    Checking,
    /// Takes no new lease; closes when its last lease comes back.
    Draining,
    /// Closed by the core or the transport while leases were still out on it; it
    /// lingers only until they come back.
    Closed,
}

/// What the core knows of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// Its state.
    pub state: ConnState,
    /// Exclusive or multiplexed, once connected.
    pub mode: Option<Mode>,
    /// Leases out on it.
    pub leases: u32,
    /// Leases it can take at once: 1 if exclusive, the smaller of our cap and the
    /// peer's limit if multiplexed, 0 before it connects.
    pub capacity: u32,
    /// Leases it has been granted over its life.
    pub requests: u64,
}

/// [`Conn::lease_generation`] while no inline lease is out: arenas count
/// generations from 1.
pub(super) const NO_LEASE: u64 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Connecting {
        deadline: Instant,
    },
    Ready,
    Checking {
        deadline: Instant,
    },
    /// No new lease.
    Draining,
    /// No new lease, and a health check sent before the connection began to
    /// drain is still out: draining does not excuse a suspected connection
    /// from answering it, and it closes at `deadline` unanswered.
    DrainingChecked {
        deadline: Instant,
    },
    Closed,
}

impl State {
    /// The state a connection drains in: a health check out stays out.
    pub(super) fn draining(self) -> State {
        match self {
            State::Checking { deadline } | State::DrainingChecked { deadline } => {
                State::DrainingChecked { deadline }
            }
            _ => State::Draining,
        }
    }

    /// Whether the connection takes no new lease and closes with its last.
    pub(super) fn is_draining(self) -> bool {
        matches!(self, State::Draining | State::DrainingChecked { .. })
    }
}

/// Where a connection is counted in the gauges. The values are its bits in a
/// [`Place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Connecting = 1,
    Idle = 2,
    Busy = 3,
    Draining = 4,
}

/// Where a connection is in its key's `free` list, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    None,
    /// Ready, no lease, capacity to spare: in the idle part, at the front.
    Idle,
    /// Multiplexed, some leases, capacity to spare: in the partial part, at the
    /// back.
    Partial,
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) key: KeyId,
    pub(super) state: State,
    pub(super) multiplexed: bool,
    pub(super) capacity: u32,
    /// Leases out beyond `capacity` because the peer lowered its limit under them.
    pub(super) grandfathered: u32,
    pub(super) leases: u32,
    pub(super) requests: u64,
    pub(super) health_checks: bool,
    /// Last time the connection went idle (for the idle timeout).
    pub(super) idle_since: Instant,
    /// Last time the connection was known alive (for health checks).
    pub(super) seen_at: Instant,
    pub(super) expires_at: Option<Instant>,
    pub(super) drain_reason: CloseReason,
    /// Where it is counted and listed now (see [`Place`]).
    pub(super) place: Place,
    /// When it last became evictable, in a pool-wide sequence: the least recently
    /// used idle connection has the smallest.
    pub(super) idle_seq: u64,
    /// The generation of its inline lease (see `Books::leases`) while that is
    /// out, always so while an exclusive connection is leased; [`NO_LEASE`]
    /// while it is not (no handle has that generation).
    pub(super) lease_generation: u64,
    pub(super) slot_link: Link,
    pub(super) all_link: Link,
}

/// Where a connection is counted and listed: everything `Books::update` keeps
/// in line with its state. Each connection caches its place, so an update only
/// works out the new one, and does nothing more when it is the same (a stream
/// taken or returned on a busy multiplexed connection changes no place).
///
/// Packed in one byte, so that telling two places apart, and which of their
/// parts differ, is one comparison each:
///
/// - its gauge ([`Place::class`]; `None` once closed),
/// - usable: up, not draining, and with capacity, so it can serve the key now
///   or soon,
/// - evictable: idle and up, so another key may take its room,
/// - the grant list it is on ([`Place::slot`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Place(pub(super) u8);

impl Place {
    pub(super) const CLASS: u8 = 0b111;
    pub(super) const USABLE: u8 = 1 << 3;
    pub(super) const EVICTABLE: u8 = 1 << 4;
    pub(super) const SLOT_IDLE: u8 = 1 << 5;
    pub(super) const SLOT_PARTIAL: u8 = 1 << 6;
    pub(super) const SLOT: u8 = Place::SLOT_IDLE | Place::SLOT_PARTIAL;

    pub(super) const CONNECTING: Place = Place(Class::Connecting as u8);
    pub(super) const CLOSED: Place = Place(0);

    pub(super) fn class(self) -> Option<Class> {
        match self.0 & Place::CLASS {
            1 => Some(Class::Connecting),
            2 => Some(Class::Idle),
            3 => Some(Class::Busy),
            4 => Some(Class::Draining),
            _ => None,
        }
    }

    /// Whether it is counted as `class`: [`Place::class`] without the match.
    pub(super) fn is(self, class: Class) -> bool {
        self.0 & Place::CLASS == class as u8
    }

    pub(super) fn usable(self) -> bool {
        self.0 & Place::USABLE != 0
    }

    pub(super) fn evictable(self) -> bool {
        self.0 & Place::EVICTABLE != 0
    }

    pub(super) fn slot(self) -> Slot {
        match self.0 & Place::SLOT {
            Place::SLOT_IDLE => Slot::Idle,
            Place::SLOT_PARTIAL => Slot::Partial,
            _ => Slot::None,
        }
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Place")
            .field("class", &self.class())
            .field("usable", &self.usable())
            .field("evictable", &self.evictable())
            .field("slot", &self.slot())
            .finish()
    }
}

impl Conn {
    /// The place the connection's state calls for, in one look at the state.
    #[inline]
    pub(super) fn place(&self) -> Place {
        let usable = if self.capacity > 0 { Place::USABLE } else { 0 };
        let bits = match self.state {
            State::Connecting { .. } => return Place::CONNECTING,
            State::Ready if self.leases == 0 => {
                let slot = if self.capacity > 0 {
                    Place::SLOT_IDLE
                } else {
                    0
                };
                Class::Idle as u8 | usable | Place::EVICTABLE | slot
            }
            State::Ready => {
                let slot = if self.leases < self.capacity {
                    Place::SLOT_PARTIAL
                } else {
                    0
                };
                Class::Busy as u8 | usable | slot
            }
            State::Checking { .. } if self.leases == 0 => Class::Idle as u8 | usable,
            State::Checking { .. } => Class::Busy as u8 | usable,
            State::Draining | State::DrainingChecked { .. } => Class::Draining as u8,
            State::Closed => return Place::CLOSED,
        };
        Place(bits)
    }

    /// Whether `lease` is the inline lease out on this connection.
    pub(super) fn holds_inline(&self, lease: Lease) -> bool {
        self.inline_out() && lease.id() == LeaseId::inline(lease.conn(), self.lease_generation)
    }

    /// Whether its inline lease is out.
    pub(super) fn inline_out(&self) -> bool {
        self.lease_generation != NO_LEASE
    }

    pub(super) fn info(&self) -> ConnInfo {
        let connected = !matches!(self.state, State::Connecting { .. });
        ConnInfo {
            state: match self.state {
                State::Connecting { .. } => ConnState::Connecting,
                State::Ready => ConnState::Ready,
                State::Checking { .. } => ConnState::Checking,
                State::Draining | State::DrainingChecked { .. } => ConnState::Draining,
                State::Closed => ConnState::Closed,
            },
            mode: connected.then_some(if self.multiplexed {
                Mode::Multiplexed {
                    max_streams: self.capacity,
                }
            } else {
                Mode::Exclusive
            }),
            leases: self.leases,
            capacity: self.capacity,
            requests: self.requests,
        }
    }
}

pub(super) fn slot_link(c: &mut Conn) -> &mut Link {
    &mut c.slot_link
}
pub(super) fn all_link(c: &mut Conn) -> &mut Link {
    &mut c.all_link
}

/// A key's connections counted by class, indexed by a [`Place`]'s class bits,
/// so that moving a connection from one class to another indexes twice and
/// matches on nothing. Slot 0 is a closed connection's: every connection that
/// opens is counted out of it and every one that closes back in, so it holds
/// minus the number open, wrapping.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Gauges([u32; 8]);

impl Gauges {
    pub(super) fn get(&self, class: Class) -> u32 {
        self.0[class as usize]
    }

    /// Connections open: every class but closed.
    pub(super) fn open(&self) -> u32 {
        self.0[0].wrapping_neg()
    }

    /// Counts a connection out of the class of `before` and into that of `after`.
    #[inline(always)]
    pub(super) fn moved(&mut self, before: Place, after: Place) {
        let from = &mut self.0[usize::from(before.0 & Place::CLASS)];
        *from = from.wrapping_sub(1);
        let to = &mut self.0[usize::from(after.0 & Place::CLASS)];
        *to = to.wrapping_add(1);
    }
}
