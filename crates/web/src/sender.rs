//! Delivering one-time sign-in codes. The sender is the only place a code
//! exists in clear after it is made; nothing else logs or stores it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;

use crate::SenderConfig;

#[derive(Debug, thiserror::Error)]
#[error("cannot send the sign-in code: {0}")]
pub struct SendError(pub String);

/// Sends a one-time code to a normalised identifier (`email:…`, `phone:…`).
#[async_trait]
pub trait CodeSender: Send + Sync {
    /// A short name for logs and `kith serve`'s banner (`log`, `file:DIR`).
    fn describe(&self) -> String;
    async fn send(&self, identifier: &str, code: &str, valid_minutes: u64)
    -> Result<(), SendError>;
}

/// Prints codes to the server's standard output: the demo's sender, so a
/// person trying kith can sign in without a mail server. Never use it where
/// the server's output is collected into logs others can read.
pub struct LogSender;

#[async_trait]
impl CodeSender for LogSender {
    fn describe(&self) -> String {
        "log (codes are printed on the server's output: for demos only)".into()
    }
    async fn send(
        &self,
        identifier: &str,
        code: &str,
        valid_minutes: u64,
    ) -> Result<(), SendError> {
        let (_, to) = identifier.split_once(':').unwrap_or(("", identifier));
        println!("[sign-in code] to {to}: {code} (valid {valid_minutes} min)");
        Ok(())
    }
}

/// Appends each message as one JSON line to `DIR/messages.jsonl`.
pub struct FileSender {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSender {
    pub fn new(dir: PathBuf) -> Self {
        FileSender {
            dir,
            lock: tokio::sync::Mutex::new(()),
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.join("messages.jsonl")
    }
}

#[async_trait]
impl CodeSender for FileSender {
    fn describe(&self) -> String {
        format!("file ({})", self.path().display())
    }
    async fn send(
        &self,
        identifier: &str,
        code: &str,
        valid_minutes: u64,
    ) -> Result<(), SendError> {
        let _guard = self.lock.lock().await;
        let line = serde_json::json!({
            "at": Utc::now(),
            "to": identifier,
            "code": code,
            "valid_minutes": valid_minutes,
        });
        let path = self.path();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{line}")?;
            f.sync_data()
        })
        .await
        .map_err(|e| SendError(e.to_string()))?
        .map_err(|e| SendError(format!("{}: {e}", self.path().display())))
    }
}

/// The sender a configuration asks for; relative paths are resolved against `base`.
pub fn build_sender(config: &SenderConfig, base: &std::path::Path) -> Arc<dyn CodeSender> {
    match config {
        SenderConfig::Log => Arc::new(LogSender),
        SenderConfig::File { dir } => Arc::new(FileSender::new(base.join(dir))),
    }
}
