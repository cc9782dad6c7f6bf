//! Taking a plain HTTP/1.1 connection out of pingora once its response
//! header is written, for the direct write path.
//!
//! This leans on pingora 0.9.1 (pinned exactly in the workspace), with
//! public items only: `Session::downstream_session` is a public field; we
//! swap a dummy HTTP/1 session over an empty `Cursor` into it, call
//! `into_inner()` on the real one (documented for upgrades) to get its
//! `Stream`, downcast that to pingora's L4 stream, duplicate its file
//! descriptor and drop pingora's copy. The dummy has keep-alive off, so when
//! `request_filter` returns `Ok(true)` pingora finishes it and frees the
//! session (about 26 KiB) at once. `tests/tests/direct_path.rs` fails if an
//! upgrade of pingora breaks any of this.

use std::io::{self, Cursor};
use std::os::fd::{AsRawFd, BorrowedFd};

use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::proxy::Session;

/// Whether this request can leave pingora after its header: HTTP/1.1 over
/// plain TCP (not TLS, not HTTP/2), with no request body.
pub(crate) fn eligible(session: &Session) -> bool {
    let ServerSession::H1(h1) = session.as_downstream() else {
        return false;
    };
    let req = h1.req_header();
    if req.version != http::Version::HTTP_11 {
        return false;
    }
    let has_body = req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() != b"0");
    !has_body && h1.stream().as_any().is::<L4Stream>()
}

/// Takes the client's socket out of pingora, leaving a finished dummy
/// session behind. Call only when [`eligible`] said yes and after the
/// response header was written (and flushed: pingora flushes a header
/// without `Content-Length` at once).
pub(crate) fn take(session: &mut Session) -> io::Result<tokio::net::TcpStream> {
    let mut dummy = ServerSession::new_http1(Box::new(Cursor::new(Vec::<u8>::new())));
    dummy.set_keepalive(None);
    let taken = std::mem::replace(&mut session.downstream_session, Box::new(dummy));
    let ServerSession::H1(h1) = *taken else {
        return Err(io::Error::other("not an HTTP/1 session"));
    };
    let stream = h1.into_inner();
    let Some(l4) = stream.as_any().downcast_ref::<L4Stream>() else {
        return Err(io::Error::other("not a plain TCP stream"));
    };
    let owned = duplicate(l4)?;
    // Pingora's copy goes now: its fd closes, ours keeps the socket open.
    drop(stream);
    let std_stream = std::net::TcpStream::from(owned);
    std_stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_stream)
}

/// A second descriptor for the socket under `l4`.
#[allow(unsafe_code)]
fn duplicate(l4: &L4Stream) -> io::Result<std::os::fd::OwnedFd> {
    let raw = l4.as_raw_fd();
    // SAFETY: `raw` is the descriptor of the socket `l4` owns, and `l4` is
    // borrowed (so open) for as long as `borrowed` is used; the borrow ends
    // before this function returns. `try_clone_to_owned` makes an
    // independent descriptor with `F_DUPFD_CLOEXEC`.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    borrowed.try_clone_to_owned()
}
