//! Reverse-mode automatic differentiation as a graph transformation.
//!
//! Owns [`grad`] (and its DSL forms [`grad_tensors`] / [`vjp_tensors`]): given a graph, a
//! scalar loss node and the nodes to differentiate with respect to, it appends the
//! backward computation to the SAME graph as ordinary IR nodes (no tape, no runtime
//! bookkeeping) and returns the gradient node of each `wrt`. The result is an ordinary
//! graph, so it can be rewritten, fused, lowered — and differentiated again
//! (Hessian-vector products). It must not evaluate anything, add op variants, or
//! simplify the graph it builds (that is the rewriter's job).
//!
//! # How it works
//! 1. A node is *active* when it has a float dtype and either is one of `wrt` or has an
//!    active operand. Only active nodes that the loss depends on get backward nodes;
//!    everything else is pruned.
//! 2. Walking the arena backwards from the loss, each active node's adjoint (always an
//!    f32 tensor of the node's shape) is pushed through its op's VJP rule to its active
//!    operands. Adjoints of nodes used several times are summed.
//! 3. A `wrt` the loss does not depend on gets a constant zero gradient of its shape.
//!
//! VJP rules live next to each other by op family: `elementwise`, `reduce`,
//! `movement`, `contraction`. Every rule is written with the DSL, so NumPy
//! broadcasting and validation come for free, and a rule that builds an invalid node
//! is reported as [`AutodiffError::Rule`] (a kiln bug, never silent).
//!
//! # Decisions (documented contract)
//! - **Non-differentiable ops get zero gradient.** Gradients flow only through float
//!   tensors. Comparisons (bool), `ArgMax`, `OneHot`'s and `Gather`'s index operands,
//!   casts to i32/bool, integer arithmetic, `Iota`, `Random` and `Const` are constants
//!   to autodiff: nothing flows into or out of them. `Sign` is piecewise constant and
//!   gets zero gradient too. Asking for the gradient OF an integer/bool loss or WITH
//!   RESPECT TO an integer/bool tensor is an error ([`AutodiffError::LossNotFloat`],
//!   [`AutodiffError::WrtNotFloat`]).
//! - **Float casts** (f32 <-> f16/bf16 storage) pass the gradient straight through;
//!   adjoints are always f32.
//! - **Kinks.** `relu'(0) = 0`, `abs'(0) = sign(0) = 0`.
//! - **Ties in max/min** (`Reduce{Max|Min}` and `Binary{Max|Min}`): the gradient is split
//!   EQUALLY among all tied elements (each of `k` tied maxima gets `g/k`; for the binary
//!   ops each operand gets `g/2` on a tie). This is deterministic, symmetric, agrees
//!   with finite differences whenever the tie is structural (the max over a broadcast
//!   value, `max(a, a)`), and gives the exact derivative `sigmoid(0) - t` for the
//!   `max(x, 0)` form of binary cross-entropy at `x = 0`.
//! - The loss must be an f32 scalar (shape `[]`); reduce it with `sum_all`/`mean_all`
//!   first, or use [`vjp_tensors`] with an explicit seed.

mod contraction;
mod elementwise;
mod movement;
mod reduce;

use kiln_ir::{DType, Graph, GraphBuilder, IrError, Node, NodeId, Op, Shape, Tensor};
use thiserror::Error;

