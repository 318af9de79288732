//! The kernel programs of real training: every built-in model (logreg, mlp, convnet)
//! with a cross-entropy loss, differentiated by autodiff and updated by every optimizer,
//! including the refresh phase of SVRG / IVON-PoCo, lowered fused (after the e-graph
//! rewrite) and unfused (one kernel per op).
//!
//! The step assembly mirrors `kiln::step::build_step` (the facade crate depends on
//! kiln-runtime, so it cannot be a dependency of this crate's tests): the loss is built
//! once, re-played at every evaluation point of the optimizer by substituting the
//! parameters, differentiated there, and the optimizer appends its update. Keep the two
//! in sync (or move the assembly below the runtime and use it here).

use std::collections::HashMap;

use kiln_compiler::autodiff::grad_tensors;
use kiln_compiler::kernel::Program;
use kiln_compiler::lower::{lower, LowerOptions};
use kiln_compiler::rewrite::{rewrite, RewriteOptions};
use kiln_ir::{DType, Graph, GraphBuilder, NodeId, SourceKind, Tensor};
use kiln_models::optim::{build_phase, OptimError, Optimizer, Phase};
use kiln_models::{nets, optim};

/// Batch size of the compiled steps (odd, so no kernel shape is a power of two).
const BATCH: usize = 33;

/// `root` with the nodes of `map` replaced (`kiln::step::substitute`).
fn substitute(b: &GraphBuilder, root: NodeId, map: &HashMap<NodeId, NodeId>) -> Tensor {
    if map.is_empty() {
        return b.tensor(root);
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
        remap.insert(id, copy.check().expect("substituted node"));
    }
    b.tensor(*remap.get(&root).unwrap_or(&root))
}

/// One phase's graph (`kiln::step::build_phase_graph`).
pub fn phase_graph(opt: &dyn Optimizer, phase: Phase, loss_fn: &dyn Fn(&GraphBuilder) -> Tensor) -> Graph {
    let b = GraphBuilder::new();
    let loss = loss_fn(&b);
    let loss_id = loss.check().expect("loss graph");
    let param_ids = b.with_graph(|g| g.sources_of(SourceKind::Param));
    let params: Vec<Tensor> = param_ids.iter().map(|&id| b.tensor(id)).collect();
    build_phase(opt, phase, &b, &params, &mut |point| {
        let map: HashMap<NodeId, NodeId> = param_ids
            .iter()
            .zip(&point.params)
            .filter_map(|(&p, t)| t.id().filter(|&id| id != p).map(|id| (p, id)))
            .collect();
        let point_loss = substitute(&b, loss_id, &map);
        let name = if point.label.is_empty() {
            "loss".to_string()
        } else {
            format!("loss@{}", point.label)
        };
        b.output(&name, &point_loss);
        let wrt: Vec<&Tensor> = point.params.iter().collect();
        grad_tensors(&point_loss, &wrt).map_err(|e| OptimError::Invalid {
            optimizer: opt.name(),
            detail: format!("autodiff: {e}"),
        })
    })
    .unwrap_or_else(|e| panic!("{} {phase:?}: {e}", opt.name()));
    b.finish().expect("step graph")
}

fn lowered(name: &str, g: &Graph, out: &mut Vec<(String, Program)>) {
    let fused_graph = rewrite(g, &RewriteOptions::default()).0;
    let fused = lower(&fused_graph, &LowerOptions::fused()).unwrap_or_else(|e| panic!("{name} fused: {e}"));
    out.push((format!("{name} fused"), fused));
    let unfused = lower(g, &LowerOptions::unfused()).unwrap_or_else(|e| panic!("{name} unfused: {e}"));
    out.push((format!("{name} unfused"), unfused));
}

/// `(label, program)` for every model x optimizer x phase x {fused, unfused}.
pub fn training_programs() -> Vec<(String, Program)> {
    let mut out = Vec::new();
    for &model_name in nets::MODELS {
        let model = nets::by_name(model_name, &[1, 28, 28], 10).unwrap();
        let mut shape = vec![BATCH];
        shape.extend(model.example_shape());
        let loss = |b: &GraphBuilder| {
            let x = b.input("x", shape.clone(), DType::F32);
            let y = b.input("y", [BATCH], DType::I32);
            model.forward(b, &x).cross_entropy(&y)
        };
        for &opt_name in optim::OPTIMIZERS {
            let mut opt = optim::by_name(opt_name).unwrap();
            // Required hyperparameters without defaults (IVON's lr and ess) are runtime
            // scalars: any valid value gives the same graph.
            for spec in opt.hyper().specs() {
                if spec.default.is_none() {
                    opt.set(spec.name, 1.0).unwrap();
                }
            }
            for &phase in opt.phases() {
                let g = phase_graph(opt.as_ref(), phase, &loss);
                let label = match phase {
                    Phase::Step => format!("{model_name}/{opt_name}"),
                    Phase::Refresh => format!("{model_name}/{opt_name}/refresh"),
                };
                lowered(&label, &g, &mut out);
            }
        }
    }
    out
}
