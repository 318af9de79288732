//! The Rust DSL: `GraphBuilder` and `Tensor` handles with operator overloading.
//!
//! Error handling is *sticky*: every op returns a `Tensor`, never a `Result`, so model
//! code reads like maths (`(x.matmul(&w) + &b).relu()`). When an op is invalid (wrong
//! shapes, dtypes, axes) the builder records the first error, with the source location
//! of the offending DSL call, and returns a poisoned handle; ops on poisoned handles
//! are skipped. `GraphBuilder::finish()` (or `Tensor::check()`) returns that error.
//! This module owns graph construction ergonomics only; validity rules live in `infer`.

mod composite;
mod ops;

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId, TensorType};
use crate::op::{Init, Op};
use crate::{DType, Shape};

struct Inner {
    graph: RefCell<Graph>,
    error: RefCell<Option<IrError>>,
}

/// Builds one graph. Cheap to clone; clones share the graph. A builder made with
/// [`GraphBuilder::scope`] prefixes every parameter/state name with its path, which
/// gives hierarchical names like `mlp.0.weight` (later the checkpoint keys).
#[derive(Clone)]
pub struct GraphBuilder {
    inner: Rc<Inner>,
    prefix: String,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::from_graph(Graph::new())
    }

    /// Continue building on an existing graph (autodiff and optimizers do this).
    pub fn from_graph(graph: Graph) -> Self {
        GraphBuilder {
            inner: Rc::new(Inner {
                graph: RefCell::new(graph),
                error: RefCell::new(None),
            }),
            prefix: String::new(),
        }
    }

    /// A builder on the same graph whose names are prefixed with `name.`.
    pub fn scope(&self, name: impl fmt::Display) -> GraphBuilder {
        GraphBuilder {
            inner: self.inner.clone(),
            prefix: self.qualify(&name.to_string()),
        }
    }

    /// `name` with this builder's scope prefix.
    pub fn qualify(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    /// The first error recorded so far, if any.
    pub fn error(&self) -> Option<IrError> {
        self.inner.error.borrow().clone()
    }

    /// The finished graph, or the first error any DSL call made.
    pub fn finish(&self) -> Result<Graph> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(self.inner.graph.borrow().clone()),
        }
    }

    /// Read access to the graph under construction.
    pub fn with_graph<R>(&self, f: impl FnOnce(&Graph) -> R) -> R {
        f(&self.inner.graph.borrow())
    }

    /// A handle to an existing node of this builder's graph.
    pub fn tensor(&self, id: NodeId) -> Tensor {
        let exists = self.inner.graph.borrow().get(id).is_some();
        if exists {
            Tensor {
                b: self.clone(),
                id: Some(id),
            }
        } else {
            self.fail(IrError::UnknownNode(id.index()), Location::caller())
        }
    }

    /// Look up a source (input/param/state/scalar) by its full name.
    pub fn source(&self, name: &str) -> Option<Tensor> {
        let id = self.inner.graph.borrow().source(name)?;
        Some(Tensor {
            b: self.clone(),
            id: Some(id),
        })
    }

    fn same(&self, other: &GraphBuilder) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether two builders (e.g. of two tensor handles) build the same graph.
    pub fn shares_graph(&self, other: &GraphBuilder) -> bool {
        self.same(other)
    }

    fn fail(&self, e: IrError, loc: &'static Location<'static>) -> Tensor {
        let mut slot = self.inner.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(IrError::At {
                location: format!("{}:{}", loc.file(), loc.line()),
                source: Box::new(e),
            });
        }
        Tensor {
            b: self.clone(),
            id: None,
        }
    }

    /// Add a node; on failure record the error (with the caller's location) and
    /// return a poisoned tensor. Poisoned operands poison the result silently.
    #[track_caller]
    pub fn node(&self, op: Op, inputs: &[&Tensor], declared: Option<TensorType>) -> Tensor {
        let loc = Location::caller();
        let mut ids = Vec::with_capacity(inputs.len());
        for t in inputs {
            if !self.same(&t.b) {
                return self.fail(IrError::ForeignTensor { op: op.name() }, loc);
            }
            match t.id {
                Some(id) => ids.push(id),
                None => {
                    return Tensor {
                        b: self.clone(),
                        id: None,
                    }
                }
            }
        }
        let res = self.inner.graph.borrow_mut().add(op, &ids, declared);
        match res {
            Ok(id) => Tensor {
                b: self.clone(),
                id: Some(id),
            },
            Err(e) => self.fail(e, loc),
        }
    }

    /// Batch data fed each step (name is NOT scoped: inputs are global).
    #[track_caller]
    pub fn input(&self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Tensor {
        self.node(
            Op::Input { name: name.into() },
            &[],
            Some(TensorType::new(shape, dtype)),
        )
    }

    /// A trainable f32 parameter named `<scope>.name`.
    #[track_caller]
    pub fn param(&self, name: &str, shape: impl Into<Shape>, init: Init) -> Tensor {
        self.node(
            Op::Param {
                name: self.qualify(name),
                init,
            },
            &[],
            Some(TensorType::new(shape, DType::F32)),
        )
    }

    /// Optimizer state named `<scope>.name`.
    #[track_caller]
    pub fn state(&self, name: &str, shape: impl Into<Shape>, init: Init) -> Tensor {
        self.node(
            Op::State {
                name: self.qualify(name),
                init,
            },
            &[],
            Some(TensorType::new(shape, DType::F32)),
        )
    }

    /// A runtime scalar (not scoped). Changing its value never recompiles.
    #[track_caller]
    pub fn scalar(&self, name: &str, dtype: DType) -> Tensor {
        self.node(
            Op::Scalar { name: name.into() },
            &[],
            Some(TensorType::new(Shape::scalar(), dtype)),
        )
    }

    /// A constant of shape [] (broadcast by the ops that use it).
    #[track_caller]
    pub fn constant(&self, value: f64, dtype: DType) -> Tensor {
        self.node(Op::Const { value }, &[], Some(TensorType::new(Shape::scalar(), dtype)))
    }

    /// A tensor of `shape` filled with `value`.
    #[track_caller]
    pub fn full(&self, value: f64, shape: impl Into<Shape>, dtype: DType) -> Tensor {
        self.node(Op::Const { value }, &[], Some(TensorType::new(shape, dtype)))
    }

    /// Index along `axis`, as `dtype`.
    #[track_caller]
    pub fn iota(&self, shape: impl Into<Shape>, axis: usize, dtype: DType) -> Tensor {
        self.node(Op::Iota { axis }, &[], Some(TensorType::new(shape, dtype)))
    }

    /// Declare a named output of the step.
    #[track_caller]
    pub fn output(&self, name: &str, t: &Tensor) {
        let loc = Location::caller();
        if let Some(id) = t.id {
            if let Err(e) = self.inner.graph.borrow_mut().add_output(name, id) {
                self.fail(e, loc);
            }
        }
    }

    /// After the step, `target` (a param or state) takes the value of `value`.
    #[track_caller]
    pub fn update(&self, target: &Tensor, value: &Tensor) {
        let loc = Location::caller();
        if let (Some(t), Some(v)) = (target.id, value.id) {
            if let Err(e) = self.inner.graph.borrow_mut().add_update(t, v) {
                self.fail(e, loc);
            }
        }
    }
}

