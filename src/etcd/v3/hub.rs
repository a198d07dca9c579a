//! ONE watch stream per client, shared by every key it follows.
//!
//! etcd opens several watches on one stream when the request body holds several
//! `create_request`s; it numbers them 0, 1, ... and tags every later message with that
//! number (`watch_id`). So each key followed ([`super::Follow`]) joins the hub, and the hub
//! keeps one `/v3/watch` stream holding every member's watch, reads it on a thread of its
//! own and routes each message to its member. A host following 10 keys holds one stream
//! (one connection, one gRPC stream on etcd), not 10.
//!
//! A request body cannot grow once sent, so a member joining or leaving means a new
//! stream: the hub opens one holding every member's watch, each from the revision after
//! the last change it routed to that member, then closes the old one at once (each stream
//! has an HTTP agent of its own, whose shutdown is the one way to cut a stream another
//! thread is reading). Messages of a replaced stream are dropped: the new one brings them
//! again, from each member's own revision, so no change is lost, and a member drops a
//! change that comes twice by its revision. Joins arriving together (a daemon starting,
//! every key read again after an outage) are gathered for a moment into one new stream.
//!
//! The hub also keeps the stream alive for its members: a stream whose bound (the client's
//! watch timeout) passes, that breaks after it worked (etcd restarted, a member died) or
//! that stays silent beyond the bound plus the request timeout is opened again, on the
//! first endpoint that answers. What it cannot mend it tells every member, which then
//! leaves: a stream refused or broken before it brought anything (an outage: the member's
//! caller backs off, reads again and joins again), the endpoints rediscovered (another
//! cluster, maybe: read again), the client shut down. A watch etcd cancels (its history
//! compacted away) is its member's alone.
//!
//! A revision is only worth something on the cluster it was read from: each member joins
//! with the generation of the client's endpoint list ([`Client::endpoints_generation`]) at
//! its read, and a stream holds the watches of one generation. A member whose list was
//! rediscovered since its read is told to read again instead of being watched; a stream
//! is not sent once the list changes (its own request may be the one that rediscovers),
//! and one that ends after a rediscovery tells every member to read again.
//!
//! etcd confirms each watch of a stream (`created`), in the order of the request. A stream
//! with fewer confirmations than watches, a moment after the last one came, lost the rest
//! of its request on the way (etcd's HTTP server drops what it has not read of a request
//! body once it starts answering, unless the connection is to close after the answer, see
//! [`crate::etcd::http::Body::JsonStream`]; a proxy could do the same): it is logged and
//! opened again rather than leave keys unwatched without a word.
//!
//! The hub's thread runs while the hub has members; the last one leaving closes the
//! stream and ends it.

use super::client::Client;
use super::refused::transport;
use super::scope::Scope;
use super::watch::{watch_after, Notice};
use crate::etcd::error::{Error, TransportKind};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long the hub waits for more joins (or leaves) after one before opening a new
/// stream, measured from the last one...
const GATHER: Duration = Duration::from_millis(5);
/// ...and from the first one at most.
const GATHER_AT_MOST: Duration = Duration::from_millis(50);
/// How long the hub's thread waits with nothing to do before looking again.
const IDLE: Duration = Duration::from_secs(3600);
/// How long after a stream's last confirmed watch the others may still come (they follow
/// within milliseconds) before the stream is taken to have lost them; doubled after each
/// such stream, so that a slow etcd is not asked again and again.
const CONFIRMED_WITHIN: Duration = Duration::from_secs(1);

/// What a member receives.
#[derive(Debug)]
pub enum Item {
    /// A message for its watch.
    Notice(Notice),
    /// Its watch is over (the stream failed, the client was shut down): leave.
    Ended(Error),
    /// The client rediscovered its endpoints: read again, then join again.
    Rediscovered,
}

/// One key's place on the shared stream, received from until dropped (which leaves).
pub struct Membership {
    hub: Arc<Hub>,
    id: u64,
    pub items: Receiver<Item>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(self.id);
    }
}

/// The members and the stream holding their watches; one per client, shared by clones.
#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    members: BTreeMap<u64, Member>,
    next_id: u64,
    /// The hub thread's input while it runs.
    input: Option<Sender<Input>>,
    /// The agent of the open stream: shutting it down cuts the stream.
    open: Option<ureq::Agent>,
    shut_down: bool,
}

