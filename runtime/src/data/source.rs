//! Getting a data file's bytes: reading from disk with the path in every error, and
//! transparent gunzip when the bytes start with the gzip magic (1f 8b). It does not parse
//! any format.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `bytes` start a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[..2] == GZIP_MAGIC
}

/// The bytes of `path`; a missing or unreadable file is an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `bytes` decompressed if they are gzip (detected by the magic, not the file name),
/// borrowed unchanged otherwise. `file` names the source in errors.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], file: &str) -> Result<Cow<'a, [u8]>> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            file: file.to_string(),
            source,
        })?;
    Ok(Cow::Owned(out))
}

/// Reads `path` and gunzips it when it is gzip.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_file(path)?;
    match maybe_gunzip(&bytes, &path.display().to_string())? {
        Cow::Borrowed(_) => Ok(bytes),
        Cow::Owned(out) => Ok(out),
    }
}

/// The first of `candidates` (file names inside `dir`) that exists, or an error listing
/// every path tried. `dataset` and `what` ("training images", ...) go into the message.
pub fn find_file(dir: &Path, candidates: &[String], dataset: &str, what: &str) -> Result<PathBuf> {
    let tried: Vec<PathBuf> = candidates.iter().map(|c| dir.join(c)).collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(DataError::FileNotFound {
            dataset: dataset.to_string(),
            what: what.to_string(),
            dir: dir.to_path_buf(),
            tried,
        }),
    }
}

/// How embedded blobs are named in errors and `Splits::source`.
pub fn embedded_name(name: &str) -> String {
    format!("embedded:{name}")
}
