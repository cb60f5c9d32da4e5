//! Errors of the core's inputs.

use core::fmt;

/// The kind of handle an [`EventError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandleKind {
    /// A [`ConnId`](crate::ConnId).
    Connection,
    /// A [`WaiterId`](crate::WaiterId).
    Waiter,
    /// A [`Lease`](crate::Lease).
    Lease,
}

/// An input the core could not apply. The core is unchanged by it, but for the
/// latest time seen, which the input's `now` still moves forward.
///
/// These are the caller's races and mistakes made harmless: for example a connection
/// that the core closed on a timeout while the caller was reporting it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventError {
    /// The handle names nothing the core holds: never issued, or already finished.
    Stale(HandleKind),
    /// The connection is not in a state this event applies to (reported connected
    /// twice, a peer stream limit on an exclusive connection, a health answer
    /// nobody asked for).
    WrongState,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Stale(HandleKind::Connection) => {
                f.write_str("unknown or closed connection")
            }
            EventError::Stale(HandleKind::Waiter) => f.write_str("unknown or finished waiter"),
            EventError::Stale(HandleKind::Lease) => f.write_str("unknown or released lease"),
            EventError::WrongState => {
                f.write_str("the connection is not in a state this event applies to")
            }
        }
    }
}

impl std::error::Error for EventError {}
