//! Handles: small copyable names for connections, waiting requests and leases.
//!
//! Every handle is a slot index plus a generation. The core keeps its objects in
//! [`slab`]s and stamps each new object with a fresh generation from a 64-bit
//! counter, so a handle that outlives its object can never reach the object that
//! later reuses the slot: it is answered with [`EventError::Stale`](crate::EventError::Stale)
//! instead. Handles are plain data: cheap to copy, hash and send across threads.
//!
//! A lease is named the same way, but not every lease has an object of its
//! own. A connection's *inline* lease (an exclusive connection's only one, a
//! multiplexed connection's while no other stream of it is out) is kept in the
//! connection itself and named after it, so that taking and giving back an
//! HTTP/1.1 connection, or the one stream of an HTTP/2 connection, touches
//! nothing else; the other leases of a multiplexed connection have entries of
//! their own. Even and odd indices keep the two kinds apart
//! ([`LeaseId::inline`], [`StreamLease`]). Generations of both come from the
//! same counter.

use core::fmt;
use slab::Slab;

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name {
            index: u32,
            generation: u64,
        }

        impl $name {
            /// The slot this handle names; unique among live objects of this kind.
            ///
            /// Useful to index a caller-side table; not unique over time.
            pub const fn index(self) -> u32 {
                self.index
            }

            /// The generation that tells this object from others in the same slot.
            pub const fn generation(self) -> u64 {
                self.generation
            }

            /// Rebuilds a handle from its parts. A handle that was never issued is
            /// answered with an error by every method of the core, never a panic.
            pub const fn from_parts(index: u32, generation: u64) -> Self {
                Self { index, generation }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}.{}"), self.index, self.generation)
            }
        }

        impl Handle for $name {
            fn new(index: u32, generation: u64) -> Self {
                Self { index, generation }
            }
            fn index(self) -> u32 {
                self.index
            }
            fn generation(self) -> u64 {
                self.generation
            }
        }
    };
}

handle!(
    /// A connection the core asked the caller to open.
    ConnId,
    "conn#"
);
handle!(
    /// A request for capacity that is waiting in a queue.
    WaiterId,
    "waiter#"
);
handle!(
    /// One grant of capacity: an exclusive connection, or one stream slot on a
    /// multiplexed connection.
    LeaseId,
    "lease#"
);

/// What the core hands out: which connection to use, and the lease to give back.
///
/// Return it with [`Pool::release`](crate::Pool::release) exactly once. A second
/// release, or a release after the core forgot the connection, is an error and
/// changes nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Lease {
    id: LeaseId,
    conn: ConnId,
}

impl Lease {
    pub(crate) const fn new(id: LeaseId, conn: ConnId) -> Lease {
        Lease { id, conn }
    }

    /// The lease's own handle.
    pub const fn id(self) -> LeaseId {
        self.id
    }

    /// The connection this lease is on.
    pub const fn conn(self) -> ConnId {
        self.conn
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{:?}", self.id, self.conn)
    }
}

impl LeaseId {
    /// The inline lease of the connection `conn`: an even index, half of which
    /// is the connection's (see [`StreamLease`] for the odd ones).
    pub(crate) const fn inline(conn: ConnId, generation: u64) -> LeaseId {
        // Slot indices are bounded by the core's limits, far below u32::MAX / 2.
        LeaseId {
            index: conn.index << 1,
            generation,
        }
    }
}

/// A lease on a multiplexed connection beside its inline one: its entry in the
/// pool's lease arena. Internal: callers see it as a [`LeaseId`] with an odd
/// index, twice the entry's plus one, so it never names the same slot as an
/// inline lease ([`LeaseId::inline`]), which has no entry: the index of a
/// [`LeaseId`] stays unique among live leases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct StreamLease {
    index: u32,
    generation: u64,
}

impl StreamLease {
    /// The handle callers know this lease by.
    pub(crate) const fn lease_id(self) -> LeaseId {
        LeaseId {
            index: (self.index << 1) | 1,
            generation: self.generation,
        }
    }

    /// The entry `id` names, if it names one (an odd index).
    pub(crate) const fn of(id: LeaseId) -> Option<StreamLease> {
        if id.index & 1 == 1 {
            Some(StreamLease {
                index: id.index >> 1,
                generation: id.generation,
            })
        } else {
            None
        }
    }
}

impl Handle for StreamLease {
    fn new(index: u32, generation: u64) -> Self {
        StreamLease { index, generation }
    }
    fn index(self) -> u32 {
        self.index
    }
    fn generation(self) -> u64 {
        self.generation
    }
}

