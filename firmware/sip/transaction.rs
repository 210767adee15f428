//! RFC 3261 §17 transactions, sans-IO: the engine feeds requests, responses and `now`; the
//! layers say what to send and when to wake them. Timers are data (deadlines on each
//! transaction plus a min-heap as the wake-up index, lazily cleaned), as in quinn-proto.
//!
//! RFC 6026 is followed for 2xx to INVITE: both sides keep an *Accepted* state for 64·T1 so
//! retransmitted INVITEs and 2xx responses are matched instead of looking like new requests.

use super::message::{Method, Request, Response};
use super::Peer;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// T1: RTT estimate (RFC 3261 §17.1.1.1).
pub const T1: Duration = Duration::from_millis(500);
/// T2: the longest retransmit interval for non-INVITE requests and INVITE responses.
pub const T2: Duration = Duration::from_secs(4);
/// T4: how long the network may hold a message.
pub const T4: Duration = Duration::from_secs(5);
/// 64·T1: timers B, F, H, J and the RFC 6026 Accepted wait.
pub const TIMEOUT_64T1: Duration = Duration::from_secs(32);
/// Most live transactions per layer. Beyond it new requests get 503 (overload), bounded memory.
pub const MAX_TRANSACTIONS: usize = 200_000;

/// Identifies a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxnId(pub u64);

/// Identifies a client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxnId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// Request received, no final answer yet.
    Proceeding,
    /// Final non-2xx sent (INVITE: waiting for ACK; non-INVITE: absorbing retransmissions).
    Completed,
    /// ACK received for a non-2xx final (Timer I running).
    Confirmed,
    /// 2xx to INVITE sent (RFC 6026).
    Accepted,
}

#[derive(Debug)]
struct ServerTxn {
    key: (String, bool),
    peer: Peer,
    is_invite: bool,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    /// Timer G interval (INVITE final response retransmission over UDP).
    g_interval: Duration,
    /// Next retransmission of the final response (Timer G).
    retransmit_at: Option<Instant>,
    /// When the transaction ends (Timers H, I, J, or the Accepted wait).
    end_at: Option<Instant>,
}

/// What a received request is to the server transaction layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestMatch {
    /// A new request: a transaction was created; answer it through [`ServerTransactions::respond`].
    New(ServerTxnId),
    /// A retransmission: send this (the last response), or nothing if none yet.
    Retransmission(Option<(Peer, Vec<u8>)>),
    /// An ACK that ends a non-2xx INVITE transaction: nothing to do.
    AckAbsorbed,
    /// An ACK for a 2xx (or a request with no transaction, like an ACK without a branch match):
    /// the dialog layer handles it.
    ToDialog,
    /// Too many transactions: answer 503 statelessly.
    Overloaded,
}

/// The server transactions (requests we receive).
#[derive(Debug, Default)]
pub struct ServerTransactions {
    next_id: u64,
    txns: HashMap<ServerTxnId, ServerTxn>,
    by_key: HashMap<(String, bool), ServerTxnId>,
    wakeups: BinaryHeap<Reverse<(Instant, ServerTxnId)>>,
}

/// The key of RFC 3261 §17.2.3: the top Via branch (plus sent-by for old-style branches) and
/// whether the method is INVITE/ACK. CANCEL gets its own transaction; it finds the INVITE by
/// [`ServerTransactions::find_invite`].
fn server_key(req: &Request) -> (String, bool) {
    let via = req.common.top_via();
    let branch = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => format!("{b}|{}:{:?}", via.host, via.port),
        // RFC 2543 peers: no magic cookie, so identify by the request's fields (§17.2.3).
        b => format!(
            "2543|{}|{}|{}|{}|{}",
            b.unwrap_or(""),
            req.common.call_id,
            req.common.cseq.seq,
            req.common.from.tag().unwrap_or(""),
            via.raw
        ),
    };
    let invite_like = matches!(req.method, Method::Invite | Method::Ack);
    let method_part = if invite_like { String::new() } else { req.method.as_str().to_string() };
    (format!("{branch}|{method_part}"), invite_like)
}

