//! The admission limits, the per-topic replay and upstream-answer settings,
//! `runtime_dir` and `lenient_captures`: defaults, values and errors.

use std::time::Duration;

use super::errors::check;
use super::support::{load, ROUTE};
use crate::{CoalesceKey, Limits, MultiConfig, SlowClientPolicy, TopicOpenRate};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn defaults_of_the_new_keys() {
    let c = load(ROUTE).unwrap();
    let limits = c.limits;
    assert_eq!(limits.max_connections, 100_000);
    assert_eq!(limits.max_streams_per_address, 1000);
    assert_eq!(limits.request_header_timeout, secs(10));
    assert_eq!(
        limits.new_topics_per_address,
        Some(TopicOpenRate {
            max: 100,
            per: secs(10)
        })
    );
    assert_eq!(limits.replay_memory, 256 << 20);
    assert_eq!(c.runtime_dir, None);
    let s = &c.routes[0].fan_out().unwrap().settings;
    assert_eq!(s.replay.max_bytes, 8 << 20);
    assert_eq!(s.max_topics, None);
    assert_eq!(s.upstream_answer_timeout, secs(5));
    assert!(!s.resume_from_client);
    assert!(!s.event_filter);
    assert_eq!(s.slow_client, SlowClientPolicy::Disconnect);
    assert_eq!(s.coalesce_by, CoalesceKey::EventType);
    assert_eq!(c.multi, None);
    assert!(!c.routes[0].lenient_captures);
}

#[test]
fn every_new_key_is_read() {
    let text = format!(
        "runtime_dir: /run/sse-gw-test\n\
         limits:\n  max_connections: 10\n  max_streams_per_address: 3\n  \
         request_header_timeout: 2s\n  new_topics_per_address: {{max: 5, per: 1m}}\n  \
         replay_memory: 64MiB\nmulti: {{path: /multi}}\n\
         defaults:\n  replay: {{max_bytes: 1MiB}}\n  max_topics: 20\n  \
         upstream_answer_timeout: 0s\n  resume_from_client: true\n\
         {ROUTE}    lenient_captures: true\n    max_topics: 7\n    replay: {{events: 3}}\n    \
         event_filter: true\n    slow_client: coalesce\n    coalesce_by: data.symbol\n"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.runtime_dir.as_deref(), Some("/run/sse-gw-test".as_ref()));
    assert_eq!(
        c.limits,
        Limits {
            max_connections: 10,
            max_streams_per_address: 3,
            request_header_timeout: secs(2),
            new_topics_per_address: Some(TopicOpenRate {
                max: 5,
                per: secs(60)
            }),
            replay_memory: 64 << 20,
            ..Limits::default()
        }
    );
    assert_eq!(c.defaults.max_topics, Some(20));
    let route = &c.routes[0];
    assert!(route.lenient_captures);
    let s = &route.fan_out().unwrap().settings;
    assert_eq!(s.max_topics, Some(7), "the route's own");
    assert_eq!(s.replay.max_bytes, 1 << 20, "inherited per leaf");
    assert_eq!(s.replay.events, 3);
    assert_eq!(s.upstream_answer_timeout, Duration::ZERO, "0s: do not wait");
    assert!(s.resume_from_client);
    assert!(s.event_filter);
    assert_eq!(
        c.multi,
        Some(MultiConfig {
            path: "/multi".into(),
            max_topics: 8
        })
    );
    assert_eq!(s.slow_client, SlowClientPolicy::Coalesce);
    assert_eq!(s.coalesce_by, CoalesceKey::DataField("symbol".into()));
}

#[test]
fn new_topics_rate_per_leaf_and_off() {
    let c = load(&format!(
        "limits: {{new_topics_per_address: {{max: 0}}}}\n{ROUTE}"
    ))
    .unwrap();
    assert_eq!(c.limits.new_topics_per_address, None, "max: 0 turns it off");
    let c = load(&format!(
        "limits: {{new_topics_per_address: {{per: 1s}}}}\n{ROUTE}"
    ))
    .unwrap();
    assert_eq!(
        c.limits.new_topics_per_address,
        Some(TopicOpenRate {
            max: 100,
            per: secs(1)
        })
    );
}

