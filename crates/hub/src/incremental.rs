//! Incremental linking: after a sync, only the records that changed are
//! resolved — against [`kith_resolve::Index`] kept in memory — and only the
//! parties they touch are settled, instead of linking the whole index again.
//!
//! The index holds every record with the same edges the full run
//! ([`Hub::link`]) builds: the model's links (with the never-link rules),
//! shared exact identifiers and accepted pairs as forced links, rejected and
//! disputed pairs kept apart. So its parties are the full run's partition,
//! and the affected parties are settled with the same id policy and the same
//! evidence: a full run afterwards changes nothing (tested).
//!
//! What changed comes from the store's change feed (`record.inserted`,
//! `record.updated`, `record.removed`), which every writer appends in the
//! same transaction as the change — so records another process synced are
//! seen too. Anything else another writer did to links, parties or review
//! decisions (a `kith review` in another process, a customer's dispute)
//! makes the next run a full one, as does a model change or a backlog too
//! large to be worth resolving one record at a time.
//!
//! Relationships (households, employers) are derived across all parties and
//! are refreshed by full runs (the first sync, every reconcile, `--full`).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Utc;
use kith_model::{PartyId, RecordRef};
use kith_resolve::{Index, Prepared, RecordId};
use kith_store::{ChangeKind, ReviewStatus, StoredRecord};

use crate::{Hub, LinkReport, Result};

/// Changes read from the feed at most per run; more means a full run.
const MAX_BACKLOG: usize = 50_000;

/// The in-memory state of incremental linking: the resolver's index and
/// what ties it to the store's records.
pub(crate) struct Resolver {
    index: Index,
    /// Index id of each record, and back (removed records keep their id).
    ids: HashMap<RecordRef, RecordId>,
    refs: Vec<RecordRef>,
    live: Vec<bool>,
    /// Each record's exact identifiers, and the records holding each.
    identifiers: Vec<Vec<String>>,
    holders: HashMap<String, Vec<RecordId>>,
    /// Why a pair is forced: how many shared identifiers link it.
    shared: HashMap<(RecordId, RecordId), u32>,
    accepted: HashSet<(RecordId, RecordId)>,
    /// Pairs a person decided (accepted, rejected or disputed): never queued again.
    decided: HashSet<(RecordId, RecordId)>,
    common_limit: usize,
    /// The change feed position this state reflects.
    seq: i64,
    /// Record changes seen while reading back this process's own writes,
    /// for the next run.
    pending: BTreeSet<RecordRef>,
}

/// Why the incremental path handed over to a full run.
enum Fallback {
    Full(&'static str),
}

impl Resolver {
    fn pair(a: RecordId, b: RecordId) -> (RecordId, RecordId) {
        (a.min(b), a.max(b))
    }

    fn is_forced(&self, key: (RecordId, RecordId)) -> bool {
        self.shared.get(&key).is_some_and(|&n| n > 0) || self.accepted.contains(&key)
    }

    /// Adds one to a pair's shared identifiers, forcing the link on the first.
    fn share(&mut self, a: RecordId, b: RecordId, moved: &mut Vec<RecordId>) {
        let key = Self::pair(a, b);
        let was = self.is_forced(key);
        *self.shared.entry(key).or_default() += 1;
        if !was {
            moved.extend(self.index.force_link(key.0, key.1).expect("known records"));
        }
    }

