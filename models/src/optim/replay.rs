//! The library side of `kiln optim replay`: build an optimizer's update graphs with the
//! gradients (and, for ivon/ivon-poco, the noise) as graph INPUTS, run them step by step
//! through a pluggable [`Executor`] and collect the parameters after each step. Owns
//! the `Replayer` (also the harness the golden tests use) and trace execution; parsing
//! lives in `trace`. It must not contain update maths: every number comes out of the
//! optimizer's graph, run by the executor (the reference interpreter by default, a
//! compiled backend when plugged in).

use std::collections::{BTreeMap, HashMap};

use kiln_ir::init::initial_bindings;
use kiln_ir::interp::{apply_updates, evaluate};
use kiln_ir::{Bindings, DType, Graph, GraphBuilder, Init, Shape, SourceKind, Tensor, Value};
use thiserror::Error;

use super::build::{build_phase, grad_inputs, ParamRef};
use super::trace::{Arrays, Trace};
use super::{by_name, NoiseSource, OptimError, Optimizer, Phase};

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("the trace is not valid JSON: {0}")]
    Json(String),

    #[error("trace {path}: {detail}")]
    Trace { path: String, detail: String },

    #[error(transparent)]
    Optim(#[from] OptimError),

    #[error("running the {phase} graph for step {step} failed: {detail}")]
    Exec { phase: Phase, step: u64, detail: String },
}

/// Runs one execution of a graph: reads `bindings` (inputs, params, state, scalars) and
/// writes every updated param/state back into them.
pub trait Executor {
    fn run(&mut self, graph: &Graph, bindings: &mut Bindings) -> Result<(), String>;
}

/// The f64 reference interpreter as an executor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

impl Executor for Interpreter {
    fn run(&mut self, graph: &Graph, bindings: &mut Bindings) -> Result<(), String> {
        let eval = evaluate(graph, bindings).map_err(|e| e.to_string())?;
        apply_updates(graph, &eval, bindings);
        Ok(())
    }
}

impl<F: FnMut(&Graph, &mut Bindings) -> Result<(), String>> Executor for F {
    fn run(&mut self, graph: &Graph, bindings: &mut Bindings) -> Result<(), String> {
        self(graph, bindings)
    }
}

/// An optimizer's update graphs over a fixed set of parameters, with their bindings.
pub struct Replayer<'e> {
    opt: Box<dyn Optimizer>,
    step_graph: Graph,
    refresh_graph: Option<Graph>,
    params: Vec<String>,
    bindings: Bindings,
    exec: &'e mut dyn Executor,
    steps_done: u64,
    refresh_counter: u64,
}

fn build(opt: &dyn Optimizer, phase: Phase, params: &[(String, Value)]) -> Result<Graph, OptimError> {
    let b = GraphBuilder::new();
    let tensors: Vec<Tensor> = params
        .iter()
        .map(|(n, v)| b.param(n, v.shape.clone(), Init::Zeros))
        .collect();
    let refs = ParamRef::collect(opt.name(), &tensors)?;
    build_phase(opt, phase, &b, &tensors, &mut |point| grad_inputs(&b, &refs, point))?;
    b.finish().map_err(|source| OptimError::Graph {
        optimizer: opt.name(),
        source,
    })
}

/// Bind `values` to the graph's runtime scalars (dtype from the graph).
fn bind_scalars(graph: &Graph, values: &[(String, f64)], bindings: &mut Bindings) {
    for (name, v) in values {
        if let Some(id) = graph.source(name) {
            bindings.insert(name.clone(), Value::scalar(*v, graph.node(id).dtype()));
        }
    }
}

