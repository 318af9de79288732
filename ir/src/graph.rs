//! The graph: an append-only arena of typed nodes plus the step's named outputs and
//! in-place updates. Owns node storage and name bookkeeping; every insertion goes
//! through `infer` so an invalid node can never enter a graph.

use std::collections::HashMap;
use std::fmt;

use crate::error::{IrError, Result};
use crate::infer::infer;
use crate::op::{Init, Op};
use crate::{DType, Shape};

/// Index of a node in its graph's arena. Operands always have smaller ids than their
/// users, so arena order is a topological order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// Shape and dtype of a node's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub shape: Shape,
    pub dtype: DType,
}

impl TensorType {
    pub fn new(shape: impl Into<Shape>, dtype: DType) -> Self {
        TensorType {
            shape: shape.into(),
            dtype,
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub ty: TensorType,
}

impl Node {
    pub fn shape(&self) -> &Shape {
        &self.ty.shape
    }
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }
}

/// The kind of an external binding, for error messages and lookups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Input,
    Param,
    State,
    Scalar,
}

impl SourceKind {
    pub fn of(op: &Op) -> Option<SourceKind> {
        match op {
            Op::Input { .. } => Some(SourceKind::Input),
            Op::Param { .. } => Some(SourceKind::Param),
            Op::State { .. } => Some(SourceKind::State),
            Op::Scalar { .. } => Some(SourceKind::Scalar),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Input => "input",
            SourceKind::Param => "param",
            SourceKind::State => "state",
            SourceKind::Scalar => "scalar",
        }
    }
}

/// A tensor program: nodes in topological order, named outputs, and updates
/// (`target <- value` applied after the step, for params and optimizer state).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    nodes: Vec<Node>,
    sources: HashMap<String, NodeId>,
    outputs: Vec<(String, NodeId)>,
    updates: Vec<(NodeId, NodeId)>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate and append a node. `declared` is required for ops whose result type
    /// is not determined by their operands (sources, const, iota, random, reshape,
    /// expand, cast) and must be `None` or agree with inference for the others.
    pub fn add(&mut self, op: Op, inputs: &[NodeId], declared: Option<TensorType>) -> Result<NodeId> {
        for &i in inputs {
            if i.index() >= self.nodes.len() {
                return Err(IrError::UnknownNode(i.index()));
            }
        }
        if let Some(name) = op.source_name() {
            if self.sources.contains_key(name) {
                let kind = SourceKind::of(&op).map_or("source", SourceKind::as_str);
                return Err(IrError::DuplicateName {
                    kind,
                    name: name.to_string(),
                });
            }
            if name.is_empty() {
                return Err(IrError::Invalid {
                    op: op.name(),
                    detail: "names must not be empty".into(),
                });
            }
        }
        let operand_types: Vec<&TensorType> = inputs.iter().map(|i| &self.nodes[i.index()].ty).collect();
        let ty = infer(&op, &operand_types, declared.as_ref())?;
        let id = NodeId(self.nodes.len() as u32);
        if let Some(name) = op.source_name() {
            self.sources.insert(name.to_string(), id);
        }
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            ty,
        });
        Ok(id)
    }

    pub fn input(&mut self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Result<NodeId> {
        self.add(
            Op::Input { name: name.into() },
            &[],
            Some(TensorType::new(shape, dtype)),
        )
    }

    pub fn param(&mut self, name: &str, shape: impl Into<Shape>, init: Init) -> Result<NodeId> {
        self.add(
            Op::Param {
                name: name.into(),
                init,
            },
            &[],
            Some(TensorType::new(shape, DType::F32)),
        )
    }

    pub fn state(&mut self, name: &str, shape: impl Into<Shape>, init: Init) -> Result<NodeId> {
        self.add(
            Op::State {
                name: name.into(),
                init,
            },
            &[],
            Some(TensorType::new(shape, DType::F32)),
        )
    }

    pub fn scalar(&mut self, name: &str, dtype: DType) -> Result<NodeId> {
        self.add(
            Op::Scalar { name: name.into() },
            &[],
            Some(TensorType::new(Shape::scalar(), dtype)),
        )
    }

    pub fn constant(&mut self, value: f64, shape: impl Into<Shape>, dtype: DType) -> Result<NodeId> {
        self.add(Op::Const { value }, &[], Some(TensorType::new(shape, dtype)))
    }

    /// Declare a named output of the step.
    pub fn add_output(&mut self, name: &str, value: NodeId) -> Result<()> {
        self.check_id(value)?;
        if self.outputs.iter().any(|(n, _)| n == name) {
            return Err(IrError::DuplicateName {
                kind: "output",
                name: name.into(),
            });
        }
        self.outputs.push((name.to_string(), value));
        Ok(())
    }

    /// Declare that after the step, param/state `target` takes the value of `value`
    /// (same shape and dtype). The runtime updates the buffer in place.
    pub fn add_update(&mut self, target: NodeId, value: NodeId) -> Result<()> {
        self.check_id(target)?;
        self.check_id(value)?;
        let t = &self.nodes[target.index()];
        if !matches!(t.op, Op::Param { .. } | Op::State { .. }) {
            return Err(IrError::Invalid {
                op: "update",
                detail: format!(
                    "target {target} is a {}, but only params and state can be updated",
                    t.op.name()
                ),
            });
        }
        let v = &self.nodes[value.index()];
        if v.ty != t.ty {
            return Err(IrError::Invalid {
                op: "update",
                detail: format!(
                    "new value {value} of `{}` has type {}, but the target has {}",
                    t.op.source_name().unwrap_or(""),
                    v.ty,
                    t.ty
                ),
            });
        }
        if self.updates.iter().any(|(tg, _)| *tg == target) {
            return Err(IrError::DuplicateName {
                kind: "update of",
                name: t.op.source_name().unwrap_or("").to_string(),
            });
        }
        self.updates.push((target, value));
        Ok(())
    }

    fn check_id(&self, id: NodeId) -> Result<()> {
        if id.index() < self.nodes.len() {
            Ok(())
        } else {
            Err(IrError::UnknownNode(id.index()))
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    pub fn updates(&self) -> &[(NodeId, NodeId)] {
        &self.updates
    }

    /// The source (input/param/state/scalar) node with this name.
    pub fn source(&self, name: &str) -> Option<NodeId> {
        self.sources.get(name).copied()
    }

    /// All source nodes of one kind, in graph order.
    pub fn sources_of(&self, kind: SourceKind) -> Vec<NodeId> {
        self.ids()
            .filter(|&i| SourceKind::of(&self.node(i).op) == Some(kind))
            .collect()
    }

    /// For every node, the nodes that use it (in order, with repeats for repeated operands).
    pub fn users(&self) -> Vec<Vec<NodeId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for id in self.ids() {
            for &i in &self.node(id).inputs {
                users[i.index()].push(id);
            }
        }
        users
    }

    /// Nodes reachable backwards from `roots` (including them), as a mask over the arena.
    pub fn reachable_from(&self, roots: &[NodeId]) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for r in roots {
            live[r.index()] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for inp in &self.nodes[i].inputs {
                    live[inp.index()] = true;
                }
            }
        }
        live
    }

    /// Nodes the outputs and updates depend on.
    pub fn live_mask(&self) -> Vec<bool> {
        let roots: Vec<NodeId> = self
            .outputs
            .iter()
            .map(|(_, id)| *id)
            .chain(self.updates.iter().flat_map(|&(t, v)| [t, v]))
            .collect();
        self.reachable_from(&roots)
    }
}
