//! [`Expiry`]: when a subscriber's credentials expire, and the event that
//! tells its page so before the gateway closes the stream.
//!
//! A bare close at the token's `exp` makes the browser reconnect at once with
//! the same dead cookie, and give up on the 401 it gets. The notice (an event
//! of the route's `auth.jwt.expired_event` type, no `id`, so the client's
//! last event ID is unchanged) lets the page fetch fresh credentials first;
//! its reconnect then resumes from the replay ring.

use std::time::Instant;

use bytes::Bytes;
use sse_gateway_codec::{encode_event, EncodeError, OutgoingEvent};

/// The data of every expiry notice.
pub const EXPIRED_DATA: &str = r#"{"reason":"credentials_expired"}"#;

/// When a stream's credentials expire, and the last frame it gets then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    at: Instant,
    notice: Bytes,
}

// === impl Expiry ===

impl Expiry {
    /// Credentials that expire `at`; `notice` is written just before the
    /// close (one frame per route, shared: see [`Expiry::notice_frame`]).
    pub fn new(at: Instant, notice: Bytes) -> Self {
        Self { at, notice }
    }

    /// When the credentials expire.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The frame written just before the close.
    pub fn notice(&self) -> &Bytes {
        &self.notice
    }

    /// The notice frame for events of type `event_type`:
    /// `event: <type>` and [`EXPIRED_DATA`], no `id`. Refused when the type
    /// has a line break or NUL (configuration validation already refuses
    /// those).
    pub fn notice_frame(event_type: &str) -> Result<Bytes, EncodeError> {
        let frame = encode_event(&OutgoingEvent {
            event_type: Some(event_type),
            id: None,
            data: EXPIRED_DATA,
            retry: None,
        })?;
        Ok(frame.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_type_and_sets_no_id() {
        let frame = Expiry::notice_frame("auth_expired").unwrap();
        assert_eq!(
            &frame[..],
            b"event: auth_expired\ndata: {\"reason\":\"credentials_expired\"}\n\n"
        );
        assert!(Expiry::notice_frame("a\nb").is_err());
    }
}
