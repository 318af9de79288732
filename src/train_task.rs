//! The compiled training task behind `kiln train`: a model, a loss, an optimizer and a
//! data set turned into compiled executables (the training step, the optional outer
//! refresh of SVRG / IVON-PoCo, and an evaluation pass), driven by the runtime's
//! generic trainer loop. Owns the wiring only: step assembly is `step`, compilation and
//! execution are `kiln_runtime`, the update maths is `kiln_models::optim`.

use std::collections::HashSet;
use std::time::Instant;

use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, GraphBuilder, SourceKind, Value};
use kiln_models::nets::Model;
use kiln_models::optim::Optimizer;
use kiln_runtime::compile::{compile, CompileOptions};
use kiln_runtime::data::{Batch, Dataset};
use kiln_runtime::executable::Executable;
use kiln_runtime::train::{Checkpoint, NamedTensor, TrainError, TrainTask};

use crate::step::{build_step, LOSS};

/// Names of the graph inputs every task uses.
pub const X: &str = "x";
pub const Y: &str = "y";
const MASK: &str = "mask";

/// How the learning rate changes over epochs. The learning rate is a runtime scalar,
/// so a schedule never recompiles.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    Constant,
    /// Multiply the base rate by `factor` at each fraction of the run in `at` (the VSGD
    /// paper's step decay; e.g. `at = [0.5, 0.75]`, `factor = 0.5`).
    StepDecay {
        at: Vec<f64>,
        factor: f64,
    },
}

impl LrSchedule {
    /// The multiplier of the base learning rate in `epoch` (1-based) of `epochs`.
    pub fn factor(&self, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::StepDecay { at, factor } => {
                let progress = (epoch - 1) as f64 / epochs.max(1) as f64;
                at.iter().filter(|&&a| progress >= a).fold(1.0, |f, _| f * factor)
            }
        }
    }
}

/// A model + optimizer compiled for one batch shape.
pub struct CompiledTask {
    optimizer: Box<dyn Optimizer>,
    base_lr: Option<f64>,
    schedule: LrSchedule,
    epochs: usize,
    step: Executable,
    step_scalars: HashSet<String>,
    refresh: Option<(Executable, HashSet<String>)>,
    refresh_counter: u64,
    eval: Executable,
    batch_shape: Vec<usize>,
    compile_seconds: f64,
    /// Parameter and optimizer-state names (checkpoint keys).
    persistent: Vec<String>,
}

fn task_err(what: &str) -> impl Fn(kiln_runtime::error::RuntimeError) -> TrainError + '_ {
    move |e| TrainError::Task(format!("{what}: {e}"))
}

fn scalar_names(g: &Graph) -> HashSet<String> {
    g.sources_of(SourceKind::Scalar)
        .into_iter()
        .filter_map(|id| g.node(id).op.source_name().map(str::to_string))
        .collect()
}

/// The evaluation graph: masked sum of per-example cross-entropy and of correct
/// predictions (so a padded last batch counts only its real rows).
fn eval_graph(model: &dyn Model, batch_shape: &[usize]) -> Result<Graph, TrainError> {
    let b = GraphBuilder::new();
    let x = b.input(X, batch_shape.to_vec(), DType::F32);
    let y = b.input(Y, [batch_shape[0]], DType::I32);
    let mask = b.input(MASK, [batch_shape[0]], DType::F32);
    let logits = model.forward(&b, &x);
    let classes = model.num_classes();
    let nll = -(logits.log_softmax(1) * y.one_hot(classes)).sum(&[1], false);
    b.output("loss_sum", &(&nll * &mask).sum_all());
    let correct = logits.argmax(1).eq(&y).cast(DType::F32);
    b.output("correct", &(&correct * &mask).sum_all());
    b.finish()
        .map_err(|e| TrainError::Task(format!("building the evaluation graph: {e}")))
}

