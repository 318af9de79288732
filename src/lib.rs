//! kiln: a compiler-style autodiff and fused-kernel generator.
//!
//! This facade re-exports the workspace crates and a [`prelude`], and holds the glue
//! that needs several crates at once: [`step`] assembles model + autodiff + optimizer
//! into one training-step graph, [`train_task`] compiles it and plugs it into the
//! runtime's trainer loop. The `kiln` binary (src/main.rs, src/cli/) is built on top.

pub use kiln_compiler as compiler;
pub use kiln_ir as ir;
pub use kiln_models as models;
pub use kiln_runtime as runtime;

pub mod compiled_executor;
pub mod experiment;
pub mod inspect;
pub mod step;
pub mod train_task;

/// What a model author needs: the DSL, dtypes, inits, the interpreter, autodiff.
pub mod prelude {
    pub use kiln_compiler::autodiff::{grad, grad_tensors};
    pub use kiln_ir::interp::{evaluate, Bindings};
    pub use kiln_ir::{DType, Graph, GraphBuilder, Init, IrError, Shape, Tensor, Value};
    pub use kiln_models::layers::{Conv2d, LayerNorm, Linear};
    pub use kiln_models::nets::Model;
}