    /// Takes one from a pair's shared identifiers, unforcing on the last.
    fn unshare(&mut self, a: RecordId, b: RecordId, moved: &mut Vec<RecordId>) {
        let key = Self::pair(a, b);
        if let Some(n) = self.shared.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.shared.remove(&key);
            }
        }
        if !self.is_forced(key) {
            moved.extend(self.index.unforce(key.0, key.1).expect("known records"));
        }
    }

    /// Adds a record's identifiers: each pairs it with the others holding
    /// it, unless too many do (then the identifier links nobody).
    fn add_identifiers(&mut self, id: RecordId, ids: Vec<String>, moved: &mut Vec<RecordId>) {
        for identifier in &ids {
            let holders = self.holders.entry(identifier.clone()).or_default().clone();
            let n = holders.len() + 1;
            if n <= self.common_limit {
                for &other in &holders {
                    self.share(id, other, moved);
                }
            } else if n == self.common_limit + 1 {
                // It just became too common: it links nobody any more, and
                // its holders' evidence no longer names it.
                moved.extend(&holders);
                for (a, b) in pairs(&holders) {
                    self.unshare(a, b, moved);
                }
            }
            self.holders
                .get_mut(identifier)
                .expect("entry made above")
                .push(id);
        }
        self.identifiers[id as usize] = ids;
    }

    fn remove_identifiers(&mut self, id: RecordId, moved: &mut Vec<RecordId>) {
        for identifier in std::mem::take(&mut self.identifiers[id as usize]) {
            let Some(list) = self.holders.get_mut(&identifier) else {
                continue;
            };
            list.retain(|&x| x != id);
            let rest = list.clone();
            if rest.is_empty() {
                self.holders.remove(&identifier);
            }
            let n = rest.len() + 1;
            if n <= self.common_limit {
                for &other in &rest {
                    self.unshare(id, other, moved);
                }
            } else if n == self.common_limit + 1 {
                // Back within the limit: it links its holders again.
                moved.extend(&rest);
                for (a, b) in pairs(&rest) {
                    self.share(a, b, moved);
                }
            }
        }
    }

    /// Identifiers shared by too many records, among these records'.
    fn common_among(&self, records: &[RecordId]) -> Vec<String> {
        let mut out = BTreeSet::new();
        for &r in records {
            for identifier in &self.identifiers[r as usize] {
                if self.holders.get(identifier).map_or(0, Vec::len) > self.common_limit {
                    out.insert(identifier.clone());
                }
            }
        }
        out.into_iter().collect()
    }
}

impl Hub {
    /// Links what changed since the last run: the records the change feed
    /// says were inserted, updated or removed are resolved against the
    /// in-memory index and only the parties they touch are settled. Falls
    /// back to a full run ([`Hub::link`]) when there is no index yet, when
    /// another writer changed links or decisions, or when the backlog is large.
    pub async fn link_changes(&self, observer: &dyn crate::SyncObserver) -> Result<LinkReport> {
        if !self.incremental {
            return self.link(observer).await;
        }
        let mut guard = self.link_lock.lock().await;
        let outcome = match guard.as_mut() {
            Some(resolver) => self.apply_changes(resolver).await?,
            None => Err(Fallback::Full(
                "no index in memory yet (the first run of this process)",
            )),
        };
        match outcome {
            Ok(report) => Ok(report),
            Err(Fallback::Full(why)) => {
                tracing::debug!("linking every record: {why}");
                *guard = None;
                let (mut report, resolver) = self.link_all(observer).await?;
                *guard = resolver;
                report.full_because = Some(why.to_string());
                Ok(report)
            }
        }
    }

