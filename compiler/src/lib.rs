//! placeholder
pub mod kernel;
pub mod rewrite;
