//! The shared, immutable part of a compiled step: for the CPU the kernel program and its
//! machine code ([`Compiled`]), for CUDA the program compiled for one GPU
//! ([`CudaCompiled`]), plus how long each compile stage took. The compile cache hands
//! these out behind `Arc`s; executables own memory only. Owns no compiling and no
//! running.

use std::sync::Arc;
use std::time::Duration;

use kiln_compiler::kernel::Program;
use kiln_ir::Graph;

use crate::cpu::JitProgram;
use crate::cuda::CudaCode;

/// How long each compile stage took, and what it produced.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    pub rewrite: Duration,
    pub lower: Duration,
    /// Code generation: Cranelift IR (CPU) or CUDA C plus the NVRTC compile (CUDA; near
    /// zero when the kernel cache had the result).
    pub codegen: Duration,
    /// Cranelift + linking of all kernels (CPU; zero for CUDA, whose module is loaded
    /// per executable).
    pub jit: Duration,
    /// Per generated function: (name, Cranelift compile time, code bytes) (CPU only).
    pub functions: Vec<(String, Duration, usize)>,
}

/// Compiled CPU code of one step: the kernel program and its machine code.
pub struct Compiled {
    /// The graph as the user gave it (before rewriting), when compiled from a graph.
    pub graph: Option<Graph>,
    pub program: Program,
    pub code: JitProgram,
    pub stats: CompileStats,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("kernels", &self.program.kernels.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Compiled CUDA code of one step for one GPU.
#[derive(Debug)]
pub struct CudaCompiled {
    /// The graph as the user gave it (before rewriting).
    pub graph: Option<Graph>,
    /// Program, device, architecture, CUDA C, PTX/cubin and ptxas figures.
    pub code: Arc<CudaCode>,
    pub stats: CompileStats,
}