/// A key (origin) the core holds state for. Internal: callers name keys by value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct KeyId {
    index: u32,
    generation: u64,
}

impl Handle for KeyId {
    fn new(index: u32, generation: u64) -> Self {
        KeyId { index, generation }
    }
    fn index(self) -> u32 {
        self.index
    }
    fn generation(self) -> u64 {
        self.generation
    }
}

pub(crate) trait Handle: Copy {
    fn new(index: u32, generation: u64) -> Self;
    fn index(self) -> u32;
    fn generation(self) -> u64;
}

struct Slot<T> {
    generation: u64,
    value: T,
}

/// A slab whose entries are named by generation-tagged handles.
///
/// An arena that empties after growing past [`SHRINK_ABOVE`] slots gives its
/// room back, down to what it was made with (at least [`KEPT_SLOTS`]): a burst
/// (10,000 waiting requests, 10,000 leased streams) does not stay allocated for
/// the pool's life. Generations come from one counter per arena, never reset,
/// so a handle from before the shrink names nothing after it.
pub(crate) struct Arena<H, T> {
    slots: Slab<Slot<T>>,
    next_generation: u64,
    /// The capacity an emptied arena goes back to.
    kept: usize,
    /// An emptied arena with more room than this shrinks: the larger of
    /// [`SHRINK_ABOVE`] and `kept`.
    shrink_above: usize,
    _handle: core::marker::PhantomData<H>,
}

/// See [`Arena`]: an empty arena with more room than this shrinks.
const SHRINK_ABOVE: usize = 1024;

/// See [`Arena`]: the least room an arena keeps when it shrinks, so that the
/// usual few entries never reallocate.
const KEPT_SLOTS: usize = 64;

impl<H: Handle, T> Arena<H, T> {
    pub(crate) fn new() -> Self {
        Arena::with_capacity(0)
    }

    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Arena {
            slots: Slab::with_capacity(capacity),
            next_generation: 1,
            kept: capacity.max(KEPT_SLOTS),
            shrink_above: capacity.max(KEPT_SLOTS).max(SHRINK_ABOVE),
            _handle: core::marker::PhantomData,
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> H {
        let generation = self.fresh_generation();
        let index = self.slots.insert(Slot { generation, value });
        // Slot indices are bounded by the core's limits, far below u32::MAX.
        H::new(index as u32, generation)
    }

    pub(crate) fn get(&self, h: H) -> Option<&T> {
        match self.slots.get(h.index() as usize) {
            Some(slot) if slot.generation == h.generation() => Some(&slot.value),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, h: H) -> Option<&mut T> {
        match self.slots.get_mut(h.index() as usize) {
            Some(slot) if slot.generation == h.generation() => Some(&mut slot.value),
            _ => None,
        }
    }

    pub(crate) fn contains(&self, h: H) -> bool {
        self.get(h).is_some()
    }

    pub(crate) fn remove(&mut self, h: H) -> Option<T> {
        self.remove_if(h, |_| true)
    }

    /// Removes the entry `h` names if `pred` holds for it.
    pub(crate) fn remove_if(&mut self, h: H, pred: impl FnOnce(&T) -> bool) -> Option<T> {
        let entry = self.entry(h)?;
        pred(entry.get()).then(|| entry.remove())
    }

    /// The entry `h` names, to look at and then remove or renew without
    /// looking it up again.
    pub(crate) fn entry(&mut self, h: H) -> Option<Entry<'_, H, T>> {
        let index = h.index() as usize;
        match self.slots.get(index) {
            Some(slot) if slot.generation == h.generation() => Some(Entry { arena: self, index }),
            _ => None,
        }
    }

    /// The generation the next handle of this arena gets (from
    /// [`Arena::insert`], [`Entry::renew`] or [`Arena::fresh_generation`]).
    pub(crate) fn next_generation(&self) -> u64 {
        self.next_generation
    }

    /// A generation no handle of this arena has had or will have, for a
    /// handle kept outside it (a connection's inline lease).
    pub(crate) fn fresh_generation(&mut self) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    /// Gives the room of an emptied arena back (see [`Arena`]). Kept out of line:
    /// removal is on the hot path, shrinking is rare.
    #[cold]
    #[inline(never)]
    fn shrink(&mut self) {
        self.slots = Slab::with_capacity(self.kept);
    }

    /// The entry in slot `index`, whatever its generation (for intrusive links).
    pub(crate) fn by_index_mut(&mut self, index: u32) -> Option<&mut T> {
        self.slots
            .get_mut(index as usize)
            .map(|slot| &mut slot.value)
    }

    /// The live handle in slot `index`, if any.
    pub(crate) fn handle_at(&self, index: u32) -> Option<H> {
        self.slots
            .get(index as usize)
            .map(|slot| H::new(index, slot.generation))
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Live entries in slot order: deterministic, independent of any hashing.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (H, &T)> {
        self.slots
            .iter()
            .map(|(i, slot)| (H::new(i as u32, slot.generation), &slot.value))
    }
}

/// A live entry of an [`Arena`], found by [`Arena::entry`].
pub(crate) struct Entry<'a, H, T> {
    arena: &'a mut Arena<H, T>,
    index: usize,
}

impl<H: Handle, T> Entry<'_, H, T> {
    pub(crate) fn get(&self) -> &T {
        &self.arena.slots[self.index].value
    }

