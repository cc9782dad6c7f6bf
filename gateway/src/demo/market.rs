//! The demo's price ticker: four ticks per second per symbol, with increasing
//! numeric ids and a short history for `Last-Event-ID` resumes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// Ticks kept per symbol for resumes.
const HISTORY: usize = 120;
/// Symbols the demo serves at most (each has a ticker task).
const MAX_SYMBOLS: usize = 64;
/// Time between ticks.
const TICK: Duration = Duration::from_millis(250);

/// Every symbol that has been asked for.
#[derive(Default)]
pub(crate) struct Market {
    symbols: Mutex<HashMap<String, Arc<Symbol>>>,
}

/// One symbol's ticker.
pub(crate) struct Symbol {
    state: Mutex<SymbolState>,
    live: broadcast::Sender<(u64, Bytes)>,
}

struct SymbolState {
    history: VecDeque<(u64, Bytes)>,
    next_id: u64,
    price: f64,
}

/// A subscription: what to replay, then the live ticks.
pub(crate) struct Ticks {
    /// Ticks after the requested id, oldest first.
    pub(crate) replay: Vec<(u64, Bytes)>,
    /// Later ticks.
    pub(crate) live: broadcast::Receiver<(u64, Bytes)>,
}

// === impl Market ===

impl Market {
    /// The symbol's ticker, started on first use (on the current runtime).
    /// `None` when the symbol is not 1-8 letters or digits, or too many exist.
    pub(crate) fn symbol(&self, name: &str) -> Option<Arc<Symbol>> {
        let valid = (1..=8).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return None;
        }
        let mut symbols = self.symbols.lock();
        if let Some(symbol) = symbols.get(name) {
            return Some(symbol.clone());
        }
        if symbols.len() >= MAX_SYMBOLS {
            return None;
        }
        let symbol = Arc::new(Symbol::new(name));
        symbols.insert(name.to_owned(), symbol.clone());
        tokio::spawn(run_ticker(name.to_owned(), Arc::downgrade(&symbol)));
        Some(symbol)
    }
}

// === impl Symbol ===

impl Symbol {
    fn new(name: &str) -> Self {
        let seed = name
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        Self {
            state: Mutex::new(SymbolState {
                history: VecDeque::with_capacity(HISTORY),
                next_id: 1,
                price: 50.0 + (seed % 450) as f64,
            }),
            live: broadcast::channel(256).0,
        }
    }

    /// Subscribes: the held ticks after `last_id` (none for a fresh client)
    /// and the live receiver, taken under one lock so none is missed or doubled.
    pub(crate) fn subscribe(&self, last_id: Option<u64>) -> Ticks {
        let state = self.state.lock();
        let replay = match last_id {
            Some(last) => state
                .history
                .iter()
                .filter(|(id, _)| *id > last)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ticks {
            replay,
            live: self.live.subscribe(),
        }
    }

    fn tick(&self, name: &str) {
        let mut state = self.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        let step = (fastrand::f64() - 0.5) * 0.01;
        state.price = (state.price * (1.0 + step)).max(0.01);
        let event = encode_tick(name, id, state.price);
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back((id, event.clone()));
        // No receiver is fine: nobody is listening right now.
        let _ = self.live.send((id, event));
    }
}

/// One tick as an SSE event.
pub(crate) fn encode_tick(symbol: &str, id: u64, price: f64) -> Bytes {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Bytes::from(format!(
        "id: {id}\ndata: {{\"symbol\":\"{symbol}\",\"price\":{price:.2},\"time\":{millis}}}\n\n"
    ))
}

async fn run_ticker(name: String, symbol: std::sync::Weak<Symbol>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(symbol) = symbol.upgrade() else {
            return;
        };
        symbol.tick(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_events_with_ids() {
        let tick = encode_tick("AAPL", 7, 123.456);
        let text = std::str::from_utf8(&tick).unwrap();
        assert!(
            text.starts_with("id: 7\ndata: {\"symbol\":\"AAPL\",\"price\":123.46,"),
            "{text}"
        );
        assert!(text.ends_with("}\n\n"));
    }

    #[tokio::test]
    async fn resume_replays_only_later_ticks() {
        let market = Market::default();
        assert!(market.symbol("bad/").is_none());
        let symbol = market.symbol("ACME").unwrap();
        for _ in 0..5 {
            symbol.tick("ACME");
        }
        let ticks = symbol.subscribe(Some(3));
        assert_eq!(
            ticks.replay.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert!(symbol.subscribe(None).replay.is_empty());
    }
}
