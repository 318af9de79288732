//! The LIBSVM / SVMlight sparse text format for classification (gzip or raw), read into a
//! dense `Dataset`:
//!
//! ```text
//! <label> <index>:<value> <index>:<value> ... [# comment]
//! ```
//!
//! Indices are 1-based and strictly increasing within a line; missing features are 0.
//! Labels must be integers: a file whose labels are all in {-1, +1} is binary with
//! -1 -> class 0 and +1 -> class 1; otherwise labels must be non-negative and are used as
//! class ids (0/1 files, or multi-class files such as LIBSVM's `mnist` with 0..9).
//! There are at least 2 classes. Every error gives the file, line and offending token.
//! Blank lines and `#` comments are skipped. It does not normalise.

use std::path::Path;

use super::dataset::Dataset;
use super::error::{DataError, Result};
use super::source::{maybe_gunzip, read_file};

/// The dense feature matrix may hold at most this many values (8 GiB of f32); larger
/// sparse sets (rcv1, news20) need a sparse representation kiln does not have yet.
pub const MAX_DENSE_VALUES: usize = 1 << 31;

/// Class ids must be below this.
pub const MAX_CLASSES: usize = 1 << 16;

/// Parses LIBSVM text. `num_features`, when given, fixes the feature count (needed when a
/// test file's largest index is smaller than the training file's); an index above it is an
/// error. Without it, the largest index seen is the feature count.
pub fn parse_libsvm(bytes: &[u8], file: &str, name: &str, num_features: Option<usize>) -> Result<Dataset> {
    let raw = maybe_gunzip(bytes, file)?;
    let text = std::str::from_utf8(&raw).map_err(|e| {
        DataError::format(
            file,
            format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
        )
    })?;
    if num_features == Some(0) {
        return Err(DataError::invalid(format!(
            "{file}: the feature count must be at least 1"
        )));
    }
    let mut raw_labels: Vec<(i64, usize)> = Vec::new();
    let mut rows: Vec<Vec<(usize, f32)>> = Vec::new();
    let mut max_index = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let content = line.split('#').next().unwrap_or("");
        let mut tokens = content.split_ascii_whitespace();
        let Some(label_tok) = tokens.next() else { continue };
        raw_labels.push((parse_label(label_tok, file, line_no)?, line_no));
        let mut row = Vec::new();
        let mut prev = 0usize;
        for tok in tokens {
            let (idx, val) = parse_pair(tok, file, line_no)?;
            if idx <= prev {
                return Err(DataError::parse(
                    file,
                    line_no,
                    format!("`{tok}`: index {idx} after index {prev}; indices must be strictly increasing"),
                ));
            }
            if let Some(d) = num_features.filter(|&d| idx > d) {
                return Err(DataError::parse(
                    file,
                    line_no,
                    format!("`{tok}`: index {idx} exceeds the given feature count {d}"),
                ));
            }
            prev = idx;
            row.push((idx, val));
        }
        max_index = max_index.max(prev);
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DataError::Empty { file: file.to_string() });
    }
    let d = num_features.unwrap_or(max_index).max(1);
    let n = rows.len();
    if n.checked_mul(d).is_none_or(|v| v > MAX_DENSE_VALUES) {
        return Err(DataError::invalid(format!(
            "{file}: {n} examples x {d} features is too large to hold densely (limit {MAX_DENSE_VALUES} values)"
        )));
    }
    let mut features = vec![0f32; n * d];
    for (r, row) in rows.iter().enumerate() {
        for &(idx, val) in row {
            features[r * d + idx - 1] = val;
        }
    }
    let (labels, class_names) = map_labels(&raw_labels, file)?;
    let k = class_names.len();
    Dataset::new(name, features, labels, vec![d], k)?.with_class_names(class_names)
}

/// Reads and parses the LIBSVM file at `path` (see [`parse_libsvm`]).
pub fn load_libsvm_file(path: &Path, name: &str, num_features: Option<usize>) -> Result<Dataset> {
    parse_libsvm(&read_file(path)?, &path.display().to_string(), name, num_features)
}

fn parse_label(tok: &str, file: &str, line: usize) -> Result<i64> {
    let v: f64 = tok
        .parse()
        .map_err(|_| DataError::parse(file, line, format!("label `{tok}` is not a number")))?;
    if !v.is_finite() || v.fract() != 0.0 || v.abs() > i32::MAX as f64 {
        return Err(DataError::parse(
            file,
            line,
            format!("label `{tok}` is not an integer class label (kiln reads classification files: ±1, 0/1 or 0..k-1)"),
        ));
    }
    Ok(v as i64)
}

fn parse_pair(tok: &str, file: &str, line: usize) -> Result<(usize, f32)> {
    let (idx_s, val_s) = tok
        .split_once(':')
        .ok_or_else(|| DataError::parse(file, line, format!("`{tok}`: expected index:value")))?;
    let idx: usize = idx_s.parse().map_err(|_| {
        DataError::parse(
            file,
            line,
            format!("`{tok}`: index `{idx_s}` is not a non-negative integer"),
        )
    })?;
    if idx == 0 {
        return Err(DataError::parse(
            file,
            line,
            format!("`{tok}`: index 0; LIBSVM feature indices start at 1"),
        ));
    }
    let val: f64 = val_s
        .parse()
        .map_err(|_| DataError::parse(file, line, format!("`{tok}`: value `{val_s}` is not a number")))?;
    if !val.is_finite() {
        return Err(DataError::parse(
            file,
            line,
            format!("`{tok}`: value `{val_s}` is not finite"),
        ));
    }
    Ok((idx, val as f32))
}

/// Class ids and names for raw integer labels (see the module doc).
fn map_labels(raw: &[(i64, usize)], file: &str) -> Result<(Vec<i32>, Vec<String>)> {
    if raw.iter().all(|&(l, _)| l == -1 || l == 1) {
        let labels = raw.iter().map(|&(l, _)| if l == 1 { 1 } else { 0 }).collect();
        return Ok((labels, vec!["-1".to_string(), "+1".to_string()]));
    }
    if let Some(&(l, line)) = raw.iter().find(|&&(l, _)| l < 0) {
        return Err(DataError::parse(
            file,
            line,
            format!("label {l}: labels must all be ±1 (binary) or all non-negative class ids"),
        ));
    }
    if let Some(&(l, line)) = raw.iter().find(|&&(l, _)| l >= MAX_CLASSES as i64) {
        return Err(DataError::parse(
            file,
            line,
            format!("label {l} is too large for a class id (limit {MAX_CLASSES})"),
        ));
    }
    let max = raw.iter().map(|&(l, _)| l).max().unwrap_or(0);
    let k = (max as usize + 1).max(2);
    Ok((
        raw.iter().map(|&(l, _)| l as i32).collect(),
        (0..k).map(|c| c.to_string()).collect(),
    ))
}
