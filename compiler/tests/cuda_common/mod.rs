//! Shared helpers of the CUDA tests (sample programs; the host shim header).

pub mod programs;
