//! Sync: read each source's identity entity into the index.
//!
//! Incremental runs re-read from the saved cursor minus an overlap window
//! (late writers, clock skew); upserts are idempotent so the overlap costs
//! only time. A full reconcile (every `reconcile_every`, or on request) reads
//! everything and removes index records whose rows are gone from the source
//! — but only when the scan finished cleanly, so a source failing half-way
//! never unlinks anyone.

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{Duration as ChronoDuration, Utc};
use futures::StreamExt;
use kith_connect::{Connector, ScanItem};
use kith_model::{CursorValue, Quarantined, RecordRef};
use kith_store::{IndexEntry, UpsertCounts};
use serde::Serialize;

use crate::{Hub, LinkReport, Result, identifiers_of};

/// Records are written to the store in batches of this many.
const BATCH: usize = 1000;

/// Options of one sync run.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Read every source whole and remove records gone from it, whatever the schedule says.
    pub full: bool,
}

/// Hooks for progress display; every method has a no-op default.
pub trait SyncObserver: Send + Sync {
    fn source_started(&self, _source: &str, _full: bool) {}
    fn rows_read(&self, _source: &str, _rows: u64) {}
    fn source_finished(&self, _report: &SourceSyncReport) {}
    fn linking(&self, _records: u64) {}
}

/// The no-op observer.
impl SyncObserver for () {}

/// What a sync did to one source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSyncReport {
    pub source: String,
    /// Whether this run read the whole source (and so could notice deletions).
    pub full: bool,
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows that could not be read, kept in the quarantine with their reason.
    pub quarantined: u64,
    /// Records skipped because they (or an identifier) were erased on request.
    pub suppressed: u64,
    /// Records removed from the index because their rows are gone.
    pub removed: u64,
    /// Set when the source could not be read; nothing of it was removed then.
    pub error: Option<String>,
    pub seconds: f64,
}

/// What a sync did overall.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub sources: Vec<SourceSyncReport>,
    pub link: LinkReport,
}

impl SyncReport {
    pub fn failed_sources(&self) -> impl Iterator<Item = &SourceSyncReport> {
        self.sources.iter().filter(|s| s.error.is_some())
    }
}

impl Hub {
    /// Syncs one named source, then links the index (the ingest resolver's
    /// path: events arrive continuously, the other sources sync on their own schedule).
    pub async fn sync_one(
        &self,
        source: &str,
        options: SyncOptions,
        observer: &dyn SyncObserver,
    ) -> Result<SyncReport> {
        let connector = self
            .connector(source)
            .ok_or_else(|| crate::Error::NotFound(format!("no source is named {source}")))?
            .clone();
        self.sync_these(&[connector], options, observer).await
    }

    /// Syncs every source, then links the index into parties.
    pub async fn sync(
        &self,
        options: SyncOptions,
        observer: &dyn SyncObserver,
    ) -> Result<SyncReport> {
        self.sync_these(&self.connectors, options, observer).await
    }

    async fn sync_these(
        &self,
        connectors: &[std::sync::Arc<dyn Connector>],
        options: SyncOptions,
        observer: &dyn SyncObserver,
    ) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        for connector in connectors {
            let r = self
                .sync_source(connector.as_ref(), options, observer)
                .await?;
            observer.source_finished(&r);
            report.sources.push(r);
        }
        // A full scan (first sync, reconcile, --full) links everything again,
        // which also refreshes relationships; otherwise only what changed.
        report.link = if report.sources.iter().any(|s| s.full) {
            self.link(observer).await?
        } else {
            self.link_changes(observer).await?
        };
        Ok(report)
    }

    /// Syncs one source. Store failures are errors; source failures are reported.
    async fn sync_source(
        &self,
        connector: &dyn Connector,
        options: SyncOptions,
        observer: &dyn SyncObserver,
    ) -> Result<SourceSyncReport> {
        let started = Instant::now();
        let source = connector.source().name.clone();
        let mut state = self.store.sync_state(&source).await?;
        let now = Utc::now();
        let reconcile_due = state.last_reconcile_at.is_none_or(|t| {
            now - t >= ChronoDuration::from_std(self.settings.reconcile_every).unwrap_or_default()
        });
        let full = options.full || reconcile_due || state.cursor.is_none();
        let since = if full {
            None
        } else {
            state.cursor.as_ref().map(|c| {
                c.minus_overlap(
                    ChronoDuration::from_std(self.settings.overlap).unwrap_or_default(),
                    self.settings.overlap_rows,
                )
            })
        };
        observer.source_started(&source, full);
        let mut report = SourceSyncReport {
            source: source.clone(),
            full,
            ..Default::default()
        };

        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut max_cursor: Option<CursorValue> = state.cursor.clone();
        let mut batch: Vec<IndexEntry> = Vec::with_capacity(BATCH);
        let mut bad: Vec<Quarantined> = Vec::new();
        let mut scan_error: Option<String> = None;

        match connector.scan(since).await {
            Err(e) => scan_error = Some(e.to_string()),
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    match item {
                        Err(e) => {
                            scan_error = Some(e.to_string());
                            break;
                        }
                        Ok(ScanItem::Quarantined(q)) => {
                            report.quarantined += 1;
                            // A row that turned bad is still there: do not remove its record.
                            if let Some(k) = &q.key {
                                seen.insert(k.clone());
                            }
                            bad.push(q);
                        }
                        Ok(ScanItem::Record(rec)) => {
                            report.read += 1;
                            if full {
                                seen.insert(rec.record.key.clone());
                            }
                            if let Some(c) = &rec.cursor {
                                max_cursor = Some(match max_cursor.take() {
                                    Some(m) => m.max(c.clone()),
                                    None => c.clone(),
                                });
                            }
                            let identifiers = identifiers_of(&rec.attrs, self.calling_code);
                            batch.push(IndexEntry {
                                record: rec,
                                identifiers,
                            });
                            if batch.len() >= BATCH {
                                self.flush(&mut batch, &mut report, now).await?;
                                observer.rows_read(&source, report.read);
                            }
                        }
                    }
                }
            }
        }
        self.flush(&mut batch, &mut report, now).await?;
        observer.rows_read(&source, report.read);
        if !bad.is_empty() {
            self.store.quarantine(&bad).await?;
        }

        if let Some(e) = scan_error {
            // Keep the old cursor: what was read is stored, the rest is read next time.
            report.error = Some(e);
        } else {
            if full {
                // Rows still bad are re-quarantined above with `now`; older entries were fixed.
                self.store.clear_quarantine(&source, now).await?;
                let gone: Vec<RecordRef> = self
                    .store
                    .record_keys(&source)
                    .await?
                    .into_iter()
                    .filter(|k| !seen.contains(k))
                    .map(|k| RecordRef::new(&source, k))
                    .collect();
                report.removed = self.store.remove_records(&gone).await?;
                state.last_reconcile_at = Some(now);
            }
            state.cursor = max_cursor;
            state.last_sync_at = Some(now);
            self.store.save_sync_state(&source, &state).await?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn flush(
        &self,
        batch: &mut Vec<IndexEntry>,
        report: &mut SourceSyncReport,
        now: chrono::DateTime<Utc>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let UpsertCounts {
            inserted,
            updated,
            unchanged,
        } = self.store.upsert_records(batch, now).await?;
        report.inserted += inserted;
        report.updated += updated;
        report.unchanged += unchanged;
        report.suppressed += batch.len() as u64 - (inserted + updated + unchanged);
        batch.clear();
        Ok(())
    }
}