    pub(crate) fn remove(self) -> T {
        let arena = self.arena;
        let value = arena.slots.remove(self.index).value;
        if arena.slots.is_empty() && arena.slots.capacity() > arena.shrink_above {
            arena.shrink();
        }
        value
    }

    /// Gives the entry a fresh generation, as removing it and inserting its
    /// value again would (in the same slot): the old handle is stale from now
    /// on, the returned one names the entry.
    pub(crate) fn renew(self) -> H {
        let arena = self.arena;
        let generation = arena.fresh_generation();
        arena.slots[self.index].generation = generation;
        // Slot indices are bounded by the core's limits, far below u32::MAX.
        H::new(self.index as u32, generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handle_never_reaches_reused_slot() {
        let mut arena: Arena<ConnId, &str> = Arena::new();
        let a = arena.insert("a");
        assert_eq!(arena.remove(a), Some("a"));
        let b = arena.insert("b");
        assert_eq!(a.index(), b.index(), "slab reuses the slot");
        assert_eq!(arena.get(a), None);
        assert_eq!(arena.get_mut(a), None);
        assert!(!arena.contains(a));
        assert_eq!(arena.get(b), Some(&"b"));
        assert_eq!(arena.get_mut(b), Some(&mut "b"));
        assert!(arena.contains(b));
        assert_eq!(arena.remove(a), None);
        assert_eq!(arena.len(), 1);
    }

    #[test]
    fn a_renewed_entry_has_a_new_handle_and_the_old_one_is_stale() {
        let mut arena: Arena<LeaseId, &str> = Arena::new();
        let a = arena.insert("a");
        let b = arena.entry(a).expect("live").renew();
        assert_eq!((b.index(), arena.get(b)), (a.index(), Some(&"a")));
        assert!(arena.get(a).is_none() && arena.entry(a).is_none());
        assert_ne!(arena.insert("c").generation(), b.generation());
    }

    #[test]
    fn an_emptied_arena_gives_back_a_burst_and_old_handles_stay_stale() {
        let mut arena: Arena<LeaseId, u32> = Arena::with_capacity(8);
        let burst: Vec<LeaseId> = (0..5000).map(|i| arena.insert(i)).collect();
        assert!(arena.slots.capacity() >= 5000);
        for (i, h) in burst.iter().enumerate() {
            assert_eq!(arena.remove(*h), Some(i as u32));
        }
        assert_eq!(arena.slots.capacity(), KEPT_SLOTS);
        let fresh = arena.insert(7);
        assert!(burst.iter().all(|h| arena.get(*h).is_none()));
        assert_eq!(arena.get(fresh), Some(&7));
    }

    #[test]
    fn a_small_arena_keeps_its_room() {
        let mut arena: Arena<LeaseId, u32> = Arena::with_capacity(1024);
        let handles: Vec<LeaseId> = (0..1000).map(|i| arena.insert(i)).collect();
        for h in handles {
            arena.remove(h);
        }
        assert_eq!(arena.slots.capacity(), 1024);
    }

    #[test]
    fn forged_handles_are_rejected() {
        let mut arena: Arena<LeaseId, u8> = Arena::new();
        let h = arena.insert(1);
        assert!(arena
            .get(LeaseId::from_parts(h.index() + 5, h.generation()))
            .is_none());
        assert!(arena.get(LeaseId::from_parts(h.index(), 0)).is_none());
        assert!(arena.get(LeaseId::from_parts(u32::MAX, u64::MAX)).is_none());
    }
}
