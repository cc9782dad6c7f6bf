//! The raw shape of one `routes[]` entry, with its `cors:` and `auth:`.

use super::{required, RawSettings, Text, TextList, SETTINGS_KEYS};
use crate::read::{string, Diag, MapReader, Spanned};
use crate::yaml::{join, Node, NodeKind, Pos};

/// One route as written.
#[derive(Debug)]
pub(crate) struct RawRoute {
    /// `routes[N]`.
    pub(crate) path_key: String,
    pub(crate) pos: Pos,
    pub(crate) name: Option<Text>,
    pub(crate) path: Option<Text>,
    /// `params:`: capture name (with the key's position) → regex.
    pub(crate) params: Vec<(Text, Text)>,
    pub(crate) topic: Option<Text>,
    pub(crate) upstream: Option<RawUpstream>,
    pub(crate) proxy: Option<Text>,
    /// True when `upstream` or `proxy` is written, even with an invalid value.
    pub(crate) upstream_or_proxy_written: bool,
    pub(crate) cors: Option<RawCors>,
    pub(crate) auth: Option<RawAuth>,
    pub(crate) lenient_captures: Option<Spanned<bool>>,
    pub(crate) settings: RawSettings,
}

/// `upstream:`.
#[derive(Debug)]
pub(crate) struct RawUpstream {
    pub(crate) url: Option<Text>,
    /// Header name (with the key's position) → value.
    pub(crate) headers: Vec<(Text, Text)>,
    pub(crate) ca_file: Option<Text>,
    pub(crate) insecure_skip_verify: Option<Spanned<bool>>,
}

/// `cors:`.
#[derive(Debug)]
pub(crate) struct RawCors {
    pub(crate) origins: Option<TextList>,
    pub(crate) credentials: Option<Spanned<bool>>,
    pub(crate) allow_null: Option<Spanned<bool>>,
    pub(crate) max_age: Option<Text>,
}

/// `auth:`.
#[derive(Debug)]
pub(crate) struct RawAuth {
    pub(crate) cookie: Option<Text>,
    pub(crate) jwt: Option<RawJwt>,
}

/// `auth.jwt:`.
#[derive(Debug)]
pub(crate) struct RawJwt {
    pub(crate) pos: Pos,
    pub(crate) path: String,
    pub(crate) algorithm: Option<Text>,
    pub(crate) secret_env: Option<Text>,
    pub(crate) key_file: Option<Text>,
    pub(crate) topics_claim: Option<Text>,
    pub(crate) audience: Option<TextList>,
    pub(crate) issuer: Option<Text>,
}

const ROUTE_KEYS: &[&str] = &[
    "name",
    "path",
    "params",
    "topic",
    "upstream",
    "proxy",
    "cors",
    "auth",
    "lenient_captures",
];

// === impl RawRoute ===

impl RawRoute {
    /// Reads `routes[N]`.
    pub(crate) fn read(diag: &mut Diag, node: &Node, path: &str) -> Option<Self> {
        let allowed: Vec<&str> = ROUTE_KEYS.iter().chain(SETTINGS_KEYS).copied().collect();
        let map = MapReader::new(diag, node, path, &allowed)?;
        let upstream = map
            .map(
                diag,
                "upstream",
                &["url", "headers", "ca_file", "insecure_skip_verify"],
            )
            .map(|up| RawUpstream {
                url: up.required_string(diag, "url"),
                headers: string_map(diag, &up, "headers"),
                ca_file: up.string(diag, "ca_file"),
                insecure_skip_verify: up.boolean(diag, "insecure_skip_verify"),
            });
        Some(Self {
            path_key: path.to_owned(),
            pos: node.pos,
            name: map.required_string(diag, "name"),
            path: map.required_string(diag, "path"),
            params: string_map(diag, &map, "params"),
            topic: map.string(diag, "topic"),
            upstream,
            proxy: map.string(diag, "proxy"),
            upstream_or_proxy_written: map.node("upstream").is_some()
                || map.node("proxy").is_some(),
            cors: read_cors(diag, &map),
            auth: read_auth(diag, &map),
            lenient_captures: map.boolean(diag, "lenient_captures"),
            settings: RawSettings::read(diag, &map),
        })
    }
}

/// A mapping of free-form keys to strings (`params:`, `headers:`).
fn string_map(diag: &mut Diag, map: &MapReader<'_>, key: &str) -> Vec<(Text, Text)> {
    let Some((node, path)) = map.child(key) else {
        return Vec::new();
    };
    let NodeKind::Map(entries) = &node.kind else {
        diag.push(
            node.pos,
            &path,
            format!("expected a mapping, found {}", node.describe()),
        );
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let entry_path = join(&path, &entry.key);
            let value = string(diag, &entry.value, &entry_path)?;
            let key = Spanned {
                value: entry.key.clone(),
                pos: entry.key_pos,
                path: entry_path,
            };
            Some((key, value))
        })
        .collect()
}

fn read_cors(diag: &mut Diag, route: &MapReader<'_>) -> Option<RawCors> {
    let cors = route.map(
        diag,
        "cors",
        &["origins", "credentials", "allow_null", "max_age"],
    )?;
    Some(RawCors {
        origins: required(diag, &cors, "origins").and_then(|_| cors.strings(diag, "origins")),
        credentials: cors.boolean(diag, "credentials"),
        allow_null: cors.boolean(diag, "allow_null"),
        max_age: cors.string(diag, "max_age"),
    })
}

fn read_auth(diag: &mut Diag, route: &MapReader<'_>) -> Option<RawAuth> {
    let auth = route.map(diag, "auth", &["cookie", "jwt"])?;
    let jwt_keys = [
        "algorithm",
        "secret_env",
        "key_file",
        "topics_claim",
        "audience",
        "issuer",
    ];
    let jwt = auth.map(diag, "jwt", &jwt_keys).map(|jwt| RawJwt {
        pos: jwt.pos,
        path: jwt.path.clone(),
        algorithm: jwt.required_string(diag, "algorithm"),
        secret_env: jwt.string(diag, "secret_env"),
        key_file: jwt.string(diag, "key_file"),
        topics_claim: jwt.string(diag, "topics_claim"),
        audience: jwt.strings(diag, "audience"),
        issuer: jwt.string(diag, "issuer"),
    });
    Some(RawAuth {
        cookie: auth.required_string(diag, "cookie"),
        jwt,
    })
}
