//! The CPU backend: JIT-compiled Cranelift kernels (`jit`), a persistent worker pool
//! (`pool`), host buffers (`buffers`), the out-of-line math helpers (`helpers`), GEMM
//! with fused epilogues (`matmul`) and the program executor (`exec`). It runs what
//! `kiln_compiler::codegen::clif` generated; it generates no code itself.

pub mod buffers;
pub mod exec;
pub mod helpers;
pub mod jit;
pub mod matmul;
pub mod pool;

pub use buffers::{Buffers, POISON};
pub use helpers::HelperTable;
pub use jit::{jit, jit_function, JitCode, JitKernel, JitModuleHandle, JitProgram};
pub use pool::{configured_threads, Pool};
