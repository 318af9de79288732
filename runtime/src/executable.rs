//! `Executable`: a compiled step plus its memory. Code is shared (`Arc<Compiled>`, from
//! the compile cache); buffers are owned: parameters and optimizer state persist across
//! `run` calls and are updated in place, runtime scalars keep their last value, inputs
//! are bound every run. Owns run-time validation of names, shapes and dtypes and the
//! get/set API for checkpoints; how kernels execute lives in `cpu`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kiln_compiler::kernel::{BufferId, BufferRole, Program, Storage};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, Op, Shape, TensorType, Value};

use crate::cpu::exec::{run_program, TaskError};
use crate::cpu::{Buffers, JitProgram, Pool};
use crate::error::RuntimeError;

/// How long each compile stage took, and what it produced.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    pub rewrite: Duration,
    pub lower: Duration,
    pub codegen: Duration,
    /// Cranelift + linking of all kernels.
    pub jit: Duration,
    /// Per generated function: (name, Cranelift compile time, code bytes).
    pub functions: Vec<(String, Duration, usize)>,
}

/// Compiled code of one step: the kernel program and its machine code.
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

fn encode_scalar(dtype: DType, x: f64) -> u32 {
    match dtype {
        DType::I32 => DType::I32.quantize(x) as i32 as u32,
        DType::Bool => (x != 0.0) as u32,
        _ => (x as f32).to_bits(),
    }
}

/// A compiled step with its own parameters, state and scalars.
pub struct Executable {
    compiled: Arc<Compiled>,
    names: Names,
    buffers: Buffers,
    /// Buffers by external name and role.
    inputs: HashMap<String, Vec<BufferId>>,
    persistent: HashMap<String, Vec<BufferId>>,
    outputs: HashMap<String, BufferId>,
    /// Params/state the program does not touch, kept host-side for get/set.
    detached: HashMap<String, Value>,
    scalar_values: HashMap<String, f64>,
    scalar_slots: Vec<u32>,
    poison: bool,
    pool: &'static Pool,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable")
            .field("kernels", &self.compiled.program.kernels.len())
            .field("buffers", &self.compiled.program.buffers.len())
            .finish()
    }
}

impl Executable {
    /// Fresh memory for `compiled`; params/state from `kiln_ir::init` with `seed`.
    pub fn new(compiled: Arc<Compiled>, seed: u64) -> Result<Executable, RuntimeError> {
        let p = &compiled.program;
        crate::debug::on_compile(p);
        let names = match &compiled.graph {
            Some(g) => Names::from_graph(g),
            None => Names::from_program(p),
        };
        let buffers = Buffers::new(p)?;
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
        let scalar_slots = vec![0u32; p.scalars.len()];
        let mut exe = Executable {
            names,
            buffers,
            inputs,
            persistent,
            outputs,
            detached: HashMap::new(),
            scalar_values: HashMap::new(),
            scalar_slots,
            poison: false,
            pool: Pool::global(),
            compiled,
        };
        let init = exe
            .compiled
            .graph
            .as_ref()
            .map(|g| kiln_ir::init::initial_bindings(g, seed));
        for (name, v) in init.into_iter().flatten() {
            exe.set(&name, &v)?;
        }
        Ok(exe)
    }

    /// The kernel program this executable runs (for inspection: kernels, buffers).
    pub fn program(&self) -> &Program {
        &self.compiled.program
    }

    /// The shared compiled code.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// Kernel launches per step.
    pub fn launches(&self) -> usize {
        self.compiled.program.launches()
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
        self.scalar_values.insert(name.to_string(), q);
        for (i, s) in self.compiled.program.scalars.iter().enumerate() {
            if s.name == name {
                self.scalar_slots[i] = encode_scalar(s.dtype, q);
            }
        }
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
            return Ok(self.buffers.read(ids[0], ty.shape.clone()));
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
                    self.buffers.write(id, &value.data);
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
        let shape_ok = if self.compiled.graph.is_some() {
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
                self.buffers.write(id, &v.data);
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
        for s in &self.compiled.program.scalars {
            if !self.scalar_values.contains_key(&s.name) {
                return Err(RuntimeError::ScalarUnset { name: s.name.clone() });
            }
        }
        if self.poison {
            for id in poisonable(&self.compiled.program) {
                self.buffers.poison(id);
            }
        }
        let started = std::time::Instant::now(); // KILN_DEBUG timing (crate::debug)
        run_program(
            &self.compiled.program,
            &self.compiled.code,
            &mut self.buffers,
            &self.scalar_slots,
            &self.compiled.code.helpers,
            self.pool,
        )
        .map_err(|TaskError::Panicked(kernel)| RuntimeError::WorkerPanicked { kernel })?;
        crate::debug::on_run(&self.compiled.program, started.elapsed());
        let mut out = HashMap::new();
        for (name, shape) in &self.names.outputs {
            let id = self.outputs[name];
            out.insert(name.clone(), self.buffers.read(id, shape.clone()));
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