impl ServerTransactions {
    /// Matches a request against the live transactions, creating one for a new request.
    pub fn on_request(&mut self, req: &Request, peer: Peer, now: Instant) -> RequestMatch {
        let key = server_key(req);
        if let Some(id) = self.by_key.get(&key).copied() {
            let Some(t) = self.txns.get_mut(&id) else {
                return RequestMatch::ToDialog;
            };
            if req.method == Method::Ack {
                return match t.state {
                    ServerState::Completed => {
                        // §17.2.1: ACK moves Completed to Confirmed; Timer I absorbs more ACKs.
                        t.state = ServerState::Confirmed;
                        t.retransmit_at = None;
                        let wait = if peer.transport.is_reliable() { Duration::ZERO } else { T4 };
                        t.end_at = Some(now + wait);
                        self.wakeups.push(Reverse((now + wait, id)));
                        RequestMatch::AckAbsorbed
                    }
                    ServerState::Confirmed => RequestMatch::AckAbsorbed,
                    // An ACK for a 2xx that reuses the INVITE's branch (RFC 2543 phones).
                    ServerState::Accepted | ServerState::Proceeding => RequestMatch::ToDialog,
                };
            }
            if t.state == ServerState::Accepted {
                return RequestMatch::Retransmission(None);
            }
            return RequestMatch::Retransmission(t.last_response.clone().map(|r| (t.peer, r)));
        }
        if req.method == Method::Ack {
            return RequestMatch::ToDialog;
        }
        if self.txns.len() >= MAX_TRANSACTIONS {
            return RequestMatch::Overloaded;
        }
        self.next_id += 1;
        let id = ServerTxnId(self.next_id);
        let is_invite = req.method == Method::Invite;
        self.txns.insert(
            id,
            ServerTxn {
                key: key.clone(),
                peer,
                is_invite,
                state: ServerState::Proceeding,
                last_response: None,
                g_interval: T1,
                retransmit_at: None,
                end_at: None,
            },
        );
        self.by_key.insert(key, id);
        RequestMatch::New(id)
    }

    /// The INVITE transaction a CANCEL refers to (same branch, RFC 3261 §9.2).
    pub fn find_invite(&self, cancel: &Request) -> Option<ServerTxnId> {
        let (key, _) = server_key(cancel);
        let invite_key = format!("{}|", key.strip_suffix("CANCEL")?.strip_suffix('|')?);
        self.by_key.get(&(invite_key, true)).copied()
    }

    /// True while the transaction has not sent a final response.
    pub fn is_proceeding(&self, id: ServerTxnId) -> bool {
        self.txns.get(&id).is_some_and(|t| t.state == ServerState::Proceeding)
    }

    /// Records a response and returns where to send it. Final responses move the state on and
    /// arm the timers of §17.2.1 / §17.2.2.
    pub fn respond(
        &mut self,
        id: ServerTxnId,
        code: u16,
        bytes: Vec<u8>,
        now: Instant,
    ) -> Option<(Peer, Vec<u8>)> {
        let t = self.txns.get_mut(&id)?;
        if t.state != ServerState::Proceeding {
            return None;
        }
        let reliable = t.peer.transport.is_reliable();
        t.last_response = Some(bytes.clone());
        if code >= 200 {
            if t.is_invite && code < 300 {
                // RFC 6026 §7.1: in Accepted, INVITE retransmissions are absorbed (the dialog
                // layer retransmits the 2xx), so the response need not be kept for 32 s.
                t.state = ServerState::Accepted;
                t.last_response = None;
                t.end_at = Some(now + TIMEOUT_64T1);
            } else if t.is_invite {
                t.state = ServerState::Completed;
                if !reliable {
                    t.retransmit_at = Some(now + t.g_interval);
                    self.wakeups.push(Reverse((now + t.g_interval, id)));
                }
                t.end_at = Some(now + TIMEOUT_64T1); // Timer H
            } else {
                t.state = ServerState::Completed;
                let j = if reliable { Duration::ZERO } else { TIMEOUT_64T1 };
                t.end_at = Some(now + j);
            }
            if let Some(end) = t.end_at {
                self.wakeups.push(Reverse((end, id)));
            }
        }
        Some((t.peer, bytes))
    }

    /// The earliest wake-up wanted.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeups.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires due timers: returns retransmissions to send and INVITE transactions whose final
    /// non-2xx was never acknowledged (Timer H), which the owner may want to know about.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<(Peer, Vec<u8>)>) {
        while let Some(Reverse((at, id))) = self.wakeups.peek().copied() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            let Some(t) = self.txns.get_mut(&id) else {
                continue;
            };
            if t.end_at.is_some_and(|e| e <= now) {
                let key = t.key.clone();
                self.txns.remove(&id);
                self.by_key.remove(&key);
                continue;
            }
            if t.retransmit_at.is_some_and(|r| r <= now) && t.state == ServerState::Completed {
                if let Some(r) = &t.last_response {
                    out.push((t.peer, r.clone()));
                }
                t.g_interval = (t.g_interval * 2).min(T2);
                let next = now + t.g_interval;
                t.retransmit_at = Some(next);
                self.wakeups.push(Reverse((next, id)));
            }
        }
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when none are live.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// Sent, no response yet (Timer A/E retransmitting).
    Calling,
    /// A provisional arrived.
    Proceeding,
    /// A final non-2xx arrived (INVITE: ACK sent; absorbing retransmissions).
    Completed,
    /// A 2xx to INVITE arrived (RFC 6026): further 2xx go to the owner.
    Accepted,
}

