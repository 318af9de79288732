//! CUDA C code generation: kernel IR ([`crate::kernel`]) to readable CUDA C text plus a
//! launch table. Holds no CUDA driver types and never compiles or runs anything: the
//! runtime (`kiln_runtime::cuda`) compiles the text with NVRTC and launches it.
//!
//! What each kernel becomes:
//! - an elementwise [`LoopKernel`](crate::kernel::LoopKernel) (every stage a single
//!   point): a grid-stride loop, one thread per outer point, with 16-byte `float4`
//!   loads/stores when every contiguous access is aligned (`vector`), otherwise scalar;
//! - a reduction / row kernel (stages with inner loops and accumulators): one thread,
//!   warp or block per outer point, warp shuffles and a shared-memory block combine
//!   for each stage's accumulators (`loops`, `plan` explains the choice);
//! - a [`MatMulKernel`](crate::kernel::MatMulKernel): a tiled shared-memory matmul with
//!   4x4 register blocking whose fused epilogue runs per output element (`matmul`).
//!
//! Semantics follow the reference evaluator (`kernel::eval`) instruction by instruction
//! (`body`); Philox is bit-identical to `kiln_ir::philox` (`prelude`). f32 arithmetic is
//! done in f32, so results differ from the f64 oracle by rounding only.
//!
//! Entry points: [`render_program`] (one translation unit with every kernel and the
//! launch table) and [`render_kernel`] (one kernel).

mod body;
mod index;
mod launch;
mod loops;
mod matmul;
mod plan;
mod prelude;
mod program;
mod types;
mod vector;
mod writer;

use thiserror::Error;

pub use launch::{KernelArg, Launch};
pub use plan::Mode;
pub use prelude::prelude;
pub use program::{render_kernel, render_program, CudaKernel, CudaProgram, KernelKind};

/// Version of the generator's output conventions; part of every kernel-cache key.
pub const CODEGEN_VERSION: u32 = 1;

/// Knobs of CUDA code generation. Every field is part of [`CudaOptions::fingerprint`],
/// which kernel caches include in their keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CudaOptions {
    /// Threads per block of loop kernels (a multiple of 32, at most 1024).
    pub block_size: u32,
    /// Use the float4 path for elementwise kernels where it applies.
    pub vectorize: bool,
    /// Upper bound of grid x; kernels grid-stride past it.
    pub max_blocks: u32,
    /// Stages with at most this many inner points run one thread per outer point.
    pub thread_inner_max: usize,
    /// Stages with at most this many inner points run one warp per outer point (more:
    /// one block).
    pub warp_inner_max: usize,
    /// Column-like reductions with at least this many outer points run one thread per
    /// outer point (coalesced across threads).
    pub column_outer_min: usize,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            block_size: 256,
            vectorize: true,
            max_blocks: 8192,
            thread_inner_max: 8,
            warp_inner_max: 1024,
            column_outer_min: 1024,
        }
    }
}

impl CudaOptions {
    /// A stable one-line description of every option (and the generator version and
    /// matmul tiling), for cache keys and generated-file headers.
    pub fn fingerprint(&self) -> String {
        format!(
            "kiln-cuda-codegen v{CODEGEN_VERSION}; block {}; vectorize {}; max_blocks {}; thread_inner_max {}; \
             warp_inner_max {}; column_outer_min {}; matmul {}",
            self.block_size,
            self.vectorize,
            self.max_blocks,
            self.thread_inner_max,
            self.warp_inner_max,
            self.column_outer_min,
            matmul::tiling()
        )
    }

    fn validate(&self) -> Result<(), CudaCodegenError> {
        if self.block_size == 0 || self.block_size % 32 != 0 || self.block_size > 1024 {
            return Err(CudaCodegenError::BadOptions(format!(
                "block_size {} must be a multiple of 32 between 32 and 1024",
                self.block_size
            )));
        }
        if self.max_blocks == 0 {
            return Err(CudaCodegenError::BadOptions("max_blocks must be at least 1".into()));
        }
        Ok(())
    }
}

/// Why a kernel could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CudaCodegenError {
    #[error("cuda codegen: kernel `{kernel}` uses {what}, which the CUDA backend does not support")]
    Unsupported { kernel: String, what: String },
    #[error("cuda codegen: malformed kernel `{kernel}`: {detail}")]
    Malformed { kernel: String, detail: String },
    #[error("cuda codegen: bad options: {0}")]
    BadOptions(String),
    #[error("cuda codegen: no kernel #{index} (the program has {count})")]
    NoKernel { index: usize, count: usize },
}

/// `s` made safe inside a `//` or `/* */` comment.
pub(crate) fn comment_text(s: &str) -> String {
    s.replace("*/", "* /").replace("/*", "/ *")
}

/// A C identifier made from `name` (ASCII alphanumerics and `_`; at most 64 chars).
pub fn c_ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_');
    let mut s: String = s.chars().take(64).collect();
    if s.is_empty() {
        s.push_str("kernel");
    }
    s
}
