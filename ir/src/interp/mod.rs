//! The f64 reference interpreter: the oracle every backend, rewrite and fusion
//! decision is tested against. Slow and obviously correct: every op is a plain loop
//! over its output elements, computed in f64 from operand indices. This module owns
//! the evaluation driver (bindings, liveness, updates); the op semantics live in the
//! submodules. It must never optimise at the cost of clarity, and never depends on
//! anything but the IR.
//!
//! Semantics beyond the doc comments on `Op` (every backend must match them):
//! - f32 values are computed and kept in f64 (no rounding to f32 between ops).
//! - i32 `add`/`sub`/`mul`/`neg`/`abs` and i32 `sum` wrap like two's-complement i32.
//! - `cast` uses `DType::quantize`: f32→i32 truncates toward zero and saturates, NaN→0;
//!   →bool is `!= 0` (so NaN→true); bool→number gives 0/1.
//! - `relu(x) = max(x, 0)`, NaN stays NaN; binary `max`/`min` propagate NaN;
//!   `sigmoid` is evaluated in a form that never overflows.
//! - `reduce_max`/`reduce_min` propagate NaN; over zero elements `sum` is 0, `mean` is
//!   NaN, `reduce_max` is -inf (i32: i32::MIN) and `reduce_min` is +inf (i32: i32::MAX).
//! - `argmax`: first maximum wins; NaN counts as the maximum (the first NaN wins).
//! - `gather`/`one_hot`: out-of-range indices give zeros.
//! - `random`: see `crate::philox` for the element mapping.

mod contract;
mod elementwise;
mod index;
mod movement;
mod reduce;
mod window;

use std::collections::HashMap;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId, SourceKind, TensorType};
use crate::infer::infer;
use crate::op::Op;
use crate::value::Value;

/// Values of a graph's inputs, params, state and runtime scalars, by name.
pub type Bindings = HashMap<String, Value>;

/// The result of evaluating a graph: the value of every node that was evaluated.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    values: Vec<Option<Value>>,
}

impl Evaluation {
    /// The value of node `id`, if it was evaluated (live, or needed by a request).
    pub fn value(&self, id: NodeId) -> Option<&Value> {
        self.values.get(id.index()).and_then(Option::as_ref)
    }

    /// The value of the named output.
    pub fn output(&self, graph: &Graph, name: &str) -> Option<&Value> {
        self.value(graph.output(name)?)
    }

    /// The new value the step computed for param/state `name` (its update), if any.
    pub fn updated(&self, graph: &Graph, name: &str) -> Option<&Value> {
        let target = graph.source(name)?;
        let (_, value) = graph.updates().iter().find(|(t, _)| *t == target)?;
        self.value(*value)
    }

    /// Take the values out (indexed by node id; `None` for nodes not evaluated).
    pub fn into_values(self) -> Vec<Option<Value>> {
        self.values
    }
}

/// Evaluate every live node (those the outputs and updates depend on).
pub fn evaluate(graph: &Graph, bindings: &Bindings) -> Result<Evaluation> {
    run(graph, bindings, &graph.live_mask())
}

/// Evaluate what `ids` need and return their values, in the order of `ids`.
pub fn evaluate_nodes(graph: &Graph, bindings: &Bindings, ids: &[NodeId]) -> Result<Vec<Value>> {
    if let Some(bad) = ids.iter().find(|id| id.index() >= graph.len()) {
        return Err(IrError::UnknownNode(bad.index()));
    }
    let eval = run(graph, bindings, &graph.reachable_from(ids))?;
    Ok(ids
        .iter()
        .map(|id| eval.values[id.index()].clone().expect("requested nodes are evaluated"))
        .collect())
}

/// Write the step's updates back: every updated param/state binding takes the value
/// its update computed in `eval`. All new values were computed from the old ones, so
/// the order of updates does not matter. Updates whose value is missing from `eval`
/// (it came from a different graph or request) are skipped.
pub fn apply_updates(graph: &Graph, eval: &Evaluation, bindings: &mut Bindings) {
    for &(target, value) in graph.updates() {
        let (Some(name), Some(v)) = (graph.node(target).op.source_name(), eval.value(value)) else {
            continue;
        };
        bindings.insert(name.to_string(), v.clone());
    }
}

/// Evaluate one non-source op on operand values (e.g. for constant folding). The
/// operands are validated against the op with `infer`, and `ty` must agree with it.
pub fn eval_op(op: &Op, ty: &TensorType, args: &[&Value]) -> Result<Value> {
    if op.is_source() {
        return Err(IrError::Invalid {
            op: op.name(),
            detail: "sources take their value from bindings; use `evaluate`".into(),
        });
    }
    for a in args {
        check_consistent(op.name(), a)?;
    }
    let arg_types: Vec<TensorType> = args.iter().map(|a| a.ty()).collect();
    let refs: Vec<&TensorType> = arg_types.iter().collect();
    let ty = infer(op, &refs, Some(ty))?;
    Ok(compute(op, &ty, args))
}

