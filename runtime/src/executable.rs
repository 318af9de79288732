//! `Executable`: a compiled step plus its memory, on the CPU or on a CUDA GPU. Code is
//! shared (`Arc`, from the compile cache); memory is owned: parameters and optimizer
//! state persist across `run` calls and are updated in place (on the device, for CUDA),
//! runtime scalars keep their last value, inputs are bound (copied in) every run and
//! outputs copied out. Owns run-time validation of names, shapes and dtypes and the
//! get/set API for checkpoints, identical for every backend; where memory lives and how
//! kernels execute is `engine` (CPU: `crate::cpu`, CUDA: `crate::cuda::CudaExecutor`).

mod code;
mod engine;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kiln_compiler::kernel::{BufferId, BufferRole, Program, Storage};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, Op, Shape, TensorType, Value};

pub use code::{CompileStats, Compiled, CudaCompiled};
use engine::Engine;

use crate::compile::Backend;
use crate::cuda::CudaExecutor;
use crate::error::RuntimeError;

/// Types of a step's external names.
#[derive(Clone, Debug, Default)]
struct Names {
    inputs: BTreeMap<String, TensorType>,
    scalars: BTreeMap<String, DType>,
    persistent: BTreeMap<String, TensorType>,
    outputs: Vec<(String, Shape)>,
}

impl Names {
    fn from_graph(g: &Graph) -> Names {
        let mut n = Names::default();
        for node in g.nodes() {
            match &node.op {
                Op::Input { name } => {
                    n.inputs.insert(name.clone(), node.ty.clone());
                }
                Op::Scalar { name } => {
                    n.scalars.insert(name.clone(), node.ty.dtype);
                }
                Op::Param { name, .. } | Op::State { name, .. } => {
                    n.persistent.insert(name.clone(), node.ty.clone());
                }
                _ => {}
            }
        }
        n.outputs = g
            .outputs()
            .iter()
            .map(|(name, id)| (name.clone(), g.node(*id).ty.shape.clone()))
            .collect();
        n
    }

    fn from_program(p: &Program) -> Names {
        let mut n = Names::default();
        for b in &p.buffers {
            let ty = TensorType::new(vec![b.len], b.dtype);
            match &b.role {
                BufferRole::Input(name) => {
                    n.inputs.insert(name.clone(), ty);
                }
                BufferRole::Param(name) | BufferRole::State(name) => {
                    n.persistent.insert(name.clone(), ty);
                }
                BufferRole::Output(name) => n.outputs.push((name.clone(), Shape::new(vec![b.len]))),
                BufferRole::Temp => {}
            }
        }
        for s in &p.scalars {
            n.scalars.insert(s.name.clone(), s.dtype);
        }
        n
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(|s| s.as_str()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// A compiled step with its own parameters, state and scalars.
pub struct Executable {
    engine: Engine,
    names: Names,
    /// Buffers by external name and role.
    inputs: HashMap<String, Vec<BufferId>>,
    persistent: HashMap<String, Vec<BufferId>>,
    outputs: HashMap<String, BufferId>,
    /// Params/state the program does not touch, kept host-side for get/set.
    detached: HashMap<String, Value>,
    scalar_values: HashMap<String, f64>,
    poison: bool,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("backend", &self.backend())
            .field("kernels", &self.program().kernels.len())
            .field("buffers", &self.program().buffers.len())
            .finish()
    }
}

impl Executable {
    /// Fresh host memory for CPU code `compiled`; params/state from `kiln_ir::init`
    /// with `seed`.
    pub fn new(compiled: Arc<Compiled>, seed: u64) -> Result<Executable, RuntimeError> {
        Self::with_engine(Engine::cpu(compiled)?, seed)
    }

    /// Load CUDA code `compiled` on its GPU with fresh device memory; params/state from
    /// `kiln_ir::init` with `seed`, copied to the device.
    pub fn new_cuda(compiled: Arc<CudaCompiled>, seed: u64) -> Result<Executable, RuntimeError> {
        Self::with_engine(Engine::cuda(compiled)?, seed)
    }

    fn with_engine(engine: Engine, seed: u64) -> Result<Executable, RuntimeError> {
        let p = engine.program();
        crate::debug::on_compile(p);
        let names = match engine.graph() {
            Some(g) => Names::from_graph(g),
            None => Names::from_program(p),
        };
        let (mut inputs, mut persistent, mut outputs) = (HashMap::new(), HashMap::new(), HashMap::new());
        for (i, b) in p.buffers.iter().enumerate() {
            let id = BufferId(i as u32);
            match &b.role {
                BufferRole::Input(n) => inputs.entry(n.clone()).or_insert_with(Vec::new).push(id),
                BufferRole::Param(n) | BufferRole::State(n) => {
                    persistent.entry(n.clone()).or_insert_with(Vec::new).push(id)
                }
                BufferRole::Output(n) => {
                    outputs.insert(n.clone(), id);
                }
                BufferRole::Temp => {}
            }
        }
        for (name, shape) in &names.outputs {
            match outputs.get(name) {
                Some(&id) if p.buffers[id.0 as usize].len == shape.numel() => {}
                Some(&id) => {
                    return Err(RuntimeError::Program(format!(
                        "output `{name}` has {} elements in the program but shape {shape}",
                        p.buffers[id.0 as usize].len
                    )))
                }
                None => return Err(RuntimeError::Program(format!("output `{name}` has no buffer"))),
            }
        }
        let init = engine.graph().map(|g| kiln_ir::init::initial_bindings(g, seed));
        let mut exe = Executable {
            engine,
            names,
            inputs,
            persistent,
            outputs,
            detached: HashMap::new(),
            scalar_values: HashMap::new(),
            poison: false,
        };
        for (name, v) in init.into_iter().flatten() {
            exe.set(&name, &v)?;
        }
        Ok(exe)
    }

    /// Where this executable runs.
    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Cpu { .. } => Backend::Cpu,
            Engine::Cuda { exec, .. } => Backend::Cuda {
                ordinal: exec.device().ordinal,
            },
        }
    }

