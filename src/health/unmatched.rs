//! Requests to receiver ids that do not exist ("I pasted an old URL"): the most recent
//! [`KEPT`] distinct ids that got a 404, each with how many requests named it and when the last
//! came, in this process's memory only (`DeliveryService/ListUnmatched`). Nothing else of the
//! request is kept.
//!
//! Only ids that are UUIDs are kept: a path whose last segment is not one is answered 400 at
//! once (the code host's own delivery log then says "malformed receiver id"), could be anything
//! a scanner tries, and must not push the real old URLs out. A new id past [`KEPT`] takes the
//! place of the one heard from longest ago, so memory stays at [`KEPT`] entries whatever
//! arrives.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::time::Timestamp;

/// How many distinct ids are kept.
pub const KEPT: usize = 100;

/// One id requests named that no receiver has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedReceiver {
    pub receiver_id: Uuid,
    /// Requests to it since it was last among the kept ids (or since this process started).
    pub count: u64,
    pub last_time: Timestamp,
}

/// The kept ids. Shared by the ingress (which records) and the admin API (which lists).
#[derive(Debug, Default)]
pub struct Unmatched {
    ids: Mutex<HashMap<Uuid, (u64, Timestamp)>>,
}

impl Unmatched {
    /// Records a request to `id`, which no receiver has, at `at`.
    pub fn record(&self, id: Uuid, at: Timestamp) {
        let mut ids = self.ids.lock().expect("unmatched lock");
        if let Some((count, last)) = ids.get_mut(&id) {
            *count += 1;
            *last = (*last).max(at);
            return;
        }
        if ids.len() >= KEPT
            && let Some(oldest) = ids
                .iter()
                .min_by_key(|(id, (_, last))| (*last, **id))
                .map(|(id, _)| *id)
        {
            ids.remove(&oldest);
        }
        ids.insert(id, (1, at));
    }

    /// The kept ids, the most recent first.
    pub fn list(&self) -> Vec<UnmatchedReceiver> {
        let ids = self.ids.lock().expect("unmatched lock");
        let mut list: Vec<UnmatchedReceiver> = ids
            .iter()
            .map(|(id, (count, last))| UnmatchedReceiver {
                receiver_id: *id,
                count: *count,
                last_time: *last,
            })
            .collect();
        list.sort_by(|a, b| {
            b.last_time
                .cmp(&a.last_time)
                .then(a.receiver_id.cmp(&b.receiver_id))
        });
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    #[test]
    fn ids_are_counted_and_listed_most_recent_first() {
        let unmatched = Unmatched::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        unmatched.record(a, at(1));
        unmatched.record(b, at(2));
        unmatched.record(a, at(3));
        let list = unmatched.list();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].receiver_id, list[0].count), (a, 2));
        assert_eq!(list[0].last_time, at(3));
        assert_eq!((list[1].receiver_id, list[1].count), (b, 1));
    }

    #[test]
    fn past_the_bound_the_id_heard_from_longest_ago_goes() {
        let unmatched = Unmatched::default();
        let ids: Vec<Uuid> = (0..KEPT + 50).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            unmatched.record(*id, at(i as i64));
        }
        // One still kept is heard from again: it is the most recent now.
        unmatched.record(ids[KEPT + 10], at(1000));
        let list = unmatched.list();
        assert_eq!(list.len(), KEPT);
        assert_eq!(list[0].receiver_id, ids[KEPT + 10]);
        assert_eq!(list[0].count, 2);
        assert_eq!(list.last().unwrap().receiver_id, ids[50]);
        assert!(list.iter().all(|u| u.receiver_id != ids[49]));
    }
}
