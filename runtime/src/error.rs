//! `RuntimeError`: every way compiling or running a step can fail at run time — wrong
//! input names, shapes or dtypes, unset scalars, unknown parameters, and failures of
//! the compiler, the JIT or the CUDA backend underneath. Messages say what was
//! expected and what to do. It owns no logic.

use kiln_compiler::codegen::clif::CodegenError;
use kiln_compiler::CompileError;
use kiln_ir::{DType, IrError, Shape};

use crate::cuda::CudaErrorKind;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuntimeError {
    #[error("run: `{name}` is not an input or runtime scalar of this step; known names: {known}")]
    UnknownInput { name: String, known: String },

    #[error("run: input `{name}` is missing; bind a {dtype} value of shape {shape}")]
    MissingInput { name: String, shape: String, dtype: DType },

    #[error(
        "run: `{name}` expects shape {expected}, got {got}; reshape the value or rebuild the graph for the new shape"
    )]
    InputShape { name: String, expected: String, got: Shape },

    #[error("run: `{name}` expects dtype {expected}, got {got}; convert the value (e.g. Value::from_f32 / from_i32)")]
    InputDType { name: String, expected: DType, got: DType },

    #[error("run: `{name}` has {got} data elements for shape {shape}; a value must hold shape.numel() elements")]
    InconsistentValue { name: String, got: usize, shape: Shape },

    #[error("run: runtime scalar `{name}` was never set; call set_scalar(\"{name}\", ..) or pass it with the inputs")]
    ScalarUnset { name: String },

    #[error("run: `{name}` is not a runtime scalar of this step; known scalars: {known}")]
    UnknownScalar { name: String, known: String },

    #[error("`{name}` is not a parameter or state tensor of this step; known: {known}")]
    UnknownPersistent { name: String, known: String },

    #[error("`{name}` holds {expected} elements ({shape}), the given value has {got} ({got_shape})")]
    PersistentShape {
        name: String,
        expected: usize,
        shape: String,
        got: usize,
        got_shape: Shape,
    },

    #[error("compile: the graph is invalid: {0}")]
    Graph(#[from] IrError),

    #[error("compile: {0}")]
    Lower(#[from] CompileError),

    #[error("compile: {0}")]
    Codegen(#[from] CodegenError),

    #[error("jit: Cranelift could not compile kernel `{kernel}`: {detail}")]
    Jit { kernel: String, detail: String },

    #[error("run: kernel program is inconsistent: {0} (a kiln bug; please report it with the graph)")]
    Program(String),

    #[error("run: a worker thread panicked while running `{kernel}`")]
    WorkerPanicked { kernel: String },

    #[error("compile: backend {0} is not available in this build")]
    BackendUnavailable(String),

    /// A failure of the CUDA backend (`crate::cuda::CudaError`, kept as its kind and
    /// message so this type stays `Clone + PartialEq`). Without a driver, a GPU or
    /// NVRTC the message says what is missing and what to do.
    #[error("{message}")]
    Cuda { kind: CudaErrorKind, message: String },
}

impl RuntimeError {
    /// The requested backend cannot run on this machine (no CUDA driver, no GPU, no
    /// NVRTC): the case in which a caller may fall back to the CPU.
    pub fn is_backend_unavailable(&self) -> bool {
        match self {
            RuntimeError::Cuda { kind, .. } => kind.is_unavailable(),
            RuntimeError::BackendUnavailable(_) => true,
            _ => false,
        }
    }
}
