//! Data sets for training and evaluation: loaders for IDX (MNIST / Fashion-MNIST), LIBSVM
//! sparse text and scikit-learn's CSVs; data compiled into the binary (a balanced
//! Fashion-MNIST subset, UCI digits, breast cancer, heart_scale); the in-memory [`Dataset`]
//! with seeded shuffling, held-out splits and normalisation; fixed-shape batching; and the
//! registry of names ([`Dataset::load`]). It reads files and arranges numbers; it knows
//! nothing of graphs, devices or models.
//!
//! ```no_run
//! use kiln_runtime::data::Dataset;
//!
//! let splits = Dataset::load("fashion-mnist", None)?; // embedded, pixels in [0, 1]
//! for batch in splits.train.train_batches(128, /*seed*/ 7, /*epoch*/ 0)? {
//!     assert_eq!(batch.shape, [128, 1, 28, 28]); // always full: the remainder is dropped
//! }
//! for batch in splits.test.eval_batches(128)? {
//!     let _real_rows = batch.valid; // the last batch is padded; batch.mask() marks real rows
//! }
//! # Ok::<(), kiln_runtime::data::DataError>(())
//! ```
//!
//! Module map: `error` (DataError), `source` (file reading, gzip detection), `idx`,
//! `tabular` (CSV), `libsvm` (formats), `embedded` (the blobs), `dataset` (Dataset, Splits),
//! `rng` (deterministic permutations), `normalize`, `batch`, `registry` (names, defaults, the
//! text-corpus extension point).

pub mod batch;
pub mod dataset;
pub mod embedded;
pub mod error;
pub mod idx;
pub mod libsvm;
pub mod normalize;
pub mod registry;
pub mod rng;
pub mod source;
pub mod tabular;

pub use batch::{Batch, EvalBatches, TrainBatches};
pub use dataset::{Dataset, Splits};
pub use error::{DataError, Result};
pub use idx::{load_idx_dir, parse_idx, read_idx, IdxArray};
pub use libsvm::{load_libsvm_file, parse_libsvm};
pub use normalize::Standardizer;
pub use registry::{dataset_info, dataset_names, DatasetInfo, Task, DATASETS};
pub use tabular::{parse_digits_csv, parse_header_csv};
