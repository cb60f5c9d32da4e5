//! What a caller does with a response beyond reading it: turning an error
//! status into an [`Error`], for code that treats a 4xx or 5xx answer as a
//! failure.
//!
//! `Client::send` returns every response the server sends, whatever its
//! status: a 404 is an answer, not a failure of the client. Callers who want
//! it as one say so with [`ResponseExt::error_for_status`], and get an
//! [`Error`] of kind [`ErrorKind::Status`](crate::ErrorKind::Status) carrying
//! the status.

use http::Response;

use crate::body::Body;
use crate::error::Error;

/// Methods on a [`Response`] from [`Client::send`](crate::Client::send).
pub trait ResponseExt: Sized {
    /// The response, or an [`Error`] of kind
    /// [`ErrorKind::Status`](crate::ErrorKind::Status) if its status is a
    /// client or server error (400 to 599); [`Error::status`] gives it. The
    /// response is dropped with its body unread: an HTTP/1.1 connection is
    /// then closed, an HTTP/2 stream reset.
    ///
    /// ```
    /// use muxpool_client::{Body, ErrorKind, ResponseExt};
    ///
    /// let missing = http::Response::builder().status(404).body(Body::empty())?;
    /// let error = missing.error_for_status().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Status);
    /// assert_eq!(error.status(), Some(http::StatusCode::NOT_FOUND));
    /// assert_eq!(error.to_string(), "error status: 404 Not Found");
    ///
    /// let found = http::Response::builder().status(200).body(Body::empty())?;
    /// assert!(found.error_for_status().is_ok());
    /// # Ok::<(), http::Error>(())
    /// ```
    fn error_for_status(self) -> Result<Self, Error>;

    /// [`error_for_status`](Self::error_for_status) on a borrowed response,
    /// which stays the caller's either way (to read an error's body, say).
    fn error_for_status_ref(&self) -> Result<&Self, Error>;
}

impl ResponseExt for Response<Body> {
    fn error_for_status(self) -> Result<Self, Error> {
        self.error_for_status_ref()?;
        Ok(self)
    }

    fn error_for_status_ref(&self) -> Result<&Self, Error> {
        let status = self.status();
        if status.is_client_error() || status.is_server_error() {
            return Err(Error::for_status(status));
        }
        Ok(self)
    }
}