#[derive(Debug)]
struct ClientTxn {
    branch: String,
    peer: Peer,
    is_invite: bool,
    /// The request, for retransmission; emptied once no retransmission can follow.
    request: Vec<u8>,
    /// Its Request-URI (for the ACK of a non-2xx final, §17.1.1.3).
    request_uri: String,
    /// The ACK for a non-2xx final (INVITE only), re-sent on retransmitted finals.
    ack: Option<Vec<u8>>,
    state: ClientState,
    interval: Duration,
    retransmit_at: Option<Instant>,
    /// Timer B/F (no final answer) while Calling/Proceeding; Timer D/K/Accepted wait after.
    end_at: Instant,
    owner: u64,
}

/// What a received response is to the client transaction layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMatch {
    /// Give it to the owner (first provisional/final, or a 2xx retransmission to re-ACK).
    Deliver {
        /// The transaction.
        txn: ClientTxnId,
        /// Who sent the request (a call id).
        owner: u64,
    },
    /// A retransmitted non-2xx final: re-send the ACK.
    Resend(Peer, Vec<u8>),
    /// Nothing to do (a late provisional, a stray response).
    Absorbed,
}

/// A client transaction that got no final answer in time (Timer B / F, RFC 3261 §17.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// The transaction.
    pub txn: ClientTxnId,
    /// Its owner.
    pub owner: u64,
}

/// The client transactions (requests we send).
#[derive(Debug, Default)]
pub struct ClientTransactions {
    next_id: u64,
    txns: HashMap<ClientTxnId, ClientTxn>,
    by_branch: HashMap<String, ClientTxnId>,
    wakeups: BinaryHeap<Reverse<(Instant, ClientTxnId)>>,
}

impl ClientTransactions {
    /// Starts a transaction for a request already written with `branch` in its top Via.
    /// Returns its id; the caller transmits `request` to `peer` now.
    pub fn start(
        &mut self,
        branch: &str,
        is_invite: bool,
        request: Vec<u8>,
        peer: Peer,
        owner: u64,
        now: Instant,
    ) -> ClientTxnId {
        self.next_id += 1;
        let id = ClientTxnId(self.next_id);
        let retransmit_at = (!peer.transport.is_reliable()).then(|| now + T1);
        let end_at = now + TIMEOUT_64T1;
        if let Some(r) = retransmit_at {
            self.wakeups.push(Reverse((r, id)));
        }
        self.wakeups.push(Reverse((end_at, id)));
        let request_uri = request_line_uri(&request).unwrap_or_default();
        self.txns.insert(
            id,
            ClientTxn {
                branch: branch.to_string(),
                peer,
                is_invite,
                request,
                request_uri,
                ack: None,
                state: ClientState::Calling,
                interval: T1,
                retransmit_at,
                end_at,
                owner,
            },
        );
        self.by_branch.insert(branch.to_string(), id);
        id
    }

