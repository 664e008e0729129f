//! Sharing a topic's partitions among the bridges of one `--group`, through the store
//! itself rather than Kafka's group protocol (which the pure-Rust clients lack).
//!
//! Every member appends a heartbeat `{"member": ID, "expires": MICROS}` to the list
//! `_kafka/GROUP/TOPIC/members` every third of its lease. The live members are those
//! whose newest heartbeat has not expired; sorted by id, member *i* of *n* is assigned
//! the partitions at positions *i*, *i + n*, ... of the sorted partition list. Members
//! agree once they have seen the same heartbeats; until then the partition leases (in
//! the checkpoints, see [`super::checkpoint`]) keep two members from ever storing the
//! same partition: a partition is claimed only when its lease has expired or was
//! released, and every write is conditional on the claim still standing.
//!
//! A member that dies stops renewing: its heartbeat and its leases expire after the
//! lease, the others see one member fewer, and the member now assigned each of its
//! partitions claims it and resumes from its stored offset. Nothing it stored is lost
//! and nothing is stored twice.

use super::checkpoint::now_us;
use crate::error::CliResult;
use reel::list::{ListStore, NewItem, PageRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;

/// Heartbeats read back to find the live members: enough for a group of ~100 members
/// beating three times per lease.
const HEARTBEATS_READ: usize = 512;

/// One heartbeat.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    member: String,
    expires: i64,
}

/// This member's view of its group.
#[derive(Debug, Clone)]
pub struct Membership {
    lists: ListStore,
    key: String,
    /// This member's id.
    pub member: String,
    lease: Duration,
}

impl Membership {
    /// Membership of `member` in `group` for `topic`.
    pub fn new(
        lists: ListStore,
        group: &str,
        topic: &str,
        member: String,
        lease: Duration,
    ) -> Self {
        Membership {
            lists,
            key: format!("_kafka/{group}/{topic}/members"),
            member,
            lease,
        }
    }

    /// Says this member is alive for another lease (`leaving`: is gone now).
    pub fn heartbeat(&self, leaving: bool) -> CliResult {
        let expires = if leaving {
            0
        } else {
            now_us().saturating_add(lease_us(self.lease))
        };
        let beat = Heartbeat {
            member: self.member.clone(),
            expires,
        };
        self.lists.append(
            &self.key,
            &[NewItem {
                value: serde_json::json!(beat),
                nonce: None,
                ts: None,
            }],
        )?;
        Ok(())
    }

    /// The live members, sorted, this one included.
    pub fn live(&self) -> CliResult<Vec<String>> {
        let page = self.lists.read(
            &self.key,
            &PageRequest {
                reverse: true,
                limit: Some(HEARTBEATS_READ),
                ..Default::default()
            },
        )?;
        let now = now_us();
        let mut seen = HashSet::new();
        let mut live = vec![self.member.clone()];
        seen.insert(self.member.clone());
        // Newest first: a member's newest heartbeat decides.
        for item in page.items {
            let Ok(beat) = serde_json::from_value::<Heartbeat>(item.value.to_json()?) else {
                continue;
            };
            if seen.insert(beat.member.clone()) && beat.expires > now {
                live.push(beat.member);
            }
        }
        live.sort();
        Ok(live)
    }
}

/// The partitions assigned to `member` among `live` (sorted) members.
pub fn assigned(partitions: &[i32], live: &[String], member: &str) -> Vec<i32> {
    let Some(me) = live.iter().position(|m| m == member) else {
        return Vec::new();
    };
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % live.len() == me)
        .map(|(_, p)| p)
        .collect()
}

/// A lease in microseconds.
pub fn lease_us(lease: Duration) -> i64 {
    i64::try_from(lease.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_round_robin_over_sorted_members() {
        let live = vec!["a".to_string(), "b".to_string()];
        assert_eq!(assigned(&[3, 0, 2, 1], &live, "a"), [0, 2]);
        assert_eq!(assigned(&[3, 0, 2, 1], &live, "b"), [1, 3]);
        assert!(assigned(&[0], &live, "c").is_empty());
    }

    #[test]
    fn a_member_whose_heartbeat_expired_is_not_live() {
        let tmp = tempfile::tempdir().unwrap();
        let lists = ListStore::open(tmp.path()).unwrap();
        let a = Membership::new(lists.clone(), "g", "t", "a".into(), Duration::from_secs(60));
        let b = Membership::new(lists, "g", "t", "b".into(), Duration::from_secs(60));
        a.heartbeat(false).unwrap();
        b.heartbeat(false).unwrap();
        assert_eq!(a.live().unwrap(), ["a", "b"]);
        b.heartbeat(true).unwrap();
        assert_eq!(a.live().unwrap(), ["a"]);
    }
}
