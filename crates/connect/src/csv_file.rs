//! CSV files with a header row. Quoted fields may hold delimiters and newlines.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use kith_model::CursorValue;
use serde_json::Value;

use crate::file_index::FileIndexStore;
use crate::files::{self, RowFormat};
use crate::rows::Row;
use crate::{
    Capabilities, Connector, LookupCapability, LookupRequest, LookupResult, Result, ScanStream,
    SourceConfig,
};

pub(crate) struct CsvConnector {
    source: SourceConfig,
    dir: PathBuf,
    delimiter: u8,
    index: Arc<dyn FileIndexStore>,
}

impl CsvConnector {
    pub(crate) fn new(
        source: SourceConfig,
        dir: PathBuf,
        delimiter: u8,
        index: Arc<dyn FileIndexStore>,
    ) -> Self {
        CsvConnector {
            source,
            dir,
            delimiter,
            index,
        }
    }
}

/// Reads CSV rows; shared by scans (every row) and lookups (rows at offsets).
#[derive(Clone, Copy)]
pub(crate) struct Csv {
    pub delimiter: u8,
}

fn builder(delimiter: u8) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.delimiter(delimiter).has_headers(false).flexible(true);
    b
}

fn to_row(headers: &[String], rec: &csv::ByteRecord) -> std::result::Result<Row, String> {
    if rec.len() != headers.len() {
        return Err(format!(
            "expected {} fields (as in the header), found {}",
            headers.len(),
            rec.len()
        ));
    }
    let mut row = Row::new();
    for (h, field) in headers.iter().zip(rec.iter()) {
        let s = std::str::from_utf8(field).map_err(|e| {
            format!(
                "field {h:?} is not valid UTF-8 (byte {} of the field)",
                e.valid_up_to()
            )
        })?;
        row.insert(h.clone(), Value::String(s.to_string()));
    }
    Ok(row)
}

/// Opens `path` and reads its header row, leaving the reader just after it.
/// A file that cannot be opened or has no readable header is the source's
/// problem (the inner error), not an I/O failure of kith's.
fn open_with_headers(
    path: &Path,
    delimiter: u8,
) -> std::result::Result<(csv::Reader<File>, Vec<String>), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    // The csv reader buffers by itself; a BufReader under it would copy twice.
    let mut rdr = builder(delimiter).from_reader(file);
    let mut rec = csv::ByteRecord::new();
    let headers = match rdr.read_byte_record(&mut rec) {
        Ok(true) => rec
            .iter()
            .map(|h| {
                std::str::from_utf8(h)
                    .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
                    .map_err(|_| "the header row is not valid UTF-8".to_string())
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        Ok(false) => return Err("the file is empty (no header row)".into()),
        Err(e) => return Err(format!("cannot read the header row: {e}")),
    };
    Ok((rdr, headers))
}

impl RowFormat for Csv {
    fn for_each_row(
        &self,
        path: &Path,
        f: &mut dyn FnMut(files::RowAt) -> bool,
    ) -> std::io::Result<std::result::Result<(), String>> {
        let (mut rdr, headers) = match open_with_headers(path, self.delimiter) {
            Ok(opened) => opened,
            Err(e) => return Ok(Err(e)),
        };
        let mut rec = csv::ByteRecord::new();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => return Ok(Ok(())),
                Ok(true) => {
                    let pos = rec.position().expect("csv records carry positions");
                    let go_on = f(files::RowAt {
                        offset: pos.byte(),
                        line: pos.line(),
                        row: to_row(&headers, &rec),
                    });
                    if !go_on {
                        return Ok(Ok(()));
                    }
                }
                Err(e) => {
                    let (offset, line) =
                        e.position().map(|p| (p.byte(), p.line())).unwrap_or((0, 0));
                    let message = match e.kind() {
                        csv::ErrorKind::Io(_) => return Err(e.into()),
                        _ => e.to_string(),
                    };
                    if !f(files::RowAt {
                        offset,
                        line,
                        row: Err(message),
                    }) {
                        return Ok(Ok(()));
                    }
                }
            }
        }
    }

    fn rows_at(
        &self,
        path: &Path,
        offsets: &[u64],
    ) -> std::io::Result<std::result::Result<Vec<(u64, std::result::Result<Row, String>)>, String>>
    {
        let (mut rdr, headers) = match open_with_headers(path, self.delimiter) {
            Ok(opened) => opened,
            Err(e) => return Ok(Err(e)),
        };
        let mut out = Vec::with_capacity(offsets.len());
        let mut rec = csv::ByteRecord::new();
        for &offset in offsets {
            let mut pos = csv::Position::new();
            pos.set_byte(offset);
            rdr.seek(pos).map_err(std::io::Error::other)?;
            let row = match rdr.read_byte_record(&mut rec) {
                Ok(true) => to_row(&headers, &rec),
                Ok(false) => Err("the file ended before the indexed row".into()),
                Err(e) => Err(e.to_string()),
            };
            out.push((offset, row));
        }
        Ok(Ok(out))
    }
}

#[async_trait]
impl Connector for CsvConnector {
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
            Csv {
                delimiter: self.delimiter,
            },
            self.source.clone(),
            self.dir.join(&self.source.identity.from),
            since,
        )
        .await
    }

    async fn lookup(&self, request: &LookupRequest) -> Result<LookupResult> {
        files::lookup(
            Csv {
                delimiter: self.delimiter,
            },
            &self.source,
            &self.dir,
            self.index.as_ref(),
            request,
        )
        .await
    }

    async fn check(&self) -> Result<()> {
        files::check(&self.source, &self.dir)
    }
}
