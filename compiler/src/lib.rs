//! placeholder
pub mod kernel;
pub mod codegen;
pub mod rewrite;
