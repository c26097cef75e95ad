//! The prepared statements of one connection: at most a fixed number,
//! the least recently used closed on the server to make room.
//!
//! Statement texts come from the registry (a few per model) but also from
//! the caller: every `List` filter shape and every `update` patch shape is
//! a statement text of its own. Kept without a bound, each connection's
//! server backend grows with them (measured: 21 MiB to 358 MiB after
//! 10,000 filter shapes). Dropping the last clone of a tokio-postgres
//! `Statement` sends Close for it, so evicting one here frees it on the
//! server (at once, or when a statement still running on it ends).

use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;

use tokio_postgres::types::Type;
use tokio_postgres::Statement;

/// Prepared statements kept per connection unless
/// [`crate::OpenOptions::statement_cache_size`] says otherwise.
pub const DEFAULT_STATEMENT_CACHE_SIZE: usize = 256;

/// The longest statement text that is prepared and kept, in bytes; a
/// longer one (a `List` filter of thousands of terms) is sent unnamed. So
/// a connection's cache holds at most [`DEFAULT_STATEMENT_CACHE_SIZE`] (or
/// the configured size) texts of at most 16 KiB, on the client and on the
/// server.
pub(crate) const MAX_PREPARED_TEXT: usize = 16 * 1024;

/// One connection's statement cache.
pub(crate) struct Prepared {
    capacity: usize,
    cache: Mutex<Lru<Statement>>,
}

impl Prepared {
    /// An empty cache of at most `capacity` statements (at least 1).
    pub(crate) fn new(capacity: usize) -> Prepared {
        Prepared {
            capacity: capacity.max(1),
            cache: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<Statement>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement prepared for `sql` with parameter `types`, if cached.
    pub(crate) fn get<'t>(
        &self,
        sql: &str,
        types: impl IntoIterator<Item = &'t Type>,
    ) -> Option<Statement> {
        self.lock().get(sql, types)
    }

    /// Keep `statement`, just prepared for `sql` and `types`, and answer
    /// the one to run: it, or one prepared meanwhile by a concurrent
    /// caller (ours is then closed); and whether a statement was evicted.
    /// A full cache first closes its least recently used statement.
    pub(crate) fn insert(
        &self,
        sql: &str,
        types: &[Type],
        statement: Statement,
    ) -> (Statement, bool) {
        let (kept, closed) = self.lock().insert(sql, types, statement, self.capacity);
        let evicted = closed.evicted;
        // Dropped outside the lock: the Close goes out now.
        drop(closed);
        (kept, evicted)
    }

    /// Forget the statement of `sql` (stale after a schema change).
    pub(crate) fn remove(&self, sql: &str) {
        let removed = self.lock().map.remove(sql);
        drop(removed);
    }
}

/// A map from statement text to its prepared form, with the instant of
/// each one's last use on a counter: a hit costs one lookup and one store;
/// finding the least recently used (on a miss into a full cache, which
/// costs a round trip to prepare anyway) scans the map. Texts are hashed
/// with foldhash (randomly seeded per map), a fifth of SipHash's cost on a
/// statement's text; the map's bound also bounds what colliding texts cost.
struct Lru<V> {
    map: HashMap<Box<str>, Slot<V>>,
    clock: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            map: HashMap::default(),
            clock: 0,
        }
    }
}

struct Slot<V> {
    types: Box<[Type]>,
    value: V,
    used: u64,
}

/// What an insert took out of the cache, to drop outside its lock.
struct Closed<V> {
    /// The least recently used value, evicted to make room, or one for the
    /// same text with other parameter types, replaced.
    old: Option<V>,
    /// The value offered when one was prepared meanwhile.
    duplicate: Option<V>,
    /// Whether `old` was taken to make room or replaced (counted).
    evicted: bool,
}

impl<V: Clone> Lru<V> {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn get<'t>(&mut self, sql: &str, types: impl IntoIterator<Item = &'t Type>) -> Option<V> {
        let now = self.tick();
        let slot = self.map.get_mut(sql)?;
        if !slot.types.iter().eq(types) {
            return None;
        }
        slot.used = now;
        Some(slot.value.clone())
    }

    fn insert(&mut self, sql: &str, types: &[Type], value: V, capacity: usize) -> (V, Closed<V>) {
        let now = self.tick();
        let mut closed = Closed {
            old: None,
            duplicate: None,
            evicted: false,
        };
        if let Some(slot) = self.map.get_mut(sql) {
            slot.used = now;
            if *slot.types == *types {
                closed.duplicate = Some(value);
                return (slot.value.clone(), closed);
            }
            closed.old = Some(std::mem::replace(&mut slot.value, value.clone()));
            slot.types = types.into();
            closed.evicted = true;
            return (value, closed);
        }
        if self.map.len() >= capacity {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(sql, _)| sql.clone());
            if let Some(oldest) = oldest {
                closed.old = self.map.remove(&oldest).map(|slot| slot.value);
                closed.evicted = true;
            }
        }
        self.map.insert(
            sql.into(),
            Slot {
                types: types.into(),
                value: value.clone(),
                used: now,
            },
        );
        (value, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(lru: &mut Lru<u32>, sql: &str, value: u32) -> (u32, Option<u32>) {
        let (kept, closed) = lru.insert(sql, &[Type::INT8], value, 3);
        (kept, closed.old)
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used_statement() {
        let mut lru = Lru::default();
        for (i, sql) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(insert(&mut lru, sql, i as u32), (i as u32, None));
        }
        // "a" is used again, so "b" is now the least recently used.
        assert_eq!(lru.get("a", &[Type::INT8]), Some(0));
        assert_eq!(insert(&mut lru, "d", 3), (3, Some(1)));
        assert_eq!(lru.map.len(), 3);
        assert_eq!(lru.get("b", &[Type::INT8]), None);
        assert_eq!(insert(&mut lru, "e", 4), (4, Some(2)));
        assert_eq!(lru.map.len(), 3);
    }

    #[test]
    fn a_statement_prepared_twice_is_kept_once() {
        let mut lru = Lru::default();
        insert(&mut lru, "a", 1);
        let (kept, closed) = lru.insert("a", &[Type::INT8], 2, 3);
        assert_eq!(
            (kept, closed.duplicate, closed.evicted),
            (1, Some(2), false)
        );
        assert_eq!(lru.map.len(), 1);
    }

    #[test]
    fn other_parameter_types_replace_the_statement() {
        let mut lru = Lru::default();
        insert(&mut lru, "a", 1);
        assert_eq!(lru.get("a", &[Type::TEXT]), None);
        let (kept, closed) = lru.insert("a", &[Type::TEXT], 2, 3);
        assert_eq!((kept, closed.old, closed.evicted), (2, Some(1), true));
        assert_eq!(lru.get("a", &[Type::TEXT]), Some(2));
        assert_eq!(lru.map.len(), 1);
    }
}
