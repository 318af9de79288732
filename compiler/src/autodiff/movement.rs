//! VJP rules of the movement ops. `Reshape` and `Expand` are handled in the
//! dispatcher (reshape back, sum back); this file owns `Permute` (inverse permutation),
//! `Slice` (scatter into zeros, built from Reshape + Pad), `Pad` (Slice) and `Concat`
//! (one Slice per operand). Builds nodes only; no new op variants.

use kiln_ir::{Node, Tensor};

use super::Ctx;

pub(super) fn permute(perm: &[usize], g: &Tensor) -> Tensor {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    g.permute(&inv)
}

/// The adjoint of a strided slice: `g` scattered into zeros of the input's shape at
/// positions `start + k·step`. Steps > 1 are handled by interleaving zeros: give each
/// strided axis a new trailing axis of size 1, pad it to `step`, merge the two axes
/// (element k lands at k·step) and cut the trailing `step - 1` zeros. One final `Pad`
/// then places the block at `start`.
pub(super) fn slice(ctx: &Ctx, node: &Node, starts: &[usize], _ends: &[usize], steps: &[usize], g: &Tensor) -> Tensor {
    let in_shape = ctx.shape(node.inputs[0]);
    let n = in_shape.dims();
    let out = node.ty.shape.dims().to_vec();
    if out.iter().product::<usize>() == 0 {
        return ctx.zeros(&in_shape);
    }
    let r = out.len();
    // Extent of the scattered block along each axis.
    let lens: Vec<usize> = (0..r).map(|i| (out[i] - 1) * steps[i] + 1).collect();
    let mut t = g.clone();
    if steps.iter().zip(&out).any(|(&s, &d)| s > 1 && d > 1) {
        let (mut split, mut low, mut high) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..r {
            split.push(out[i]);
            low.push(0);
            high.push(0);
            if steps[i] > 1 {
                split.push(1);
                low.push(0);
                high.push(steps[i] - 1);
            }
        }
        let spread: Vec<usize> = (0..r).map(|i| out[i] * steps[i]).collect();
        t = t.reshape(split).pad(&low, &high, 0.0).reshape(spread);
        t = t.slice(&vec![0; r], &lens, &vec![1; r]);
    }
    let high: Vec<usize> = (0..r).map(|i| n[i] - starts[i] - lens[i]).collect();
    if starts.iter().chain(&high).all(|&p| p == 0) {
        return t;
    }
    t.pad(starts, &high, 0.0)
}

/// The adjoint of a pad is the slice that drops the padding.
pub(super) fn pad(ctx: &Ctx, node: &Node, low: &[usize], g: &Tensor) -> Tensor {
    let n = ctx.shape(node.inputs[0]);
    let ends: Vec<usize> = low.iter().zip(n.dims()).map(|(l, d)| l + d).collect();
    g.slice(low, &ends, &vec![1; n.rank()])
}

/// The adjoint of a concat: each operand gets its own range of the axis.
pub(super) fn concat(ctx: &Ctx, node: &Node, axis: usize, g: &Tensor, need: &[bool]) -> Vec<Option<Tensor>> {
    let mut offset = 0;
    node.inputs
        .iter()
        .zip(need)
        .map(|(&inp, &needed)| {
            let len = ctx.shape(inp).dims()[axis];
            let start = offset;
            offset += len;
            needed.then(|| g.narrow(axis, start, len))
        })
        .collect()
}