impl<'e> Replayer<'e> {
    /// Build the update graphs of `opt` for `params` (name, initial value) and initialise
    /// the optimizer state.
    pub fn new(
        opt: Box<dyn Optimizer>,
        params: &[(String, Value)],
        exec: &'e mut dyn Executor,
    ) -> Result<Self, ReplayError> {
        for (n, v) in params {
            if v.dtype != DType::F32 || v.data.iter().any(|x| !x.is_finite()) {
                return Err(ReplayError::Trace {
                    path: format!("params[\"{n}\"]"),
                    detail: "parameters must be f32 tensors of finite numbers".into(),
                });
            }
        }
        let step_graph = build(opt.as_ref(), Phase::Step, params)?;
        let refresh_graph = if opt.phases().contains(&Phase::Refresh) {
            Some(build(opt.as_ref(), Phase::Refresh, params)?)
        } else {
            None
        };
        let mut bindings = initial_bindings(&step_graph, 0);
        if let Some(r) = &refresh_graph {
            for (k, v) in initial_bindings(r, 0) {
                bindings.entry(k).or_insert(v);
            }
        }
        for (n, v) in params {
            bindings.insert(n.clone(), v.clone());
        }
        Ok(Replayer {
            opt,
            step_graph,
            refresh_graph,
            params: params.iter().map(|(n, _)| n.clone()).collect(),
            bindings,
            exec,
            steps_done: 0,
            refresh_counter: 0,
        })
    }

    pub fn optimizer(&self) -> &dyn Optimizer {
        self.opt.as_ref()
    }

    /// Change a runtime hyperparameter between steps (a schedule): the graphs stay as
    /// they are. A change of a structural hyperparameter is refused, since the built
    /// graphs would no longer match; build a new `Replayer` for that.
    pub fn set_hyper(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        let before = self.opt.structure();
        let old = self.opt.get(name).ok();
        self.opt.set(name, value)?;
        if self.opt.structure() != before {
            if let Some(old) = old {
                self.opt.set(name, old)?;
            }
            return Err(OptimError::Invalid {
                optimizer: self.opt.name(),
                detail: format!("`{name}` is structural (it changes the graph); rebuild to change it"),
            });
        }
        Ok(())
    }

    pub fn graph(&self, phase: Phase) -> Option<&Graph> {
        match phase {
            Phase::Step => Some(&self.step_graph),
            Phase::Refresh => self.refresh_graph.as_ref(),
        }
    }

    /// The inputs (gradients, noise) one run of `phase` needs, by name.
    pub fn inputs(&self, phase: Phase) -> Vec<(String, Shape)> {
        let Some(g) = self.graph(phase) else {
            return Vec::new();
        };
        g.sources_of(SourceKind::Input)
            .into_iter()
            .map(|id| {
                (
                    g.node(id).op.source_name().unwrap_or("").to_string(),
                    g.node(id).shape().clone(),
                )
            })
            .collect()
    }

