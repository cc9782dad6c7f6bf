//! Free loopback ports, in the manner of sozu's port registry: bind `127.0.0.1:0`, note
//! the port the OS chose, release it, and never hand the same port out twice in one
//! process. Another process may still take the port before the gateway binds it, so
//! [`crate::GatewayProcess::start`] retries with fresh ports when binding fails.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::OnceLock;

use parking_lot::Mutex;

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A loopback port that was free a moment ago and that this process has not handed out
/// before.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        drop(listener);
        if handed_out().lock().insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no fresh loopback port after 100 tries")
}

/// [`free_port`] as a `127.0.0.1:PORT` address.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)))
}
