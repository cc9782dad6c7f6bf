//! The upstream request: where to connect and what to send.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::protocols::tls::CaType;
use pingora::protocols::TcpKeepalive;
use pingora::tls::{CertificateDer, RootCertStore};
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, WrappedX509};
use rustls_pki_types::pem::PemObject as _;
use url::{Host, Position, Url};

use crate::{UpstreamError, UpstreamSettings, UpstreamTls};

/// Where a feed connects, derived once from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Host name or IP literal (no brackets), for resolving and TLS SNI.
    host: String,
    /// The host is an IP literal: no DNS.
    literal: Option<std::net::IpAddr>,
    port: u16,
    tls: bool,
    /// The `Host` header: host, plus the port when it is not the default.
    authority: String,
    /// Path and query.
    path: String,
}

// === impl Target ===

impl Target {
    /// Checks the URL: `http` or `https`, with a host.
    pub(crate) fn from_url(url: &Url) -> Result<Self, UpstreamError> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(UpstreamError::InvalidRequest(format!(
                    "unsupported URL scheme {other:?} (http or https)"
                )))
            }
        };
        let (host, literal) = match url.host() {
            Some(Host::Domain(domain)) => (domain.to_owned(), None),
            Some(Host::Ipv4(ip)) => (ip.to_string(), Some(ip.into())),
            Some(Host::Ipv6(ip)) => (ip.to_string(), Some(ip.into())),
            None => return Err(UpstreamError::InvalidRequest("URL without a host".into())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| UpstreamError::InvalidRequest("URL without a port".into()))?;
        let mut authority = url.host_str().unwrap_or_default().to_owned();
        if let Some(port) = url.port() {
            authority.push(':');
            authority.push_str(&port.to_string());
        }
        Ok(Self {
            host,
            literal,
            port,
            tls,
            authority,
            path: url[Position::BeforePath..Position::AfterQuery].to_owned(),
        })
    }

    /// The first address of the host, resolved without blocking.
    pub(crate) async fn resolve(&self) -> Result<SocketAddr, UpstreamError> {
        if let Some(ip) = self.literal {
            return Ok(SocketAddr::new(ip, self.port));
        }
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| UpstreamError::Connect(format!("resolving {}: {e}", self.host)))?;
        addrs
            .next()
            .ok_or_else(|| UpstreamError::Connect(format!("{} resolves to nothing", self.host)))
    }

    /// The pingora peer for a resolved address (HTTP/1.1 only). For `https`
    /// the SNI is the URL's host; verification follows `tls`.
    pub(crate) fn peer(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
        tls: &UpstreamTls,
    ) -> Result<HttpPeer, UpstreamError> {
        // A `SocketAddr` resolves to itself: no DNS, no panic.
        let mut peer = HttpPeer::new(addr, self.tls, self.host.clone());
        if self.tls {
            if tls.insecure_skip_verify {
                tracing::warn!(
                    host = %self.host,
                    "upstream TLS certificate NOT verified (insecure_skip_verify): \
                     anyone on the path can read and forge this stream"
                );
                peer.options.verify_cert = false;
                peer.options.verify_hostname = false;
            }
            if let Some(path) = &tls.ca_file {
                peer.options.ca = Some(load_ca(path)?);
            }
        }
        peer.options.connection_timeout = Some(connect_timeout);
        peer.options.total_connection_timeout = Some(connect_timeout);
        peer.options.tcp_keepalive = Some(TcpKeepalive {
            idle: Duration::from_secs(30),
            interval: Duration::from_secs(10),
            count: 3,
            #[cfg(target_os = "linux")]
            user_timeout: Duration::ZERO,
        });
        Ok(peer)
    }

    /// The GET request: `Host`, `Accept`, `Cache-Control`, the route's
    /// headers, then `Last-Event-ID` when there is one.
    pub(crate) fn request(
        &self,
        settings: &UpstreamSettings,
        last_event_id: Option<&str>,
    ) -> Result<Box<RequestHeader>, UpstreamError> {
        let invalid = |e: pingora::BError| UpstreamError::InvalidRequest(e.to_string());
        let mut req = RequestHeader::build("GET", self.path.as_bytes(), None).map_err(invalid)?;
        req.insert_header("Host", self.authority.as_str())
            .map_err(invalid)?;
        req.insert_header("Accept", "text/event-stream")
            .map_err(invalid)?;
        req.insert_header("Cache-Control", "no-cache")
            .map_err(invalid)?;
        for (name, value) in &settings.headers {
            req.insert_header(name.clone(), value.as_str())
                .map_err(|e| UpstreamError::InvalidRequest(format!("header {name:?}: {e}")))?;
        }
        if let Some(id) = last_event_id {
            if req.insert_header("Last-Event-ID", id).is_err() {
                // Ids never hold CR, LF or NUL, but other control bytes are
                // not valid in a header: resume without it rather than never.
                tracing::warn!(id, "Last-Event-ID not valid as a header value; not sent");
            }
        }
        Ok(Box::new(req))
    }
}

/// Reads a PEM CA file into pingora's per-peer CA list. Each certificate is
/// first checked by webpki (pingora's own DER parse panics on bad input).
fn load_ca(path: &Path) -> Result<Arc<CaType>, UpstreamError> {
    let fail = |why: String| UpstreamError::Connect(format!("CA file {}: {why}", path.display()));
    let mut list = Vec::new();
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))?;
    for cert in iter {
        let cert = cert.map_err(|e| fail(e.to_string()))?;
        RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
        list.push(WrappedX509::new(cert.as_ref().to_vec(), parse_x509));
    }
    if list.is_empty() {
        return Err(fail("no CERTIFICATE block".into()));
    }
    Ok(Arc::from(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target, UpstreamError> {
        Target::from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn urls_give_host_port_and_path() {
        let t = target("http://example.com/stream/a?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("example.com", 80, false));
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("example.com", "/stream/a?x=1")
        );
        let t = target("https://[::1]:8443/s").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 8443, true));
        assert_eq!(t.authority, "[::1]:8443");
        assert!(t.literal.is_some());
    }

    #[test]
    fn other_schemes_are_not_retryable() {
        let err = target("ftp://example.com/").unwrap_err();
        assert!(!err.is_retryable(), "{err}");
    }
}
