//! The data layer's error type. Every variant names the file (or embedded blob) and says
//! what was wrong and, where there is one, what to do. It owns no parsing logic.

use std::path::PathBuf;

/// Result alias for the data layer.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, reading, parsing or batching a data set.
///
/// `file` fields hold a path or, for data compiled into the binary, `embedded:<name>`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{dataset}: {what} not found in {}; tried {}", dir.display(), list_paths(tried))]
    FileNotFound {
        dataset: String,
        what: String,
        dir: PathBuf,
        tried: Vec<PathBuf>,
    },

    #[error("{file}: corrupt gzip stream ({source}); the file is damaged or truncated, fetch it again")]
    Gzip { file: String, source: std::io::Error },

    #[error("{file}: truncated: {what} needs {expected} bytes, the file has {found}")]
    Truncated {
        file: String,
        what: String,
        expected: u64,
        found: u64,
    },

    #[error("{file}: bad magic number {found:02x?}: {what}")]
    BadMagic { file: String, found: [u8; 4], what: String },

    #[error("{file}: {found} trailing bytes after the {expected} bytes the header describes")]
    TrailingBytes { file: String, expected: u64, found: u64 },

    #[error("{file}: wrong dimensions {found:?}: {what}")]
    BadDims {
        file: String,
        found: Vec<usize>,
        what: String,
    },

    #[error("image/label count mismatch: {images_file} holds {images} images but {labels_file} holds {labels} labels")]
    CountMismatch {
        images_file: String,
        images: usize,
        labels_file: String,
        labels: usize,
    },

    #[error("{file}: example {index} has label {label}, outside 0..{num_classes}")]
    LabelOutOfRange {
        file: String,
        index: usize,
        label: i64,
        num_classes: usize,
    },

    #[error("{file}:{line}: {what}")]
    Parse { file: String, line: usize, what: String },

    #[error("{file}: {what}")]
    Format { file: String, what: String },

    #[error("{file}: no examples")]
    Empty { file: String },

    #[error("unknown data set `{name}`; valid names: {valid}")]
    UnknownDataset { name: String, valid: String },

    #[error("{dataset}: {what}")]
    Unavailable { dataset: String, what: String },

    #[error("{what}")]
    InvalidArgument { what: String },
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DataError {
    pub(crate) fn invalid(what: impl Into<String>) -> DataError {
        DataError::InvalidArgument { what: what.into() }
    }

    pub(crate) fn format(file: &str, what: impl Into<String>) -> DataError {
        DataError::Format {
            file: file.to_string(),
            what: what.into(),
        }
    }

    pub(crate) fn parse(file: &str, line: usize, what: impl Into<String>) -> DataError {
        DataError::Parse {
            file: file.to_string(),
            line,
            what: what.into(),
        }
    }
}