    /// Names of the optimizer state tensors.
    pub fn state_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [Some(&self.step_graph), self.refresh_graph.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|g| {
                g.sources_of(SourceKind::State)
                    .into_iter()
                    .map(|id| g.node(id).op.source_name().unwrap_or("").to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Current value of a parameter or state tensor.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.bindings.get(name)
    }

    /// Overwrite a state tensor (shape checked).
    pub fn set_state(&mut self, name: &str, value: Value) -> Result<(), ReplayError> {
        let names = self.state_names();
        let bad = |detail: String| ReplayError::Trace {
            path: format!("state[\"{name}\"]"),
            detail,
        };
        if !names.iter().any(|n| n == name) {
            return Err(bad(format!("no such state tensor; valid names: {}", names.join(", "))));
        }
        let cur = &self.bindings[name];
        if cur.shape != value.shape {
            return Err(bad(format!("shape {} given, the state has {}", value.shape, cur.shape)));
        }
        if value.data.iter().any(|x| !x.is_finite()) {
            return Err(bad("must be finite".into()));
        }
        self.bindings.insert(name.to_string(), value);
        Ok(())
    }

    /// Number of steps run (the next step is `steps_done() + 1`).
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// Continue as if `t` steps had run (the next step uses t + 1 for its scalars).
    pub fn set_steps_done(&mut self, t: u64) {
        self.steps_done = t;
    }

    fn bind_inputs(&mut self, phase: Phase, step: u64, inputs: &HashMap<String, Value>) -> Result<(), ReplayError> {
        let needed = self.inputs(phase);
        let err = |detail: String| ReplayError::Exec { phase, step, detail };
        for (name, shape) in &needed {
            let v = inputs
                .get(name)
                .ok_or_else(|| err(format!("missing input `{name}` (shape {shape})")))?;
            if &v.shape != shape {
                return Err(err(format!("input `{name}` has shape {}, expected {shape}", v.shape)));
            }
            if v.data.iter().any(|x| !x.is_finite()) {
                return Err(err(format!("input `{name}` contains NaN or infinity")));
            }
        }
        if let Some(extra) = inputs.keys().find(|k| !needed.iter().any(|(n, _)| n == *k)) {
            let names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
            return Err(err(format!(
                "unexpected input `{extra}`; this graph takes: {}",
                names.join(", ")
            )));
        }
        for (k, v) in inputs {
            self.bindings.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn execute(&mut self, phase: Phase, step: u64) -> Result<(), ReplayError> {
        let graph = match phase {
            Phase::Step => &self.step_graph,
            Phase::Refresh => self.refresh_graph.as_ref().expect("checked by the caller"),
        };
        self.exec
            .run(graph, &mut self.bindings)
            .map_err(|detail| ReplayError::Exec { phase, step, detail })
    }

    /// Run one optimizer step with the given inputs (`grad.<param>[@label]`,
    /// `noise.<param>[@label]`).
    pub fn step(&mut self, inputs: &HashMap<String, Value>) -> Result<(), ReplayError> {
        let t = self.steps_done + 1;
        self.bind_inputs(Phase::Step, t, inputs)?;
        let scalars = self.opt.scalars(t)?;
        bind_scalars(&self.step_graph, &scalars, &mut self.bindings);
        self.execute(Phase::Step, t)?;
        self.steps_done = t;
        Ok(())
    }

    /// Run the refresh graph on one micro-batch.
    pub fn refresh_batch(
        &mut self,
        first: bool,
        weight: f64,
        inputs: &HashMap<String, Value>,
    ) -> Result<(), ReplayError> {
        let Some(graph) = &self.refresh_graph else {
            return Err(super::no_refresh(self.opt.name()).into());
        };
        let scalars = self.opt.refresh_scalars(self.refresh_counter, first, weight)?;
        bind_scalars(graph, &scalars, &mut self.bindings);
        let next = self.steps_done + 1;
        self.bind_inputs(Phase::Refresh, next, inputs)?;
        self.execute(Phase::Refresh, next)?;
        self.refresh_counter += 1;
        Ok(())
    }

    /// The current parameters, by name.
    pub fn params(&self) -> BTreeMap<String, Vec<f64>> {
        self.params
            .iter()
            .map(|n| (n.clone(), self.bindings[n].data.clone()))
            .collect()
    }
}

/// Turn a trace step's per-name arrays into graph inputs `<prefix>.<key>` shaped like
/// the graph wants them.
fn trace_inputs(
    path: &str,
    prefix: &str,
    arrays: &Arrays,
    needed: &[(String, Shape)],
    out: &mut HashMap<String, Value>,
) -> Result<(), ReplayError> {
    let wanted: Vec<(&str, &Shape)> = needed
        .iter()
        .filter_map(|(n, s)| n.strip_prefix(prefix).map(|k| (k, s)))
        .collect();
    let err = |key: &str, detail: String| ReplayError::Trace {
        path: format!("{path}[\"{key}\"]"),
        detail,
    };
    for (key, data) in arrays {
        let Some((_, shape)) = wanted.iter().find(|(k, _)| k == key) else {
            let valid: Vec<&str> = wanted.iter().map(|(k, _)| *k).collect();
            return Err(err(key, format!("not expected here; valid keys: {}", valid.join(", "))));
        };
        if data.len() != shape.numel() {
            return Err(err(
                key,
                format!(
                    "{} numbers given, but the tensor has shape {shape} ({} elements)",
                    data.len(),
                    shape.numel()
                ),
            ));
        }
        let v = Value::new((*shape).clone(), DType::F32, data.clone()).map_err(|e| err(key, e.to_string()))?;
        out.insert(format!("{prefix}{key}"), v);
    }
    if let Some((key, _)) = wanted.iter().find(|(k, _)| !arrays.contains_key(*k)) {
        return Err(ReplayError::Trace {
            path: path.to_string(),
            detail: format!("missing `{key}`"),
        });
    }
    Ok(())
}

/// Replay a trace: the parameters after each step, by name. `overrides` are applied
/// after the trace's `hyper` (the CLI's `--set`).
pub fn replay(
    trace: &Trace,
    overrides: &[(String, f64)],
    exec: &mut dyn Executor,
) -> Result<Vec<BTreeMap<String, Vec<f64>>>, ReplayError> {
    let mut opt = by_name(&trace.optimizer)?;
    for (k, v) in trace.hyper.iter().chain(overrides) {
        opt.set(k, *v)?;
    }
    let noisy = trace.noise.is_some() || trace.refresh.iter().flat_map(|r| &r.batches).any(|b| b.noise.is_some());
    match (opt.noise_source(), noisy) {
        (Some(_), true) => opt.set_noise_source(NoiseSource::Input)?,
        (None, true) => {
            return Err(ReplayError::Trace {
                path: "noise".into(),
                detail: format!("{} draws no random numbers; remove `noise`", trace.optimizer),
            })
        }
        _ => {}
    }
    let has_refresh = opt.phases().contains(&Phase::Refresh);
    if !has_refresh && !trace.refresh.is_empty() {
        return Err(ReplayError::Trace {
            path: "refresh".into(),
            detail: format!("{} has no refresh phase (only svrg and ivon-poco do)", trace.optimizer),
        });
    }
    if has_refresh && trace.state.is_empty() && trace.refresh.first().map(|r| r.before_step) != Some(0) {
        return Err(ReplayError::Trace {
            path: "refresh".into(),
            detail: format!(
                "{} needs a refresh before step 0 (its anchor/snapshot statistics), e.g. \
                 \"refresh\": [{{\"before_step\": 0, \"batches\": [{{\"grads\": {{...}}}}]}}], or the anchor in `state`",
                trace.optimizer
            ),
        });
    }
    let params: Vec<(String, Value)> = trace
        .params
        .iter()
        .map(|(n, t)| {
            Value::new(t.shape.clone(), DType::F32, t.data.clone())
                .map(|v| (n.clone(), v))
                .map_err(|e| ReplayError::Trace {
                    path: format!("params[\"{n}\"]"),
                    detail: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut r = Replayer::new(opt, &params, exec)?;
    for (n, t) in &trace.state {
        let v = Value::new(t.shape.clone(), DType::F32, t.data.clone()).map_err(|e| ReplayError::Trace {
            path: format!("state[\"{n}\"]"),
            detail: e.to_string(),
        })?;
        r.set_state(n, v)?;
    }
    r.set_steps_done(trace.start_step - 1);
    let step_inputs = r.inputs(Phase::Step);
    let refresh_inputs = r.inputs(Phase::Refresh);
    let mut refreshes = trace.refresh.iter().peekable();
    let mut out = Vec::with_capacity(trace.grads.len());
    for (i, grads) in trace.grads.iter().enumerate() {
        while let Some(rs) = refreshes.next_if(|rs| rs.before_step == i) {
            for (j, batch) in rs.batches.iter().enumerate() {
                let path = format!("refresh[before_step={i}].batches[{j}]");
                let mut inputs = HashMap::new();
                trace_inputs(
                    &format!("{path}.grads"),
                    "grad.",
                    &batch.grads,
                    &refresh_inputs,
                    &mut inputs,
                )?;
                let empty = Arrays::new();
                let noise = batch.noise.as_ref().unwrap_or(&empty);
                trace_inputs(&format!("{path}.noise"), "noise.", noise, &refresh_inputs, &mut inputs)?;
                r.refresh_batch(j == 0, batch.weight, &inputs)?;
            }
        }
        let mut inputs = HashMap::new();
        trace_inputs(&format!("grads[{i}]"), "grad.", grads, &step_inputs, &mut inputs)?;
        if let Some(noise) = &trace.noise {
            trace_inputs(&format!("noise[{i}]"), "noise.", &noise[i], &step_inputs, &mut inputs)?;
        } else if step_inputs.iter().any(|(n, _)| n.starts_with("noise.")) {
            return Err(ReplayError::Trace {
                path: "noise".into(),
                detail: "the refresh batches inject noise, so every step needs `noise` too".into(),
            });
        }
        r.step(&inputs)?;
        out.push(r.params());
    }
    Ok(out)
}

/// `{"steps": [{"<param>": [...], ...}, ...]}`, the CLI's output.
pub fn steps_to_json(steps: &[BTreeMap<String, Vec<f64>>]) -> String {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            serde_json::Value::Object(
                s.iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                    .collect(),
            )
        })
        .collect();
    serde_json::json!({ "steps": steps }).to_string()
}
