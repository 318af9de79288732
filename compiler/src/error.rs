//! `CompileError`: every way lowering a graph to a kernel program (fusion, kernel
//! building, memory planning) can fail. Messages name the node, the op, the dtype or
//! shape involved and what to do. It owns no logic.

use kiln_ir::{DType, NodeId};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CompileError {
    #[error(
        "lower: node {node} ({op}) would need a {dtype} buffer, but buffers hold f32, i32 or bool; \
         keep {dtype} values inside a kernel (cast back to f32 before they are stored)"
    )]
    UnsupportedDType {
        node: NodeId,
        op: &'static str,
        dtype: DType,
    },

    #[error("lower: runtime scalar `{name}` is {dtype}; runtime scalars must be f32 or i32")]
    UnsupportedScalar { name: String, dtype: DType },

    #[error("lower: internal error: {0} (this is a kiln bug; please report it with the graph)")]
    Internal(String),
}
