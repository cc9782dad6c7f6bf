//! [`Logfmt`]: how the text log writes an event's fields: `key=value`, with
//! a value quoted (and escaped) whenever it could be misread.
//!
//! Fields carry request data (a topic made from a path capture, a client
//! address), so a value must not be able to forge another field or another
//! line: a topic `a reason=shutdown` or one with a U+202E (right-to-left
//! override) would otherwise rewrite what an operator reads. A value made of
//! ASCII letters, digits and `-._~:/@+,%[]()` is written as it is; anything
//! else is written between double quotes with `"` and `\` escaped and every
//! character outside printable ASCII as `\u{…}`. The event's message is
//! written first, as it is while it is printable ASCII without `=` or `"`,
//! else quoted the same way: the gateway's own messages stay readable, and
//! a message that carries request data (pingora's own log lines quote the
//! request's method, path and `Host`) cannot forge fields or escape
//! sequences either. The `log.*` fields the `log` bridge adds (target,
//! module, file, line of a pingora record) are left out, as the default
//! formatter does.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// The text log's field formatter.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Logfmt;

impl<'writer> FormatFields<'writer> for Logfmt {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            self.writer
                .write_str(separator)
                .and_then(|()| write_message(&mut self.writer, value))
        } else {
            write!(self.writer, "{separator}{}=", field.name())
                .and_then(|()| write_value(&mut self.writer, value))
        };
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields come here too, rendered with their Display.
        self.write(field, &format!("{value:?}"));
    }
}

/// Whether `value` reads unambiguously without quotes.
fn is_bare(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/@+,%[]()".contains(&b))
}

/// Writes an event's message: as it is when printable ASCII without `=` or
/// `"`, else quoted.
fn write_message(out: &mut impl fmt::Write, message: &str) -> fmt::Result {
    let plain = message
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'=' && b != b'"');
    if plain {
        out.write_str(message)
    } else {
        write_quoted(out, message)
    }
}

/// Writes `value` bare or quoted (see the module documentation).
fn write_value(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    if is_bare(value) {
        return out.write_str(value);
    }
    write_quoted(out, value)
}

/// `value` between quotes, escaped.
fn write_quoted(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            ' '..='~' => out.write_char(c)?,
            other => write!(out, "\\u{{{:x}}}", u32::from(other))?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parking_lot::Mutex;

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    fn quoted(value: &str) -> String {
        let mut out = String::new();
        write_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn safe_values_stay_bare_and_the_rest_is_quoted_and_escaped() {
        assert_eq!(quoted("/l/X"), "/l/X");
        assert_eq!(quoted("127.0.0.1:4242"), "127.0.0.1:4242");
        assert_eq!(quoted("client_closed"), "client_closed");
        assert_eq!(quoted(""), r#""""#);
        assert_eq!(quoted("a reason=shutdown"), r#""a reason=shutdown""#);
        assert_eq!(quoted("say \"hi\" \\"), r#""say \"hi\" \\""#);
        assert_eq!(quoted("a\u{202e}b\u{200b}c"), r#""a\u{202e}b\u{200b}c""#);
        assert_eq!(quoted("caf\u{e9}\n"), r#""caf\u{e9}\u{a}""#);
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn a_message_with_request_data_is_quoted() {
        let mut out = String::new();
        write_message(&mut out, "stream closed").unwrap();
        assert_eq!(out, "stream closed");
        let mut out = String::new();
        let forged = "Fail to proxy: GET /x, Host: a route=admin \u{202e}\u{1b}[31m";
        write_message(&mut out, forged).unwrap();
        assert_eq!(
            out,
            r#""Fail to proxy: GET /x, Host: a route=admin \u{202e}\u{1b}[31m""#
        );
    }

    #[test]
    fn an_event_cannot_forge_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buffer.clone())
            .with_ansi(false)
            .fmt_fields(Logfmt)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let topic = "x reason=shutdown\u{202e}";
            tracing::info!(route = "lg", topic = %topic, events = 5u64, "stream closed");
        });
        let line = String::from_utf8(buffer.0.lock().clone()).unwrap();
        assert!(
            line.contains(r#"stream closed route=lg topic="x reason=shutdown\u{202e}" events=5"#),
            "{line}"
        );
    }
}
