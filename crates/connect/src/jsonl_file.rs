//! JSON-lines files: one JSON object per line. Nested objects are flattened
//! to dotted column names (`{"contact": {"email": …}}` → `contact.email`).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use kith_model::CursorValue;
use serde_json::Value;

use crate::file_index::FileIndexStore;
use crate::files::{self, RowAt, RowFormat};
use crate::rows::Row;
use crate::{
    Capabilities, Connector, LookupCapability, LookupRequest, LookupResult, Result, ScanStream,
    SourceConfig,
};

pub(crate) struct JsonlConnector {
    source: SourceConfig,
    dir: PathBuf,
    index: Arc<dyn FileIndexStore>,
}

impl JsonlConnector {
    pub(crate) fn new(source: SourceConfig, dir: PathBuf, index: Arc<dyn FileIndexStore>) -> Self {
        JsonlConnector { source, dir, index }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Jsonl;

fn parse_line(bytes: &[u8]) -> std::result::Result<Row, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not valid UTF-8 (at byte {} of the line)", e.valid_up_to()))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => {
            let mut row = Row::new();
            crate::rows::flatten("", obj, &mut row);
            Ok(row)
        }
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

impl RowFormat for Jsonl {
    fn for_each_row(
        &self,
        path: &Path,
        f: &mut dyn FnMut(RowAt) -> bool,
    ) -> std::io::Result<std::result::Result<(), String>> {
        let mut rdr = BufReader::new(File::open(path)?);
        let mut buf = Vec::new();
        let (mut offset, mut line) = (0u64, 0u64);
        loop {
            buf.clear();
            let n = rdr.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(Ok(()));
            }
            line += 1;
            let start = offset;
            offset += n as u64;
            if is_blank(&buf) {
                continue;
            }
            if !f(RowAt {
                offset: start,
                line,
                row: parse_line(&buf),
            }) {
                return Ok(Ok(()));
            }
        }
    }

    fn rows_at(
        &self,
        path: &Path,
        offsets: &[u64],
    ) -> std::io::Result<std::result::Result<Vec<(u64, std::result::Result<Row, String>)>, String>>
    {
        let mut rdr = BufReader::new(File::open(path)?);
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(offsets.len());
        for &offset in offsets {
            rdr.seek(SeekFrom::Start(offset))?;
            buf.clear();
            let n = rdr.read_until(b'\n', &mut buf)?;
            let row = if n == 0 {
                Err("the file ended before the indexed row".to_string())
            } else {
                parse_line(&buf)
            };
            out.push((offset, row));
        }
        Ok(Ok(out))
    }
}

#[async_trait]
impl Connector for JsonlConnector {
    fn source(&self) -> &SourceConfig {
        &self.source
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: LookupCapability::Indexed,
            incremental_scan: false,
        }
    }

    async fn scan(&self, since: Option<CursorValue>) -> Result<ScanStream> {
        files::scan(
            Jsonl,
            self.source.clone(),
            self.dir.join(&self.source.identity.from),
            since,
        )
        .await
    }

    async fn lookup(&self, request: &LookupRequest) -> Result<LookupResult> {
        files::lookup(Jsonl, &self.source, &self.dir, self.index.as_ref(), request).await
    }

    async fn check(&self) -> Result<()> {
        files::check(&self.source, &self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_flattened_or_say_why_not() {
        let row =
            parse_line(br#"{"id": 1, "contact": {"email": "a@x.com", "tags": [1]}}"#).unwrap();
        assert_eq!(row["contact.email"], "a@x.com");
        assert_eq!(row["contact.tags"], serde_json::json!([1]));
        assert!(
            parse_line(b"{not json")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(parse_line(b"[1,2]").unwrap_err().contains("array"));
        assert!(parse_line(b"\xff\xfe{}").unwrap_err().contains("UTF-8"));
    }
}