struct Member {
    scope: Scope,
    key: String,
    /// The revision of the last change routed to it (or the one it joined after).
    after: u64,
    /// The endpoint list's generation when it read `after`.
    generation: u64,
    items: Sender<Item>,
    /// Whether its watch is over (told so, or canceled by etcd): not opened again.
    over: bool,
}

/// What the hub's thread waits for.
enum Input {
    /// A member joined or left.
    Members,
    /// A message of stream `number`.
    Notice(u64, Notice),
    /// Stream `number` ended: why.
    Ended(u64, Error),
}

/// The open stream, as the hub's thread sees it.
struct Open {
    number: u64,
    /// Member ids by `watch_id`.
    watches: Vec<u64>,
    /// The keys of its watches, for logs.
    keys: String,
    /// How many of its watches etcd confirmed, and when the last one.
    confirmed: usize,
    last_confirmed: Instant,
    /// Whether it brought anything after that (a change or a progress notification).
    delivered: bool,
    /// Whether it replaces a stream that ended: one that ends too before delivering
    /// anything is a failure, not reopened in a loop.
    resumed: bool,
    /// Its last message (or its opening).
    heard: Instant,
    /// The endpoint list's generation its watches were read at.
    generation: u64,
}

impl Hub {
    /// Joins with a watch of `scope` (named `key` in logs) after revision `after`, read
    /// while the client's endpoint list had `generation`.
    pub fn join(
        self: &Arc<Hub>,
        client: &Client,
        scope: &Scope,
        key: &str,
        after: u64,
        generation: u64,
    ) -> Membership {
        let (sender, items) = mpsc::channel();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let membership = Membership {
            hub: Arc::clone(self),
            id,
            items,
        };
        if state.shut_down {
            let _ = sender.send(Item::Ended(Error::Shutdown));
            return membership;
        }
        state.members.insert(
            id,
            Member {
                scope: scope.clone(),
                key: key.to_string(),
                after,
                generation,
                items: sender,
                over: false,
            },
        );
        if state.input.is_none() {
            let (input, inputs) = mpsc::channel();
            let hub = Arc::clone(self);
            let client = client.clone();
            let spawned = thread::Builder::new()
                .name("v3-watch-hub".to_string())
                .spawn(move || hub.run(&client, &inputs));
            match spawned {
                Ok(_) => state.input = Some(input),
                Err(e) => {
                    let cannot = transport(
                        TransportKind::Disconnected,
                        "",
                        format!("cannot start a thread to read the watch stream: {e}"),
                    );
                    if let Some(member) = state.members.remove(&id) {
                        let _ = member.items.send(Item::Ended(cannot));
                    }
                    return membership;
                }
            }
        }
        state.tell(Input::Members);
        membership
    }