    /// The kernel program this executable runs (for inspection: kernels, buffers).
    pub fn program(&self) -> &Program {
        self.engine.program()
    }

    /// The shared CPU code (`None` for a CUDA executable: see [`Executable::cuda`]).
    pub fn compiled(&self) -> Option<&Arc<Compiled>> {
        match &self.engine {
            Engine::Cpu { compiled, .. } => Some(compiled),
            Engine::Cuda { .. } => None,
        }
    }

    /// The GPU side of a CUDA executable: device, CUDA C, PTX and ptxas figures
    /// (`None` on the CPU).
    pub fn cuda(&self) -> Option<&CudaExecutor> {
        match &self.engine {
            Engine::Cpu { .. } => None,
            Engine::Cuda { exec, .. } => Some(exec),
        }
    }

    /// How long each compile stage of the shared code took.
    pub fn compile_stats(&self) -> &CompileStats {
        self.engine.stats()
    }

    /// Kernel launches per step.
    pub fn launches(&self) -> usize {
        self.program().launches()
    }

    /// Fill outputs and intermediates with NaN (`cpu::POISON`) before every run, so a
    /// test can prove every element is written.
    pub fn set_poison(&mut self, on: bool) {
        self.poison = on;
    }

    /// Set runtime scalar `name` (learning rate, step, seed); never recompiles.
    pub fn set_scalar(&mut self, name: &str, value: f64) -> Result<(), RuntimeError> {
        let Some(&dtype) = self.names.scalars.get(name) else {
            return Err(RuntimeError::UnknownScalar {
                name: name.to_string(),
                known: list(self.names.scalars.keys()),
            });
        };
        let q = dtype.quantize(value);
        for i in 0..self.program().scalars.len() {
            let s = &self.program().scalars[i];
            if s.name == name {
                let dtype = s.dtype;
                self.engine.set_scalar_slot(i, dtype, q)?;
            }
        }
        self.scalar_values.insert(name.to_string(), q);
        Ok(())
    }

