//! A kernel program compiled for one GPU: the program, the device it was compiled for
//! and NVRTC's output for that device's architecture. This is the code part of a CUDA
//! step — shared (`Arc`) by every executor created from it, as the runtime's compile
//! cache shares CPU code; memory and launches belong to [`super::CudaExecutor`].
//!
//! Order of checks (each a [`CudaError`], never a panic): the driver (`libcuda`), the
//! device at the ordinal, NVRTC, then code generation and the NVRTC compile through the
//! kernel cache. The cheap availability checks come first so a machine without a GPU
//! is told so before any code is generated.

use kiln_compiler::codegen::cuda::CudaOptions;
use kiln_compiler::kernel::Program;

use super::device::{device, DeviceInfo};
use super::error::Result;
use super::nvrtc::{nvrtc, Nvrtc};
use super::{compile_program, CompileOptions, CompiledProgram, KernelCache};

/// Code of one kernel program for one GPU.
#[derive(Clone, Debug)]
pub struct CudaCode {
    pub program: Program,
    /// The GPU this code was compiled for.
    pub device: DeviceInfo,
    /// The architecture NVRTC compiled for: the device's own `sm_XX`, or the newest
    /// one the loaded NVRTC supports below it.
    pub arch: String,
    /// The generated CUDA C and what NVRTC made of it (PTX, cubin, ptxas figures).
    pub compiled: CompiledProgram,
}

/// Everything needed to compile for GPU `ordinal`: its description and a loaded NVRTC.
/// Fails with [`super::CudaError::NoDriver`], `NoDevice`, `BadOrdinal` or one of the
/// NVRTC errors; starts nothing on the device.
pub fn probe(ordinal: usize) -> Result<(DeviceInfo, &'static Nvrtc)> {
    let info = device(ordinal)?;
    let nv = nvrtc()?;
    Ok((info, nv))
}

impl CudaCode {
    /// Generate CUDA C for `program` and compile it with NVRTC for GPU `ordinal`
    /// (through `cache`).
    pub fn compile(program: Program, ordinal: usize, codegen: &CudaOptions, cache: &KernelCache) -> Result<CudaCode> {
        let (device, nv) = probe(ordinal)?;
        let arch = nv.arch_for(device.compute_capability)?;
        let compiled = compile_program(&program, codegen, &CompileOptions::for_arch(arch.clone()), cache)?;
        Ok(CudaCode {
            program,
            device,
            arch,
            compiled,
        })
    }
}
