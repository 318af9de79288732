//! The rewriter's cost model: what one node costs once fusion has done its work.
//!
//! Units are "cheap elementwise operations on one element". Elementwise ops fuse into
//! their neighbours, so they cost compute only, weighted by how dear the operation is
//! (add/mul/compare 1, div/sqrt/recip 4, rsqrt 5, exp/log/tanh/sigmoid/sin/cos 8,
//! pow 12) per output element. Materialisation boundaries (matmul, reductions,
//! concat, pad, gather, im2col/col2im, argmax) cost their memory traffic
//! (`MEM` per element read or written) and matmul its multiply-adds. Views cost
//! almost nothing (a transpose a little per element: strided reads). Every op also
//! pays a fixed `NODE` overhead, so among equal-work forms the one with fewer ops
//! wins. Sources and constants are free.
//!
//! This module only prices nodes; choosing among them is `extract.rs`.

use kiln_ir::{Graph, TensorType, UnaryOp};

use super::language::{infer_type, KGraph, KNode, KOp};

/// Fixed cost of any op (a loop, a kernel argument, a node in the graph).
pub const NODE: f64 = 1.0;
/// Cost of moving one element to or from memory at a materialisation boundary.
pub const MEM: f64 = 2.0;
/// Cost of one multiply-add inside a matmul (vectorised, cache-blocked).
pub const FMA: f64 = 0.25;

/// Per-element compute weight of an elementwise op.
fn elementwise_weight(op: &KOp) -> f64 {
    match op {
        KOp::Unary(u) => match u {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu => 1.0,
            UnaryOp::Sqrt | UnaryOp::Recip => 4.0,
            UnaryOp::Rsqrt => 5.0,
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Sin | UnaryOp::Cos => 8.0,
        },
        KOp::Binary(kiln_ir::BinaryOp::Div) => 4.0,
        KOp::Pow(_) => 12.0,
        _ => 1.0,
    }
}

/// Cost of one node producing `ty` from operands of types `kids`.
pub fn op_cost(op: &KOp, ty: &TensorType, kids: &[&TensorType]) -> f64 {
    let n = ty.shape.numel() as f64;
    let n_in = |i: usize| kids.get(i).map_or(0.0, |t| t.shape.numel() as f64);
    match op {
        KOp::Source(_) | KOp::Const { .. } | KOp::Root => 0.0,
        KOp::Iota { .. } | KOp::Reshape(_) | KOp::Expand(_) | KOp::Slice { .. } => 0.5 * NODE,
        KOp::Permute(_) => 0.5 * NODE + 0.25 * n,
        KOp::Random { .. } => NODE + 10.0 * n,
        KOp::Unary(_) | KOp::Binary(_) | KOp::Pow(_) | KOp::Compare(_) | KOp::Select | KOp::Cast(_) => {
            NODE + elementwise_weight(op) * n
        }
        KOp::Reduce { op: r, .. } => {
            let finish = if *r == kiln_ir::ReduceOp::Mean { 4.0 * n } else { 0.0 };
            NODE + n_in(0) + MEM * n + finish
        }
        KOp::ArgMax(_) => NODE + MEM * n_in(0) + MEM * n,
        KOp::Pad { .. } | KOp::Concat(_) | KOp::OneHot(_) | KOp::Gather | KOp::Unfold2d(_) => NODE + MEM * n,
        KOp::Fold2d { .. } => NODE + MEM * n_in(0) + MEM * n,
        KOp::MatMul => {
            let k = kids.first().and_then(|t| t.shape.dims().last().copied()).unwrap_or(0) as f64;
            NODE + FMA * n * k + MEM * (n_in(0) + n_in(1) + n)
        }
    }
}

/// Cost of an e-node of an e-class of type `ty`.
pub fn enode_cost(eg: &KGraph, ty: &TensorType, node: &KNode) -> f64 {
    let kids: Vec<&TensorType> = node.children.iter().map(|&c| &eg[c].data.ty).collect();
    op_cost(&node.op, ty, &kids)
}

/// Cost of an e-node whose e-class is not at hand (type inferred from operands).
pub fn enode_cost_inferred(eg: &KGraph, node: &KNode) -> f64 {
    let kids: Vec<&TensorType> = node.children.iter().map(|&c| &eg[c].data.ty).collect();
    match infer_type(&node.op, &kids, &eg.analysis.sources) {
        Some(ty) => op_cost(&node.op, &ty, &kids),
        None => f64::INFINITY,
    }
}

/// Cost of the live part of an IR graph (every node counted once, as it stands).
pub fn graph_cost(graph: &Graph) -> f64 {
    let live = graph.live_mask();
    graph
        .ids()
        .filter(|id| live[id.index()])
        .map(|id| {
            let node = graph.node(id);
            let kids: Vec<&TensorType> = node.inputs.iter().map(|&i| &graph.node(i).ty).collect();
            let op = KOp::from_op(&node.op, &node.ty, Some(0)).unwrap_or(KOp::Source(0));
            op_cost(&op, &node.ty, &kids)
        })
        .sum()
}