/// A handle to a node in a graph under construction.
#[derive(Clone)]
pub struct Tensor {
    b: GraphBuilder,
    id: Option<NodeId>,
}

impl Tensor {
    /// The node id, or `None` for a poisoned handle.
    pub fn id(&self) -> Option<NodeId> {
        self.id
    }

    pub fn builder(&self) -> &GraphBuilder {
        &self.b
    }

    /// The first error recorded by this tensor's builder, if any.
    pub fn check(&self) -> Result<NodeId> {
        match (self.id, self.b.error()) {
            (Some(id), None) => Ok(id),
            (_, Some(e)) => Err(e),
            (None, None) => Err(IrError::Invalid {
                op: "tensor",
                detail: "poisoned handle".into(),
            }),
        }
    }

    /// Type of the node (shape [] f32 for a poisoned handle).
    pub fn ty(&self) -> TensorType {
        match self.id {
            Some(id) => self.b.with_graph(|g| g.node(id).ty.clone()),
            None => TensorType::new(Shape::scalar(), DType::F32),
        }
    }

    pub fn shape(&self) -> Shape {
        self.ty().shape
    }

    pub fn dims(&self) -> Vec<usize> {
        self.ty().shape.0
    }

    pub fn rank(&self) -> usize {
        self.ty().shape.rank()
    }

    pub fn dtype(&self) -> DType {
        self.ty().dtype
    }

    pub fn numel(&self) -> usize {
        self.ty().shape.numel()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "Tensor({id}: {})", self.ty()),
            None => write!(f, "Tensor(<poisoned>)"),
        }
    }
}
