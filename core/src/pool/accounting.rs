//! The bookkeeping a grant or a release does: the hot path.
//!
//! [`Books`] holds the connections, their leases and the pool-wide counts that
//! move with them, apart from the keys, so that the hot path can hold a key and
//! reach its connections with each looked up once. A change that can move a
//! connection goes through [`Books::update`], which brings its key's gauges,
//! usable count and `free` list, and the pool's open count, in line with the
//! connection's new [`Place`]: the counters follow the state without being
//! recounted, and a change that leaves the place as it was costs one
//! comparison. [`Books::grant`] makes a lease on top of it.

use std::time::Duration;

use crate::action::CloseReason;
use crate::id::{Arena, ConnId, Lease, LeaseId, StreamLease};
use crate::list::Link;
use crate::stats::Stats;

use super::conn::{slot_link, Conn, Place};
use super::key::KeyState;

/// How a lease comes to be granted.
#[derive(Debug, Clone, Copy)]
pub(super) enum Granted {
    /// At once, to the request that asked for it.
    AtOnce,
    /// To a request that waited this long, on free capacity.
    Waited(Duration),
    /// To a request that waited this long, on the capacity of a lease just
    /// released on the same connection, which is not counted back first: the
    /// released lease's entry, renamed, is the new lease (`Some`), or, if it was
    /// the connection's inline lease (see [`Books::leases`]), the grant renames
    /// that (`None`).
    HandedOn(Duration, Option<LeaseId>),
}

/// The connections and their leases, and the pool-wide counts that move with
/// them: everything a grant or a release changes besides the state of the
/// connection's key. Kept apart from the keys, so that the hot path can hold a
/// key and reach its connections with each looked up once.
pub(super) struct Books {
    pub(super) conns: Arena<ConnId, Conn>,
    /// The leases out on multiplexed connections beside their inline ones,
    /// each naming its connection. A connection's first lease out is its
    /// inline one, named after the connection with a generation from this
    /// arena's counter ([`LeaseId::inline`], [`Conn::lease_generation`]): granting and
    /// releasing it touches the connection alone, which both look up anyway.
    /// An exclusive connection has no other; a multiplexed one takes an entry
    /// here for each stream it grants while its inline lease is out.
    pub(super) leases: Arena<StreamLease, ConnId>,
    /// The next [`Conn::idle_seq`].
    pub(super) idle_seq: u64,
    /// Connections open over all keys (the global limit's count).
    pub(super) open_total: u32,
}

