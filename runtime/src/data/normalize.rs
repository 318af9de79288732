//! Feature standardisation with statistics fitted on the training set only (per-feature mean
//! and standard deviation), applied unchanged to held-out and test sets so no test
//! information leaks into training. Plain rescaling is `Dataset::scale`. It does not
//! reorder or select examples.

use super::dataset::{Dataset, Splits};
use super::error::{DataError, Result};

/// A standard deviation below this counts as a constant feature: it is centred, not scaled.
pub const MIN_STD: f64 = 1e-8;

/// Per-feature mean and standard deviation (population, i.e. divided by n).
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `train` (accumulated in f64). A constant feature gets `std = 1`, so it maps
    /// to 0 instead of dividing by zero.
    pub fn fit(train: &Dataset) -> Result<Standardizer> {
        let (n, d) = (train.len(), train.feature_dim());
        if n == 0 {
            return Err(DataError::invalid(format!(
                "{}: cannot fit a standardizer on no examples",
                train.name()
            )));
        }
        let x = train.features();
        let mut mean = vec![0f64; d];
        for row in x.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; d];
        for row in x.chunks_exact(d) {
            for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
                let c = v as f64 - m;
                *s += c * c;
            }
        }
        let std = var
            .iter()
            .map(|&s| (s / n as f64).sqrt())
            .map(|s| if s < MIN_STD { 1.0 } else { s });
        Ok(Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.map(|s| s as f32).collect(),
        })
    }

    /// `x <- (x - mean) / std` for every example of `data`.
    pub fn apply(&self, data: &mut Dataset) -> Result<()> {
        let d = data.feature_dim();
        if d != self.mean.len() {
            return Err(DataError::invalid(format!(
                "{}: standardizer fitted on {} features cannot apply to {d}",
                data.name(),
                self.mean.len()
            )));
        }
        for row in data.features_mut().chunks_exact_mut(d) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

impl Splits {
    /// Fits a [`Standardizer`] on `train` and applies it to both sets; returns it (a
    /// checkpoint can store it to standardise new inputs the same way).
    pub fn standardize(&mut self) -> Result<Standardizer> {
        let s = Standardizer::fit(&self.train)?;
        s.apply(&mut self.train)?;
        s.apply(&mut self.test)?;
        Ok(s)
    }

    /// Multiplies the features of both sets by `factor`.
    pub fn scale(&mut self, factor: f32) {
        self.train.scale(factor);
        self.test.scale(factor);
    }
}