    /// Cuts the stream and tells every member, now and later, that the client is shut
    /// down.
    pub fn shut_down(&self) {
        let mut state = self.lock();
        state.shut_down = true;
        if let Some(agent) = state.open.take() {
            agent.shutdown();
        }
        state.tell(Input::Members);
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        if let Some(member) = state.members.remove(&id) {
            // Its watch is still on the stream: a new one without it. The last one leaving
            // ends the hub's thread.
            if !member.over || state.members.is_empty() {
                state.tell(Input::Members);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub's thread: until no member is left or the client is shut down.
    fn run(&self, client: &Client, inputs: &Receiver<Input>) {
        let mut streams = 0;
        let mut open: Option<Open> = None;
        // When the members changed: (first change, last change) not yet in a stream.
        let mut gathering: Option<(Instant, Instant)> = None;
        let silence = client.silence_bound();
        let mut confirmed_within = CONFIRMED_WITHIN;
        loop {
            let now = Instant::now();
            let silent = open.as_ref().map(|o| o.heard + silence);
            let unconfirmed = open
                .as_ref()
                .and_then(|o| o.unconfirmed_at(confirmed_within));
            let wake = [gathered_at(gathering), silent, unconfirmed]
                .into_iter()
                .flatten()
                .min();
            let wait = wake.map_or(IDLE, |at| at.saturating_duration_since(now));
            let mut reopen_as_resumed = match inputs.recv_timeout(wait) {
                Ok(Input::Members) => {
                    let now = Instant::now();
                    gathering = Some(gathering.map_or((now, now), |(first, _)| (first, now)));
                    None
                }
                Ok(Input::Notice(number, notice)) => {
                    if let Some(current) = open.as_mut().filter(|o| o.number == number) {
                        self.route(current, notice);
                    }
                    None
                }
                Ok(Input::Ended(number, error)) => match open.take() {
                    Some(ended) if ended.number == number => {
                        self.ended(client, &ended, error).then_some(true)
                    }
                    other => {
                        open = other;
                        None
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    let silent_now = open.as_ref().is_some_and(|o| o.heard.elapsed() >= silence);
                    if silent_now {
                        log::debug!("the watch stream was silent for {silence:?}; watching again");
                    }
                    silent_now.then_some(true)
                }
                // The hub holds a sender while its thread runs.
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Checked after every input, so that a busy stream does not hold joins back.
            let now = Instant::now();
            if reopen_as_resumed.is_none() && gathered_at(gathering).is_some_and(|due| now >= due) {
                reopen_as_resumed = Some(false);
            }
            match open.as_ref() {
                Some(o) if o.confirmed == o.watches.len() => confirmed_within = CONFIRMED_WITHIN,
                Some(o)
                    if reopen_as_resumed.is_none()
                        && o.unconfirmed_at(confirmed_within)
                            .is_some_and(|due| now >= due) =>
                {
                    log::warn!(
                        "etcd confirmed {} of the {} watches sent for {} (the rest of the \
                         request was lost on the way); opening the stream again",
                        o.confirmed,
                        o.watches.len(),
                        o.keys
                    );
                    confirmed_within = (confirmed_within * 2).min(silence);
                    reopen_as_resumed = Some(false);
                }
                _ => {}
            }
            // A shutdown comes as a change of members: the next `open` ends the thread.
            let Some(resumed) = reopen_as_resumed else {
                continue;
            };
            gathering = None;
            streams += 1;
            match self.open(client, streams, resumed) {
                Opened::Stream(stream) => open = Some(stream),
                Opened::Nothing => open = None,
                Opened::Stopped => return,
            }
        }
    }

    /// Opens a stream numbered `number` with every member's watch, in place of the open
    /// one.
    fn open(&self, client: &Client, number: u64, resumed: bool) -> Opened {
        let mut state = self.lock();
        if let Some(agent) = state.open.take() {
            agent.shutdown();
        }
        if state.shut_down {
            state.tell_all(|| Item::Ended(Error::Shutdown));
            state.input = None;
            return Opened::Stopped;
        }
        // Read on endpoints since replaced: maybe another cluster's revisions.
        let generation = client.endpoints_generation();
        let moved = |member: &Member| member.generation != generation;
        for member in state.members.values_mut().filter(|m| !m.over && moved(m)) {
            member.over = true;
            let _ = member.items.send(Item::Rediscovered);
        }
        let live: Vec<(u64, &Member)> = state
            .members
            .iter()
            .filter(|(_, member)| !member.over)
            .map(|(id, member)| (*id, member))
            .collect();
        if live.is_empty() {
            if state.members.is_empty() {
                // Nobody left: the thread ends; a join starts another.
                state.input = None;
                return Opened::Stopped;
            }
            return Opened::Nothing;
        }
        let watches: Vec<_> = live
            .iter()
            .map(|(_, member)| watch_after(&member.scope, member.after))
            .collect();
        let keys = describe(live.iter().map(|(_, member)| member.key.as_str()));
        let ids = live.iter().map(|(id, _)| *id).collect();
        let Some(input) = state.input.clone() else {
            return Opened::Stopped;
        };
        let agent = client.own_agent();
        state.open = Some(agent.clone());
        drop(state);
        log::debug!("watching {keys} on one stream");
        let reader = client.clone();
        let logged_keys = keys.clone();
        let spawned = thread::Builder::new().name("v3-watch".to_string()).spawn({
            let input = input.clone();
            move || {
                let ended = reader.stream_watches(&agent, &watches, &keys, generation, &|notice| {
                    input.send(Input::Notice(number, notice)).is_ok()
                });
                let _ = input.send(Input::Ended(number, ended));
            }
        });
        if let Err(e) = spawned {
            let _ = input.send(Input::Ended(
                number,
                transport(
                    TransportKind::Disconnected,
                    "",
                    format!("cannot start a thread to read the watch stream: {e}"),
                ),
            ));
        }
        let opened = Instant::now();
        Opened::Stream(Open {
            number,
            watches: ids,
            keys: logged_keys,
            confirmed: 0,
            last_confirmed: opened,
            delivered: false,
            resumed,
            heard: opened,
            generation,
        })
    }

    /// Hands a message of the open stream to its member.
    fn route(&self, open: &mut Open, notice: Notice) {
        open.heard = Instant::now();
        let watch_id = match &notice {
            Notice::Created { watch_id, .. } => {
                open.confirmed += 1;
                open.last_confirmed = open.heard;
                *watch_id
            }
            Notice::Changes { watch_id, .. } | Notice::Progress { watch_id, .. } => {
                open.delivered = true;
                *watch_id
            }
            Notice::Canceled { watch_id, .. } => *watch_id,
        };
        let Some(id) = usize::try_from(watch_id)
            .ok()
            .and_then(|at| open.watches.get(at))
        else {
            log::debug!("a watch message for watch {watch_id}, which this stream did not open");
            return;
        };
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(id) else {
            // It left; the next stream will not hold its watch.
            return;
        };
        match &notice {
            Notice::Changes { changes, .. } => {
                let last = changes.iter().map(|c| c.mod_revision).max().unwrap_or(0);
                member.after = member.after.max(last);
            }
            Notice::Canceled { .. } => member.over = true,
            _ => {}
        }
        let _ = member.items.send(Item::Notice(notice));
    }

    /// The open stream ended; true when it is to be opened again at once, otherwise every
    /// member was told.
    fn ended(&self, client: &Client, ended: &Open, error: Error) -> bool {
        if matches!(error, Error::Shutdown) {
            return false;
        }
        if client.endpoints_generation() != ended.generation {
            log::debug!("endpoints rediscovered; every watched key is read again");
            self.tell_all(|| Item::Rediscovered);
            return false;
        }
        let worked = ended.confirmed > 0 && (ended.delivered || !ended.resumed);
        if is_bound(&error) || (worked && is_cut(&error)) {
            log::debug!("the watch stream ended ({error}); watching again");
            return true;
        }
        self.tell_all(|| Item::Ended(error.clone()));
        false
    }

    fn tell_all(&self, item: impl Fn() -> Item) {
        self.lock().tell_all(item);
    }
}

impl Open {
    /// When, etcd having confirmed some of its watches but not all, the rest count as
    /// lost.
    fn unconfirmed_at(&self, within: Duration) -> Option<Instant> {
        (self.confirmed > 0 && self.confirmed < self.watches.len())
            .then(|| self.last_confirmed + within)
    }
}

enum Opened {
    Stream(Open),
    /// Every member's watch is over; the members have not left yet.
    Nothing,
    /// The thread ends.
    Stopped,
}

impl State {
    fn tell(&self, input: Input) {
        if let Some(sender) = &self.input {
            let _ = sender.send(input);
        }
    }

    /// Tells every member whose watch is on the stream that it is over.
    fn tell_all(&mut self, item: impl Fn() -> Item) {
        for member in self.members.values_mut().filter(|m| !m.over) {
            member.over = true;
            let _ = member.items.send(item());
        }
    }
}

/// When joins (and leaves) gathered since `gathering` = (first, last) go into a new
/// stream: a moment after the last, at most a little after the first.
fn gathered_at(gathering: Option<(Instant, Instant)>) -> Option<Instant> {
    gathering.map(|(first, last)| (last + GATHER).min(first + GATHER_AT_MOST))
}

/// The watched keys for a log line or an error: the first few and how many.
fn describe<'k>(keys: impl ExactSizeIterator<Item = &'k str>) -> String {
    const SHOWN: usize = 3;
    let count = keys.len();
    let shown: Vec<&str> = keys.take(SHOWN).collect();
    if count <= SHOWN {
        return shown.join(", ");
    }
    format!("{} and {} more keys", shown.join(", "), count - SHOWN)
}

/// Whether the stream ended because its bound passed (not a failure: open it again).
fn is_bound(error: &Error) -> bool {
    matches!(error, Error::Transport(e) if e.kind == TransportKind::WatchExpired)
}

/// Whether the stream was cut (etcd stopped, a member died, a connection broke): open it
/// again. Anything else (a refusal, an answer that is not a watch stream) is a failure.
fn is_cut(error: &Error) -> bool {
    matches!(error, Error::Transport(e) if e.kind == TransportKind::Disconnected)
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn a_few_keys_are_named_and_many_are_counted() {
        assert_eq!(describe(["/a"].into_iter()), "/a");
        assert_eq!(describe(["/a", "/b", "/c"].into_iter()), "/a, /b, /c");
        assert_eq!(
            describe(["/a", "/b", "/c", "/d", "/e"].into_iter()),
            "/a, /b, /c and 2 more keys"
        );
    }
}
