//! Translation between an IR `Graph` and the rewriter's e-graph.
//!
//! IR → e-graph: every live node becomes an e-node (identical nodes are merged by
//! hash-consing: common-subexpression elimination comes for free, counter-based
//! `random` included, since equal keys draw equal numbers), and one `Root` e-node
//! holds ALL output values followed by ALL update values, so the whole step is
//! extracted as one term and shared subgraphs stay shared.
//!
//! extracted term → IR: every source of the original graph is re-emitted first, in
//! its original order and with its original op (name, kind, init) — even sources the
//! rewritten step no longer reads, so the step's interface is unchanged. Then the
//! chosen e-nodes follow in topological order, each added through `Graph::add` with
//! its e-class type declared (so the IR re-validates every node), and finally the
//! outputs (same names, same order) and updates (same targets, same order).
//! This module must not decide what to rewrite or what is cheap.

use std::collections::HashMap;

use egg::Id;
use kiln_ir::{Graph, NodeId};

use super::extract::Extracted;
use super::language::{KAnalysis, KGraph, KNode, KOp};

/// A graph in e-graph form.
pub struct Translated {
    pub egraph: KGraph,
    /// The e-class of the tuple of outputs and update values.
    pub root: Id,
}

/// Build the e-graph of `graph`'s live part. Fails only if a node does not
/// translate (which would be a bug), with a message saying which.
pub fn to_egraph(graph: &Graph) -> Result<Translated, String> {
    let mut analysis = KAnalysis::default();
    let mut source_index: HashMap<NodeId, u32> = HashMap::new();
    for id in graph.ids() {
        let node = graph.node(id);
        if node.op.is_source() {
            source_index.insert(id, analysis.sources.len() as u32);
            analysis.sources.push(node.ty.clone());
            analysis.source_nodes.push(id);
        }
    }
    let mut eg = KGraph::new(analysis);
    let live = graph.live_mask();
    let mut map: Vec<Option<Id>> = vec![None; graph.len()];
    for id in graph.ids() {
        if !live[id.index()] {
            continue;
        }
        let node = graph.node(id);
        let op = KOp::from_op(&node.op, &node.ty, source_index.get(&id).copied())
            .ok_or_else(|| format!("node {id} ({}) has no e-graph form", node.op.name()))?;
        let children = node
            .inputs
            .iter()
            .map(|i| map[i.index()].ok_or_else(|| format!("operand {i} of {id} was not translated")))
            .collect::<Result<Vec<Id>, String>>()?;
        map[id.index()] = Some(eg.add(KNode::new(op, children)));
    }
    let roots = graph
        .outputs()
        .iter()
        .map(|(_, v)| *v)
        .chain(graph.updates().iter().map(|(_, v)| *v))
        .map(|v| map[v.index()].ok_or_else(|| format!("root value {v} was not translated")))
        .collect::<Result<Vec<Id>, String>>()?;
    let root = eg.add(KNode::new(KOp::Root, roots));
    eg.rebuild();
    if eg.analysis.type_errors > 0 {
        return Err(format!(
            "{} node(s) of the input graph did not type-check in e-graph form",
            eg.analysis.type_errors
        ));
    }
    Ok(Translated { egraph: eg, root })
}

/// Build the IR graph of an extracted term of `original`'s e-graph `eg`.
pub fn from_extracted(original: &Graph, eg: &KGraph, x: &Extracted) -> Result<Graph, String> {
    let mut g = Graph::new();
    let mut source_new: Vec<NodeId> = Vec::with_capacity(eg.analysis.source_nodes.len());
    let mut old_to_new: HashMap<NodeId, NodeId> = HashMap::new();
    for &old in &eg.analysis.source_nodes {
        let node = original.node(old);
        let new = g
            .add(node.op.clone(), &[], Some(node.ty.clone()))
            .map_err(|e| format!("re-adding source {old}: {e}"))?;
        source_new.push(new);
        old_to_new.insert(old, new);
    }
    let mut made: HashMap<Id, NodeId> = HashMap::new();
    let mut root_children: Option<Vec<NodeId>> = None;
    for &class in &x.order {
        let node = &x.choice[&class];
        let inputs = node
            .children
            .iter()
            .map(|c| {
                made.get(c)
                    .copied()
                    .ok_or_else(|| format!("operand e-class {c} not built"))
            })
            .collect::<Result<Vec<NodeId>, String>>()?;
        match &node.op {
            KOp::Root => root_children = Some(inputs),
            KOp::Source(i) => {
                let new = *source_new
                    .get(*i as usize)
                    .ok_or_else(|| format!("source #{i} is not in the source table"))?;
                made.insert(class, new);
            }
            op => {
                let ir = op.to_op().ok_or_else(|| format!("e-node {op} has no IR form"))?;
                let ty = eg[class].data.ty.clone();
                let new = g
                    .add(ir, &inputs, Some(ty))
                    .map_err(|e| format!("rebuilding e-class {class} ({op}): {e}"))?;
                made.insert(class, new);
            }
        }
    }
    let values = root_children.ok_or("the extracted term has no root")?;
    let n_out = original.outputs().len();
    if values.len() != n_out + original.updates().len() {
        return Err(format!(
            "the root has {} values, the graph {} outputs and {} updates",
            values.len(),
            n_out,
            original.updates().len()
        ));
    }
    for ((name, _), &v) in original.outputs().iter().zip(&values) {
        g.add_output(name, v).map_err(|e| format!("output `{name}`: {e}"))?;
    }
    for ((target, _), &v) in original.updates().iter().zip(&values[n_out..]) {
        let t = old_to_new[target];
        g.add_update(t, v).map_err(|e| format!("update of {target}: {e}"))?;
    }
    Ok(g)
}
