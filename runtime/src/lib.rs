//! kiln-runtime: devices, buffers, executing compiled steps, the trainer loop, datasets,
//! checkpoints.
//!
//! It loads and runs what `kiln-compiler` produced; it builds no graphs and generates no code.

pub mod compile;
pub mod cpu;
pub mod cuda;
pub mod data;
pub mod debug;
pub mod error;
pub mod executable;
pub mod train;
