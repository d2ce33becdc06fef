//! Progress bars for long CLI work (indicatif), hidden when output is not a terminal.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kith_hub::{SourceSyncReport, SyncObserver};

/// Shows one spinner per source while a sync reads it.
pub struct SyncProgress {
    multi: MultiProgress,
    current: Mutex<Option<ProgressBar>>,
}

impl SyncProgress {
    pub fn new(visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        SyncProgress {
            multi: MultiProgress::with_draw_target(target),
            current: Mutex::new(None),
        }
    }

    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix:>12} {msg} [{elapsed}]")
            .expect("valid template")
    }
}

impl SyncObserver for SyncProgress {
    fn source_started(&self, source: &str, full: bool) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(Self::style());
        bar.set_prefix(source.to_string());
        bar.set_message(if full {
            "reading all rows"
        } else {
            "reading changes"
        });
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.current.lock().expect("progress lock") = Some(bar);
    }

    fn rows_read(&self, _source: &str, rows: u64) {
        if let Some(bar) = &*self.current.lock().expect("progress lock") {
            bar.set_message(format!("{rows} records read"));
        }
    }

    fn source_finished(&self, r: &SourceSyncReport) {
        if let Some(bar) = self.current.lock().expect("progress lock").take() {
            let msg = match &r.error {
                Some(e) => format!("FAILED: {e}"),
                None => format!(
                    "{} read, {} new, {} changed, {} quarantined, {} removed",
                    r.read, r.inserted, r.updated, r.quarantined, r.removed
                ),
            };
            bar.finish_with_message(msg);
        }
    }

    fn linking(&self, records: u64) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(Self::style());
        bar.set_prefix("linking");
        bar.set_message(format!("{records} records"));
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.current.lock().expect("progress lock") = Some(bar);
    }
}

impl SyncProgress {
    /// Ends the last bar (linking has no "finished" hook of its own).
    pub fn finish(&self) {
        if let Some(bar) = self.current.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
