//! Compiling a step: graph -> rewrite -> lowering -> kernel program, then for the CPU
//! Cranelift functions -> machine code, or for CUDA CUDA C -> NVRTC (through the kernel
//! cache, `cuda::cache`) for the GPU's own architecture. Owns the compile options, the
//! backend choice and the in-memory compile cache keyed by the graph's structural hash
//! plus every option that changes the generated code (the backend and its device
//! included); runtime scalars are not part of the key, so changing a learning rate never
//! recompiles.
//!
//! For `Backend::Cuda` the driver, the GPU and NVRTC are checked before any rewriting
//! or code generation; without them `compile` returns `RuntimeError::Cuda` (kind
//! `NoDriver`, `NoDevice` or `NoNvrtc`, see `RuntimeError::is_backend_unavailable`)
//! whose message says what is missing and what to do. It never panics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use kiln_compiler::codegen::clif::{self, ClifOptions};
use kiln_compiler::codegen::cuda::CudaOptions;
use kiln_compiler::kernel::Program;
use kiln_ir::Graph;

use crate::cpu::jit;
use crate::cuda::{CudaCode, KernelCache};
use crate::error::RuntimeError;
use crate::executable::{CompileStats, Compiled, CudaCompiled, Executable};

/// Where a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// Cranelift JIT on the host CPU.
    #[default]
    Cpu,
    /// NVRTC-compiled kernels on CUDA GPU `ordinal` (as the driver numbers them).
    /// Not run on a GPU yet: see `crate::cuda`.
    Cuda { ordinal: usize },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Cpu => write!(f, "cpu"),
            Backend::Cuda { ordinal } => write!(f, "cuda:{ordinal}"),
        }
    }
}

/// Options of [`compile`]. Everything except `seed` and `kernel_cache` is part of the
/// cache key.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileOptions {
    /// Fuse ops into as few kernels as dependencies allow; `false` = one kernel per op.
    pub fuse: bool,
    /// Run the e-graph rewriter (`kiln_compiler::rewrite`) before lowering.
    pub rewrite: bool,
    pub backend: Backend,
    /// Cranelift code-generation options (SIMD, FMA); used by `Backend::Cpu`.
    pub codegen: ClifOptions,
    /// CUDA code-generation options; used by `Backend::Cuda`.
    pub cuda: CudaOptions,
    /// Use the CUDA kernel cache (in memory and on disk, `cuda::cache`; `KILN_NO_CACHE=1`
    /// also turns it off). `false` runs NVRTC on every compile. No effect on the CPU.
    pub kernel_cache: bool,
    /// Seed of the initial parameter/state values (`kiln_ir::init`).
    pub seed: u64,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            fuse: true,
            rewrite: true,
            backend: Backend::Cpu,
            codegen: ClifOptions::default(),
            cuda: CudaOptions::default(),
            kernel_cache: true,
            seed: 0,
        }
    }
}

/// The code-relevant part of the options plus the graph's structural hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    graph_hash: u64,
    fuse: bool,
    rewrite: bool,
    backend: Backend,
    codegen: ClifOptions,
    cuda: CudaOptions,
}

/// Code compiled for one backend (what the cache shares between executables).
#[derive(Clone)]
enum Code {
    Cpu(Arc<Compiled>),
    Cuda(Arc<CudaCompiled>),
}

impl Code {
    fn executable(&self, seed: u64) -> Result<Executable, RuntimeError> {
        match self {
            Code::Cpu(c) => Executable::new(Arc::clone(c), seed),
            Code::Cuda(c) => Executable::new_cuda(Arc::clone(c), seed),
        }
    }
}

/// Compiled code per key; the graphs disambiguate hash collisions.
type Entries = HashMap<CacheKey, Vec<(Graph, Code)>>;

/// An in-memory cache of compiled steps. Entries are shared: executables created from
/// one entry share code but own their memory.
#[derive(Default)]
pub struct CompileCache {
    entries: Mutex<Entries>,
    compiles: AtomicUsize,
    hits: AtomicUsize,
}

impl CompileCache {
    pub fn new() -> CompileCache {
        CompileCache::default()
    }

