//! A small YAML loader for checking the deployment manifests: every document of a file
//! as a [`serde_json::Value`] (plain scalars that read as booleans or integers become
//! those; everything else is a string). Anchors, aliases and tags are not supported.
//! Built on `saphyr-parser`, the parser the configuration crate uses.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Every document of `text`.
pub fn load_all(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    let mut stack: Vec<(Value, Option<String>)> = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| anyhow::anyhow!("invalid YAML: {}", e.info()))?;
        let value = match event {
            Event::Scalar(text, style, _, _) => Some(scalar(&text, style)),
            Event::SequenceStart(..) => {
                stack.push((Value::Array(Vec::new()), None));
                None
            }
            Event::MappingStart(..) => {
                stack.push((Value::Object(Map::new()), None));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => stack.pop().map(|(value, _)| value),
            Event::Alias(_) => {
                anyhow::bail!("line {}: aliases are not supported", span.start.line())
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => None,
        };
        let Some(value) = value else { continue };
        match stack.last_mut() {
            None => docs.push(value),
            Some((Value::Array(items), _)) => items.push(value),
            Some((Value::Object(map), key)) => match key.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => match value {
                    Value::String(text) => *key = Some(text),
                    other => *key = Some(other.to_string()),
                },
            },
            Some(_) => anyhow::bail!("unexpected YAML structure"),
        }
    }
    Ok(docs)
}

fn scalar(text: &str, style: ScalarStyle) -> Value {
    if !matches!(style, ScalarStyle::Plain) {
        return Value::String(text.to_owned());
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" | "~" => Value::Null,
        _ => text
            .parse::<i64>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
    }
}

#[cfg(test)]
mod tests {
    use super::load_all;
    use serde_json::json;

    #[test]
    fn documents_maps_lists_and_scalars() {
        let docs = load_all("a: 1\nb: [x, \"2\", true]\nc:\n  d: |\n    text\n---\n- 3\n").unwrap();
        assert_eq!(
            docs,
            [
                json!({"a": 1, "b": ["x", "2", true], "c": {"d": "text\n"}}),
                json!([3])
            ]
        );
    }
}
