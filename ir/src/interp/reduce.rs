//! Interpreter semantics of `reduce` (sum/max/min/mean over sorted axes) and `argmax`.
//! For each output element the reduced elements are visited in row-major order and
//! accumulated sequentially in f64 (i32 sums wrap). No graph logic here.

use crate::op::ReduceOp;
use crate::value::Value;
use crate::DType;

use super::elementwise::{max_nan, min_nan};
use super::index::{for_each_index, offset};

/// Split `x`'s axes into kept dims and reduced dims; call `f(out_flat, inputs)` with
/// the offsets of the reduced elements of each output element, in row-major order.
fn for_each_group(x: &Value, axes: &[usize], mut f: impl FnMut(&[usize])) {
    let dims = x.shape.dims();
    let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
    let kept_dims: Vec<usize> = kept.iter().map(|&a| dims[a]).collect();
    let red_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
    let mut full = vec![0usize; dims.len()];
    let mut group = Vec::new();
    for_each_index(&kept_dims, |_, kidx| {
        for (&a, &i) in kept.iter().zip(kidx) {
            full[a] = i;
        }
        group.clear();
        for_each_index(&red_dims, |_, ridx| {
            for (&a, &i) in axes.iter().zip(ridx) {
                full[a] = i;
            }
            group.push(offset(&x.shape, &full));
        });
        f(&group);
    });
}

/// `keepdims` only changes the output shape (size-1 axes), not the element order.
pub(super) fn reduce(op: ReduceOp, axes: &[usize], _keepdims: bool, x: &Value) -> Vec<f64> {
    let is_int = x.dtype == DType::I32;
    let mut out = Vec::new();
    for_each_group(x, axes, |group| {
        let vals = group.iter().map(|&o| x.data[o]);
        let r = match op {
            ReduceOp::Sum if is_int => vals.fold(0i32, |acc, v| acc.wrapping_add(v as i32)) as f64,
            ReduceOp::Sum => vals.fold(0.0, |acc, v| acc + v),
            ReduceOp::Mean => vals.fold(0.0, |acc, v| acc + v) / group.len() as f64,
            ReduceOp::Max => vals.fold(f64::NEG_INFINITY, max_nan),
            ReduceOp::Min => vals.fold(f64::INFINITY, min_nan),
        };
        out.push(r);
    });
    out
}

/// Index of the first maximum along `axis`; NaN counts as the maximum.
pub(super) fn argmax(axis: usize, x: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for_each_group(x, &[axis], |group| {
        let mut best = 0usize;
        for (i, &o) in group.iter().enumerate().skip(1) {
            let (b, v) = (x.data[group[best]], x.data[o]);
            if !b.is_nan() && (v.is_nan() || v > b) {
                best = i;
            }
        }
        out.push(best as f64);
    });
    out
}
