//! What keeps an identity provider's full import flat: Okta walks a collection by
//! `startIndex` pages from the start, each asking for the one after the last. An offset
//! skips every row before it, and every full page counted the whole collection for
//! totalResults. So each unsorted page leaves the key of its last row behind (`startIndex
//! = N + count` then seeks from it instead of skipping N rows), and a list's total is kept
//! until a write changes the resources.
//!
//! Both are tagged with a generation that every resource write of this process bumps
//! after it commits, so nothing is served that a write here has made stale. Another
//! process sharing a PostgreSQL database cannot bump it: a total is trusted for
//! [`COUNT_TTL`] at most, and a page sought from a remembered key is still the rows after
//! it (RFC 7644 section 3.4.2.4 does not promise offsets that hold across changes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a total stays trusted without a write of this process changing it.
pub const COUNT_TTL: Duration = Duration::from_secs(2);

/// Entries kept of each kind before they are forgotten together.
const CAPACITY: usize = 4096;

/// A list as the cache knows it: resource type and the filter as printed.
pub type ListKey = (String, String);

#[derive(Debug)]
struct Boundary {
    generation: u64,
    created: String,
    id: String,
}

#[derive(Debug)]
struct Counted {
    generation: u64,
    at: Instant,
    total: i64,
}

#[derive(Debug, Default)]
pub struct PageCache {
    generation: AtomicU64,
    boundaries: Mutex<HashMap<(ListKey, u64), Boundary>>,
    counts: Mutex<HashMap<ListKey, Counted>>,
}

fn bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.len() >= CAPACITY {
        map.clear();
    }
}

impl PageCache {
    /// A resource write committed: everything remembered before it is stale.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The generation to read under (taken before the read) and tag what it learns with.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The (created, id) of the row just before `offset` in this list, if a page ended
    /// there and nothing was written since.
    pub fn boundary(&self, key: &ListKey, offset: u64) -> Option<(String, String)> {
        let now = self.generation();
        let map = self.boundaries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(key.clone(), offset))
            .filter(|b| b.generation == now)
            .map(|b| (b.created.clone(), b.id.clone()))
    }

    /// A page of this list read under `generation` ended, at `offset`, with this row.
    pub fn remember_boundary(
        &self,
        key: &ListKey,
        offset: u64,
        generation: u64,
        created: &str,
        id: &str,
    ) {
        let mut map = self.boundaries.lock().unwrap_or_else(|p| p.into_inner());
        bounded(&mut map);
        map.insert(
            (key.clone(), offset),
            Boundary {
                generation,
                created: created.to_string(),
                id: id.to_string(),
            },
        );
    }

    /// The list's total, if it was counted since the last write and recently enough.
    pub fn count(&self, key: &ListKey) -> Option<i64> {
        let now = self.generation();
        let map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|c| c.generation == now && c.at.elapsed() < COUNT_TTL)
            .map(|c| c.total)
    }

    pub fn remember_count(&self, key: &ListKey, generation: u64, total: i64) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        bounded(&mut map);
        map.insert(
            key.clone(),
            Counted {
                generation,
                at: Instant::now(),
                total,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ListKey {
        ("User".into(), String::new())
    }

    #[test]
    fn a_write_makes_every_remembered_boundary_and_total_stale() {
        let c = PageCache::default();
        let g = c.generation();
        c.remember_boundary(&key(), 100, g, "t", "a");
        c.remember_count(&key(), g, 7);
        assert_eq!(c.boundary(&key(), 100), Some(("t".into(), "a".into())));
        assert_eq!(c.count(&key()), Some(7));
        c.bump();
        assert_eq!(c.boundary(&key(), 100), None);
        assert_eq!(c.count(&key()), None);
    }

    #[test]
    fn what_was_read_before_a_write_is_never_served_after_it() {
        let c = PageCache::default();
        let g = c.generation();
        c.bump();
        // A read that began before the write remembers under the old generation.
        c.remember_boundary(&key(), 200, g, "t", "b");
        c.remember_count(&key(), g, 9);
        assert_eq!(c.boundary(&key(), 200), None);
        assert_eq!(c.count(&key()), None);
    }
}
