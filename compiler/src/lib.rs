//! kiln-compiler: everything between a differentiable tensor graph and native code —
//! autodiff, e-graph rewriting, fusion, the kernel IR and code generation (Cranelift
//! functions, CUDA C text). It holds no CUDA driver types: the runtime loads and runs
//! what this crate emits.

pub mod autodiff;

pub use autodiff::AutodiffError;
pub use error::CompileError;
pub mod codegen;
pub mod error;
pub mod kernel;
pub mod lower;
pub mod rewrite;