/// Every way `grad` can refuse or fail.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AutodiffError {
    #[error("autodiff: node %{0} does not exist in this graph; pass ids of the graph being differentiated")]
    UnknownNode(usize),

    #[error(
        "autodiff: the loss %{id} ({op}) has shape {shape}; it must be a scalar of shape []: \
         reduce it first (sum_all / mean_all) or use vjp_tensors with a seed of its shape"
    )]
    LossNotScalar { id: usize, op: &'static str, shape: Shape },

    #[error(
        "autodiff: the loss %{id} ({op}) has dtype {dtype}; only float losses can be differentiated \
         (cast it to f32 if it really is a number you want to minimise)"
    )]
    LossNotFloat { id: usize, op: &'static str, dtype: DType },

    #[error(
        "autodiff: wrt[{index}] = %{id} ({op}, {dtype}{shape}) is not a float tensor; integer and bool \
         tensors (labels, indices, masks) have no gradient — differentiate with respect to f32 tensors only"
    )]
    WrtNotFloat {
        index: usize,
        id: usize,
        op: &'static str,
        dtype: DType,
        shape: Shape,
    },

    #[error("autodiff: the seed has type {seed_dtype}{seed_shape}, but the output it seeds has shape {shape}; pass an f32 seed of the output's shape")]
    SeedMismatch {
        seed_shape: Shape,
        seed_dtype: DType,
        shape: Shape,
    },

    #[error("autodiff: tensors from two different graph builders were passed ({what}); use handles of one builder")]
    ForeignTensor { what: &'static str },

    #[error("autodiff: the graph to differentiate is not valid: {0}")]
    Ir(#[from] IrError),

    #[error("autodiff: the VJP rule of `{op}` at %{node} built an invalid node (a kiln bug, please report): {source}")]
    Rule {
        op: &'static str,
        node: usize,
        #[source]
        source: IrError,
    },
}

/// Shared state of one backward pass: the builder the backward nodes go to and a
/// snapshot of the forward graph (append-only, so the snapshot never goes stale).
pub(crate) struct Ctx<'a> {
    pub b: &'a GraphBuilder,
    pub fwd: &'a Graph,
}

impl Ctx<'_> {
    /// Handle to a forward node.
    pub fn t(&self, id: NodeId) -> Tensor {
        self.b.tensor(id)
    }
    /// Shape of a forward node.
    pub fn shape(&self, id: NodeId) -> Shape {
        self.fwd.node(id).ty.shape.clone()
    }
    /// An f32 constant tensor of zeros.
    pub fn zeros(&self, shape: &Shape) -> Tensor {
        self.b.full(0.0, shape.clone(), DType::F32)
    }
}