#[test]
fn relative_runtime_dir_is_resolved_against_the_file() {
    let text = format!("runtime_dir: run/gw\n{ROUTE}");
    let c = crate::from_str("/etc/sse-gateway/gw.yaml", &text, &super::support::ENV).unwrap();
    assert_eq!(
        c.runtime_dir.as_deref(),
        Some("/etc/sse-gateway/run/gw".as_ref())
    );
    let c = load(&text).unwrap();
    let dir = c.runtime_dir.unwrap();
    assert!(dir.is_absolute(), "{}", dir.display());
    assert!(dir.ends_with("run/gw"));
}

#[test]
fn errors_in_the_new_keys() {
    check(&[
        (
            "zero and too large limits",
            &format!(
                "limits:\n  max_connections: 0\n  max_streams_per_address: 0\n  \
                 request_header_timeout: 0s\n  replay_memory: 0B\n  \
                 new_topics_per_address: {{max: 4294967296, per: 0s}}\n{ROUTE}"
            ),
            &[
                "test.yaml:2:20: limits.max_connections: must be greater than 0",
                "test.yaml:3:28: limits.max_streams_per_address: must be greater than 0",
                "test.yaml:4:27: limits.request_header_timeout: must be greater than 0s",
                "test.yaml:5:18: limits.replay_memory: must be greater than 0B",
                "test.yaml:6:33: limits.new_topics_per_address.max: number too large (at most 4294967295)",
                "test.yaml:6:50: limits.new_topics_per_address.per: must be greater than 0s",
            ],
        ),
        (
            "rate not a mapping, unknown rate key",
            &format!("limits:\n  new_topics_per_address: 5\n{ROUTE}    replay: {{max_bytes: 1MB}}\n"),
            &[
                "test.yaml:2:27: limits.new_topics_per_address: expected a mapping, found a scalar",
                "test.yaml:7:25: routes[0].replay.max_bytes: unknown size unit `MB` in `1MB`: use B, KiB, MiB or GiB",
            ],
        ),
        (
            "topic settings",
            &format!(
                "defaults:\n  max_topics: 0\n  upstream_answer_timeout: 5\n  \
                 resume_from_client: yes\n  replay: {{max_bytes: 0B}}\n{ROUTE}"
            ),
            &[
                "test.yaml:2:15: defaults.max_topics: must be greater than 0",
                "test.yaml:3:28: defaults.upstream_answer_timeout: `5` has no unit: write ms, s, m or h (for example 5s)",
                "test.yaml:4:23: defaults.resume_from_client: expected true or false, found `yes`",
                "test.yaml:5:23: defaults.replay.max_bytes: must be greater than 0B",
            ],
        ),
        (
            "multi endpoint",
            &format!("multi: {{path: \"multi/{{x}}\", max_topics: 65}}\n{ROUTE}"),
            &[
                "test.yaml:1:15: multi.path: an exact path: starts with `/`, no `{capture}`, query or spaces",
                "test.yaml:1:40: multi.max_topics: must be between 1 and 64",
            ],
        ),
        (
            "slow-client policy",
            &format!("defaults:\n  slow_client: drop\n  coalesce_by: data.\n{ROUTE}    coalesce_by: symbol\n"),
            &[
                "test.yaml:2:16: defaults.slow_client: unknown policy `drop`; expected `disconnect` or `coalesce`",
                "test.yaml:3:16: defaults.coalesce_by: unknown key `data.`; expected `event` or `data.FIELD` (a top-level JSON field of the data)",
                "test.yaml:8:18: routes[0].coalesce_by: unknown key `symbol`; expected `event` or `data.FIELD` (a top-level JSON field of the data)",
            ],
        ),
        (
            "runtime_dir that is a file",
            &format!("runtime_dir: /dev/null\n{ROUTE}"),
            &["test.yaml:1:14: runtime_dir: `/dev/null` exists and is not a directory"],
        ),
        (
            "fan-out-only keys on a proxy route",
            "routes:\n  - {name: a, path: /a, proxy: \"http://h\", max_topics: 1, \
             upstream_answer_timeout: 1s, resume_from_client: true, replay: {max_bytes: 1MiB}, \
             lenient_captures: true}\n",
            &[
                "test.yaml:2:56: routes[0].max_topics: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:84: routes[0].upstream_answer_timeout: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:108: routes[0].resume_from_client: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:134: routes[0].replay.max_bytes: applies only to fan-out routes (routes with `upstream`)",
                "test.yaml:2:159: routes[0].lenient_captures: applies only to fan-out routes (routes with `upstream`)",
            ],
        ),
    ]);
}
