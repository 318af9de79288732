//! Compiling for the CPU: kernel program -> Cranelift functions -> machine code, and
//! (with the graph front end) graph -> rewrite -> lowering -> kernel program. Owns the
//! compile options and the in-memory compile cache keyed by the graph's structural
//! hash plus every option that changes the generated code; runtime scalars are not
//! part of the key, so changing a learning rate never recompiles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use kiln_compiler::codegen::clif::{self, ClifOptions};
use kiln_compiler::kernel::Program;
use kiln_ir::Graph;

use crate::cpu::jit;
use crate::error::RuntimeError;
use crate::executable::{CompileStats, Compiled, Executable};

/// Where a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// Cranelift JIT on the host CPU.
    #[default]
    Cpu,
}

/// Options of [`compile`]. Everything except `seed` is part of the cache key.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileOptions {
    /// Fuse ops into as few kernels as dependencies allow; `false` = one kernel per op.
    pub fuse: bool,
    /// Run the e-graph rewriter (`kiln_compiler::rewrite`) before lowering.
    pub rewrite: bool,
    pub backend: Backend,
    /// Cranelift code-generation options (SIMD, FMA).
    pub codegen: ClifOptions,
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
}

/// An in-memory cache of compiled steps. Entries are shared: executables created from
/// one entry share code but own their memory.
/// Compiled code per key; the graphs disambiguate hash collisions.
type Entries = HashMap<CacheKey, Vec<(Graph, Arc<Compiled>)>>;

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
        };
        let cached = {
            let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&key)
                .and_then(|v| v.iter().find(|(g, _)| g == graph).map(|(_, c)| Arc::clone(c)))
        };
        let compiled = match cached {
            Some(c) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                let c = Arc::new(compile_graph(graph, options)?);
                self.compiles.fetch_add(1, Ordering::Relaxed);
                let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                map.entry(key).or_default().push((graph.clone(), Arc::clone(&c)));
                c
            }
        };
        Executable::new(compiled, options.seed)
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

/// Rewrite (optionally), lower and generate code for `graph`.
fn compile_graph(graph: &Graph, options: &CompileOptions) -> Result<Compiled, RuntimeError> {
    let Backend::Cpu = options.backend;
    let t = Instant::now();
    let rewritten;
    let g = if options.rewrite {
        rewritten = kiln_compiler::rewrite::rewrite(graph, &kiln_compiler::rewrite::RewriteOptions::default()).0;
        &rewritten
    } else {
        graph
    };
    let rewrite_time = t.elapsed();
    let t = Instant::now();
    let program = lower_graph(g, options.fuse)?;
    let lower_time = t.elapsed();
    let mut compiled = compile_code(program, Some(graph.clone()), &options.codegen)?;
    compiled.stats.rewrite = rewrite_time;
    compiled.stats.lower = lower_time;
    Ok(compiled)
}

fn lower_graph(graph: &Graph, fuse: bool) -> Result<Program, RuntimeError> {
    let opts = if fuse {
        kiln_compiler::lower::LowerOptions::fused()
    } else {
        kiln_compiler::lower::LowerOptions::unfused()
    };
    Ok(kiln_compiler::lower::lower(graph, &opts)?)
}
