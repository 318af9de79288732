//! `Dataset`: an in-memory classification data set (f32 features `[n, d]` with a per-example
//! shape, i32 labels in `0..num_classes`) and `Splits` (train + test). It owns the
//! invariants (lengths agree, labels in range) and the operations that reorder or subset
//! examples: seeded shuffle, stratified held-out split, class selection, reshape.
//! Parsing files lives in the format modules; batching in `batch.rs`; normalisation in
//! `normalize.rs`.

use super::error::{DataError, Result};
use super::rng;

/// A labelled data set held in memory.
///
/// Features are row-major f32, one row of `feature_dim()` values per example; `sample_shape`
/// says how a row is laid out (`[1, 28, 28]` for Fashion-MNIST images, `[30]` for a
/// tabular set), so a batch of `b` examples has shape `[b, ...sample_shape]` and can always be
/// viewed as `[b, feature_dim()]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    name: String,
    features: Vec<f32>,
    labels: Vec<i32>,
    sample_shape: Vec<usize>,
    class_names: Vec<String>,
}

/// A training set and a test set of the same data set (same shape and classes), plus where
/// they came from (`embedded:...` or a path), for log lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    pub source: String,
}

impl Dataset {
    /// Validates and wraps `features` (`labels.len() * prod(sample_shape)` values) and
    /// `labels` (each in `0..num_classes`). Classes are named "0", "1", ...; see
    /// [`Dataset::with_class_names`].
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        labels: Vec<i32>,
        sample_shape: Vec<usize>,
        num_classes: usize,
    ) -> Result<Dataset> {
        let name = name.into();
        let dim = checked_product(&sample_shape)
            .filter(|&d| d > 0)
            .ok_or_else(|| DataError::invalid(format!("{name}: sample shape {sample_shape:?} has no elements")))?;
        if num_classes < 1 {
            return Err(DataError::invalid(format!(
                "{name}: a classification set needs at least one class"
            )));
        }
        let expected = labels.len().checked_mul(dim);
        if expected != Some(features.len()) {
            return Err(DataError::invalid(format!(
                "{name}: {} labels of shape {sample_shape:?} need {} feature values, got {}",
                labels.len(),
                labels.len() as u128 * dim as u128,
                features.len()
            )));
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l as usize >= num_classes)
        {
            return Err(DataError::LabelOutOfRange {
                file: name,
                index,
                label: label as i64,
                num_classes,
            });
        }
        let class_names = (0..num_classes).map(|c| c.to_string()).collect();
        Ok(Dataset {
            name,
            features,
            labels,
            sample_shape,
            class_names,
        })
    }

    /// The same set with human-readable class names (exactly `num_classes` of them).
    pub fn with_class_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Result<Dataset> {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if names.len() != self.class_names.len() {
            return Err(DataError::invalid(format!(
                "{}: {} class names given for {} classes",
                self.name,
                names.len(),
                self.class_names.len()
            )));
        }
        self.class_names = names;
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Layout of one example, e.g. `[1, 28, 28]` or `[13]`.
    pub fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }

    /// Values per example: the product of `sample_shape`.
    pub fn feature_dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// All features, `[len, feature_dim]` row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// All features, mutable (for custom preprocessing; the length cannot change).
    pub fn features_mut(&mut self) -> &mut [f32] {
        &mut self.features
    }

    pub fn labels(&self) -> &[i32] {
        &self.labels
    }

    /// Features and label of example `i` (panics if `i >= len()`, like slice indexing).
    pub fn example(&self, i: usize) -> (&[f32], i32) {
        let d = self.feature_dim();
        (&self.features[i * d..(i + 1) * d], self.labels[i])
    }

    /// Number of examples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The same data with another per-example layout of the same size (e.g. `[784]` to
    /// feed `[1, 28, 28]` images to an MLP).
    pub fn reshaped(mut self, sample_shape: Vec<usize>) -> Result<Dataset> {
        if checked_product(&sample_shape) != Some(self.feature_dim()) {
            return Err(DataError::invalid(format!(
                "{}: cannot view examples of shape {:?} as {sample_shape:?} (different element counts)",
                self.name, self.sample_shape
            )));
        }
        self.sample_shape = sample_shape;
        Ok(self)
    }

    /// The same data with each example flattened to `[feature_dim]`.
    pub fn flattened(self) -> Dataset {
        let d = self.feature_dim();
        Dataset {
            sample_shape: vec![d],
            ..self
        }
    }

    /// A new set holding examples `indices`, in that order (repeats allowed).
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::invalid(format!(
                "{}: example index {bad} out of range for {} examples",
                self.name,
                self.len()
            )));
        }
        let d = self.feature_dim();
        let mut features = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            features.extend_from_slice(&self.features[i * d..(i + 1) * d]);
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(Dataset {
            features,
            labels,
            ..self.clone_meta()
        })
    }

    /// Keeps only the examples of `classes` and relabels them `0..classes.len()` in the
    /// order given (e.g. `[0, 6]` turns Fashion-MNIST into T-shirt-vs-shirt, a binary task).
    pub fn select_classes(&self, classes: &[i32]) -> Result<Dataset> {
        let mut new_label = vec![-1i32; self.num_classes()];
        for (k, &c) in classes.iter().enumerate() {
            if c < 0 || c as usize >= self.num_classes() {
                return Err(DataError::invalid(format!(
                    "{}: class {c} out of range 0..{}",
                    self.name,
                    self.num_classes()
                )));
            }
            if new_label[c as usize] >= 0 {
                return Err(DataError::invalid(format!("{}: class {c} listed twice", self.name)));
            }
            new_label[c as usize] = k as i32;
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| new_label[self.labels[i] as usize] >= 0)
            .collect();
        let mut out = self.select(&keep)?;
        out.labels.iter_mut().for_each(|l| *l = new_label[*l as usize]);
        out.class_names = classes.iter().map(|&c| self.class_names[c as usize].clone()).collect();
        Ok(out)
    }

    /// Reorders the examples by a permutation that depends only on `seed` (see
    /// [`rng::permutation`]): the same seed gives the same order on every machine.
    pub fn shuffle(&mut self, seed: u64) -> Result<()> {
        let order = rng::permutation(self.len(), seed, 0, rng::STREAM_DATASET_SHUFFLE)?;
        *self = self.select(&order)?;
        Ok(())
    }

    /// Splits off a held-out set: `round(fraction * count)` examples of EACH class (so both
    /// parts keep the class balance), chosen by a permutation seeded with `seed`. Both parts
    /// keep the original relative order. Returns `(rest, held_out)`; an error if either
    /// would be empty or `fraction` is not in (0, 1).
    pub fn split_holdout(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(DataError::invalid(format!(
                "{}: held-out fraction {fraction} must be strictly between 0 and 1",
                self.name
            )));
        }
        let mut held = vec![false; self.len()];
        for class in 0..self.num_classes() {
            let members: Vec<usize> = (0..self.len()).filter(|&i| self.labels[i] as usize == class).collect();
            let take = (fraction * members.len() as f64).round() as usize;
            let order = rng::permutation(members.len(), seed, class as u64, rng::STREAM_HOLDOUT_SPLIT)?;
            for &k in &order[..take] {
                held[members[k]] = true;
            }
        }
        let rest: Vec<usize> = (0..self.len()).filter(|&i| !held[i]).collect();
        let out: Vec<usize> = (0..self.len()).filter(|&i| held[i]).collect();
        if rest.is_empty() || out.is_empty() {
            return Err(DataError::invalid(format!(
                "{}: holding out {fraction} of {} examples leaves {} and {}; pick a fraction that leaves both non-empty",
                self.name,
                self.len(),
                rest.len(),
                out.len()
            )));
        }
        Ok((self.select(&rest)?, self.select(&out)?))
    }

    /// Multiplies every feature by `factor` (e.g. `1/255` maps u8 pixels into [0, 1]).
    pub fn scale(&mut self, factor: f32) {
        self.features.iter_mut().for_each(|x| *x *= factor);
    }

    /// Smallest and largest feature value (`None` for an empty set).
    pub fn value_range(&self) -> Option<(f32, f32)> {
        let mut it = self.features.iter().copied();
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x))))
    }

    /// Everything but the examples (name, shape, classes), for building subsets.
    fn clone_meta(&self) -> Dataset {
        Dataset {
            name: self.name.clone(),
            features: Vec::new(),
            labels: Vec::new(),
            sample_shape: self.sample_shape.clone(),
            class_names: self.class_names.clone(),
        }
    }
}

impl Splits {
    /// A train/test pair from one set by [`Dataset::split_holdout`] (stratified, seeded).
    pub fn from_holdout(all: Dataset, test_fraction: f64, seed: u64, source: impl Into<String>) -> Result<Splits> {
        let (train, test) = all.split_holdout(test_fraction, seed)?;
        Ok(Splits {
            train,
            test,
            source: source.into(),
        })
    }

    /// Applies `f` to both sets (e.g. `|d| d.flattened()`).
    pub fn map(self, mut f: impl FnMut(Dataset) -> Dataset) -> Splits {
        Splits {
            train: f(self.train),
            test: f(self.test),
            source: self.source,
        }
    }
}

/// Product of `dims`, `None` on overflow.
pub(crate) fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
