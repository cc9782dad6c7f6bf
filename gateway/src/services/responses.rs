//! Small complete responses written from `request_filter`: always with a
//! `Content-Length`, so keep-alive connections stay usable.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use sse_gateway_access::CorsHeaders;

use crate::services::access;

/// Writes a complete response. Errors mean the client is gone; they are
/// ignored (the caller returns `Ok(true)` either way).
pub(crate) async fn send(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    body: Bytes,
) {
    send_with_cors(session, status, headers, &CorsHeaders::default(), body).await;
}

/// [`send`] with the route's CORS headers for an admitted request: a
/// cross-origin client must be able to read the answer (and an
/// `EventSource` told to come back later must not see a CORS failure,
/// after which it would give up for good).
pub(crate) async fn send_with_cors(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    cors: &CorsHeaders,
    body: Bytes,
) {
    let head_only = session.req_header().method == http::Method::HEAD;
    let Ok(mut header) = build(status, headers, body.len()) else {
        return;
    };
    access::apply(&mut header, cors);
    let no_body = head_only || body.is_empty();
    if session
        .write_response_header(header, no_body)
        .await
        .is_err()
        || no_body
    {
        return;
    }
    let _ = session.write_response_body(Some(body), true).await;
}

/// A plain-text response.
pub(crate) async fn text(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    body: &'static str,
) {
    text_with_cors(session, status, headers, &CorsHeaders::default(), body).await;
}

/// [`text`] with the route's CORS headers (see [`send_with_cors`]).
pub(crate) async fn text_with_cors(
    session: &mut Session,
    status: u16,
    headers: &[(&'static str, &str)],
    cors: &CorsHeaders,
    body: &'static str,
) {
    let mut all: Vec<(&'static str, &str)> = vec![("content-type", "text/plain; charset=utf-8")];
    all.extend_from_slice(headers);
    let body = Bytes::from_static(body.as_bytes());
    send_with_cors(session, status, &all, cors, body).await;
}

fn build(
    status: u16,
    headers: &[(&'static str, &str)],
    len: usize,
) -> pingora::Result<Box<ResponseHeader>> {
    let mut header = ResponseHeader::build(status, Some(headers.len() + 1))?;
    for (name, value) in headers {
        header.insert_header(*name, *value)?;
    }
    header.insert_header("content-length", len.to_string())?;
    Ok(Box::new(header))
}

/// `Retry-After` seconds for `base` (at least 1).
pub(crate) fn retry_after_secs(base: Duration) -> u64 {
    base.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn headers_carry_content_length() {
        let header = build(404, &[("allow", "GET")], 9).unwrap();
        assert_eq!(header.status.as_u16(), 404);
        assert_eq!(header.headers.get("content-length").unwrap(), "9");
        assert_eq!(header.headers.get("allow").unwrap(), "GET");
    }
}