    /// Builds the resolver from what a full run just linked: `records`
    /// (with `prepared` in the same order), as of change `seq`.
    pub(crate) async fn build_resolver(
        &self,
        records: &[StoredRecord],
        prepared: Vec<Prepared>,
        seq: i64,
    ) -> Result<Resolver> {
        let (model, blocking, cluster) = match &self.model {
            Some(m) => (
                m.clone(),
                kith_resolve::Blocking::default(),
                kith_resolve::ClusterOptions {
                    threshold: m.threshold,
                    ..Default::default()
                },
            ),
            // Without a model only identifiers and decisions link: no blocks.
            None => (
                kith_resolve::Model::prior(),
                kith_resolve::Blocking {
                    rules: Vec::new(),
                    ..Default::default()
                },
                kith_resolve::ClusterOptions {
                    threshold: 0.0,
                    guard: false,
                    ..Default::default()
                },
            ),
        };
        let rules = if self.model.is_some() {
            self.settings.never_link.clone()
        } else {
            Vec::new()
        };
        let index = Index::new(model, blocking, cluster)
            .with_never_link(rules)
            .fill(prepared)
            .map_err(|e| crate::Error::Config(format!("the resolver's index: {e}")))?;
        let n = records.len();
        let mut r = Resolver {
            index,
            ids: HashMap::with_capacity(n),
            refs: Vec::with_capacity(n),
            live: vec![true; n],
            identifiers: vec![Vec::new(); n],
            holders: HashMap::new(),
            shared: HashMap::new(),
            accepted: HashSet::new(),
            decided: HashSet::new(),
            common_limit: self.settings.common_identifier_limit,
            seq,
            pending: BTreeSet::new(),
        };
        for (i, rec) in records.iter().enumerate() {
            r.ids.insert(rec.record.record.clone(), i as RecordId);
            r.refs.push(rec.record.record.clone());
        }
        let mut moved = Vec::new();
        for pair in self.store.review_pairs(None).await? {
            let (Some(&a), Some(&b)) = (r.ids.get(&pair.a), r.ids.get(&pair.b)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let key = Resolver::pair(a, b);
            match pair.status {
                ReviewStatus::Accepted => {
                    r.decided.insert(key);
                    r.accepted.insert(key);
                    r.index.force_link(a, b).expect("known records");
                }
                ReviewStatus::Rejected | ReviewStatus::Disputed => {
                    r.decided.insert(key);
                    r.index.keep_apart(a, b).expect("known records");
                }
                ReviewStatus::Pending => {}
            }
        }
        for (i, rec) in records.iter().enumerate() {
            r.add_identifiers(i as RecordId, self.linking_identifiers(rec), &mut moved);
        }
        // Records changed while the full run wrote are for the next run;
        // the run's own link and party changes are already reflected.
        let feed = self.read_feed(seq, None).await?;
        r.pending = feed.records;
        r.seq = feed.last;
        Ok(r)
    }

    async fn apply_changes(
        &self,
        r: &mut Resolver,
    ) -> Result<std::result::Result<LinkReport, Fallback>> {
        let now = Utc::now();
        if self.store.pruned_through().await? > r.seq {
            return Ok(Err(Fallback::Full(
                "the change feed was pruned past what the index has read",
            )));
        }
        let feed = self.read_feed(r.seq, None).await?;
        if feed.foreign() {
            return Ok(Err(Fallback::Full(
                "links, parties or review decisions were changed by another writer",
            )));
        }
        let after = feed.last;
        let mut changed: BTreeSet<RecordRef> = std::mem::take(&mut r.pending);
        changed.extend(feed.records);
        if changed.len() > MAX_BACKLOG {
            return Ok(Err(Fallback::Full(
                "too many changes to resolve one at a time",
            )));
        }
        let mut report = LinkReport {
            incremental: true,
            changed_records: changed.len() as u64,
            ..Default::default()
        };
        if changed.is_empty() {
            r.seq = after;
            self.count(r, &mut report);
            return Ok(Ok(report));
        }

        // Resolve each changed record against the index.
        let mut moved: Vec<RecordId> = Vec::new();
        let mut unsure: Vec<(RecordRef, RecordRef, f64)> = Vec::new();
        let mut seeds: Vec<RecordId> = Vec::new();
        // Records read from the store this run, by index id: read once.
        let mut stored: HashMap<RecordId, StoredRecord> = HashMap::new();
        for rec in &changed {
            let found = self.store.record(rec).await?;
            let known = r.ids.get(rec).copied();
            if let Some(id) = known
                && r.live[id as usize]
            {
                // Its party before the change: their evidence names it.
                seeds.extend(r.index.party_members(id));
            }
            let resolution = match (known, found) {
                (None, None) => continue,
                (Some(id), None) => {
                    if !r.live[id as usize] {
                        continue;
                    }
                    r.remove_identifiers(id, &mut moved);
                    moved.extend(r.index.remove(id).expect("known record"));
                    r.live[id as usize] = false;
                    seeds.push(id);
                    continue;
                }
                (known, Some(s)) => {
                    let p = Prepared::new(&s.record.attrs, &self.normalize_options());
                    let res = match known {
                        Some(id) => {
                            r.remove_identifiers(id, &mut moved);
                            r.live[id as usize] = true;
                            r.index.update(id, p).expect("known record")
                        }
                        None => {
                            let res = r.index.insert(p).map_err(|e| {
                                crate::Error::Config(format!("the resolver's index: {e}"))
                            })?;
                            r.ids.insert(rec.clone(), res.id);
                            r.refs.push(rec.clone());
                            r.live.push(true);
                            r.identifiers.push(Vec::new());
                            res
                        }
                    };
                    r.add_identifiers(res.id, self.linking_identifiers(&s), &mut moved);
                    stored.insert(res.id, s);
                    res
                }
            };
            moved.extend(&resolution.moved);
            seeds.push(resolution.id);
            for c in &resolution.review {
                if r.live[c.id as usize]
                    && !r.decided.contains(&Resolver::pair(resolution.id, c.id))
                {
                    unsure.push((rec.clone(), r.refs[c.id as usize].clone(), c.probability));
                }
            }
        }
        report.queued_for_review = unsure.len() as u64;
        self.store.queue_for_review(&unsure, now).await?;

        // Everything the change can reach: the parties (old and new) of the
        // changed and moved records, whole.
        let mut affected: BTreeSet<RecordId> = BTreeSet::new();
        let mut work: Vec<RecordId> = seeds.into_iter().chain(moved).collect();
        let mut parties_seen: BTreeSet<PartyId> = BTreeSet::new();
        // Each party (index label) is expanded once, however many members reach it.
        let mut expanded: HashSet<RecordId> = HashSet::new();
        let mut pending_parties: Vec<PartyId> = Vec::new();
        loop {
            while let Some(x) = work.pop() {
                if !r.live[x as usize] || !affected.insert(x) {
                    continue;
                }
                if expanded.insert(r.index.labels()[x as usize]) {
                    work.extend(r.index.party_members(x));
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = stored.entry(x) {
                    let Some(s) = self.store.record(&r.refs[x as usize]).await? else {
                        return Ok(Err(Fallback::Full("a record vanished while linking")));
                    };
                    slot.insert(s);
                }
                if let Some(p) = &stored[&x].party {
                    pending_parties.push(p.clone());
                }
            }
            let Some(party) = pending_parties.pop() else {
                break;
            };
            if parties_seen.insert(party.clone()) {
                for link in self.store.links_of(&party).await? {
                    match r.ids.get(&link.record) {
                        Some(&id) => work.push(id),
                        None => {
                            return Ok(Err(Fallback::Full("a linked record is not in the index")));
                        }
                    }
                }
            }
        }

        // Settle the affected parties as the full run would.
        let order: Vec<RecordId> = affected.iter().copied().collect();
        let position: HashMap<RecordId, usize> =
            order.iter().enumerate().map(|(i, &x)| (x, i)).collect();
        let clusters =
            crate::link::group_by_label(order.iter().map(|&x| r.index.labels()[x as usize]));
        let mut scored: HashMap<(u32, u32), f64> = HashMap::new();
        for members in &clusters {
            for &i in members {
                let a = order[i];
                for &(b, _) in r.index.links(a) {
                    if b > a
                        && let Some(&j) = position.get(&b)
                        && let Some(p) = r.index.model_link(a, b)
                    {
                        scored.insert(((i.min(j)) as u32, (i.max(j)) as u32), p);
                    }
                }
            }
        }
        let mut parties = Vec::new();
        for id in &parties_seen {
            if let Some(p) = self.store.party(id).await?
                && &p.id == id
            {
                parties.push(p);
            }
        }
        let common = r.common_among(&order);
        let records: Vec<StoredRecord> = order
            .iter()
            .map(|x| stored.remove(x).expect("read above"))
            .collect();
        report.affected_records = records.len() as u64;
        let before = self.store.latest_change_seq().await?;
        self.settle(
            &records,
            &clusters,
            parties,
            &scored,
            &common,
            &mut report,
            now,
        )
        .await?;

        // Changes between the first read and the writes were made by others.
        let window = self.read_feed(after, Some(before)).await?;
        if window.foreign() {
            return Ok(Err(Fallback::Full(
                "links, parties or review decisions were changed by another writer",
            )));
        }
        // What was appended since the writes: this run's own link and party
        // changes are expected; record changes are for the next run.
        let written = self.read_feed(before, None).await?;
        let ours = |rec: &RecordRef| r.ids.get(rec).is_some_and(|id| affected.contains(id));
        if written.decisions || !written.links.iter().all(ours) {
            return Ok(Err(Fallback::Full(
                "another writer changed links or decisions while this run wrote",
            )));
        }
        r.pending.extend(window.records);
        r.pending.extend(written.records);
        let after_write = written.last;
        r.seq = after_write.max(before);
        self.count(r, &mut report);
        Ok(Ok(report))
    }

    /// A record's identifiers that link by themselves (`hub.always_link`).
    fn linking_identifiers(&self, r: &StoredRecord) -> Vec<String> {
        r.identifiers
            .iter()
            .filter(|i| self.settings.links_by_itself(i))
            .cloned()
            .collect()
    }

    /// Records and parties in the index, for the report.
    fn count(&self, r: &Resolver, report: &mut LinkReport) {
        let labels = r.index.labels();
        let mut parties = 0u64;
        let mut records = 0u64;
        for (i, &live) in r.live.iter().enumerate() {
            if live {
                records += 1;
                if labels[i] as usize == i {
                    parties += 1;
                }
            }
        }
        report.records = records;
        report.parties = parties;
    }
}

/// What the change feed holds after some point, as far as linking cares.
struct FeedRead {
    /// The last seq read.
    last: i64,
    /// Records inserted, updated or removed.
    records: BTreeSet<RecordRef>,
    /// Records whose link changed or went.
    links: Vec<RecordRef>,
    /// Parties created, merged or retired.
    parties: bool,
    /// Review decisions or erasure requests.
    decisions: bool,
}

impl FeedRead {
    /// Whether someone other than a sync changed what links say.
    fn foreign(&self) -> bool {
        !self.links.is_empty() || self.parties || self.decisions
    }
}

impl Hub {
    /// Reads the change feed after `after`, up to `upto` when given.
    async fn read_feed(&self, after: i64, upto: Option<i64>) -> Result<FeedRead> {
        let mut read = FeedRead {
            last: after,
            records: BTreeSet::new(),
            links: Vec::new(),
            parties: false,
            decisions: false,
        };
        'pages: loop {
            let page = self.store.changes_after(read.last, 1000).await?;
            if page.is_empty() {
                break;
            }
            for c in page {
                if upto.is_some_and(|u| c.seq > u) {
                    break 'pages;
                }
                read.last = c.seq;
                let subject = record_ref(&c.subject);
                match c.kind {
                    ChangeKind::RecordInserted
                    | ChangeKind::RecordUpdated
                    | ChangeKind::RecordRemoved => read.records.extend(subject),
                    ChangeKind::LinkChanged | ChangeKind::LinkRemoved => read.links.extend(subject),
                    ChangeKind::PartyCreated
                    | ChangeKind::PartyMerged
                    | ChangeKind::PartyRetired => read.parties = true,
                    ChangeKind::ReviewDecided | ChangeKind::ErasureRequested => {
                        read.decisions = true
                    }
                    _ => {}
                }
            }
        }
        Ok(read)
    }
}

/// Every pair of `list`, each once.
fn pairs(list: &[RecordId]) -> impl Iterator<Item = (RecordId, RecordId)> + '_ {
    list.iter()
        .enumerate()
        .flat_map(move |(x, &a)| list[x + 1..].iter().map(move |&b| (a, b)))
}

/// `source:key` of a record change's subject.
fn record_ref(subject: &str) -> Option<RecordRef> {
    let (source, key) = subject.split_once(':')?;
    Some(RecordRef::new(source, key))
}
