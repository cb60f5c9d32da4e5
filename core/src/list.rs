//! Intrusive doubly-linked lists over arena slots.
//!
//! The pool keeps idle connections in most-recently-used order, waiters in arrival
//! order, and a global least-recently-used order of idle connections for eviction.
//! Each needs O(1) push, pop and removal from the middle (a cancelled waiter, a
//! connection taken from idle), and none may allocate on the hot path. So the links
//! live inside the arena entries themselves and a list is just its two ends.

use crate::id::{Arena, Handle};

const NIL: u32 = u32::MAX;

/// One entry's place in one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    /// Whether the entry is the front of its list.
    pub(crate) fn is_first(self) -> bool {
        self.prev == NIL
    }

    /// Whether the entry is the back of its list.
    pub(crate) fn is_last(self) -> bool {
        self.next == NIL
    }
}

impl Default for Link {
    fn default() -> Self {
        Link {
            prev: NIL,
            next: NIL,
        }
    }
}

/// The ends of a list and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

/// Which link of an entry a list threads through.
pub(crate) type LinkOf<T> = fn(&mut T) -> &mut Link;

impl List {
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn front<H: Handle, T>(&self, arena: &Arena<H, T>) -> Option<H> {
        self.end(arena, self.head)
    }

    pub(crate) fn back<H: Handle, T>(&self, arena: &Arena<H, T>) -> Option<H> {
        self.end(arena, self.tail)
    }

    fn end<H: Handle, T>(&self, arena: &Arena<H, T>, at: u32) -> Option<H> {
        if at == NIL {
            None
        } else {
            arena.handle_at(at)
        }
    }

    /// The link an entry pushed at the front gets. With [`List::attach_front`],
    /// a push in two steps, for a caller that holds the entry already: it sets
    /// the entry's link to this, lets go of the entry, then attaches it.
    pub(crate) fn front_link(&self) -> Link {
        Link {
            prev: NIL,
            next: self.head,
        }
    }

    /// Makes the entry in slot `index`, whose link is [`List::front_link`], the
    /// front of this list.
    pub(crate) fn attach_front<H: Handle, T>(
        &mut self,
        arena: &mut Arena<H, T>,
        index: u32,
        link: LinkOf<T>,
    ) {
        let old_head = self.head;
        if old_head == NIL {
            self.tail = index;
        } else if let Some(entry) = arena.by_index_mut(old_head) {
            link(entry).prev = index;
        }
        self.head = index;
        self.len += 1;
    }

    pub(crate) fn push_back<H: Handle, T>(
        &mut self,
        arena: &mut Arena<H, T>,
        h: H,
        link: LinkOf<T>,
    ) {
        if let Some(entry) = arena.get_mut(h) {
            *link(entry) = self.back_link();
        }
        self.attach_back(arena, h.index(), link);
    }

    /// [`List::front_link`] for the back.
    pub(crate) fn back_link(&self) -> Link {
        Link {
            prev: self.tail,
            next: NIL,
        }
    }

    /// [`List::attach_front`] for the back.
    pub(crate) fn attach_back<H: Handle, T>(
        &mut self,
        arena: &mut Arena<H, T>,
        index: u32,
        link: LinkOf<T>,
    ) {
        let old_tail = self.tail;
        if old_tail == NIL {
            self.head = index;
        } else if let Some(entry) = arena.by_index_mut(old_tail) {
            link(entry).next = index;
        }
        self.tail = index;
        self.len += 1;
    }

    /// Unlinks `h`, which the caller knows to be in this list.
    pub(crate) fn remove<H: Handle, T>(&mut self, arena: &mut Arena<H, T>, h: H, link: LinkOf<T>) {
        let Some(entry) = arena.get_mut(h) else {
            return;
        };
        let was = core::mem::take(link(entry));
        self.unlink(arena, was, link);
    }

    /// Closes the gap an entry of this list leaves, given the link it had: for
    /// an entry already taken out of the arena, which then needs no lookup.
    pub(crate) fn unlink<H: Handle, T>(
        &mut self,
        arena: &mut Arena<H, T>,
        was: Link,
        link: LinkOf<T>,
    ) {
        let Link { prev, next } = was;
        if prev == NIL {
            self.head = next;
        } else if let Some(p) = arena.by_index_mut(prev) {
            link(p).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else if let Some(n) = arena.by_index_mut(next) {
            link(n).prev = prev;
        }
        self.len -= 1;
    }

    /// The entry after `h` in this list.
    pub(crate) fn next<H: Handle, T>(
        &self,
        arena: &mut Arena<H, T>,
        h: H,
        link: LinkOf<T>,
    ) -> Option<H> {
        let next = link(arena.get_mut(h)?).next;
        self.end(arena, next)
    }

    /// [`List::next`] for a reader that holds the arena shared.
    pub(crate) fn next_shared<H: Handle, T>(
        &self,
        arena: &Arena<H, T>,
        h: H,
        link: fn(&T) -> &Link,
    ) -> Option<H> {
        let next = link(arena.get(h)?).next;
        self.end(arena, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::WaiterId;

    struct Node {
        value: u32,
        link: Link,
    }

    fn link(n: &mut Node) -> &mut Link {
        &mut n.link
    }

    fn values(list: &List, arena: &mut Arena<WaiterId, Node>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = list.front(arena);
        while let Some(h) = at {
            out.push(arena.get(h).unwrap().value);
            at = list.next(arena, h, link);
        }
        out
    }

    #[test]
    fn push_remove_in_any_position() {
        let mut arena = Arena::new();
        let mut list = List::default();
        let hs: Vec<WaiterId> = (0..5)
            .map(|value| {
                arena.insert(Node {
                    value,
                    link: Link::default(),
                })
            })
            .collect();
        for &h in &hs[1..] {
            list.push_back(&mut arena, h, link);
        }
        arena.get_mut(hs[0]).unwrap().link = list.front_link();
        list.attach_front(&mut arena, hs[0].index(), link);
        assert_eq!(values(&list, &mut arena), [0, 1, 2, 3, 4]);
        list.remove(&mut arena, hs[2], link);
        list.remove(&mut arena, hs[0], link);
        list.remove(&mut arena, hs[4], link);
        assert_eq!(values(&list, &mut arena), [1, 3]);
        assert_eq!(list.len(), 2);
        list.remove(&mut arena, hs[1], link);
        list.remove(&mut arena, hs[3], link);
        assert!(list.is_empty());
        assert_eq!(list.front(&arena), None);
    }
}
