//! `IrError`: every way building or evaluating a graph can be rejected. Messages name
//! the op, the shapes/dtypes involved and the rule that was broken.

use crate::{DType, Shape};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum IrError {
    #[error(
        "{op}: shapes {lhs} and {rhs} cannot be broadcast together: at result axis {axis} \
         the sizes are {a} and {b} (NumPy rule: sizes must match or one must be 1)"
    )]
    Broadcast {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
        axis: usize,
        a: usize,
        b: usize,
    },

    #[error("{op}: operand shapes {shapes} must be equal ({hint})")]
    ShapeMismatch {
        op: &'static str,
        shapes: String,
        hint: &'static str,
    },

    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },

    #[error("{op}: operand {operand} has dtype {got}, expected {expected}")]
    DType {
        op: &'static str,
        operand: usize,
        got: DType,
        expected: String,
    },

    #[error("{op}: axis {axis} is out of range for a tensor of shape {shape} (rank {rank})")]
    Axis {
        op: &'static str,
        axis: usize,
        shape: Shape,
        rank: usize,
    },

    #[error("{op}: expected {expected} operand(s), got {got}")]
    Arity {
        op: &'static str,
        expected: String,
        got: usize,
    },

    #[error("{op}: {detail}")]
    Invalid { op: &'static str, detail: String },

    #[error("a {kind} named `{name}` already exists in this graph; names must be unique per kind")]
    DuplicateName { kind: &'static str, name: String },

    #[error("node %{0} does not exist in this graph")]
    UnknownNode(usize),

    #[error("tensor handles from two different graphs were combined in `{op}`")]
    ForeignTensor { op: &'static str },

    #[error("no value bound for {kind} `{name}` (shape {shape}, {dtype}); bind it before evaluating")]
    MissingBinding {
        kind: &'static str,
        name: String,
        shape: Shape,
        dtype: DType,
    },

    #[error(
        "value bound for `{name}` has shape {got}, but the graph declares {expected}; \
         feed a tensor of the declared shape"
    )]
    BindingShape { name: String, expected: Shape, got: Shape },

    #[error("{source} (at {location})")]
    At { location: String, source: Box<IrError> },
}

impl IrError {
    /// The error without the source-location wrapper added by the DSL.
    pub fn root(&self) -> &IrError {
        match self {
            IrError::At { source, .. } => source.root(),
            e => e,
        }
    }
}

pub type Result<T, E = IrError> = std::result::Result<T, E>;