    /// The process-wide cache used by [`compile`].
    pub fn global() -> &'static CompileCache {
        static CACHE: OnceLock<CompileCache> = OnceLock::new();
        CACHE.get_or_init(CompileCache::new)
    }

    /// Compiles performed (cache misses) so far.
    pub fn compiles(&self) -> usize {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Cache hits so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Drop every entry (executables keep their code alive).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Compile `graph` (or reuse the cached code) and create an executable for it.
    pub fn compile(&self, graph: &Graph, options: &CompileOptions) -> Result<Executable, RuntimeError> {
        let key = CacheKey {
            graph_hash: graph.structural_hash(),
            fuse: options.fuse,
            rewrite: options.rewrite,
            backend: options.backend,
            codegen: options.codegen.clone(),
            cuda: options.cuda.clone(),
        };
        let cached = {
            let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&key)
                .and_then(|v| v.iter().find(|(g, _)| g == graph).map(|(_, c)| c.clone()))
        };
        let code = match cached {
            Some(c) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                let c = match options.backend {
                    Backend::Cpu => Code::Cpu(Arc::new(compile_graph(graph, options)?)),
                    Backend::Cuda { ordinal } => Code::Cuda(Arc::new(compile_graph_cuda(graph, ordinal, options)?)),
                };
                self.compiles.fetch_add(1, Ordering::Relaxed);
                let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                map.entry(key).or_default().push((graph.clone(), c.clone()));
                c
            }
        };
        code.executable(options.seed)
    }
}

/// Compile `graph` for `options.backend`, through the process-wide cache.
pub fn compile(graph: &Graph, options: &CompileOptions) -> Result<Executable, RuntimeError> {
    CompileCache::global().compile(graph, options)
}

/// Generate and JIT the code of a kernel program (no cache).
pub fn compile_code(program: Program, graph: Option<Graph>, codegen: &ClifOptions) -> Result<Compiled, RuntimeError> {
    let mut stats = CompileStats::default();
    let t = Instant::now();
    let isa = clif::native_isa(codegen)?;
    let code = clif::compile_program(&program, isa.as_ref(), codegen)?;
    stats.codegen = t.elapsed();
    let jitted = jit(code, isa)?;
    stats.jit = jitted.total_time;
    for k in &jitted.kernels {
        let f = match k {
            crate::cpu::JitCode::Loop(f) => Some(f),
            crate::cpu::JitCode::MatMul { epilogue } => epilogue.as_ref(),
        };
        if let Some(f) = f {
            stats.functions.push((f.name.clone(), f.compile_time, f.code_size));
        }
    }
    Ok(Compiled {
        graph,
        program,
        code: jitted,
        stats,
    })
}

/// An executable for a hand-built kernel program: names come from buffer roles and
/// values are flat (`[len]`). Parameters and state start at zero.
pub fn compile_program(program: Program, codegen: &ClifOptions) -> Result<Executable, RuntimeError> {
    let compiled = compile_code(program, None, codegen)?;
    Executable::new(Arc::new(compiled), 0)
}

/// Rewrite (optionally), lower and generate CPU code for `graph`.
fn compile_graph(graph: &Graph, options: &CompileOptions) -> Result<Compiled, RuntimeError> {
    let (program, stats) = front_end(graph, options)?;
    let mut compiled = compile_code(program, Some(graph.clone()), &options.codegen)?;
    compiled.stats.rewrite = stats.rewrite;
    compiled.stats.lower = stats.lower;
    Ok(compiled)
}

/// Check the GPU and NVRTC, then rewrite (optionally), lower, generate CUDA C and
/// compile it with NVRTC for GPU `ordinal`.
fn compile_graph_cuda(graph: &Graph, ordinal: usize, options: &CompileOptions) -> Result<CudaCompiled, RuntimeError> {
    crate::cuda::probe(ordinal)?;
    let (program, mut stats) = front_end(graph, options)?;
    let disabled;
    let cache = if options.kernel_cache {
        KernelCache::global()
    } else {
        disabled = KernelCache::disabled();
        &disabled
    };
    let t = Instant::now();
    let code = CudaCode::compile(program, ordinal, &options.cuda, cache)?;
    stats.codegen = t.elapsed();
    Ok(CudaCompiled {
        graph: Some(graph.clone()),
        code: Arc::new(code),
        stats,
    })
}

/// Rewrite (optionally) and lower `graph`; the stats hold the two stages' times.
fn front_end(graph: &Graph, options: &CompileOptions) -> Result<(Program, CompileStats), RuntimeError> {
    let mut stats = CompileStats::default();
    let t = Instant::now();
    let rewritten;
    let g = if options.rewrite {
        rewritten = kiln_compiler::rewrite::rewrite(graph, &kiln_compiler::rewrite::RewriteOptions::default()).0;
        &rewritten
    } else {
        graph
    };
    stats.rewrite = t.elapsed();
    let t = Instant::now();
    let program = lower_graph(g, options.fuse)?;
    stats.lower = t.elapsed();
    Ok((program, stats))
}

fn lower_graph(graph: &Graph, fuse: bool) -> Result<Program, RuntimeError> {
    let opts = if fuse {
        kiln_compiler::lower::LowerOptions::fused()
    } else {
        kiln_compiler::lower::LowerOptions::unfused()
    };
    Ok(kiln_compiler::lower::lower(graph, &opts)?)
}
