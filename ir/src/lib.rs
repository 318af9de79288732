//! kiln-ir: the tensor IR every other kiln crate speaks.
//!
//! Owns dtypes, shapes, the closed op set, the graph arena with validation, the Rust
//! DSL (`GraphBuilder`/`Tensor`), printing/DOT, a stable structural hash, Philox
//! random numbers, parameter initialisation and the f64 reference interpreter (the
//! oracle for every backend, rewrite and fusion test). It must not know about
//! compilation, kernels or devices.

pub mod dsl;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod hash;
pub mod infer;
pub mod init;
pub mod interp;
pub mod op;
pub mod philox;
pub mod print;
pub mod shape;
pub mod value;

pub use dsl::{GraphBuilder, Tensor};
pub use dtype::DType;
pub use error::{IrError, Result};
pub use graph::{Graph, Node, NodeId, SourceKind, TensorType};
pub use interp::{evaluate, Bindings};
pub use op::{BinaryOp, CompareOp, Distribution, Init, Op, ReduceOp, UnaryOp, Window2d};
pub use shape::Shape;
pub use value::Value;
