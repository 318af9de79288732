//! Training-step assembly: the user's forward pass and loss, reverse-mode autodiff and an
//! optimizer, into ONE graph per optimizer phase (the step, and the outer refresh of
//! SVRG / IVON-PoCo). Owns the evaluation-point substitution; the update maths belongs
//! to `kiln_models::optim`, differentiation to `kiln_compiler::autodiff`. It must not
//! compile or run anything.
//!
//! # How a step graph is built
//! 1. The loss closure builds the forward pass and a scalar f32 loss on a fresh
//!    `GraphBuilder`, creating the parameters (all `Param` nodes become the optimized
//!    parameters, in graph order) and its inputs (data batches).
//! 2. The optimizer names the parameter versions the loss must be evaluated at
//!    (`Optimizer::eval_points`): the parameters themselves for most, θ = m + σ·z for
//!    IVON, the current parameters and the snapshot for SVRG.
//! 3. For every point the forward pass is *re-played* with the parameter nodes replaced
//!    by the point's tensors: every node between the parameters and the loss is copied
//!    with remapped operands, everything that does not depend on a parameter (data,
//!    preprocessing, dropout masks) is shared. The model code runs once and needs no
//!    cooperation. Autodiff then differentiates that point's loss with respect to the
//!    point's tensors, so IVON gets ∇ℓ(θ) at the sampled θ and SVRG gets both gradients
//!    on the same batch, in the same graph.
//! 4. The optimizer appends its update. The step graph's outputs are `loss` (the loss at
//!    the first point: at the sampled weights for IVON) and `loss@<label>` for the other
//!    points; any outputs the model declared stay.
//!
//! The host half is the optimizer's: bind `Optimizer::scalars(t)` (and
//! `refresh_scalars` for refresh runs) to the graph's runtime scalars every step;
//! [`bind_scalars`] does that for interpreter bindings.

use std::collections::HashMap;
use std::fmt;

use kiln_compiler::autodiff::{grad_tensors, AutodiffError};
use kiln_ir::{Bindings, Graph, GraphBuilder, IrError, NodeId, SourceKind, Tensor, Value};
use kiln_models::optim::{build_phase, OptimError, Optimizer, Phase};

/// Name of the step graph's loss output.
pub const LOSS: &str = "loss";

/// Why a training step could not be assembled.
#[derive(Debug)]
pub enum StepError {
    /// The loss closure built an invalid graph, or substitution failed.
    Graph(IrError),
    Autodiff(AutodiffError),
    Optim(OptimError),
    /// The loss closure created no parameters.
    NoParams,
    /// The host scalars do not cover the graph's optimizer scalars.
    UnboundScalar(String),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Graph(e) => write!(f, "building the training step: {e}"),
            StepError::Autodiff(e) => write!(f, "differentiating the loss: {e}"),
            StepError::Optim(e) => write!(f, "{e}"),
            StepError::NoParams => write!(
                f,
                "the loss creates no parameters (`GraphBuilder::param`), so there is nothing to optimize"
            ),
            StepError::UnboundScalar(n) => write!(
                f,
                "the graph reads the runtime scalar `{n}`, but the optimizer's host scalars do not set it"
            ),
        }
    }
}

/// No `source()`: every message already includes the underlying error's text, and
/// reporting it as the source as well would print it twice in a `{:#}` error chain.
impl std::error::Error for StepError {}

impl From<IrError> for StepError {
    fn from(e: IrError) -> Self {
        StepError::Graph(e)
    }
}
impl From<OptimError> for StepError {
    fn from(e: OptimError) -> Self {
        StepError::Optim(e)
    }
}

/// The graphs of one training setup.
#[derive(Clone, Debug)]
pub struct StepGraphs {
    /// Forward + backward at every evaluation point + the optimizer update.
    pub step: Graph,
    /// The outer refresh (SVRG, IVON-PoCo): one run per micro-batch of the mega-batch.
    pub refresh: Option<Graph>,
    /// The optimized parameters, in the order that keys their RNG streams.
    pub params: Vec<String>,
}

/// Assemble the step graph (and the refresh graph, if the optimizer has one) of
/// minimising `loss` with `opt`. `loss` is called once per graph and must build the same
/// forward pass each time (parameters are matched by name across graphs).
pub fn build_step(opt: &dyn Optimizer, loss: &dyn Fn(&GraphBuilder) -> Tensor) -> Result<StepGraphs, StepError> {
    let (step, params) = build_phase_graph(opt, Phase::Step, loss)?;
    let refresh = if opt.phases().contains(&Phase::Refresh) {
        Some(build_phase_graph(opt, Phase::Refresh, loss)?.0)
    } else {
        None
    };
    Ok(StepGraphs { step, refresh, params })
}