fn check_consistent(what: &'static str, v: &Value) -> Result<()> {
    if v.data.len() != v.shape.numel() {
        return Err(IrError::Invalid {
            op: what,
            detail: format!(
                "a value of shape {} holds {} elements instead of {}; build values with Value::new",
                v.shape,
                v.data.len(),
                v.shape.numel()
            ),
        });
    }
    Ok(())
}

/// The bound value of a source node, checked against its declared type.
fn bound_value(op: &Op, ty: &TensorType, bindings: &Bindings) -> Result<Value> {
    let kind = SourceKind::of(op).map_or("source", SourceKind::as_str);
    let name = op.source_name().unwrap_or_default();
    let v = bindings.get(name).ok_or_else(|| IrError::MissingBinding {
        kind,
        name: name.to_string(),
        shape: ty.shape.clone(),
        dtype: ty.dtype,
    })?;
    if v.shape != ty.shape {
        return Err(IrError::BindingShape {
            name: name.to_string(),
            expected: ty.shape.clone(),
            got: v.shape.clone(),
        });
    }
    if v.dtype != ty.dtype {
        return Err(IrError::DType {
            op: op.name(),
            operand: 0,
            got: v.dtype,
            expected: format!(
                "{} (the dtype declared for {kind} `{name}`; bind a value of that dtype)",
                ty.dtype
            ),
        });
    }
    check_consistent(op.name(), v)?;
    Ok(v.clone())
}

fn run(graph: &Graph, bindings: &Bindings, needed: &[bool]) -> Result<Evaluation> {
    let mut values: Vec<Option<Value>> = vec![None; graph.len()];
    for id in graph.ids() {
        if !needed[id.index()] {
            continue;
        }
        let node = graph.node(id);
        let v = if node.op.is_source() {
            bound_value(&node.op, &node.ty, bindings)?
        } else {
            let args: Vec<&Value> = node
                .inputs
                .iter()
                .map(|i| {
                    values[i.index()]
                        .as_ref()
                        .expect("operands precede users and are needed")
                })
                .collect();
            compute(&node.op, &node.ty, &args)
        };
        values[id.index()] = Some(v);
    }
    Ok(Evaluation { values })
}

/// Dispatch one validated op. `ty` is the node's type; operands agree with `infer`.
fn compute(op: &Op, ty: &TensorType, args: &[&Value]) -> Value {
    let data = match op {
        Op::Input { .. } | Op::Param { .. } | Op::State { .. } | Op::Scalar { .. } => {
            unreachable!("sources are bound, not computed")
        }
        Op::Const { value } => vec![*value; ty.shape.numel()],
        Op::Iota { axis } => elementwise::iota(ty, *axis),
        Op::Random { dist, stream } => elementwise::random(ty, *dist, *stream, args[0], args[1]),
        Op::Unary(u) => elementwise::unary(*u, args[0]),
        Op::Binary(b) => elementwise::binary(*b, args[0], args[1]),
        Op::PowConst { exponent } => args[0].data.iter().map(|x| x.powf(*exponent)).collect(),
        Op::Compare(c) => elementwise::compare(*c, args[0], args[1]),
        Op::Select => elementwise::select(args[0], args[1], args[2]),
        Op::Cast => args[0].data.clone(),
        Op::Reduce { op, axes, keepdims } => reduce::reduce(*op, axes, *keepdims, args[0]),
        Op::ArgMax { axis } => reduce::argmax(*axis, args[0]),
        Op::Reshape => args[0].data.clone(),
        Op::Expand => movement::expand(ty, args[0]),
        Op::Permute { perm } => movement::permute(ty, perm, args[0]),
        Op::Slice { starts, steps, .. } => movement::slice(ty, starts, steps, args[0]),
        Op::Pad { low, value, .. } => movement::pad(ty, low, *value, args[0]),
        Op::Concat { axis } => movement::concat(ty, *axis, args),
        Op::MatMul => contract::matmul(ty, args[0], args[1]),
        Op::Gather => contract::gather(ty, args[0], args[1]),
        Op::OneHot { depth } => contract::one_hot(*depth, args[0]),
        Op::Unfold2d(w) => window::unfold2d(ty, w, args[0]),
        Op::Fold2d { window: w, .. } => window::fold2d(ty, w, args[0]),
    };
    debug_assert_eq!(
        data.len(),
        ty.shape.numel(),
        "{} produced the wrong element count",
        op.name()
    );
    // Storage rule: every element representable in the node's dtype (casts, i32
    // saturation of empty reductions, constants).
    let dtype = ty.dtype;
    Value {
        shape: ty.shape.clone(),
        dtype,
        data: data.into_iter().map(|x| dtype.quantize(x)).collect(),
    }
}
