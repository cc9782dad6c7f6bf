//! [`SendRing`]: one io_uring per thread that makes many non-blocking sends
//! of one buffer in one system call.
//!
//! A round's sends differ only in their socket: each is a
//! `send(fd, chunk, MSG_DONTWAIT)`. One `io_uring_enter` submits a batch of
//! them; the kernel issues each inline (a socket that would block completes
//! with `EAGAIN` at once, `MSG_DONTWAIT` forbids the ring to wait for it)
//! and the batch's results are read back before [`SendRing::send_all`]
//! returns. It saves the system call entry and exit per send, a measurable
//! share of a delivery's cost on loopback (see `benches/README.md`).
//!
//! The ring borrows the buffer and the sockets only for the call: it never
//! returns while the kernel may still read them (the one `unsafe` here).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use bytes::Bytes;
use io_uring::{opcode, types, IoUring, Probe};

/// Most sends submitted in one system call (the ring's size).
pub(crate) const RING_SENDS: usize = 128;

/// Times [`SendRing::send_all`] retries an interrupted or busy submission
/// before it gives the ring up.
const MAX_ENTERS: usize = 64;

/// What became of one send of a batch.
#[derive(Debug)]
pub(crate) enum SendOutcome {
    /// The kernel made it: bytes taken, or the error.
    Made(io::Result<usize>),
    /// Never submitted: the caller may make it another way.
    NotMade,
    /// Submitted, but the ring failed before it reported back: it may still
    /// be made. The caller must not write to that socket again (the stream
    /// fails), but may close it: the kernel resolved the descriptor to its
    /// socket when it took the entry (every entry is issued inline, in the
    /// `io_uring_enter` that submits it: no `IOSQE_ASYNC`, links or drain)
    /// and the request holds that reference until it completes, so a
    /// descriptor number closed and reused meanwhile is never written to.
    Unknown,
}

/// One thread's ring for batched sends.
pub(crate) struct SendRing {
    ring: IoUring,
}

impl std::fmt::Debug for SendRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRing").finish_non_exhaustive()
    }
}

/// The ring failed: `io_uring_enter` gave an error other than an
/// interruption (or more than [`MAX_ENTERS`] of those). The ring must be
/// dropped, never used again.
#[derive(Debug)]
pub(crate) struct RingBroken;

