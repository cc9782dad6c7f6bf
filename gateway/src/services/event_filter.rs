//! The `?event=a,b` parameter of a fan-out request, on routes with
//! `event_filter: true`: which event types the client wants
//! ([`sse_gateway_sinks::EventFilter`]). Types are comma-separated, the
//! parameter may repeat, values are percent-decoded; a bad filter is
//! answered 400 before anything is subscribed.

use sse_gateway_sinks::{EventFilter, FilterError};

/// The query parameter naming the wanted event types.
pub(crate) const EVENT_PARAM: &str = "event";

/// The filter `query` asks for; `None` when it names none.
pub(crate) fn requested(query: Option<&str>) -> Result<Option<EventFilter>, FilterError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let values: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == EVENT_PARAM)
        .map(|(_, value)| value.into_owned())
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    EventFilter::new(values.iter().flat_map(|v| v.split(','))).map(Some)
}

/// The body of the 400 answer to a bad filter.
pub(crate) fn refusal_body(error: &FilterError) -> &'static str {
    match error {
        FilterError::Empty => "bad event filter: empty event type\n",
        FilterError::TooMany => "bad event filter: more than 16 event types\n",
        FilterError::TooLong => "bad event filter: an event type longer than 128 bytes\n",
        FilterError::Control => "bad event filter: a control character in an event type\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(query: &str) -> Vec<String> {
        let filter = requested(Some(query)).unwrap().unwrap();
        filter
            .types()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }

    #[test]
    fn types_from_the_query() {
        assert_eq!(types("event=a,b"), ["a", "b"]);
        assert_eq!(types("x=1&event=a&event=b%20c"), ["a", "b c"]);
        assert_eq!(types("event=price%2Chalt"), ["price", "halt"]);
        assert_eq!(requested(Some("lastEventId=4")), Ok(None));
        assert_eq!(requested(None), Ok(None));
        assert_eq!(requested(Some("event=")), Err(FilterError::Empty));
        assert_eq!(requested(Some("event=a,,b")), Err(FilterError::Empty));
        assert_eq!(requested(Some("event=a%0Ab")), Err(FilterError::Control));
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        let many = format!("event={}", many.join(","));
        assert_eq!(requested(Some(&many)), Err(FilterError::TooMany));
    }

    #[test]
    fn every_refusal_has_a_body() {
        for error in [
            FilterError::Empty,
            FilterError::TooMany,
            FilterError::TooLong,
            FilterError::Control,
        ] {
            assert!(refusal_body(&error).starts_with("bad event filter: "));
        }
        let many = refusal_body(&FilterError::TooMany);
        assert!(many.contains(&sse_gateway_sinks::MAX_FILTER_TYPES.to_string()));
        let long = refusal_body(&FilterError::TooLong);
        assert!(long.contains(&sse_gateway_sinks::MAX_FILTER_TYPE_LEN.to_string()));
    }
}
