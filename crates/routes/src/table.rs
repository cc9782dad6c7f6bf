//! The route table: the configured routes in order, and the result of
//! matching one request against them.

use http::Method;
use sse_gateway_config::{FanOutRoute, GatewayConfig, ProxyRoute, RouteConfig, RouteKind};

use crate::matcher::{match_route, split_path};
use crate::target::{fill_topic, fill_url};

/// The `Allow` header value for fan-out routes.
pub const FAN_OUT_ALLOW: &str = "GET, HEAD, OPTIONS";

/// The configured routes, matched in order (the first match wins), each
/// with the plan `P` its user prepared for it (whatever it resolves once per
/// route: metrics handles, policies...). A match hands back the route's own
/// plan, so a plan can never be missing for a matched route.
#[derive(Debug, Clone)]
pub struct RouteTable<P = ()> {
    routes: Vec<RouteConfig>,
    plans: Vec<P>,
}

/// The outcome of [`RouteTable::match_request`].
#[derive(Debug)]
pub enum RouteMatch<'a, P = ()> {
    /// A route matched, and the method is one it answers.
    Matched(Matched<'a, P>),
    /// No route matches the path (answer 404).
    NotFound,
    /// The first route whose path matches does not answer this method
    /// (answer 405 with `Allow: {allow}`).
    MethodNotAllowed {
        /// The route's position in the configuration.
        index: usize,
        /// The route (for the `route` metric label).
        route: &'a RouteConfig,
        /// The route's plan.
        plan: &'a P,
        /// The `Allow` header value.
        allow: &'static str,
    },
}

/// A matched request.
#[derive(Debug)]
pub struct Matched<'a, P = ()> {
    /// The route's position in the configuration.
    pub index: usize,
    /// The route.
    pub route: &'a RouteConfig,
    /// The route's plan.
    pub plan: &'a P,
    /// The request method. For fan-out routes: GET, HEAD or OPTIONS (a CORS
    /// preflight, which the caller answers).
    pub method: Method,
    /// The decoded captures, in path order.
    pub captures: Captures<'a>,
    /// Where the request goes.
    pub target: Target<'a>,
}

/// Where a matched request goes, with the route's own part of the
/// configuration (so that the kind of route and the target always agree).
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// A fan-out route: subscribe to `topic`, fed from `upstream_url`.
    FanOut {
        /// The route's fan-out configuration.
        route: &'a FanOutRoute,
        /// The topic template filled with the decoded captures.
        topic: String,
        /// The upstream URL template filled with the captures,
        /// percent-encoded as path segments.
        upstream_url: String,
    },
    /// A proxy route: forward the request to this base URL.
    Proxy {
        /// The route's proxy configuration.
        route: &'a ProxyRoute,
        /// The route's `proxy` URL.
        base_url: &'a url::Url,
    },
}

/// Decoded path captures: `(name, value)` in path order. A catch-all's
/// value is its decoded segments joined with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Captures<'a> {
    pairs: Vec<(&'a str, String)>,
}

// === impl RouteTable ===

impl RouteTable {
    /// Builds the table from the configuration's routes (copied, in order).
    pub fn new(config: &GatewayConfig) -> Self {
        Self::from_routes(config.routes.clone())
    }

    /// Builds the table from routes, in match order.
    pub fn from_routes(routes: Vec<RouteConfig>) -> Self {
        let plans = vec![(); routes.len()];
        Self { routes, plans }
    }
}

impl<P> RouteTable<P> {
    /// Builds the table from the configuration's routes, with the plan
    /// `plan` makes for each (the first error stops it).
    pub fn with_plans<E>(
        config: &GatewayConfig,
        mut plan: impl FnMut(&RouteConfig) -> Result<P, E>,
    ) -> Result<Self, E> {
        let routes = config.routes.clone();
        let plans = routes.iter().map(&mut plan).collect::<Result<_, E>>()?;
        Ok(Self { routes, plans })
    }

    /// The routes, in match order.
    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    /// Matches a request. `path` is the request target's path; a query
    /// string or fragment, if present, is ignored.
    ///
    /// Routes are tried in order; a route matches when every literal
    /// segment is equal (exactly, without decoding), every capture decodes
    /// to a safe value (see the crate docs) and matches its `params` regex.
    /// The first matching route decides: fan-out routes answer GET, HEAD
    /// and OPTIONS and give [`RouteMatch::MethodNotAllowed`] for the rest;
    /// proxy routes accept every method.
    pub fn match_request(&self, method: &Method, path: &str) -> RouteMatch<'_, P> {
        let Some(segments) = split_path(path) else {
            return RouteMatch::NotFound;
        };
        for (index, (route, plan)) in self.routes.iter().zip(&self.plans).enumerate() {
            let Some(captures) = match_route(route, &segments) else {
                continue;
            };
            let target = match &route.kind {
                RouteKind::FanOut(fan_out) => {
                    if !(method == Method::GET
                        || method == Method::HEAD
                        || method == Method::OPTIONS)
                    {
                        return RouteMatch::MethodNotAllowed {
                            index,
                            route,
                            plan,
                            allow: FAN_OUT_ALLOW,
                        };
                    }
                    Target::FanOut {
                        route: fan_out,
                        topic: fill_topic(&fan_out.topic, &captures),
                        upstream_url: fill_url(&fan_out.upstream.url, &captures),
                    }
                }
                RouteKind::Proxy(proxy) => Target::Proxy {
                    route: proxy,
                    base_url: &proxy.url,
                },
            };
            return RouteMatch::Matched(Matched {
                index,
                route,
                plan,
                method: method.clone(),
                captures,
                target,
            });
        }
        RouteMatch::NotFound
    }
}

impl From<&GatewayConfig> for RouteTable {
    fn from(config: &GatewayConfig) -> Self {
        Self::new(config)
    }
}

// === impl RouteMatch ===

impl<'a, P> RouteMatch<'a, P> {
    /// The match, if any.
    pub fn matched(self) -> Option<Matched<'a, P>> {
        match self {
            RouteMatch::Matched(matched) => Some(matched),
            RouteMatch::NotFound | RouteMatch::MethodNotAllowed { .. } => None,
        }
    }
}

// === impl Matched ===

impl<P> Matched<'_, P> {
    /// The filled topic, for fan-out routes.
    pub fn topic(&self) -> Option<&str> {
        match &self.target {
            Target::FanOut { topic, .. } => Some(topic),
            Target::Proxy { .. } => None,
        }
    }

    /// The upstream URL: filled for fan-out routes, the base URL for proxy routes.
    pub fn upstream_url(&self) -> &str {
        match &self.target {
            Target::FanOut { upstream_url, .. } => upstream_url,
            Target::Proxy { base_url, .. } => base_url.as_str(),
        }
    }

    /// True for an OPTIONS request (a CORS preflight on a fan-out route).
    pub fn is_preflight(&self) -> bool {
        self.method == Method::OPTIONS
    }
}

// === impl Captures ===

impl<'a> Captures<'a> {
    /// Wraps `(name, decoded value)` pairs.
    pub fn new(pairs: Vec<(&'a str, String)>) -> Self {
        Self { pairs }
    }

    /// The decoded value of the capture `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The captures in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &str)> {
        self.pairs.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// How many captures there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when the route has no capture.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
