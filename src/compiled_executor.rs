//! Runs optimizer-update graphs (from `kiln optim replay` traces) through the real
//! compile pipeline: rewrite -> lowering/fusion -> Cranelift JIT, the same kernels a
//! training step uses. Implements `kiln_models::optim::Executor`, so replay can switch
//! between this and the reference interpreter. Owns the binding shuttle only.

use kiln_ir::interp::Bindings;
use kiln_ir::{Graph, SourceKind};
use kiln_models::optim::Executor;
use kiln_runtime::compile::{compile, CompileOptions};

/// Executes a graph compiled with `options`; compiled code is cached by the runtime
/// (keyed by the graph's structural hash), so a replay of many steps compiles once.
pub struct CompiledExecutor {
    pub options: CompileOptions,
    /// Distinct programs compiled or fetched from the cache so far.
    pub runs: usize,
}

impl CompiledExecutor {
    pub fn new(options: CompileOptions) -> Self {
        CompiledExecutor { options, runs: 0 }
    }
}

impl Executor for CompiledExecutor {
    fn run(&mut self, graph: &Graph, bindings: &mut Bindings) -> Result<(), String> {
        let mut exe = compile(graph, &self.options).map_err(|e| e.to_string())?;
        self.runs += 1;
        let persistent = exe.persistent_names();
        for name in &persistent {
            let v = bindings
                .get(name)
                .ok_or_else(|| format!("no value bound for `{name}`"))?;
            exe.set(name, v).map_err(|e| e.to_string())?;
        }
        let mut inputs = Bindings::new();
        for kind in [SourceKind::Input, SourceKind::Scalar] {
            for id in graph.sources_of(kind) {
                let name = graph.node(id).op.source_name().unwrap_or_default();
                if let Some(v) = bindings.get(name) {
                    inputs.insert(name.to_string(), v.clone());
                }
            }
        }
        exe.run(&inputs).map_err(|e| e.to_string())?;
        for name in persistent {
            let v = exe.get(&name).map_err(|e| e.to_string())?;
            bindings.insert(name, v);
        }
        Ok(())
    }
}