impl Books {
    /// A new lease on `cid`, whose key is `k` (see `Pool::grant`).
    #[inline(always)]
    pub(super) fn grant<K>(
        &mut self,
        k: &mut KeyState<K>,
        cid: ConnId,
        how: Granted,
        max_requests: Option<u64>,
    ) -> Lease {
        let (added, waited) = match how {
            Granted::AtOnce => (1, None),
            Granted::Waited(waited) => (1, Some(waited)),
            Granted::HandedOn(waited, _) => (0, Some(waited)),
        };
        // The generation the next handle gets, which names an inline lease
        // (another comes with its entry); see `Books::leases`. Taken only once
        // the connection is updated, so that nothing is written to the pool
        // before it is looked up. A lease handed on is inline if the released
        // one was (it has no entry to rename).
        let generation = self.leases.next_generation();
        let f = |c: &mut Conn| {
            c.leases += added;
            c.requests += 1;
            let inline = match how {
                Granted::HandedOn(_, renewed) => renewed.is_none(),
                _ => !c.inline_out(),
            };
            if inline {
                c.lease_generation = generation;
            }
            if max_requests.is_some_and(|max| c.requests >= max) {
                c.state = c.state.draining();
                c.drain_reason = CloseReason::RequestLimit;
            }
            inline
        };
        let g = |s: &mut Stats, c: &Conn| {
            s.grants += 1;
            s.reused_grants += u64::from(c.requests > 1);
            s.leases += added;
            if let Some(waited) = waited {
                s.waited_grants += 1;
                s.wait_time += waited;
            }
        };
        let inline = 'granted: {
            if let Granted::HandedOn(..) = how {
                let c = self.conns.get_mut(cid).expect("granted connections live");
                if max_requests.is_none_or(|max| c.requests + 1 < max) {
                    // Its leases, state and capacity stay as they are, and so do its
                    // counts and lists: no need to bring them in line.
                    let inline = f(c);
                    g(&mut k.stats, c);
                    break 'granted inline;
                }
            }
            self.update(k, cid, f, g).is_some_and(|(_, inline)| inline)
        };
        let id = match how {
            Granted::HandedOn(_, Some(renewed)) => renewed,
            _ if inline => LeaseId::inline(cid, self.leases.fresh_generation()),
            _ => self.leases.insert(cid).lease_id(),
        };
        Lease::new(id, cid)
    }

    /// Applies `f` to a connection and `g` to the counters of its key `k`
    /// (given the changed connection), then brings the key's counts and list,
    /// and the pool's, in line with the connection's new state. Returns its new
    /// place (`None` if the connection is unknown), which often tells the caller
    /// enough not to look the connection up again, and what `f` returned.
    #[inline(always)]
    pub(super) fn update<K, R>(
        &mut self,
        k: &mut KeyState<K>,
        cid: ConnId,
        f: impl FnOnce(&mut Conn) -> R,
        g: impl Fn(&mut Stats, &Conn),
    ) -> Option<(Place, R)> {
        let c = self.conns.get_mut(cid)?;
        let before = c.place;
        let r = f(c);
        let after = c.place();
        g(&mut k.stats, c);
        if before == after {
            return Some((after, r));
        }
        c.place = after;
        let changed = before.0 ^ after.0;
        if changed & after.0 & Place::EVICTABLE != 0 {
            c.idle_seq = self.idle_seq;
            self.idle_seq += 1;
        }
        if changed & Place::USABLE != 0 {
            if after.usable() {
                k.usable += 1;
            } else {
                k.usable -= 1;
            }
        }
        if changed & Place::CLASS != 0 {
            k.gauges.moved(before, after);
            // A connection is counted open where it opens (`Pool::open`) and
            // never leaves `CLOSED` once there: only the way out counts here.
            debug_assert!(before != Place::CLOSED, "a closed connection reopened");
            if after == Place::CLOSED {
                self.open_total -= 1;
            }
        }
        if changed & Place::SLOT != 0 {
            let listed = before.0 & Place::SLOT != 0;
            // The slot's bits, not `Place::slot`: the list ends below are told
            // apart without a match on them.
            let to = after.0 & Place::SLOT;
            if changed & Place::SLOT_PARTIAL != 0 {
                if to == Place::SLOT_PARTIAL {
                    k.partial += 1;
                } else {
                    k.partial -= 1;
                }
            }
            let was = c.slot_link;
            // Idle ones go to the front, partly used ones to the back; one listed
            // at that end already stays (see `KeyState::free`).
            let stays = listed
                && match to {
                    Place::SLOT_IDLE => was.is_first(),
                    Place::SLOT_PARTIAL => was.is_last(),
                    _ => false,
                };
            if !stays {
                // The connection is at hand: its own link is set here, and the
                // list only mends its neighbours. One that moves is not at the end
                // it goes to, so its leaving does not change that end.
                c.slot_link = match to {
                    Place::SLOT_IDLE => k.free.front_link(),
                    Place::SLOT_PARTIAL => k.free.back_link(),
                    _ => Link::default(),
                };
                if listed {
                    k.free.unlink(&mut self.conns, was, slot_link);
                }
                let index = cid.index();
                match to {
                    Place::SLOT_IDLE => k.free.attach_front(&mut self.conns, index, slot_link),
                    Place::SLOT_PARTIAL => k.free.attach_back(&mut self.conns, index, slot_link),
                    _ => {}
                }
            }
        }
        Some((after, r))
    }
}