    /// Matches a response by its top Via branch (§17.1.3).
    pub fn on_response(&mut self, resp: &Response, now: Instant) -> ResponseMatch {
        let Some(branch) = resp.common.top_via().branch() else {
            return ResponseMatch::Absorbed;
        };
        // A CANCEL shares its INVITE's branch (§9.1); its transaction is keyed `branch|CANCEL`.
        let key = if resp.common.cseq.method == Method::Cancel {
            std::borrow::Cow::Owned(format!("{branch}|CANCEL"))
        } else {
            std::borrow::Cow::Borrowed(branch)
        };
        let Some(id) = self.by_branch.get(key.as_ref()).copied() else {
            return ResponseMatch::Absorbed;
        };
        let Some(t) = self.txns.get_mut(&id) else {
            return ResponseMatch::Absorbed;
        };
        let reliable = t.peer.transport.is_reliable();
        match (t.state, resp.code) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                t.state = ClientState::Proceeding;
                if t.is_invite {
                    t.retransmit_at = None; // §17.1.1.2: a provisional stops Timer A.
                    t.request = Vec::new();
                }
                ResponseMatch::Deliver { txn: id, owner: t.owner }
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if t.is_invite => {
                t.state = ClientState::Accepted;
                t.retransmit_at = None;
                t.request = Vec::new();
                t.end_at = now + TIMEOUT_64T1;
                self.wakeups.push(Reverse((t.end_at, id)));
                ResponseMatch::Deliver { txn: id, owner: t.owner }
            }
            (ClientState::Calling | ClientState::Proceeding, _) => {
                t.state = ClientState::Completed;
                t.retransmit_at = None;
                t.request = Vec::new();
                let wait = match (reliable, t.is_invite) {
                    (true, _) => Duration::ZERO,
                    (false, true) => TIMEOUT_64T1, // Timer D (>= 32 s)
                    (false, false) => T4,          // Timer K
                };
                t.end_at = now + wait;
                self.wakeups.push(Reverse((t.end_at, id)));
                ResponseMatch::Deliver { txn: id, owner: t.owner }
            }
            (ClientState::Accepted, 200..=299) => ResponseMatch::Deliver { txn: id, owner: t.owner },
            (ClientState::Completed, 300..=699) if t.is_invite => match &t.ack {
                Some(ack) => ResponseMatch::Resend(t.peer, ack.clone()),
                None => ResponseMatch::Absorbed,
            },
            _ => ResponseMatch::Absorbed,
        }
    }

    /// Stores the ACK the owner built for a non-2xx final, for retransmitted finals.
    pub fn set_ack(&mut self, id: ClientTxnId, ack: Vec<u8>) {
        if let Some(t) = self.txns.get_mut(&id) {
            t.ack = Some(ack);
        }
    }

    /// True while no final response has arrived.
    pub fn is_pending(&self, id: ClientTxnId) -> bool {
        self.txns.get(&id).is_some_and(|t| matches!(t.state, ClientState::Calling | ClientState::Proceeding))
    }

    /// True once a provisional has arrived (CANCEL may be sent, §9.1).
    pub fn is_proceeding(&self, id: ClientTxnId) -> bool {
        self.txns.get(&id).is_some_and(|t| t.state == ClientState::Proceeding)
    }

    /// The branch (key) a transaction was started with.
    pub fn branch_of(&self, id: ClientTxnId) -> Option<String> {
        self.txns.get(&id).map(|t| t.branch.clone())
    }

    /// The Request-URI of the transaction's request (for the ACK of a non-2xx final).
    pub fn request_uri(&self, id: ClientTxnId) -> Option<String> {
        self.txns.get(&id).map(|t| t.request_uri.clone()).filter(|u| !u.is_empty())
    }

    /// Forgets a transaction (its owner is gone).
    pub fn remove(&mut self, id: ClientTxnId) {
        if let Some(t) = self.txns.remove(&id) {
            self.by_branch.remove(&t.branch);
        }
    }

    /// The earliest wake-up wanted.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wakeups.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires due timers: retransmissions go to `out`, transactions that never got a final answer
    /// to `timed_out`.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        out: &mut Vec<(Peer, Vec<u8>)>,
        timed_out: &mut Vec<TimedOut>,
    ) {
        while let Some(Reverse((at, id))) = self.wakeups.peek().copied() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            let Some(t) = self.txns.get_mut(&id) else {
                continue;
            };
            if t.end_at <= now {
                if matches!(t.state, ClientState::Calling | ClientState::Proceeding) {
                    timed_out.push(TimedOut { txn: id, owner: t.owner });
                }
                let branch = t.branch.clone();
                self.txns.remove(&id);
                self.by_branch.remove(&branch);
                continue;
            }
            if t.retransmit_at.is_some_and(|r| r <= now) {
                if !t.request.is_empty() {
                    out.push((t.peer, t.request.clone()));
                }
                // Timer A doubles without cap; Timer E caps at T2 (§17.1.2.2).
                t.interval = if t.is_invite { t.interval * 2 } else { (t.interval * 2).min(T2) };
                if !t.is_invite && t.state == ClientState::Proceeding {
                    t.interval = T2;
                }
                let next = now + t.interval;
                t.retransmit_at = Some(next);
                self.wakeups.push(Reverse((next, id)));
            }
        }
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when none are live.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }
}

/// The Request-URI of a request we wrote.
fn request_line_uri(request: &[u8]) -> Option<String> {
    let line_end = request.iter().position(|b| *b == b'\r')?;
    let line = std::str::from_utf8(request.get(..line_end)?).ok()?;
    line.split(' ').nth(1).map(str::to_string)
}
