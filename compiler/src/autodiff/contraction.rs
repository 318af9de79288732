//! VJP rules of the contractions and indexing ops: `MatMul` (batched, broadcast batch
//! dims summed back), `Gather` (one-hot transposed matmul, so the op set stays closed)
//! and the im2col pair `Unfold2d`/`Fold2d` (each is the other's adjoint). Builds nodes
//! only.

use kiln_ir::{Node, Tensor, Window2d};

use super::{sum_to, Ctx};

/// `C = A @ B`: `dA = G @ Bᵀ`, `dB = Aᵀ @ G`, each summed over the batch dims its
/// operand was broadcast along. When the right operand is a plain matrix and the left
/// one is batched (linear layers on 3-D activations), the batch sum is folded into a
/// single matmul over flattened rows (a free reshape) instead of a batched matmul + reduce.
pub(super) fn matmul(ctx: &Ctx, node: &Node, g: &Tensor, need: &[bool]) -> Vec<Option<Tensor>> {
    let (sa, sb) = (ctx.shape(node.inputs[0]), ctx.shape(node.inputs[1]));
    let a = ctx.t(node.inputs[0]);
    let b = ctx.t(node.inputs[1]);
    let gd = g.dims();
    let rank = gd.len();
    let (m, n) = (gd[rank - 2], gd[rank - 1]);
    let k = sa.dims()[sa.rank() - 1];
    let batch: usize = gd[..rank - 2].iter().product();
    let batch_dims = &gd[..rank - 2];

    // A plain matrix on the left (conv2d's weight against the batched unfold) gets a
    // batched matmul and a sum over the batch: `G_b @ B_bᵀ` reads `B_b` transposed as a
    // strided view, whereas flattening the batch into one matmul needs copies of both
    // G and B permuted (neither `[m, b·n]` nor `[b·n, k]` is a view of them).
    let da = need[0].then(|| sum_to(&g.matmul(&b.t()), &sa));
    let db = need[1].then(|| {
        if sb.rank() == 2 && rank > 2 && &sa.dims()[..sa.rank() - 2] == batch_dims {
            // dB[k,n] = Σ_b A_bᵀ G_b = A'[b·m, k]ᵀ @ G'[b·m, n]
            let a2 = a.reshape([batch * m, k]);
            let g2 = g.reshape([batch * m, n]);
            a2.t().matmul(&g2)
        } else {
            sum_to(&a.t().matmul(g), &sb)
        }
    });
    vec![da, db]
}

/// `out = table[indices]`: `d table = one_hot(indices, rows)ᵀ @ G`, with indices and
/// the trailing dims flattened. Out-of-range indices read 0 and give no gradient
/// (their one-hot row is zero). The indices get none (integer).
pub(super) fn gather(ctx: &Ctx, node: &Node, g: &Tensor) -> Option<Tensor> {
    let table = ctx.shape(node.inputs[0]);
    let idx = ctx.t(node.inputs[1]);
    let rows = table.dims()[0];
    let rest: usize = table.dims()[1..].iter().product();
    let count = idx.numel();
    let oh = idx.one_hot(rows).reshape([count, rows]);
    let g2 = g.reshape([count, rest]);
    Some(oh.t().matmul(&g2).reshape(table))
}

/// The adjoint of im2col is col2im (overlapping windows summed) at the input's size.
pub(super) fn unfold2d(ctx: &Ctx, node: &Node, w: Window2d, g: &Tensor) -> Tensor {
    let d = ctx.shape(node.inputs[0]);
    g.fold2d(w, [d.dims()[2], d.dims()[3]])
}