fn build_phase_graph(
    opt: &dyn Optimizer,
    phase: Phase,
    loss_fn: &dyn Fn(&GraphBuilder) -> Tensor,
) -> Result<(Graph, Vec<String>), StepError> {
    let b = GraphBuilder::new();
    let loss = loss_fn(&b);
    let loss_id = loss.check()?;
    let param_ids = b.with_graph(|g| g.sources_of(SourceKind::Param));
    if param_ids.is_empty() {
        return Err(StepError::NoParams);
    }
    let params: Vec<Tensor> = param_ids.iter().map(|&id| b.tensor(id)).collect();
    let names: Vec<String> = b.with_graph(|g| {
        param_ids
            .iter()
            .map(|&id| g.node(id).op.source_name().unwrap_or("").to_string())
            .collect()
    });
    let mut failure: Option<StepError> = None;
    let result = build_phase(opt, phase, &b, &params, &mut |point| {
        let map: HashMap<NodeId, NodeId> = param_ids
            .iter()
            .zip(&point.params)
            .filter_map(|(&p, t)| t.id().filter(|&id| id != p).map(|id| (p, id)))
            .collect();
        let point_loss = match substitute(&b, loss_id, &map) {
            Ok(l) => l,
            Err(e) => {
                failure = Some(StepError::Graph(e));
                return Err(placeholder(opt));
            }
        };
        let name = if point.label.is_empty() {
            LOSS.to_string()
        } else {
            format!("{LOSS}@{}", point.label)
        };
        b.output(&name, &point_loss);
        let wrt: Vec<&Tensor> = point.params.iter().collect();
        grad_tensors(&point_loss, &wrt).map_err(|e| {
            failure = Some(StepError::Autodiff(e));
            placeholder(opt)
        })
    });
    if let Err(e) = result {
        return Err(failure.take().unwrap_or(StepError::Optim(e)));
    }
    Ok((b.finish()?, names))
}

fn placeholder(opt: &dyn Optimizer) -> OptimError {
    OptimError::Invalid {
        optimizer: opt.name(),
        detail: "the loss could not be evaluated at an evaluation point".into(),
    }
}

/// The value of `root` with the nodes of `map` replaced: every node that `root` depends
/// on and that depends on a replaced node is copied with remapped operands (sources are
/// never copied). Returns `root` itself when nothing it depends on is replaced.
pub fn substitute(b: &GraphBuilder, root: NodeId, map: &HashMap<NodeId, NodeId>) -> Result<Tensor, IrError> {
    if map.is_empty() {
        return Ok(b.tensor(root));
    }
    let copies: Vec<(NodeId, kiln_ir::Node)> = b.with_graph(|g| {
        let live = g.reachable_from(&[root]);
        let mut dirty = vec![false; g.len()];
        for id in map.keys() {
            dirty[id.index()] = true;
        }
        let mut out = Vec::new();
        for id in g.ids().take(root.index() + 1) {
            let node = g.node(id);
            if live[id.index()] && !node.op.is_source() && node.inputs.iter().any(|i| dirty[i.index()]) {
                dirty[id.index()] = true;
                out.push((id, node.clone()));
            }
        }
        out
    });
    let mut remap = map.clone();
    for (id, node) in copies {
        let inputs: Vec<Tensor> = node
            .inputs
            .iter()
            .map(|i| b.tensor(*remap.get(i).unwrap_or(i)))
            .collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let copy = b.node(node.op, &refs, Some(node.ty));
        remap.insert(id, copy.check()?);
    }
    Ok(b.tensor(*remap.get(&root).unwrap_or(&root)))
}

/// Bind the optimizer's host scalars to `graph`'s runtime scalars (dtype from the graph);
/// an error when the graph reads an `optim.*` scalar that `values` does not set.
pub fn bind_scalars(graph: &Graph, values: &[(String, f64)], bindings: &mut Bindings) -> Result<(), StepError> {
    for id in graph.sources_of(SourceKind::Scalar) {
        let node = graph.node(id);
        let name = node.op.source_name().unwrap_or("");
        match values.iter().find(|(n, _)| n == name) {
            Some((_, v)) => {
                bindings.insert(name.to_string(), Value::scalar(*v, node.dtype()));
            }
            None if name.starts_with(kiln_models::optim::SCALAR_PREFIX) => {
                return Err(StepError::UnboundScalar(name.to_string()))
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::interp::evaluate_nodes;
    use kiln_ir::{DType, Init};

    #[test]
    fn substitution_replays_only_the_dependent_part() {
        let b = GraphBuilder::new();
        let x = b.input("x", [3], DType::F32);
        let w = b.param("w", [3], Init::Zeros);
        let pre = x.exp(); // independent of w: shared
        let loss = (&(&pre * &w) + 1.0).sum_all();
        let v = b.input("v", [3], DType::F32);
        let before = b.with_graph(|g| g.len());
        let l2 = substitute(
            &b,
            loss.id().unwrap(),
            &HashMap::from([(w.id().unwrap(), v.id().unwrap())]),
        )
        .unwrap();
        // mul, add (the constant 1 and its expand are not copied: they do not depend on w), sum
        let g = b.finish().unwrap();
        assert!(g.len() - before <= 4, "copied too much: {}", g.len() - before);
        let bind = Bindings::from([
            ("x".into(), Value::new([3], DType::F32, vec![0.0, 1.0, 2.0]).unwrap()),
            ("w".into(), Value::new([3], DType::F32, vec![1.0, 1.0, 1.0]).unwrap()),
            ("v".into(), Value::new([3], DType::F32, vec![2.0, 0.0, -1.0]).unwrap()),
        ]);
        let vals = evaluate_nodes(&g, &bind, &[loss.id().unwrap(), l2.id().unwrap()]).unwrap();
        let e = |k: f64| k.exp();
        assert!((vals[0].data[0] - (e(0.0) + e(1.0) + e(2.0) + 3.0)).abs() < 1e-12);
        assert!((vals[1].data[0] - (2.0 * e(0.0) - e(2.0) + 3.0)).abs() < 1e-12);
    }
}
