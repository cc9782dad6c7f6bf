//! A route's `cors:` and `auth:`.

use super::check::{duration, readable_file, section};
use super::route::RouteCtx;
use super::settings;
use super::warnings;
use crate::diag::Diag;
use crate::model::{
    AuthConfig, CorsConfig, JwtAlgorithm, JwtConfig, JwtKey, Secret, DEFAULT_EXPIRED_EVENT,
};
use crate::read::{MapReader, Text};
use crate::values::env::is_var_name;
use crate::values::origin::OriginPattern;
use crate::yaml::Pos;

/// `cors:`: origins parse; `*` is never combined with `credentials: true`.
pub(crate) fn cors(diag: &mut Diag, map: &mut MapReader<'_>) -> Option<CorsConfig> {
    let origins_list = map.require::<Vec<Text>>(diag, "origins");
    let credentials = map.take::<bool>(diag, "credentials");
    let allow_null = map.take::<bool>(diag, "allow_null");
    let max_age = map.take::<String>(diag, "max_age");
    let credentials = credentials.is_some_and(|c| c.value);
    let mut origins = Vec::new();
    let mut ok = true;
    if let Some(list) = &origins_list {
        if list.value.is_empty() {
            diag.at(list, "at least one origin is needed");
            ok = false;
        }
        for text in &list.value {
            match OriginPattern::parse(&text.value) {
                Ok(OriginPattern::Any) if credentials => {
                    let message = "`*` cannot be combined with credentials: true (browsers refuse it); list the origins instead";
                    diag.at(text, message);
                    ok = false;
                }
                Ok(origin) => origins.push(origin),
                Err(e) => {
                    diag.at(text, e.to_string());
                    ok = false;
                }
            }
        }
    }
    let max_age = match &max_age {
        Some(text) => Some(duration(diag, text)?),
        None => None,
    };
    (ok && origins_list.is_some()).then_some(CorsConfig {
        origins,
        credentials,
        allow_null: allow_null.is_some_and(|a| a.value),
        max_age,
    })
}

/// `auth:`: a cookie name and an optional JWT check.
pub(crate) fn auth(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    ctx: &RouteCtx<'_>,
) -> Option<AuthConfig> {
    let cookie_text = map.require::<String>(diag, "cookie");
    let jwt = map.map(diag, "jwt", |diag, jwt| jwt_config(diag, jwt, ctx));
    if let (Some(cookie), None) = (&cookie_text, &jwt) {
        warnings::unverified_cookie(diag, cookie);
    }
    let cookie = cookie_text.as_ref().and_then(|text| {
        let valid = !text.value.is_empty()
            && text
                .value
                .chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c));
        if !valid {
            diag.at(text, format!("`{}` is not a valid cookie name", text.value));
            return None;
        }
        Some(text.value.clone())
    });
    Some(AuthConfig {
        cookie: cookie?,
        jwt: section(jwt)?,
    })
}

/// `auth.jwt:`.
fn jwt_config(diag: &mut Diag, map: &mut MapReader<'_>, ctx: &RouteCtx<'_>) -> Option<JwtConfig> {
    let algorithm = map.require::<String>(diag, "algorithm");
    let secret_env = map.take::<String>(diag, "secret_env");
    let key_file = map.take::<String>(diag, "key_file");
    let topics_claim = map.take::<String>(diag, "topics_claim");
    let audience = map.take::<Vec<Text>>(diag, "audience");
    let issuer = map.take::<String>(diag, "issuer");
    let expired_event = match map.take::<String>(diag, "expired_event") {
        Some(text) => settings::event_type(diag, &text),
        None => Some(DEFAULT_EXPIRED_EVENT.to_owned()),
    };
    let algorithm = algorithm.as_ref().and_then(|text| {
        let found = JwtAlgorithm::ALL
            .iter()
            .find(|(name, _)| *name == text.value);
        if found.is_none() {
            let names: Vec<&str> = JwtAlgorithm::ALL.iter().map(|(name, _)| *name).collect();
            diag.at(
                text,
                format!(
                    "unknown algorithm `{}`; expected one of: {}",
                    text.value,
                    names.join(", ")
                ),
            );
        }
        found.map(|(_, a)| *a)
    });
    let at = (map.pos(), map.path());
    let key = jwt_key(
        diag,
        at,
        secret_env.as_ref(),
        key_file.as_ref(),
        algorithm,
        ctx,
    );
    Some(JwtConfig {
        algorithm: algorithm?,
        key: key?,
        topics_claim: topics_claim.map(|t| t.value),
        audience: audience
            .map(|list| list.value.into_iter().map(|t| t.value).collect())
            .unwrap_or_default(),
        issuer: issuer.map(|t| t.value),
        expired_event: expired_event?,
    })
}

/// Exactly one of `secret_env` (HS*) or `key_file` (the others).
fn jwt_key(
    diag: &mut Diag,
    (pos, path): (Pos, &str),
    secret_env: Option<&Text>,
    key_file: Option<&Text>,
    algorithm: Option<JwtAlgorithm>,
    ctx: &RouteCtx<'_>,
) -> Option<JwtKey> {
    match (secret_env, key_file) {
        (Some(_), Some(file)) => {
            diag.at(
                file,
                "set exactly one of `secret_env` and `key_file`, not both",
            );
            None
        }
        (None, None) => {
            let message = "set `secret_env` (HS256/384/512) or `key_file` (RS*, PS*, ES*, EdDSA)";
            diag.push(pos, path, message);
            None
        }
        (Some(var), None) => {
            if algorithm.is_some_and(|a| !a.is_hmac()) {
                diag.at(
                    var,
                    "this algorithm verifies with a public key: use `key_file`, not `secret_env`",
                );
                return None;
            }
            if !is_var_name(&var.value) {
                diag.at(
                    var,
                    format!("`{}` is not a valid environment variable name", var.value),
                );
                return None;
            }
            match ctx.env.var(&var.value) {
                Some(secret) if !secret.is_empty() => {
                    let needed = algorithm.and_then(JwtAlgorithm::min_secret_len);
                    if let Some(needed) = needed.filter(|n| secret.len() < *n) {
                        let message = format!(
                            "the secret in `{}` is {} bytes; {} needs at least {needed}",
                            var.value,
                            secret.len(),
                            algorithm.map_or("", JwtAlgorithm::as_str),
                        );
                        diag.at(var, message);
                        return None;
                    }
                    Some(JwtKey::Secret {
                        env_var: var.value.clone(),
                        secret: Secret::new(secret),
                    })
                }
                _ => {
                    diag.at(
                        var,
                        format!("environment variable `{}` is not set or empty", var.value),
                    );
                    None
                }
            }
        }
        (None, Some(file)) => {
            if algorithm.is_some_and(JwtAlgorithm::is_hmac) {
                diag.at(
                    file,
                    "HS* algorithms verify with a shared secret: use `secret_env`, not `key_file`",
                );
                return None;
            }
            readable_file(diag, file, ctx.base_dir, "key file").map(JwtKey::KeyFile)
        }
    }
}
