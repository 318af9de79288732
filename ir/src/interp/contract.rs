//! Interpreter semantics of `matmul` (batched, broadcast batch dims), `gather` (rows
//! along axis 0) and `one_hot`. Dot products accumulate in f64 in increasing k order.
//! No graph logic here.

use crate::graph::TensorType;
use crate::value::Value;

use super::index::{for_each_index, offset};

/// Index into an operand's batch dims for an output batch index (NumPy broadcast:
/// right-aligned, size-1 operand axes read index 0).
fn batch_index(operand_batch: &[usize], out_batch_idx: &[usize], dst: &mut [usize]) {
    let skip = out_batch_idx.len() - operand_batch.len();
    for (j, &d) in operand_batch.iter().enumerate() {
        dst[j] = if d == 1 { 0 } else { out_batch_idx[j + skip] };
    }
}

/// `[..., m, k] @ [..., k, n] -> [..., m, n]`.
pub(super) fn matmul(ty: &TensorType, a: &Value, b: &Value) -> Vec<f64> {
    let (ad, bd) = (a.shape.dims(), b.shape.dims());
    let (ra, rb, ro) = (ad.len(), bd.len(), ty.shape.rank());
    let k = ad[ra - 1];
    let n = bd[rb - 1];
    let mut ai = vec![0usize; ra];
    let mut bi = vec![0usize; rb];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        let batch = &idx[..ro - 2];
        let (i, j) = (idx[ro - 2], idx[ro - 1]);
        batch_index(&ad[..ra - 2], batch, &mut ai);
        batch_index(&bd[..rb - 2], batch, &mut bi);
        ai[ra - 2] = i;
        ai[ra - 1] = 0;
        bi[rb - 2] = 0;
        bi[rb - 1] = j;
        // Row i of a is contiguous (stride 1); column j of b has stride n.
        let a0 = offset(&a.shape, &ai);
        let b0 = offset(&b.shape, &bi);
        let mut acc = 0.0;
        for p in 0..k {
            acc += a.data[a0 + p] * b.data[b0 + p * n];
        }
        out.push(acc);
    });
    out
}

/// `table[indices[i...], rest...]`; an index outside `0..rows` reads zeros.
pub(super) fn gather(ty: &TensorType, table: &Value, indices: &Value) -> Vec<f64> {
    let ri = indices.shape.rank();
    let rows = table.shape.dims()[0];
    let mut src = vec![0usize; table.shape.rank()];
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        let row = indices.data[offset(&indices.shape, &idx[..ri])];
        if row >= 0.0 && row < rows as f64 {
            src[0] = row as usize;
            src[1..].copy_from_slice(&idx[ri..]);
            out.push(table.data[offset(&table.shape, &src)]);
        } else {
            out.push(0.0);
        }
    });
    out
}

/// `out[i..., d] = (indices[i...] == d)`; out-of-range indices give all zeros.
pub(super) fn one_hot(depth: usize, indices: &Value) -> Vec<f64> {
    let mut out = Vec::with_capacity(indices.data.len() * depth);
    for &v in &indices.data {
        for d in 0..depth {
            out.push((v == d as f64) as u8 as f64);
        }
    }
    out
}
