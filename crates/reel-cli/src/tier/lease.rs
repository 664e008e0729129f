//! Reader names of stores in object storage, locked as local ones are: a lease per name
//! in object storage, taken with create-only puts and renewed while the reader runs.

use crate::error::{CliError, CliResult};
use crate::output::note;
use reel_tier::Tier;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// How long a reader's lease in object storage outlives its last renewal: a reader that
/// stopped without releasing it (killed) holds its name that long, unless it ran on this
/// host and its process is gone. Clocks of reader and object store must agree to well
/// within this.
pub(super) const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often a running reader renews its lease.
const LEASE_RENEW: Duration = Duration::from_secs(2);

/// Who holds a reader's lease: the contents of its lease object.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    host: String,
    pid: u32,
    /// When it was taken (µs since the epoch): makes every holder's bytes unique, so a
    /// create-only put of the same generation by two readers cannot both succeed.
    since: i64,
    /// The boot and PID namespace its `pid` belongs to: containers sharing a host name
    /// (host networking) have pids of their own, and one's pid means nothing in
    /// another's `/proc`.
    #[serde(default)]
    pids: String,
}

impl Holder {
    /// A holder in this boot and PID namespace whose process is gone (killed): its
    /// lease is free at once. Any other waits out [`LEASE_TTL`].
    fn gone(&self) -> bool {
        let here = pid_space();
        self.host == host_name()
            && !here.is_empty()
            && self.pids == here
            && self.pid != std::process::id()
            && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// This boot and PID namespace (empty where they cannot be read).
fn pid_space() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if boot.trim().is_empty() || ns.is_empty() {
        return String::new();
    }
    format!("{}/{ns}", boot.trim())
}

/// The lease this process holds on a reader name of a store in object storage. Reader
/// names there are locked as locally (README: a reader name is locked while in use), with
/// the only conditional write object storage offers every server: create-only puts. Each
/// taking of the lease creates the next generation `readers/NAME.lease/<gen>`, so of two
/// readers taking it at once only one can create it; the holder renews it by rewriting
/// it (its age is the time since the last renewal).
#[derive(Debug)]
struct Lease {
    reader: String,
    generation: u64,
    bytes: Vec<u8>,
    /// Another reader took it after it lapsed.
    lost: bool,
    renewed: std::time::Instant,
}

static LEASE: Mutex<Option<Lease>> = Mutex::new(None);

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn lease_dir(reader: &str) -> String {
    format!("readers/{reader}.lease")
}

fn lease_object(reader: &str, generation: u64) -> String {
    format!("{}/{generation:020}", lease_dir(reader))
}

/// The lease generations of `reader`, oldest first, with the time since each was written.
fn generations(tier: &Tier, reader: &str) -> CliResult<Vec<(u64, Duration)>> {
    let dir = format!("{}/", lease_dir(reader));
    let mut g: Vec<(u64, Duration)> = tier
        .list_aged(&lease_dir(reader))?
        .into_iter()
        .filter_map(|(name, age)| Some((name.strip_prefix(&dir)?.parse().ok()?, age)))
        .collect();
    g.sort_unstable();
    Ok(g)
}

pub(super) fn acquire(tier: &Tier, url: &str, reader: &str) -> CliResult {
    let me = Holder {
        host: host_name(),
        pid: std::process::id(),
        since: reel_log::now_micros(),
        pids: pid_space(),
    };
    let bytes = serde_json::to_vec(&me)?;
    let (mut holder, mut failed) = (None, None);
    for _ in 0..5 {
        let gens = generations(tier, reader)?;
        let next = match gens.last() {
            None => 0,
            Some(&(g, age)) => {
                let Some(b) = tier.get_small(&lease_object(reader, g))? else {
                    continue; // released meanwhile
                };
                let h = serde_json::from_slice::<Holder>(&b).ok();
                if age < LEASE_TTL && !h.as_ref().is_some_and(Holder::gone) {
                    holder = h;
                    break;
                }
                g + 1
            }
        };
        // A failure is another reader creating this generation first, or object storage
        // failing: the next round tells.
        if let Err(e) = tier.put_object(&lease_object(reader, next), bytes.clone()) {
            failed = Some(e);
        } else {
            // Older generations are lapsed leases: nobody holds them any more.
            for (g, _) in gens {
                let _ = tier.delete(&lease_object(reader, g));
            }
            *LEASE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Lease {
                reader: reader.to_string(),
                generation: next,
                bytes,
                lost: false,
                renewed: std::time::Instant::now(),
            });
            return Ok(());
        }
    }
    if let (None, Some(e)) = (&holder, failed) {
        return Err(e.into());
    }
    let by = holder.map_or_else(String::new, |h| format!(" (on {}, pid {})", h.host, h.pid));
    Err(CliError::Input(format!(
        "reader `{reader}` of {url} is in use by another reader{by}; a reader stopped without releasing it frees it {} s after its last renewal",
        LEASE_TTL.as_secs()
    )))
}

