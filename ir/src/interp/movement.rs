//! Interpreter semantics of the movement ops `expand`, `permute`, `slice`, `pad` and
//! `concat` (`reshape` copies the data unchanged). Each output element is read from
//! the operand index it maps to. No arithmetic, no graph logic.

use crate::graph::TensorType;
use crate::value::Value;

use super::index::{for_each_index, offset};

/// NumPy broadcast: operand axes align right; a size-1 operand axis reads index 0.
pub(super) fn expand(ty: &TensorType, x: &Value) -> Vec<f64> {
    let in_dims = x.shape.dims();
    let skip = ty.shape.rank() - in_dims.len();
    let mut src = vec![0usize; in_dims.len()];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        for (j, s) in src.iter_mut().enumerate() {
            *s = if in_dims[j] == 1 { 0 } else { idx[j + skip] };
        }
        out.push(x.data[offset(&x.shape, &src)]);
    });
    out
}

/// Output axis i is operand axis `perm[i]`.
pub(super) fn permute(ty: &TensorType, perm: &[usize], x: &Value) -> Vec<f64> {
    let mut src = vec![0usize; perm.len()];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        for (i, &p) in perm.iter().enumerate() {
            src[p] = idx[i];
        }
        out.push(x.data[offset(&x.shape, &src)]);
    });
    out
}

/// Output index i along an axis reads operand index `start + i * step`.
pub(super) fn slice(ty: &TensorType, starts: &[usize], steps: &[usize], x: &Value) -> Vec<f64> {
    let mut src = vec![0usize; starts.len()];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        for (a, s) in src.iter_mut().enumerate() {
            *s = starts[a] + idx[a] * steps[a];
        }
        out.push(x.data[offset(&x.shape, &src)]);
    });
    out
}

/// Output index i along an axis reads operand index `i - low` when that is inside the
/// operand, else `value`.
pub(super) fn pad(ty: &TensorType, low: &[usize], value: f64, x: &Value) -> Vec<f64> {
    let in_dims = x.shape.dims();
    let mut src = vec![0usize; low.len()];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        let mut inside = true;
        for a in 0..low.len() {
            match idx[a].checked_sub(low[a]) {
                Some(i) if i < in_dims[a] => src[a] = i,
                _ => inside = false,
            }
        }
        out.push(if inside { x.data[offset(&x.shape, &src)] } else { value });
    });
    out
}

/// Operands laid end to end along `axis`.
pub(super) fn concat(ty: &TensorType, axis: usize, xs: &[&Value]) -> Vec<f64> {
    let mut out = Vec::with_capacity(ty.shape.numel());
    let mut src = Vec::new();
    for_each_index(ty.shape.dims(), |_, idx| {
        let mut pos = idx[axis];
        for x in xs {
            let len = x.shape.dims()[axis];
            if pos < len {
                src.clear();
                src.extend_from_slice(idx);
                src[axis] = pos;
                out.push(x.data[offset(&x.shape, &src)]);
                return;
            }
            pos -= len;
        }
        unreachable!("the output axis is the sum of the operand axes");
    });
    out
}
