//! Numerically stable composite ops built from the primitive DSL ops: softmax family,
//! losses (cross-entropy, MSE, binary cross-entropy with logits), layer norm and GELU.
//! They add no op variants: each expands into ordinary nodes, so autodiff, the rewriter
//! and fusion see plain IR. Stability comes from subtracting the max before `exp`; the
//! max path needs no stop-gradient because its gradient cancels exactly
//! (d/dm [m + log Σ exp(x - m)] = 1 - Σ softmax = 0).

use std::panic::Location;

use crate::error::IrError;
use crate::DType;

use super::Tensor;

impl Tensor {
    /// `log Σ exp(self)` over `axes`, computed as `m + log Σ exp(self - m)` with
    /// `m = max(self, axes)`, so it is finite for logits of any magnitude.
    #[track_caller]
    pub fn logsumexp(&self, axes: &[usize], keepdims: bool) -> Tensor {
        let m = self.max(axes, true);
        let s = (self - &m).exp().sum(axes, true).log() + &m;
        if keepdims {
            return s;
        }
        let dims: Vec<usize> = self
            .dims()
            .into_iter()
            .enumerate()
            .filter_map(|(i, d)| (!axes.contains(&i)).then_some(d))
            .collect();
        s.reshape(dims)
    }

    /// `self - logsumexp(self, axis)`, stable for large logits.
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Tensor {
        let z = self - &self.max(&[axis], true);
        &z - &z.exp().sum(&[axis], true).log()
    }

    /// `exp(self - max) / Σ exp(self - max)` along `axis`.
    #[track_caller]
    pub fn softmax(&self, axis: usize) -> Tensor {
        let e = (self - &self.max(&[axis], true)).exp();
        &e / &e.sum(&[axis], true)
    }

    /// Mean over the batch of `-log softmax(logits)[label]`, for `self` = logits
    /// `[B, C]` (f32) and `labels` `[B]` (i32 class indices; an out-of-range label
    /// contributes 0). Shape `[]`.
    #[track_caller]
    pub fn cross_entropy(&self, labels: &Tensor) -> Tensor {
        let d = self.dims();
        if self.id.is_some() && labels.id.is_some() {
            let ok = d.len() == 2 && labels.dims() == [d[0]] && labels.dtype() == DType::I32;
            if !ok {
                let detail = format!(
                    "expects logits [B, C] and i32 labels [B], got logits {}{} and labels {}{}",
                    self.dtype(),
                    self.shape(),
                    labels.dtype(),
                    labels.shape()
                );
                return self.b.fail(
                    IrError::Shape {
                        op: "cross_entropy",
                        detail,
                    },
                    Location::caller(),
                );
            }
        }
        let depth = d.get(1).copied().unwrap_or(1);
        let picked = (self.log_softmax(1) * &labels.one_hot(depth)).sum(&[1], false);
        -picked.mean_all()
    }

    /// Mean squared error `mean((self - target)²)` over all elements. Shapes must match.
    #[track_caller]
    pub fn mse(&self, target: &Tensor) -> Tensor {
        if let Some(t) = self.same_shape("mse", target, Location::caller()) {
            return t;
        }
        let diff = self - target;
        (&diff * &diff).mean_all()
    }

    /// Binary cross-entropy on logits, averaged over all elements:
    /// `mean(max(x, 0) - x·t + log(1 + exp(-|x|)))` — never exponentiates a positive
    /// number, so it is finite for logits of any magnitude. `targets` in [0, 1], same
    /// shape as the logits.
    #[track_caller]
    pub fn bce_with_logits(&self, targets: &Tensor) -> Tensor {
        if let Some(t) = self.same_shape("bce_with_logits", targets, Location::caller()) {
            return t;
        }
        let softplus_neg_abs = (self.abs().neg().exp() + 1.0).log();
        (self.maximum(0.0) - &(self * targets) + &softplus_neg_abs).mean_all()
    }

    /// Layer normalisation over `axis` without affine parameters:
    /// `(x - mean) / sqrt(var + eps)` with the biased variance (PyTorch's convention).
    #[track_caller]
    pub fn layer_norm(&self, axis: usize, eps: f64) -> Tensor {
        let centred = self - &self.mean(&[axis], true);
        let var = (&centred * &centred).mean(&[axis], true);
        &centred * &(var + eps).rsqrt()
    }

    /// GELU, tanh approximation: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    #[track_caller]
    pub fn gelu(&self) -> Tensor {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let inner = (self + &(self * self * self * 0.044715)) * c;
        self * &(inner.tanh() + 1.0) * 0.5
    }

    /// A poisoned handle (error recorded) when both handles are valid and their shapes
    /// differ; `None` when the op may proceed.
    fn same_shape(&self, op: &'static str, other: &Tensor, loc: &'static Location<'static>) -> Option<Tensor> {
        if self.id.is_none() || other.id.is_none() || self.shape() == other.shape() {
            return None;
        }
        let detail = format!(
            "prediction {} and target {} must have the same shape (no broadcasting in losses: reshape explicitly)",
            self.shape(),
            other.shape()
        );
        Some(self.b.fail(IrError::Shape { op, detail }, loc))
    }
}
