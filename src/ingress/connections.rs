//! The ingress's open connections, by peer address, so that one client cannot hold all of them.
//! A new connection is admitted while its address holds fewer than
//! `--max-connections-per-address` (trusted proxies excepted: they carry many clients) and the
//! service fewer than `--max-connections`. At either cap an idle connection (one with no request
//! being handled: a kept-alive connection, or one that has not finished sending a head) is closed
//! to make room, taken from the address that holds the most; only when none is idle is the new
//! connection refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::peer::TrustedProxies;

/// Whether a connection has a request in hand; the server loop marks each request's start and
/// end.
#[derive(Debug, Default)]
pub struct Activity(AtomicUsize);

impl Activity {
    /// Whether no request is being handled on the connection.
    pub fn is_idle(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    /// Marks a request as being handled until the returned guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.0.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

/// A request in hand on a connection (see [`Activity::busy`]).
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open connection as the table knows it.
#[derive(Debug)]
struct Open {
    id: u64,
    activity: Arc<Activity>,
    /// Cancelled to ask the connection to close.
    close: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    total: usize,
    by_address: HashMap<IpAddr, Vec<Open>>,
}

impl Table {
    /// Removes an idle connection, from `only` if given, else from the address holding the
    /// most, and asks it to close; `false` when there is none.
    fn close_one_idle(&mut self, only: Option<IpAddr>) -> bool {
        let mut addresses: Vec<(IpAddr, usize)> = match only {
            Some(ip) => vec![(ip, 0)],
            None => self
                .by_address
                .iter()
                .map(|(ip, open)| (*ip, open.len()))
                .collect(),
        };
        addresses.sort_by_key(|&(_, held)| std::cmp::Reverse(held));
        for (ip, _) in addresses {
            let Some(open) = self.by_address.get_mut(&ip) else {
                continue;
            };
            // The oldest idle one: it has had its turn.
            if let Some(at) = open.iter().position(|o| o.activity.is_idle()) {
                let closed = open.remove(at);
                if open.is_empty() {
                    self.by_address.remove(&ip);
                }
                self.total -= 1;
                closed.close.cancel();
                crate::metrics::http_connection_closed_idle();
                return true;
            }
        }
        false
    }

    fn remove(&mut self, ip: IpAddr, id: u64) {
        let Some(open) = self.by_address.get_mut(&ip) else {
            return;
        };
        if let Some(at) = open.iter().position(|o| o.id == id) {
            open.remove(at);
            self.total -= 1;
        }
        if open.is_empty() {
            self.by_address.remove(&ip);
        }
    }
}

/// The open connections of one ingress listener.
#[derive(Debug)]
pub struct Connections {
    table: Mutex<Table>,
    max_total: usize,
    max_per_address: usize,
    trusted: TrustedProxies,
}

/// An admitted connection: its entry leaves the table when this is dropped.
#[derive(Debug)]
pub struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
    id: u64,
    /// Marked busy while a request is in hand.
    pub activity: Arc<Activity>,
    /// Cancelled when the connection must close: the service stops, or room is needed.
    pub close: CancellationToken,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut table) = self.connections.table.lock() {
            table.remove(self.ip, self.id);
        }
    }
}

impl Connections {
    pub fn new(max_total: usize, max_per_address: usize, trusted: TrustedProxies) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(Table::default()),
            max_total,
            max_per_address,
            trusted,
        })
    }

    /// Admits a connection from `ip`, closing an idle one to make room if a cap is reached;
    /// `None` when no room can be made. `stop` is the service's: its cancellation closes the
    /// connection too.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, stop: &CancellationToken) -> Option<Admitted> {
        let ip = ip.to_canonical();
        let mut table = self.table.lock().ok()?;
        let held = table.by_address.get(&ip).map_or(0, Vec::len);
        if held >= self.max_per_address
            && !self.trusted.trusts(ip)
            && !table.close_one_idle(Some(ip))
        {
            return None;
        }
        if table.total >= self.max_total && !table.close_one_idle(None) {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.total += 1;
        let activity = Arc::new(Activity::default());
        let close = stop.child_token();
        table.by_address.entry(ip).or_default().push(Open {
            id,
            activity: activity.clone(),
            close: close.clone(),
        });
        Some(Admitted {
            connections: self.clone(),
            ip,
            id,
            activity,
            close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_address_at_its_cap_gives_up_its_own_idle_connection_or_is_refused() {
        let stop = CancellationToken::new();
        let table = Connections::new(10, 2, TrustedProxies::default());
        let first = table.admit(ip("127.0.0.1"), &stop).expect("admitted");
        let second = table.admit(ip("127.0.0.1"), &stop).expect("admitted");
        let _busy = (first.activity.busy(), second.activity.busy());
        assert!(table.admit(ip("127.0.0.1"), &stop).is_none(), "both busy");
        assert!(
            table.admit(ip("127.0.0.2"), &stop).is_some(),
            "another address"
        );
        drop(_busy);
        let third = table.admit(ip("127.0.0.1"), &stop).expect("room made");
        assert!(first.close.is_cancelled(), "the oldest idle one is closed");
        assert!(!second.close.is_cancelled() && !third.close.is_cancelled());
    }

    #[test]
    fn at_the_global_cap_the_busiest_address_loses_an_idle_connection() {
        let stop = CancellationToken::new();
        let table = Connections::new(3, 3, TrustedProxies::default());
        let other = table.admit(ip("127.0.0.2"), &stop).expect("admitted");
        let flood: Vec<_> = (0..2)
            .map(|_| table.admit(ip("127.0.0.1"), &stop).expect("admitted"))
            .collect();
        let newcomer = table.admit(ip("127.0.0.3"), &stop).expect("room made");
        assert!(flood[0].close.is_cancelled());
        assert!(!other.close.is_cancelled() && !newcomer.close.is_cancelled());
        // All busy: nothing can be closed, so the next is refused.
        let _busy: Vec<_> = [&other, &flood[1], &newcomer]
            .iter()
            .map(|a| a.activity.busy())
            .collect();
        assert!(table.admit(ip("127.0.0.4"), &stop).is_none());
        drop(flood);
        assert!(
            table.admit(ip("127.0.0.4"), &stop).is_some(),
            "a closed one frees its room"
        );
    }

    #[test]
    fn a_trusted_proxy_has_no_per_address_cap() {
        let stop = CancellationToken::new();
        let table = Connections::new(10, 1, TrustedProxies::new(&["127.0.0.1".parse().unwrap()]));
        let held: Vec<_> = (0..5)
            .filter_map(|_| table.admit(ip("127.0.0.1"), &stop))
            .collect();
        assert_eq!(held.len(), 5);
        assert!(held.iter().all(|a| !a.close.is_cancelled()));
    }
}