impl SendRing {
    /// A ring, or why this kernel (or its seccomp policy) gives none.
    ///
    /// Kernels before 5.17 give none here: `IORING_OP_SEND` is 5.6, and the
    /// guarantees `send_all` rests on (a send with `MSG_DONTWAIT` that
    /// would block completes at once with `EAGAIN` instead of waiting for
    /// the socket; rings not charged to `RLIMIT_MEMLOCK`) hold on the
    /// kernels of the last few years, which the linked-file feature (5.17)
    /// marks. Older kernels send one by one.
    pub(crate) fn new() -> io::Result<Self> {
        let entries = RING_SENDS as u32;
        // Single issuer (6.0) and cooperative task running (5.19) spare the
        // kernel work; older kernels refuse them, so try without.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::builder().build(entries))?;
        if !ring.params().is_feature_linked_file() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring older than Linux 5.17",
            ));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::Send::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_OP_SEND",
            ));
        }
        Ok(Self { ring })
    }

    /// Sends `buf` to every socket of `fds` (at most [`RING_SENDS`]),
    /// writing what became of each to the same index of `outcomes`.
    ///
    /// On `Err` some outcomes may be [`SendOutcome::NotMade`] or
    /// [`SendOutcome::Unknown`]; for the unknown ones a reference to `buf`
    /// is leaked, so that the kernel may still read it.
    pub(crate) fn send_all(
        &mut self,
        fds: &[BorrowedFd<'_>],
        buf: &Bytes,
        outcomes: &mut Vec<SendOutcome>,
    ) -> Result<(), RingBroken> {
        outcomes.clear();
        outcomes.resize_with(fds.len(), || SendOutcome::NotMade);
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut queued = 0;
        {
            let mut queue = self.ring.submission();
            for (index, fd) in fds.iter().take(RING_SENDS).enumerate() {
                let entry = opcode::Send::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), len)
                    .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(index as u64);
                // SAFETY: the entry points at `buf`'s bytes and names the
                // socket `fd`, both of which must stay valid until the
                // kernel is done with the send. Either every submitted entry
                // completes before this returns (the kernel posts the
                // completion after its last use of the buffer and of the
                // file), or a reference to `buf` is leaked below so the
                // bytes stay valid for good; a submitted send holds its own
                // reference to its socket until it completes
                // (`SendOutcome::Unknown`). Entries never submitted are
                // never seen by the kernel: the caller drops the ring on
                // `RingBroken` before another `io_uring_enter`. (With
                // `MSG_DONTWAIT` the kernel issues each send inline, so in
                // practice every submitted entry has completed when
                // `io_uring_enter` returns.)
                #[allow(unsafe_code)]
                let pushed = unsafe { queue.push(&entry) };
                if pushed.is_err() {
                    break;
                }
                queued += 1;
            }
        }
        let mut submitted = 0;
        let mut completed = 0;
        let mut failures = 0;
        while completed < queued {
            let error = match self.ring.submit_and_wait(queued - completed) {
                Ok(n) => {
                    submitted += n;
                    None
                }
                Err(error) => Some(error),
            };
            for cqe in self.ring.completion() {
                let result = cqe.result();
                let outcome = match usize::try_from(result) {
                    Ok(n) => SendOutcome::Made(Ok(n)),
                    // Not made (as `send` would be retried): the caller
                    // sends it itself.
                    Err(_) if -result == libc::EINTR => SendOutcome::NotMade,
                    Err(_) => SendOutcome::Made(Err(io::Error::from_raw_os_error(-result))),
                };
                let slot = usize::try_from(cqe.user_data())
                    .ok()
                    .and_then(|index| outcomes.get_mut(index));
                if let Some(slot) = slot {
                    *slot = outcome;
                    completed += 1;
                }
            }
            let Some(error) = error else { continue };
            let interrupted = matches!(
                error.raw_os_error(),
                Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
            );
            failures += 1;
            if interrupted && failures < MAX_ENTERS {
                continue;
            }
            if completed < submitted {
                // The kernel may still read the buffer for the sends that
                // did not report back.
                let _leaked = std::mem::ManuallyDrop::new(buf.clone());
                for (index, outcome) in outcomes.iter_mut().enumerate().take(submitted) {
                    if matches!(outcome, SendOutcome::NotMade) && index < queued {
                        *outcome = SendOutcome::Unknown;
                    }
                }
            }
            return Err(RingBroken);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use super::*;

    /// `count` loopback connections: (server sides, client sides).
    fn connections(count: usize) -> (Vec<TcpStream>, Vec<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // One at a time: the listener's backlog is smaller than `count`.
        (0..count)
            .map(|_| {
                let client = TcpStream::connect(addr).unwrap();
                let (server, _) = listener.accept().unwrap();
                server.set_nonblocking(true).unwrap();
                (server, client)
            })
            .unzip()
    }

    /// A ring, or `None` where the kernel gives none (the sinks then send
    /// one by one; `crates/sinks/tests` covers that way too).
    fn ring() -> Option<SendRing> {
        match SendRing::new() {
            Ok(ring) => Some(ring),
            Err(e) => {
                eprintln!("no io_uring here ({e}): batched sends not tested");
                None
            }
        }
    }

    #[test]
    fn every_socket_gets_the_buffer_whole() {
        let Some(mut ring) = ring() else { return };
        let (servers, mut clients) = connections(RING_SENDS + 3);
        let fds: Vec<BorrowedFd<'_>> = servers.iter().map(AsFd::as_fd).collect();
        let buf = Bytes::from_static(b"d\r\ndata: hello\n\n\r\n");
        let mut outcomes = Vec::new();
        ring.send_all(&fds, &buf, &mut outcomes).unwrap();
        assert_eq!(outcomes.len(), fds.len());
        for (index, outcome) in outcomes.iter().enumerate() {
            match outcome {
                SendOutcome::Made(Ok(n)) if index < RING_SENDS => assert_eq!(*n, buf.len()),
                SendOutcome::NotMade if index >= RING_SENDS => {}
                other => panic!("send {index}: {other:?}"),
            }
        }
        for client in clients.iter_mut().take(RING_SENDS) {
            let mut got = vec![0; buf.len()];
            client.read_exact(&mut got).unwrap();
            assert_eq!(got, buf);
        }
        // The ring is reusable: the next batch goes out too.
        ring.send_all(&fds[..1], &buf, &mut outcomes).unwrap();
        assert!(matches!(outcomes[..], [SendOutcome::Made(Ok(n))] if n == buf.len()));
    }

    #[test]
    fn a_full_socket_answers_would_block_and_a_reset_one_an_error() {
        let Some(mut ring) = ring() else { return };
        let (servers, clients) = connections(2);
        let fds: Vec<BorrowedFd<'_>> = servers.iter().map(AsFd::as_fd).collect();
        let buf = Bytes::from(vec![b'x'; 64 << 10]);
        let mut outcomes = Vec::new();
        // Nobody reads: the first socket fills up, send after send.
        let mut would_block = false;
        for _ in 0..10_000 {
            ring.send_all(&fds[..1], &buf, &mut outcomes).unwrap();
            match &outcomes[0] {
                SendOutcome::Made(Ok(n)) => assert!(*n > 0),
                SendOutcome::Made(Err(e)) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    would_block = true;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(would_block, "a socket nobody reads never filled up");
        // The second socket's peer resets the connection.
        socket2::SockRef::from(&clients[1])
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(clients);
        let mut failed = false;
        for _ in 0..1_000 {
            ring.send_all(&fds[1..], &buf, &mut outcomes).unwrap();
            match &outcomes[0] {
                SendOutcome::Made(Ok(_)) => std::thread::sleep(std::time::Duration::from_millis(1)),
                SendOutcome::Made(Err(e)) => {
                    assert_ne!(e.kind(), io::ErrorKind::WouldBlock);
                    failed = true;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(failed, "sends to a reset connection kept succeeding");
    }
}
