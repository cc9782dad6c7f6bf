//! The set of event ids one subscriber received, to count what it missed
//! and what it received twice.

/// Ids further than this from the first one received are not tracked (a
/// damaged id must not allocate gigabytes); [`IdSet::insert`] refuses them.
const SPAN: u64 = 1 << 26;

/// A bitmap of the ids received, from the lowest one seen.
#[derive(Debug, Clone, Default)]
pub struct IdSet {
    /// The id of bit 0 of `words[0]` (a multiple of 64).
    base: u64,
    words: Vec<u64>,
    len: u64,
    min: Option<u64>,
    max: u64,
}

/// What [`IdSet::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// A new id.
    New,
    /// Received before.
    Duplicate,
    /// Too far from the others to track.
    Wild,
}

impl IdSet {
    /// Records `id`.
    pub fn insert(&mut self, id: u64) -> Insert {
        let Some(min) = self.min else {
            self.base = id & !63;
            self.words = vec![0];
            self.min = Some(id);
            self.max = id;
            self.set(id);
            return Insert::New;
        };
        if id.abs_diff(min) > SPAN || id.abs_diff(self.max) > SPAN {
            return Insert::Wild;
        }
        if id < self.base {
            let base = id & !63;
            let shift = ((self.base - base) / 64) as usize;
            self.words.splice(0..0, std::iter::repeat_n(0, shift));
            self.base = base;
        }
        let word = ((id - self.base) / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.contains(id) {
            return Insert::Duplicate;
        }
        self.set(id);
        self.min = Some(min.min(id));
        self.max = self.max.max(id);
        Insert::New
    }

    fn set(&mut self, id: u64) {
        let offset = id - self.base;
        if let Some(word) = self.words.get_mut((offset / 64) as usize) {
            *word |= 1 << (offset % 64);
        }
        self.len += 1;
    }

    /// Whether `id` was received.
    pub fn contains(&self, id: u64) -> bool {
        let Some(offset) = id.checked_sub(self.base) else {
            return false;
        };
        self.words
            .get((offset / 64) as usize)
            .is_some_and(|word| word & (1 << (offset % 64)) != 0)
    }

    /// Distinct ids received.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lowest and highest ids received.
    pub fn span(&self) -> Option<(u64, u64)> {
        self.min.map(|min| (min, self.max))
    }

    /// The ids between the lowest and the highest received that were not,
    /// leaving out those `excluded` says are not expected, as ranges
    /// `(first, last)` in order.
    pub fn missing(&self, excluded: impl Fn(u64) -> bool) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let Some((min, max)) = self.span() else {
            return ranges;
        };
        for id in min..=max {
            if self.contains(id) || excluded(id) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, last)) if *last + 1 == id => *last = id,
                _ => ranges.push((id, id)),
            }
        }
        ranges
    }
}

/// How many ids `ranges` hold.
pub fn count(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(first, last)| last - first + 1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_planted_gap_and_a_planted_duplicate() {
        let mut ids = IdSet::default();
        for id in (100..=200).filter(|id| !(150..=152).contains(id) && *id != 170) {
            assert_eq!(ids.insert(id), Insert::New);
        }
        assert_eq!(ids.insert(120), Insert::Duplicate);
        assert_eq!(ids.len(), 97);
        assert_eq!(ids.missing(|_| false), [(150, 152), (170, 170)]);
        assert_eq!(count(&ids.missing(|_| false)), 4);
        // An excluded id (an oversize event) is not missing.
        assert_eq!(ids.missing(|id| id == 170), [(150, 152)]);
    }

    #[test]
    fn grows_both_ways_and_refuses_wild_ids() {
        let mut ids = IdSet::default();
        assert_eq!(ids.insert(1000), Insert::New);
        assert_eq!(ids.insert(5), Insert::New);
        assert_eq!(ids.insert(70_000), Insert::New);
        assert_eq!(ids.insert(5), Insert::Duplicate);
        assert_eq!(ids.insert(u64::MAX), Insert::Wild);
        assert_eq!(ids.span(), Some((5, 70_000)));
        assert!(ids.contains(1000) && ids.contains(70_000) && !ids.contains(6));
        assert_eq!(count(&ids.missing(|_| false)), 70_000 - 5 + 1 - 3);
    }
}
