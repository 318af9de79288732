//! VJP rule of `Reduce` (sum, mean, max, min; with and without keepdims). The adjoint
//! is brought back to keepdims shape and broadcast over the reduced axes; max/min split
//! it equally among all tied extrema (see the module doc of `autodiff`). Builds nodes
//! only.

use kiln_ir::infer::reduced_dims;
use kiln_ir::{DType, Node, NodeId, ReduceOp, Tensor};

use super::Ctx;

pub(super) fn reduce(
    ctx: &Ctx,
    op: ReduceOp,
    axes: &[usize],
    keepdims: bool,
    id: NodeId,
    node: &Node,
    g: &Tensor,
) -> Option<Tensor> {
    let in_shape = ctx.shape(node.inputs[0]);
    let kept = reduced_dims(&in_shape, axes, true);
    let gk = if keepdims { g.clone() } else { g.reshape(kept.clone()) };
    Some(match op {
        ReduceOp::Sum => gk.broadcast_to(in_shape),
        ReduceOp::Mean => {
            let count: usize = axes.iter().map(|&a| in_shape.dims()[a]).product();
            (gk * (1.0 / count.max(1) as f64)).broadcast_to(in_shape)
        }
        ReduceOp::Max | ReduceOp::Min => {
            let x = ctx.t(node.inputs[0]);
            let y = ctx.t(id);
            let yk = if keepdims { y } else { y.reshape(kept) };
            // 1 at every element equal to the extremum, 0 elsewhere; ties share equally.
            let mask = x.eq(&yk).cast(DType::F32);
            let count = mask.sum(axes, true);
            mask * &(gk / &count)
        }
    })
}