    /// The current value of runtime scalar `name`, if set.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalar_values.get(name).copied()
    }

    /// Names of parameters and state tensors.
    pub fn persistent_names(&self) -> Vec<String> {
        self.names.persistent.keys().cloned().collect()
    }

    fn unknown_persistent(&self, name: &str) -> RuntimeError {
        RuntimeError::UnknownPersistent {
            name: name.to_string(),
            known: list(self.names.persistent.keys()),
        }
    }

    /// Current value of parameter/state `name`.
    pub fn get(&self, name: &str) -> Result<Value, RuntimeError> {
        let ty = self
            .names
            .persistent
            .get(name)
            .ok_or_else(|| self.unknown_persistent(name))?;
        if let Some(ids) = self.persistent.get(name) {
            return self.engine.read(ids[0], ty.shape.clone());
        }
        self.detached
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::Program(format!("`{name}` has no value")))
    }

    /// Overwrite parameter/state `name` (e.g. from a checkpoint).
    pub fn set(&mut self, name: &str, value: &Value) -> Result<(), RuntimeError> {
        let ty = self
            .names
            .persistent
            .get(name)
            .cloned()
            .ok_or_else(|| self.unknown_persistent(name))?;
        if value.data.len() != value.shape.numel() {
            return Err(RuntimeError::InconsistentValue {
                name: name.to_string(),
                got: value.data.len(),
                shape: value.shape.clone(),
            });
        }
        if value.shape.numel() != ty.shape.numel() {
            return Err(RuntimeError::PersistentShape {
                name: name.to_string(),
                expected: ty.shape.numel(),
                shape: ty.shape.to_string(),
                got: value.shape.numel(),
                got_shape: value.shape.clone(),
            });
        }
        match self.persistent.get(name) {
            Some(ids) => {
                for &id in ids.clone().iter() {
                    self.engine.write(id, &value.data)?;
                }
            }
            None => {
                let mut v = value.clone();
                v.shape = ty.shape.clone();
                self.detached.insert(name.to_string(), v);
            }
        }
        Ok(())
    }

    /// Every parameter and state tensor by name (a checkpoint).
    pub fn persistent_values(&self) -> Result<Bindings, RuntimeError> {
        self.names
            .persistent
            .keys()
            .map(|n| Ok((n.clone(), self.get(n)?)))
            .collect()
    }

    fn bind_input(&mut self, name: &str, v: &Value) -> Result<(), RuntimeError> {
        let Some(ty) = self.names.inputs.get(name).cloned() else {
            if self.names.scalars.contains_key(name) {
                if v.data.len() != 1 {
                    return Err(RuntimeError::InputShape {
                        name: name.to_string(),
                        expected: "[] (a runtime scalar)".into(),
                        got: v.shape.clone(),
                    });
                }
                return self.set_scalar(name, v.data[0]);
            }
            let known = list(self.names.inputs.keys().chain(self.names.scalars.keys()));
            return Err(RuntimeError::UnknownInput {
                name: name.to_string(),
                known,
            });
        };
        if v.data.len() != v.shape.numel() {
            return Err(RuntimeError::InconsistentValue {
                name: name.to_string(),
                got: v.data.len(),
                shape: v.shape.clone(),
            });
        }
        let shape_ok = if self.engine.graph().is_some() {
            v.shape == ty.shape
        } else {
            v.shape.numel() == ty.shape.numel()
        };
        if !shape_ok {
            return Err(RuntimeError::InputShape {
                name: name.to_string(),
                expected: ty.shape.to_string(),
                got: v.shape.clone(),
            });
        }
        if v.dtype != ty.dtype {
            return Err(RuntimeError::InputDType {
                name: name.to_string(),
                expected: ty.dtype,
                got: v.dtype,
            });
        }
        if let Some(ids) = self.inputs.get(name).cloned() {
            for id in ids {
                self.engine.write(id, &v.data)?;
            }
        }
        Ok(())
    }

    /// Run one step: bind `inputs` (batch data by name; runtime scalars may be passed
    /// here too), run every kernel, apply updates, return the named outputs.
    pub fn run(&mut self, inputs: &Bindings) -> Result<HashMap<String, Value>, RuntimeError> {
        let mut names: Vec<&String> = inputs.keys().collect();
        names.sort();
        for name in names {
            self.bind_input(name, &inputs[name])?;
        }
        for (name, ty) in &self.names.inputs {
            if self.inputs.contains_key(name) && !inputs.contains_key(name) {
                return Err(RuntimeError::MissingInput {
                    name: name.clone(),
                    shape: ty.shape.to_string(),
                    dtype: ty.dtype,
                });
            }
        }
        for s in &self.program().scalars {
            if !self.scalar_values.contains_key(&s.name) {
                return Err(RuntimeError::ScalarUnset { name: s.name.clone() });
            }
        }
        if self.poison {
            for id in poisonable(self.engine.program()) {
                self.engine.poison(id)?;
            }
        }
        let started = std::time::Instant::now(); // KILN_DEBUG timing (crate::debug)
        self.engine.run()?;
        crate::debug::on_run(self.engine.program(), started.elapsed());
        let mut out = HashMap::new();
        for (name, shape) in &self.names.outputs {
            let id = self.outputs[name];
            out.insert(name.clone(), self.engine.read(id, shape.clone())?);
        }
        Ok(out)
    }
}

/// Own buffers holding only outputs and intermediates: no param, state or input lives
/// in them (through views), so overwriting them before a run loses nothing.
fn poisonable(p: &Program) -> Vec<BufferId> {
    let root = |mut i: usize| {
        let mut hops = 0;
        while let Storage::View { base, .. } = &p.buffers[i].storage {
            i = base.0 as usize;
            hops += 1;
            if hops > p.buffers.len() {
                break;
            }
        }
        i
    };
    let mut keep = vec![false; p.buffers.len()];
    for (i, b) in p.buffers.iter().enumerate() {
        if matches!(
            b.role,
            BufferRole::Param(_) | BufferRole::State(_) | BufferRole::Input(_)
        ) {
            keep[root(i)] = true;
        }
    }
    p.buffers
        .iter()
        .enumerate()
        .filter(|(i, b)| b.storage == Storage::Own && !keep[*i])
        .map(|(i, _)| BufferId(i as u32))
        .collect()
}
