//! Fixed-shape mini-batches. A compiled train step has static shapes, so every batch this
//! module yields has exactly `batch_size` rows; a new shape would mean a recompile.
//!
//! - **Training** ([`Dataset::train_batches`]): each epoch visits the examples in a seeded
//!   permutation of `(seed, epoch)` and yields `len / batch_size` full batches. The last
//!   partial batch (`len % batch_size` examples) is DROPPED; those examples are not lost
//!   for good, since the next epoch's permutation differs.
//! - **Evaluation** ([`Dataset::eval_batches`]): visits every example once, in order. The
//!   last batch is PADDED to `batch_size` rows with zero features and label 0 (a valid
//!   class, so one-hot/gather stay in range); `Batch::valid` counts the real rows, which
//!   always come first, and `Batch::mask()` is 1.0 for them and 0.0 for padding. Weight
//!   per-example losses and correct counts by the mask and divide by the total of `valid`.
//!
//! It does not own the order (`rng.rs`) or the data (`dataset.rs`).

use super::dataset::Dataset;
use super::error::{DataError, Result};
use super::rng;

/// One mini-batch: `batch_size` rows of features and labels, the first `valid` real.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// `[batch_size, ...sample_shape]` row-major.
    pub features: Vec<f32>,
    /// `[batch_size]`; padding rows hold 0.
    pub labels: Vec<i32>,
    /// `[batch_size, ...sample_shape]`.
    pub shape: Vec<usize>,
    /// Number of real examples (the first rows); `batch_size` except in a padded last
    /// evaluation batch.
    pub valid: usize,
    /// Dataset index of each real row (`valid` entries).
    pub indices: Vec<usize>,
}

impl Batch {
    pub fn batch_size(&self) -> usize {
        self.labels.len()
    }

    /// `[batch_size, feature_dim]`: the shape of `features` viewed as a matrix.
    pub fn flat_shape(&self) -> [usize; 2] {
        let b = self.batch_size();
        [b, self.features.len().checked_div(b).unwrap_or(0)]
    }

    /// Whether every row is real.
    pub fn is_full(&self) -> bool {
        self.valid == self.batch_size()
    }

    /// `[batch_size]`: 1.0 for real rows, 0.0 for padding.
    pub fn mask(&self) -> Vec<f32> {
        (0..self.batch_size())
            .map(|i| if i < self.valid { 1.0 } else { 0.0 })
            .collect()
    }

    /// Fills this batch with `indices` of `data` (`indices.len() <= batch_size`), padding
    /// the rest; reuses the buffers when the shape already matches.
    fn fill(&mut self, data: &Dataset, batch_size: usize, indices: &[usize]) {
        let d = data.feature_dim();
        self.features.clear();
        self.features.resize(batch_size * d, 0.0);
        self.labels.clear();
        self.labels.resize(batch_size, 0);
        self.shape.clear();
        self.shape.push(batch_size);
        self.shape.extend_from_slice(data.sample_shape());
        self.indices.clear();
        self.indices.extend_from_slice(indices);
        self.valid = indices.len();
        for (row, &i) in indices.iter().enumerate() {
            let (x, y) = data.example(i);
            self.features[row * d..(row + 1) * d].copy_from_slice(x);
            self.labels[row] = y;
        }
    }
}

/// The full, shuffled training batches of one epoch (see the module doc).
#[derive(Debug)]
pub struct TrainBatches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    steps: usize,
}

/// Every example once, in order, the last batch padded (see the module doc).
#[derive(Debug)]
pub struct EvalBatches<'a> {
    data: &'a Dataset,
    batch_size: usize,
    next: usize,
}

impl Dataset {
    /// Full training batches per epoch: `len / batch_size` (the remainder is dropped).
    pub fn train_steps_per_epoch(&self, batch_size: usize) -> usize {
        self.len().checked_div(batch_size).unwrap_or(0)
    }

    /// Evaluation batches: `ceil(len / batch_size)`.
    pub fn eval_steps(&self, batch_size: usize) -> usize {
        if batch_size == 0 {
            0
        } else {
            self.len().div_ceil(batch_size)
        }
    }

    /// The training batches of `epoch`, in a permutation fixed by `(seed, epoch)`. Errors if
    /// `batch_size` is 0 or larger than the set (there would be no full batch).
    pub fn train_batches(&self, batch_size: usize, seed: u64, epoch: u64) -> Result<TrainBatches<'_>> {
        check_batch_size(self, batch_size)?;
        if batch_size > self.len() {
            return Err(DataError::invalid(format!(
                "{}: batch size {batch_size} is larger than the {} training examples, so no full batch exists; \
                 use a batch size of at most {}",
                self.name(),
                self.len(),
                self.len()
            )));
        }
        let order = rng::permutation(self.len(), seed, epoch, rng::STREAM_EPOCH_ORDER)?;
        let steps = self.train_steps_per_epoch(batch_size);
        Ok(TrainBatches {
            data: self,
            order,
            batch_size,
            next: 0,
            steps,
        })
    }

    /// Evaluation batches covering every example (see the module doc). Errors if
    /// `batch_size` is 0.
    pub fn eval_batches(&self, batch_size: usize) -> Result<EvalBatches<'_>> {
        check_batch_size(self, batch_size)?;
        Ok(EvalBatches {
            data: self,
            batch_size,
            next: 0,
        })
    }
}

fn check_batch_size(data: &Dataset, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(DataError::invalid(format!(
            "{}: batch size must be at least 1",
            data.name()
        )));
    }
    Ok(())
}

impl TrainBatches<'_> {
    /// The permutation of this epoch (every example; the last `len % batch_size` of it are
    /// the dropped ones).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Like `next()` but writes into `batch`, reusing its buffers; false when done.
    pub fn next_into(&mut self, batch: &mut Batch) -> bool {
        if self.next >= self.steps {
            return false;
        }
        let start = self.next * self.batch_size;
        batch.fill(self.data, self.batch_size, &self.order[start..start + self.batch_size]);
        self.next += 1;
        true
    }
}

impl Iterator for TrainBatches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        self.next_into(&mut batch).then_some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.steps - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for TrainBatches<'_> {}

impl EvalBatches<'_> {
    /// Like `next()` but writes into `batch`, reusing its buffers; false when done.
    pub fn next_into(&mut self, batch: &mut Batch) -> bool {
        let start = self.next * self.batch_size;
        if start >= self.data.len() {
            return false;
        }
        let end = (start + self.batch_size).min(self.data.len());
        let indices: Vec<usize> = (start..end).collect();
        batch.fill(self.data, self.batch_size, &indices);
        self.next += 1;
        true
    }
}

impl Iterator for EvalBatches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        self.next_into(&mut batch).then_some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.data.eval_steps(self.batch_size) - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for EvalBatches<'_> {}