impl CompiledTask {
    /// Build and compile the step (and refresh) and evaluation graphs of `model` trained
    /// with `optimizer` on batches of `batch_size`.
    pub fn new(
        model: &dyn Model,
        optimizer: Box<dyn Optimizer>,
        batch_size: usize,
        options: &CompileOptions,
    ) -> Result<CompiledTask, TrainError> {
        let started = Instant::now();
        let mut batch_shape = vec![batch_size];
        batch_shape.extend(model.example_shape());
        let shape = batch_shape.clone();
        let graphs = build_step(optimizer.as_ref(), &|b: &GraphBuilder| {
            let x = b.input(X, shape.clone(), DType::F32);
            let y = b.input(Y, [shape[0]], DType::I32);
            model.forward(b, &x).cross_entropy(&y)
        })
        .map_err(|e| TrainError::Task(e.to_string()))?;
        let step = compile(&graphs.step, options).map_err(task_err("compiling the training step"))?;
        let step_scalars = scalar_names(&graphs.step);
        let refresh = match &graphs.refresh {
            Some(g) => Some((
                compile(g, options).map_err(task_err("compiling the refresh step"))?,
                scalar_names(g),
            )),
            None => None,
        };
        let eval = compile(&eval_graph(model, &batch_shape)?, options).map_err(task_err("compiling evaluation"))?;
        let mut persistent = step.persistent_names();
        persistent.sort();
        let base_lr = optimizer.get("lr").ok();
        Ok(CompiledTask {
            optimizer,
            base_lr,
            schedule: LrSchedule::Constant,
            epochs: 1,
            step,
            step_scalars,
            refresh,
            refresh_counter: 0,
            eval,
            batch_shape,
            compile_seconds: started.elapsed().as_secs_f64(),
            persistent,
        })
    }

    /// Use `schedule` over a run of `epochs` epochs.
    pub fn set_schedule(&mut self, schedule: LrSchedule, epochs: usize) {
        self.schedule = schedule;
        self.epochs = epochs;
    }

    /// The compiled training step (for kernel counts and inspection).
    pub fn step_executable(&self) -> &Executable {
        &self.step
    }

    fn inputs(&self, batch: &Batch) -> Result<Bindings, TrainError> {
        let mut shape = self.batch_shape.clone();
        shape[0] = batch.batch_size();
        let err = |e: kiln_ir::IrError| TrainError::Task(format!("batch does not fit the compiled step: {e}"));
        let mut inputs = Bindings::new();
        inputs.insert(X.into(), Value::from_f32(shape, &batch.features).map_err(err)?);
        let labels: Vec<f64> = batch.labels.iter().map(|&l| l as f64).collect();
        inputs.insert(
            Y.into(),
            Value::new([batch.batch_size()], DType::I32, labels).map_err(err)?,
        );
        Ok(inputs)
    }

    fn set_scalars(exe: &mut Executable, used: &HashSet<String>, values: Vec<(String, f64)>) -> Result<(), TrainError> {
        for (name, v) in values {
            if used.contains(&name) {
                exe.set_scalar(&name, v)
                    .map_err(task_err("setting optimizer scalars"))?;
            }
        }
        Ok(())
    }
}

