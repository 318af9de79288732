//! The IDX format of MNIST and Fashion-MNIST (gzip or raw, detected by magic), strictly
//! validated: magic number, element type, dimensions, exact data length, image/label
//! counts, labels in range. Also the standard four-file directory layout
//! (`train-images-idx3-ubyte[.gz]`, ...). Every error names the file. It knows nothing of
//! which data set is the default (that is `registry.rs`).
//!
//! An IDX file is: two zero bytes, an element-type byte (0x08 = unsigned byte, the only
//! type MNIST-style files use), a dimension count `k`, `k` big-endian u32 dimensions, then
//! the row-major elements. Images are `[n, rows, cols]` (magic 0x00000803), labels `[n]`
//! (magic 0x00000801).

use std::path::Path;

use super::dataset::{checked_product, Dataset, Splits};
use super::error::{DataError, Result};
use super::source::{find_file, maybe_gunzip, read_file};

/// The element-type byte of unsigned-byte data.
pub const IDX_U8: u8 = 0x08;

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown",
    }
}

/// Parses IDX `bytes` (gzip-compressed or raw). `file` names the source in errors.
pub fn parse_idx(bytes: &[u8], file: &str) -> Result<IdxArray> {
    let raw = maybe_gunzip(bytes, file)?;
    let raw: &[u8] = &raw;
    let truncated = |what: String, expected: usize| DataError::Truncated {
        file: file.to_string(),
        what,
        expected: expected as u64,
        found: raw.len() as u64,
    };
    if raw.len() < 4 {
        return Err(truncated("the 4-byte IDX magic number".into(), 4));
    }
    let magic = [raw[0], raw[1], raw[2], raw[3]];
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::BadMagic {
            file: file.to_string(),
            found: magic,
            what: "not an IDX file (IDX starts with two zero bytes, then the element type and the rank)".into(),
        });
    }
    if magic[2] != IDX_U8 {
        return Err(DataError::BadMagic {
            file: file.to_string(),
            found: magic,
            what: format!(
                "element type 0x{:02x} ({}) is not supported; kiln reads unsigned-byte (0x08) IDX files",
                magic[2],
                type_name(magic[2])
            ),
        });
    }
    let rank = magic[3] as usize;
    if rank == 0 {
        return Err(DataError::BadMagic {
            file: file.to_string(),
            found: magic,
            what: "rank 0 (no dimensions)".into(),
        });
    }
    let header = 4 + 4 * rank;
    if raw.len() < header {
        return Err(truncated(format!("the header of a rank-{rank} array"), header));
    }
    let dims: Vec<usize> = raw[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = checked_product(&dims)
        .filter(|c| c.checked_add(header).is_some())
        .ok_or_else(|| DataError::BadDims {
            file: file.to_string(),
            found: dims.clone(),
            what: "too large".into(),
        })?;
    let body = raw.len() - header;
    if body < count {
        return Err(truncated(
            format!("{dims:?} u8 elements after the {header}-byte header"),
            header + count,
        ));
    }
    if body > count {
        return Err(DataError::TrailingBytes {
            file: file.to_string(),
            expected: (header + count) as u64,
            found: (body - count) as u64,
        });
    }
    Ok(IdxArray {
        dims,
        data: raw[header..].to_vec(),
    })
}

/// Reads and parses the IDX file at `path`.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_file(path)?, &path.display().to_string())
}

/// Builds a data set from an images array (`[n, rows, cols]`) and a labels array (`[n]`,
/// each `< num_classes`). Pixels stay in 0..=255 (scale them with `Dataset::scale`); each
/// example has shape `[1, rows, cols]`.
pub fn images_and_labels(
    name: &str,
    images: (&IdxArray, &str),
    labels: (&IdxArray, &str),
    num_classes: usize,
) -> Result<Dataset> {
    let ((img, img_file), (lab, lab_file)) = (images, labels);
    if img.dims.len() != 3 || img.dims[1] == 0 || img.dims[2] == 0 {
        return Err(DataError::BadDims {
            file: img_file.to_string(),
            found: img.dims.clone(),
            what: "images must be [n, rows, cols] with rows, cols > 0 (magic 0x00000803)".into(),
        });
    }
    if lab.dims.len() != 1 {
        return Err(DataError::BadDims {
            file: lab_file.to_string(),
            found: lab.dims.clone(),
            what: "labels must be a rank-1 array [n] (magic 0x00000801)".into(),
        });
    }
    let (n, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
    if n != lab.dims[0] {
        return Err(DataError::CountMismatch {
            images_file: img_file.to_string(),
            images: n,
            labels_file: lab_file.to_string(),
            labels: lab.dims[0],
        });
    }
    if n == 0 {
        return Err(DataError::Empty {
            file: img_file.to_string(),
        });
    }
    if let Some((index, &label)) = lab.data.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
        return Err(DataError::LabelOutOfRange {
            file: lab_file.to_string(),
            index,
            label: label as i64,
            num_classes,
        });
    }
    let features = img.data.iter().map(|&p| p as f32).collect();
    let labels = lab.data.iter().map(|&l| l as i32).collect();
    Dataset::new(name, features, labels, vec![1, rows, cols], num_classes)
}

/// Parses an (images, labels) pair of IDX blobs, e.g. embedded ones.
pub fn parse_idx_pair(name: &str, images: (&[u8], &str), labels: (&[u8], &str), num_classes: usize) -> Result<Dataset> {
    let img = parse_idx(images.0, images.1)?;
    let lab = parse_idx(labels.0, labels.1)?;
    images_and_labels(name, (&img, images.1), (&lab, labels.1), num_classes)
}

/// File-name stems of the standard layout: (training images, training labels, test images,
/// test labels). Each is looked up as `<stem>.gz`, then `<stem>`.
pub const STANDARD_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads the standard four IDX files of an MNIST-style set from `dir` (gzip or raw).
/// `dataset` names the set in errors and results; `num_classes` bounds the labels.
pub fn load_idx_dir(dir: &Path, dataset: &str, num_classes: usize) -> Result<Splits> {
    let what = ["training images", "training labels", "test images", "test labels"];
    let mut paths = Vec::with_capacity(4);
    for (stem, what) in STANDARD_STEMS.iter().zip(what) {
        paths.push(find_file(
            dir,
            &[format!("{stem}.gz"), stem.to_string()],
            dataset,
            what,
        )?);
    }
    let mut arrays = Vec::with_capacity(4);
    for p in &paths {
        arrays.push(read_idx(p)?);
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let train = images_and_labels(dataset, (&arrays[0], &names[0]), (&arrays[1], &names[1]), num_classes)?;
    let test = images_and_labels(dataset, (&arrays[2], &names[2]), (&arrays[3], &names[3]), num_classes)?;
    if train.sample_shape() != test.sample_shape() {
        return Err(DataError::BadDims {
            file: names[2].clone(),
            found: test.sample_shape()[1..].to_vec(),
            what: format!(
                "test images differ in size from the training images {:?}",
                &train.sample_shape()[1..]
            ),
        });
    }
    Ok(Splits {
        train,
        test,
        source: dir.display().to_string(),
    })
}