/// Differentiate the scalar `loss` of `graph` with respect to `wrt`.
///
/// Returns the same graph (outputs and updates kept) with the backward nodes appended,
/// and the gradient node of each `wrt` (same shape, f32; zeros when the loss does not
/// depend on it). Duplicated `wrt` entries get the same gradient node.
pub fn grad(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Result<(Graph, Vec<NodeId>), AutodiffError> {
    let b = GraphBuilder::from_graph(graph.clone());
    let seed = scalar_seed(graph, loss)?;
    let seed = b.full(1.0, seed, DType::F32);
    let grads = backprop(&b, loss, seed, wrt)?;
    let ids = grads.iter().map(|t| t.check()).collect::<Result<Vec<_>, _>>()?;
    Ok((b.finish()?, ids))
}

/// [`grad`] on the graph a DSL tensor belongs to: appends the backward nodes to the
/// loss's own builder and returns the gradient tensors.
pub fn grad_tensors(loss: &Tensor, wrt: &[&Tensor]) -> Result<Vec<Tensor>, AutodiffError> {
    let b = loss.builder();
    let loss_id = loss.check()?;
    let shape = b.with_graph(|g| scalar_seed(g, loss_id))?;
    let wrt_ids = dsl_ids(b, wrt)?;
    let seed = b.full(1.0, shape, DType::F32);
    backprop(b, loss_id, seed, &wrt_ids)
}

/// Vector-Jacobian product: the gradient of `sum(output * seed)` with respect to `wrt`,
/// for an f32 `output` of any shape and an f32 `seed` of the same shape (the seed may
/// depend on anything, including `wrt`). `grad_tensors(loss, wrt)` is
/// `vjp_tensors(loss, ones([]), wrt)`.
pub fn vjp_tensors(output: &Tensor, seed: &Tensor, wrt: &[&Tensor]) -> Result<Vec<Tensor>, AutodiffError> {
    let b = output.builder();
    let out_id = output.check()?;
    seed.check()?;
    if !b.shares_graph(seed.builder()) {
        return Err(AutodiffError::ForeignTensor {
            what: "output and seed",
        });
    }
    let (ty, sty) = (output.ty(), seed.ty());
    if !ty.dtype.is_float() {
        return Err(AutodiffError::LossNotFloat {
            id: out_id.index(),
            op: b.with_graph(|g| g.node(out_id).op.name()),
            dtype: ty.dtype,
        });
    }
    if sty.shape != ty.shape || sty.dtype != DType::F32 {
        return Err(AutodiffError::SeedMismatch {
            seed_shape: sty.shape,
            seed_dtype: sty.dtype,
            shape: ty.shape,
        });
    }
    let wrt_ids = dsl_ids(b, wrt)?;
    backprop(b, out_id, seed.clone(), &wrt_ids)
}

fn dsl_ids(b: &GraphBuilder, wrt: &[&Tensor]) -> Result<Vec<NodeId>, AutodiffError> {
    wrt.iter()
        .map(|t| {
            if !b.shares_graph(t.builder()) {
                return Err(AutodiffError::ForeignTensor { what: "loss and wrt" });
            }
            Ok(t.check()?)
        })
        .collect()
}

/// Checks that `loss` is an f32 scalar; returns the seed's shape.
fn scalar_seed(g: &Graph, loss: NodeId) -> Result<Shape, AutodiffError> {
    let n = g.get(loss).ok_or(AutodiffError::UnknownNode(loss.index()))?;
    if !n.ty.dtype.is_float() {
        return Err(AutodiffError::LossNotFloat {
            id: loss.index(),
            op: n.op.name(),
            dtype: n.ty.dtype,
        });
    }
    if n.ty.shape.rank() != 0 {
        return Err(AutodiffError::LossNotScalar {
            id: loss.index(),
            op: n.op.name(),
            shape: n.ty.shape.clone(),
        });
    }
    Ok(Shape::scalar())
}

/// The backward pass proper: pushes `seed` (the adjoint of `root`) back to `wrt`.
fn backprop(b: &GraphBuilder, root: NodeId, seed: Tensor, wrt: &[NodeId]) -> Result<Vec<Tensor>, AutodiffError> {
    if let Some(e) = b.error() {
        return Err(AutodiffError::Ir(e));
    }
    let fwd = b.with_graph(|g| g.clone());
    if fwd.get(root).is_none() {
        return Err(AutodiffError::UnknownNode(root.index()));
    }
    for (index, &w) in wrt.iter().enumerate() {
        let n = fwd.get(w).ok_or(AutodiffError::UnknownNode(w.index()))?;
        if !n.ty.dtype.is_float() {
            return Err(AutodiffError::WrtNotFloat {
                index,
                id: w.index(),
                op: n.op.name(),
                dtype: n.ty.dtype,
                shape: n.ty.shape.clone(),
            });
        }
    }
    let ctx = Ctx { b, fwd: &fwd };
    let n_live = root.index() + 1;
    let mut is_wrt = vec![false; n_live];
    for w in wrt {
        if w.index() < n_live {
            is_wrt[w.index()] = true;
        }
    }
    // Forward sweep: which nodes depend (through float values) on some wrt.
    let mut active = vec![false; n_live];
    for (i, node) in fwd.nodes()[..n_live].iter().enumerate() {
        active[i] = node.ty.dtype.is_float() && (is_wrt[i] || node.inputs.iter().any(|j| active[j.index()]));
    }
    // Backward sweep, only from the root down to the lowest wrt.
    let mut adj: Vec<Option<Tensor>> = vec![None; n_live];
    let lowest = wrt.iter().map(|w| w.index()).min().unwrap_or(n_live);
    if active[root.index()] {
        adj[root.index()] = Some(seed);
    }
    for i in (lowest..n_live).rev() {
        if !active[i] {
            continue;
        }
        let Some(g) = adj[i].clone() else { continue };
        let node = fwd.node(NodeId(i as u32));
        let need: Vec<bool> = node.inputs.iter().map(|j| active[j.index()]).collect();
        if !need.iter().any(|&x| x) {
            continue;
        }
        let contributions = vjp(&ctx, NodeId(i as u32), node, &g, &need);
        if let Some(e) = b.error() {
            return Err(AutodiffError::Rule {
                op: node.op.name(),
                node: i,
                source: e,
            });
        }
        for (k, c) in contributions.into_iter().enumerate() {
            let (Some(c), true) = (c, need[k]) else { continue };
            let j = node.inputs[k].index();
            adj[j] = Some(match adj[j].take() {
                Some(acc) => acc + &c,
                None => c,
            });
        }
        if let Some(e) = b.error() {
            return Err(AutodiffError::Rule {
                op: "accumulate",
                node: i,
                source: e,
            });
        }
    }
    let grads = wrt
        .iter()
        .map(|w| match adj.get(w.index()).and_then(|a| a.clone()) {
            Some(g) => g,
            None => ctx.zeros(&ctx.shape(*w)),
        })
        .collect();
    if let Some(e) = b.error() {
        return Err(AutodiffError::Rule {
            op: "zeros",
            node: root.index(),
            source: e,
        });
    }
    Ok(grads)
}

/// Dispatch to the VJP rule of `node`'s op. Returns one entry per operand: the
/// contribution to that operand's adjoint, or `None` for no contribution (operand not
/// needed, non-differentiable, or zero). `g` is the adjoint of `node`.
fn vjp(ctx: &Ctx, id: NodeId, node: &Node, g: &Tensor, need: &[bool]) -> Vec<Option<Tensor>> {
    match &node.op {
        // Sources and constants have no operands; Random's operands are integer keys.
        Op::Input { .. }
        | Op::Param { .. }
        | Op::State { .. }
        | Op::Scalar { .. }
        | Op::Const { .. }
        | Op::Iota { .. }
        | Op::Random { .. } => vec![None; node.inputs.len()],
        Op::Unary(u) => vec![elementwise::unary(ctx, *u, id, node, g)],
        Op::Binary(op) => elementwise::binary(ctx, *op, id, node, g, need),
        Op::PowConst { exponent } => vec![elementwise::pow_const(ctx, *exponent, node, g)],
        Op::Select => elementwise::select(ctx, node, g, need),
        Op::Cast => vec![elementwise::cast(ctx, node, g)],
        // Comparisons and argmax have non-float results and are never active; listed so
        // that adding an op forces a decision here.
        Op::Compare(_) | Op::ArgMax { .. } | Op::OneHot { .. } => vec![None; node.inputs.len()],
        Op::Reduce { op, axes, keepdims } => vec![reduce::reduce(ctx, *op, axes, *keepdims, id, node, g)],
        Op::Reshape => vec![Some(g.reshape(ctx.shape(node.inputs[0])))],
        Op::Expand => vec![Some(sum_to(g, &ctx.shape(node.inputs[0])))],
        Op::Permute { perm } => vec![Some(movement::permute(perm, g))],
        Op::Slice { starts, ends, steps } => vec![Some(movement::slice(ctx, node, starts, ends, steps, g))],
        Op::Pad { low, .. } => vec![Some(movement::pad(ctx, node, low, g))],
        Op::Concat { axis } => movement::concat(ctx, node, *axis, g, need),
        Op::MatMul => contraction::matmul(ctx, node, g, need),
        Op::Gather => vec![contraction::gather(ctx, node, g), None],
        Op::Unfold2d(w) => vec![Some(contraction::unfold2d(ctx, node, *w, g))],
        Op::Fold2d { window, .. } => vec![Some(g.unfold2d(*window))],
    }
}

/// Sum `t` down to `target`, a shape it was broadcast from (the VJP of NumPy
/// broadcasting): sums the leading axes `target` lacks and the axes where `target`
/// has size 1, then reshapes.
pub(crate) fn sum_to(t: &Tensor, target: &Shape) -> Tensor {
    let src = t.shape();
    if &src == target {
        return t.clone();
    }
    let off = src.rank().saturating_sub(target.rank());
    let axes: Vec<usize> = (0..src.rank())
        .filter(|&i| i < off || (target.dims()[i - off] == 1 && src.dims()[i] != 1))
        .collect();
    let summed = if axes.is_empty() { t.clone() } else { t.sum(&axes, true) };
    summed.reshape(target.clone())
}
