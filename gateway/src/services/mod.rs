//! The pingora services: the public proxy (fan-out and proxy routes), the
//! admin app and the hub's background service.

pub(crate) mod access;
pub(crate) mod access_log;
pub(crate) mod address_limits;
pub(crate) mod admin;
pub(crate) mod client_addr;
pub(crate) mod client_stream;
pub(crate) mod connections;
pub(crate) mod direct_stream;
pub(crate) mod event_filter;
pub(crate) mod fanout;
pub(crate) mod hub_service;
pub(crate) mod multi;
pub(crate) mod occasional;
pub(crate) mod proxy;
pub(crate) mod responses;
pub(crate) mod takeover;
