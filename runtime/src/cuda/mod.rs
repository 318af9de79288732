//! The CUDA backend's runtime side: finding and loading NVRTC ([`nvrtc`]), reading the
//! ptxas register/spill report ([`ptxas`]), the in-memory and on-disk kernel cache
//! ([`cache`]), device discovery ([`device`]), a program compiled for one GPU ([`step`])
//! and running it there ([`exec`]). `kiln_runtime::compile` with `Backend::Cuda` puts an
//! `Executable` on top of these, with the same API as the CPU backend. Code generation
//! lives in `kiln_compiler::codegen::cuda`; this module never builds kernels, it
//! compiles and runs the text it is given.
//!
//! What is verified, and how (none of it needs a GPU):
//! - every kernel of the built-in models x optimizers (fused and unfused) compiles with
//!   NVRTC for sm_90 without register spills (`runtime/tests/cuda_nvrtc.rs`);
//! - the generated CUDA C, compiled for the host with a shim, computes what the
//!   kernel-IR evaluator computes (`compiler/tests/cuda_emulate.rs`), and snapshots pin
//!   the text (`compiler/tests/cuda_snapshots.rs`);
//! - without libcuda, device discovery, `CudaExecutor` and `compile(.., Backend::Cuda)`
//!   return [`CudaError::NoDriver`] (never a panic).
//!
//! What is NOT verified: nothing here has run on a GPU. The executor ([`exec`]) and the
//! GPU differential tests (`runtime/tests/cuda_gpu.rs`) are written against cudarc
//! 0.19.10's driver API, compile, and skip with a message on machines without a driver.

pub mod cache;
pub mod device;
mod error;
pub mod exec;
pub mod nvrtc;
pub mod ptxas;
pub mod step;

use std::sync::Arc;

use kiln_compiler::codegen::cuda::{render_program, CudaOptions, CudaProgram};
use kiln_compiler::kernel::Program;

pub use cache::{CacheKey, CacheOutcome, KernelCache};
pub use device::{device, devices, driver_present, sm_arch, DeviceInfo};
pub use error::{CudaError, CudaErrorKind, Result};
pub use exec::CudaExecutor;
pub use nvrtc::{load as load_nvrtc, nvrtc, CompileOptions, Compiled, Nvrtc};
pub use ptxas::{parse_ptxas_log, KernelStats};
pub use step::{probe, CudaCode};

/// A program's CUDA code and what NVRTC made of it.
#[derive(Clone, Debug)]
pub struct CompiledProgram {
    pub cuda: CudaProgram,
    pub options: CompileOptions,
    pub compiled: Arc<Compiled>,
    pub outcome: CacheOutcome,
}

impl CompiledProgram {
    /// The ptxas figures of the kernel with C entry name `name` (when compiled for sm_XX).
    pub fn stats(&self, name: &str) -> Option<&KernelStats> {
        self.compiled.stats.iter().find(|s| s.name == name)
    }
}

/// The kernel whose text holds line `line` (1-based) of `cuda.source()`.
pub fn kernel_at_line(cuda: &CudaProgram, line: usize) -> Option<&str> {
    let whole = cuda.source();
    let mut from = 0;
    for k in &cuda.kernels {
        let at = from + whole[from..].find(&k.source)?;
        let first = whole[..at].matches('\n').count() + 1;
        let last = first + k.source.lines().count();
        if (first..last).contains(&line) {
            return Some(&k.name);
        }
        from = at + k.source.len();
    }
    None
}

/// Names the kernels NVRTC complained about (`kiln_step.cu(123): error ...`).
fn name_failing_kernels(cuda: &CudaProgram, log: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in log.lines().filter(|l| l.contains("error")) {
        let line = l
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .and_then(|(n, _)| n.parse::<usize>().ok());
        if let Some(name) = line.and_then(|n| kernel_at_line(cuda, n)) {
            if !names.iter().any(|x| x == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Generate CUDA C for every kernel of `p` and compile it as one translation unit with
/// NVRTC (through `cache`). Compile errors name the failing kernels and carry the log.
pub fn compile_program(
    p: &Program,
    codegen: &CudaOptions,
    opts: &CompileOptions,
    cache: &KernelCache,
) -> Result<CompiledProgram> {
    compile_cuda(render_program(p, codegen)?, opts, cache)
}

/// Compile already generated CUDA (see [`compile_program`]).
pub fn compile_cuda(cuda: CudaProgram, opts: &CompileOptions, cache: &KernelCache) -> Result<CompiledProgram> {
    let codegen = &cuda.options;
    let source = cuda.source();
    let nv = nvrtc()?;
    let key = CacheKey::new(&source, opts, nv.version, &codegen.fingerprint());
    let (compiled, outcome) = cache.get_or_compile(&key, || {
        nv.compile("kiln_step", &source, opts).map_err(|e| match e {
            CudaError::Compile { program, arch, log } => {
                let failing = name_failing_kernels(&cuda, &log);
                let program = if failing.is_empty() {
                    program
                } else {
                    format!("{program} (kernel {})", failing.join(", "))
                };
                CudaError::Compile { program, arch, log }
            }
            e => e,
        })
    })?;
    Ok(CompiledProgram {
        cuda,
        options: opts.clone(),
        compiled,
        outcome,
    })
}