/// Whether `l` is still the newest lease of its reader, and still ours.
fn still_held(tier: &Tier, l: &Lease) -> CliResult<bool> {
    let newest = generations(tier, &l.reader)?.last().map(|&(g, _)| g);
    Ok(newest == Some(l.generation)
        && tier.get_small(&lease_object(&l.reader, l.generation))? == Some(l.bytes.clone()))
}

/// Renews this process's lease when due; notes when another reader took it. Failures
/// to reach object storage are retried at the next poll.
pub(super) fn renew(tier: &Tier) {
    let mut guard = LEASE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(l) = guard.as_mut().filter(|l| !l.lost) else {
        return;
    };
    if l.renewed.elapsed() < LEASE_RENEW {
        return;
    }
    match still_held(tier, l) {
        Ok(true) => {
            if tier
                .put_small(&lease_object(&l.reader, l.generation), l.bytes.clone())
                .is_ok()
            {
                l.renewed = std::time::Instant::now();
            }
        }
        Ok(false) => {
            l.lost = true;
            note(format_args!(
                "reel: reader `{}` was taken by another reader (this one could not renew its lease in time); its position is no longer saved",
                l.reader
            ));
        }
        Err(_) => {}
    }
}

/// Whether this process still holds its reader lease, as object storage says now.
pub(super) fn held(tier: &Tier) -> CliResult<bool> {
    match LEASE.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(l) => Ok(!l.lost && still_held(tier, l)?),
        None => Ok(false),
    }
}

/// Fails once this process's reader lease was taken by another reader (a `reel read`
/// of a store in object storage then stops); Ok without a lease (a local reader).
pub fn check_reader_lease() -> CliResult {
    match LEASE.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(l) if l.lost => Err(CliError::Input(format!(
            "reader `{}` was taken by another reader (this one could not renew its lease in \
             time): stopped, so that the two do not hand out the same records",
            l.reader
        ))),
        _ => Ok(()),
    }
}

/// Whether this process holds a reader lease it may save positions under.
pub(super) fn holds_lease() -> bool {
    LEASE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|l| !l.lost)
}

/// Gives up this process's lease (deleted only while it is still ours).
pub(super) fn release(tier: &Tier) {
    let lease = LEASE.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(l) = lease
        && !l.lost
        && still_held(tier, &l).unwrap_or(false)
    {
        let _ = tier.delete(&lease_object(&l.reader, l.generation));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holder counted as gone when its pid was missing from this `/proc`, also from
    /// another PID namespace (a container sharing the host name), whose live reader then
    /// lost its name at once.
    #[test]
    fn a_holder_is_gone_only_when_its_pid_is_of_this_pid_namespace() {
        let here = pid_space();
        if here.is_empty() {
            return; // no /proc: nothing is ever taken as gone
        }
        let holder = |pids: String| Holder {
            host: host_name(),
            pid: u32::MAX - 1,
            since: 0,
            pids,
        };
        assert!(holder(here.clone()).gone());
        assert!(!holder(format!("{here}-another")).gone());
        assert!(
            !holder(String::new()).gone(),
            "from a build that did not record it"
        );
    }
}