impl TrainTask for CompiledTask {
    fn on_epoch_start(
        &mut self,
        train: &Dataset,
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<(), TrainError> {
        if let Some(lr) = self.base_lr {
            let scaled = lr * self.schedule.factor(epoch, self.epochs);
            self.optimizer
                .set("lr", scaled)
                .map_err(|e| TrainError::Task(e.to_string()))?;
        }
        let Some((refresh, used)) = self.refresh.as_mut() else {
            return Ok(());
        };
        // The outer refresh: snapshot + anchor statistics over the whole training split
        // (the mega-batch), one run per micro-batch, every micro-batch weighted equally.
        let shared: Vec<String> = refresh
            .persistent_names()
            .into_iter()
            .filter(|n| self.persistent.contains(n))
            .collect();
        for p in &shared {
            let v = self
                .step
                .get(p)
                .map_err(task_err("reading state for the refresh step"))?;
            refresh.set(p, &v).map_err(task_err("syncing the refresh step"))?;
        }
        let steps = train.train_steps_per_epoch(batch_size).max(1);
        let mut batches = train.train_batches(batch_size, seed ^ 0x5eed_0f_5a17, epoch as u64)?;
        let mut batch = Batch::default();
        let mut first = true;
        while batches.next_into(&mut batch) {
            self.refresh_counter += 1;
            let values = self
                .optimizer
                .refresh_scalars(self.refresh_counter, first, 1.0 / steps as f64)
                .map_err(|e| TrainError::Task(e.to_string()))?;
            Self::set_scalars(refresh, used, values)?;
            let mut shape = self.batch_shape.clone();
            shape[0] = batch.batch_size();
            let mut inputs = Bindings::new();
            let err = |e: kiln_ir::IrError| TrainError::Task(e.to_string());
            inputs.insert(X.into(), Value::from_f32(shape, &batch.features).map_err(err)?);
            let labels: Vec<f64> = batch.labels.iter().map(|&l| l as f64).collect();
            inputs.insert(
                Y.into(),
                Value::new([batch.batch_size()], DType::I32, labels).map_err(err)?,
            );
            refresh.run(&inputs).map_err(task_err("running the refresh step"))?;
            first = false;
        }
        for p in &shared {
            let v = refresh.get(p).map_err(task_err("reading the refresh results"))?;
            self.step.set(p, &v).map_err(task_err("syncing after the refresh"))?;
        }
        Ok(())
    }

    fn train_step(&mut self, batch: &Batch, step: u64) -> Result<f64, TrainError> {
        let values = self
            .optimizer
            .scalars(step)
            .map_err(|e| TrainError::Task(e.to_string()))?;
        Self::set_scalars(&mut self.step, &self.step_scalars, values)?;
        let inputs = self.inputs(batch)?;
        let out = self.step.run(&inputs).map_err(task_err("running the training step"))?;
        out.get(LOSS)
            .and_then(|v| v.data.first().copied())
            .ok_or_else(|| TrainError::Task("the training step has no `loss` output".into()))
    }

    fn eval_batch(&mut self, batch: &Batch) -> Result<(f64, usize), TrainError> {
        for name in self.eval.persistent_names() {
            let v = self
                .step
                .get(&name)
                .map_err(task_err("reading parameters for evaluation"))?;
            self.eval
                .set(&name, &v)
                .map_err(task_err("loading parameters for evaluation"))?;
        }
        let mut inputs = self.inputs(batch)?;
        let mask = Value::from_f32([batch.batch_size()], &batch.mask()).map_err(|e| TrainError::Task(e.to_string()))?;
        inputs.insert(MASK.into(), mask);
        let out = self.eval.run(&inputs).map_err(task_err("running evaluation"))?;
        let get = |n: &str| out.get(n).and_then(|v| v.data.first().copied()).unwrap_or(f64::NAN);
        Ok((get("loss_sum"), get("correct").round() as usize))
    }

    fn save_state(&mut self) -> Result<Checkpoint, TrainError> {
        let mut ck = Checkpoint::default();
        for name in &self.persistent {
            let v = self
                .step
                .get(name)
                .map_err(task_err("reading state for the checkpoint"))?;
            ck.tensors.insert(
                name.clone(),
                NamedTensor {
                    shape: v.shape.0.clone(),
                    data: v.to_f32(),
                },
            );
        }
        Ok(ck)
    }

    fn load_state(&mut self, ck: &Checkpoint) -> Result<(), TrainError> {
        for name in &self.persistent {
            let current = self.step.get(name).map_err(task_err("reading state"))?;
            let t = ck.tensor(std::path::Path::new("checkpoint"), name, current.shape.dims())?;
            let v = Value::from_f32(current.shape.clone(), &t.data).map_err(|e| TrainError::Task(e.to_string()))?;
            self.step.set(name, &v).map_err(task_err("restoring state"))?;
        }
        Ok(())
    }

    fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }
}
