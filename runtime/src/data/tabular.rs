//! Dense CSV classification sets in scikit-learn's two shipped layouts (gzip or raw):
//! - digits (`digits.csv.gz`): no header, each row 64 integer pixels in 0..=16 then the
//!   label 0..=9; examples shaped `[1, 8, 8]`;
//! - "header" CSVs (`breast_cancer.csv`, `iris.csv`, `wine_data.csv`): the first line is
//!   `n_samples,n_features,class_name_0,class_name_1,...`, then `n_samples` rows of
//!   `n_features` numbers and an integer label; examples shaped `[n_features]`.
//!
//! Values are checked (numbers, finite, counts, label range) and every error gives the
//! file and line. It does not normalise.

use super::dataset::Dataset;
use super::error::{DataError, Result};
use super::source::maybe_gunzip;

fn text(bytes: &[u8], file: &str) -> Result<String> {
    let raw = maybe_gunzip(bytes, file)?;
    String::from_utf8(raw.into_owned()).map_err(|e| {
        DataError::format(
            file,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn number(field: &str, file: &str, line: usize, col: usize) -> Result<f64> {
    let v: f64 = field
        .trim()
        .parse()
        .map_err(|_| DataError::parse(file, line, format!("column {}: `{field}` is not a number", col + 1)))?;
    if !v.is_finite() {
        return Err(DataError::parse(
            file,
            line,
            format!("column {}: `{field}` is not finite", col + 1),
        ));
    }
    Ok(v)
}

fn class_label(field: &str, file: &str, line: usize, col: usize, num_classes: usize) -> Result<i32> {
    let v = number(field, file, line, col)?;
    if v.fract() != 0.0 || v < 0.0 || v >= num_classes as f64 {
        return Err(DataError::parse(
            file,
            line,
            format!("column {}: label `{field}` is not a class in 0..{num_classes}", col + 1),
        ));
    }
    Ok(v as i32)
}

/// Pixels of the UCI 8x8 digits set.
pub const DIGITS_PIXELS: usize = 64;
/// Largest digits pixel value (a count of on-pixels in a 4x4 block).
pub const DIGITS_MAX: f32 = 16.0;

/// Parses scikit-learn's `digits.csv.gz` layout (see the module doc).
pub fn parse_digits_csv(bytes: &[u8], file: &str) -> Result<Dataset> {
    let text = text(bytes, file)?;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != DIGITS_PIXELS + 1 {
            return Err(DataError::parse(
                file,
                i + 1,
                format!(
                    "{} fields, expected {} (64 pixels and a label)",
                    fields.len(),
                    DIGITS_PIXELS + 1
                ),
            ));
        }
        for (col, f) in fields[..DIGITS_PIXELS].iter().enumerate() {
            let v = number(f, file, i + 1, col)?;
            if !(0.0..=DIGITS_MAX as f64).contains(&v) {
                return Err(DataError::parse(
                    file,
                    i + 1,
                    format!("column {}: pixel {v} outside 0..=16", col + 1),
                ));
            }
            features.push(v as f32);
        }
        labels.push(class_label(fields[DIGITS_PIXELS], file, i + 1, DIGITS_PIXELS, 10)?);
    }
    if labels.is_empty() {
        return Err(DataError::Empty { file: file.to_string() });
    }
    Dataset::new("digits", features, labels, vec![1, 8, 8], 10)
}

/// Parses a scikit-learn "header" CSV (see the module doc) into a set called `name`.
pub fn parse_header_csv(bytes: &[u8], file: &str, name: &str) -> Result<Dataset> {
    let text = text(bytes, file)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| DataError::Empty { file: file.to_string() })?;
    let head: Vec<&str> = header.split(',').map(str::trim).collect();
    let count = |k: usize, what: &str| -> Result<usize> {
        head.get(k).and_then(|f| f.parse::<usize>().ok()).ok_or_else(|| {
            DataError::parse(
                file,
                1,
                format!("header `{header}`: field {} should be the {what}", k + 1),
            )
        })
    };
    let (n, d) = (count(0, "number of samples")?, count(1, "number of features")?);
    let class_names: Vec<String> = head[2..].iter().map(|s| s.to_string()).collect();
    if d == 0 || class_names.len() < 2 {
        return Err(DataError::parse(
            file,
            1,
            format!("header `{header}`: expected `n_samples,n_features,class_0,class_1,...` with n_features > 0"),
        ));
    }
    let mut features = Vec::with_capacity(n.saturating_mul(d));
    let mut labels = Vec::with_capacity(n);
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != d + 1 {
            return Err(DataError::parse(
                file,
                i + 1,
                format!("{} fields, expected {} ({d} features and a label)", fields.len(), d + 1),
            ));
        }
        for (col, f) in fields[..d].iter().enumerate() {
            features.push(number(f, file, i + 1, col)? as f32);
        }
        labels.push(class_label(fields[d], file, i + 1, d, class_names.len())?);
    }
    if labels.len() != n {
        return Err(DataError::format(
            file,
            format!(
                "truncated or padded: the header promises {n} samples but the file has {}",
                labels.len()
            ),
        ));
    }
    if n == 0 {
        return Err(DataError::Empty { file: file.to_string() });
    }
    Dataset::new(name, features, labels, vec![d], class_names.len())?.with_class_names(class_names)
}
