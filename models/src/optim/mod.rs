//! Optimizers as graph builders. Owns the `Optimizer` trait, the optimizer registry
//! (`by_name`), the error type and the hyperparameter handling (`hyper`); one file per
//! optimizer holds its update rule. It must not run graphs or differentiate: gradients
//! come from the caller (autodiff in the step assembly of the root crate, graph inputs in
//! `replay`, analytic expressions in tests).
//!
//! # Design
//!
//! An optimizer appends its update to a training-step graph that is being built:
//!
//! 1. **Evaluation points.** [`Optimizer::eval_points`] returns the parameter versions the
//!    loss must be evaluated at, as a list of [`EvalPoint`]s (one tensor per parameter in
//!    each). Most optimizers have one point, the parameters themselves. IVON evaluates at
//!    sampled weights θ_k = m + σ·z_k (one point per MC sample); SVRG at the current
//!    parameters and at the snapshot θ̃; IVON-PoCo at θ_in ~ q_in and θ_out ~ q_out. All
//!    points live in the SAME graph, so both forward/backward passes of SVRG compile into
//!    one step. Each point has a `label`: `""` for the first, then e.g. `"snapshot"`,
//!    `"anchor"`, `"sample1"`; gradient and noise inputs are named after it.
//! 2. **Gradients.** The caller evaluates the loss at each point and returns the gradient
//!    of the (mean) loss with respect to that point's tensors. The step assembly does this
//!    by re-playing the model's forward with the parameter nodes substituted by the point's
//!    tensors and differentiating; `replay` feeds gradients as graph inputs
//!    ([`grad_inputs`]).
//! 3. **Update.** [`Optimizer::apply`] creates the optimizer state (`State` nodes named
//!    `<param>.<optimizer>.<state>`, e.g. `mlp.0.weight.vsgd.mu`; these are the checkpoint
//!    keys) and declares `builder.update(param, new)` and `builder.update(state, new)`.
//!
//! [`build_phase`] runs the three stages. Optimizers are stateless between the stages:
//! `apply` finds the state, scalars and noise of stage 1 again by name (sources are
//! looked up, not duplicated), and recomputes derived values such as σ. Random noise is
//! *regenerated*: the update builds a second `Random` node with the same seed, step and
//! stream as the sample, which draws the same numbers (counter-based Philox), so z is
//! never stored. For golden tests and `optim replay` the noise is injectable instead
//! ([`NoiseSource::Input`]): it becomes a graph input named [`noise_input_name`].
//!
//! **Runtime scalars.** Every hyperparameter value and every step-dependent quantity is a
//! runtime scalar named `optim.<name>` (`optim.lr`, `optim.rho1`, `optim.step`, ...), so a
//! learning-rate schedule or a change of β never recompiles. The host half,
//! [`Optimizer::scalars`], computes their values for step t (1-based) in f64: the bias
//! corrections of Adam, VSGD's ρ_t = t^-κ, IVON's debiasing and rescaled step size, and
//! the first-step switches of SGD's momentum buffer and VSGD's prior variances. Only
//! *structural* hyperparameters (SGD's momentum being zero or not, Nesterov, IVON's
//! number of MC samples, PoCo's prox/shared-noise switches) and the initial value of a
//! state tensor (IVON's `hess_init`) are baked into the graph; [`Optimizer::structure`]
//! lists what a rebuild depends on.
//!
//! **Phases.** SVRG and IVON-PoCo also have an outer refresh, its own graph
//! ([`Phase::Refresh`]): run once per micro-batch of the mega-batch, with
//! [`Optimizer::refresh_scalars`]; the first micro-batch (`first = true`) snapshots the
//! current parameters/posterior as the anchor and restarts the accumulation of the
//! anchor statistics, each micro-batch adds `weight ·` its gradient statistics.
//!
//! **Randomness.** Noise comes from `Tensor::random(seed, step, shape, Normal, stream)`
//! with the i32 scalars `optim.seed` and `optim.step` (= t; the refresh uses
//! `optim.refresh_step`). Streams are `param_index * 64 + slot`, so no two parameters
//! or samples share numbers: slots 0..32 are IVON's MC samples (IVON-PoCo's θ_in uses
//! slot 0, which makes α = 0 IVON-PoCo bit-identical to IVON with the same seed), slot 32
//! is PoCo's anchor sample, slot 33 the refresh sample.
//!
//! One optimizer per graph: the scalar names are not scoped per parameter group.
//!
//! **Replay.** [`replay()`] (the library side of `kiln optim replay`) builds the same graphs
//! with gradients and noise as graph inputs ([`grad_inputs`], [`NoiseSource::Input`]),
//! runs them through a pluggable [`Executor`] (the reference [`Interpreter`] here; the
//! CLI plugs in the root crate's `CompiledExecutor`, the fused Cranelift kernels training
//! uses) and returns the parameters after each step; [`trace`] defines
//! the JSON trace format. [`Replayer`] is the same machinery as a step-by-step API.
//!
//! **Step assembly** (model + autodiff + optimizer) lives in the root crate
//! (`kiln::step`), since this crate must not depend on the compiler.

mod adam;
mod build;
mod constant_vsgd;
mod hyper;
mod ivon;
mod ivon_poco;
pub mod replay;
mod sgd;
mod svrg;
pub mod trace;
mod vsgd;

use kiln_ir::{GraphBuilder, IrError, Tensor};
use thiserror::Error;

pub use adam::Adam;
pub use build::{
    build_phase, grad_input_name, grad_inputs, noise_input_name, scalar_name, EvalPoint, ParamRef, SCALAR_PREFIX,
};
pub use constant_vsgd::ConstantVsgd;
pub use hyper::{parse_assignment, parse_value, Hyper, HyperSpec, Rule};
pub use ivon::Ivon;
pub use ivon_poco::IvonPoco;
pub use replay::{replay, steps_to_json, Executor, Interpreter, ReplayError, Replayer};
pub use sgd::Sgd;
pub use svrg::Svrg;
pub use trace::Trace;
pub use vsgd::{Vsgd, VSGD_DELTA};

/// Every optimizer `by_name` knows, in the order the CLI lists them.
pub const OPTIMIZERS: &[&str] = &[
    "sgd",
    "adam",
    "adamw",
    "vsgd",
    "constant-vsgd",
    "ivon",
    "svrg",
    "ivon-poco",
];

/// Build an optimizer with its default hyperparameters from its name.
pub fn by_name(name: &str) -> Result<Box<dyn Optimizer>, OptimError> {
    Ok(match name {
        "sgd" => Box::new(Sgd::new()),
        "adam" => Box::new(Adam::new()),
        "adamw" => Box::new(Adam::adamw()),
        "vsgd" => Box::new(Vsgd::new()),
        "constant-vsgd" => Box::new(ConstantVsgd::new()),
        "ivon" => Box::new(Ivon::new()),
        "svrg" => Box::new(Svrg::new()),
        "ivon-poco" => Box::new(IvonPoco::new()),
        _ => {
            return Err(OptimError::UnknownOptimizer {
                name: name.to_string(),
                valid: OPTIMIZERS.join(", "),
            })
        }
    })
}

/// Which graph of an optimizer is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The training step: forward/backward at the evaluation points, then the update.
    Step,
    /// The outer refresh of SVRG / IVON-PoCo: snapshot and anchor statistics.
    Refresh,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Step => "step",
            Phase::Refresh => "refresh",
        })
    }
}

/// Where an optimizer's standard-normal noise comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoiseSource {
    /// Counter-based Philox draws keyed by `optim.seed`, the step and a per-parameter stream.
    Philox,
    /// Graph inputs named by [`noise_input_name`] (golden tests, `optim replay`).
    Input,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimError {
    #[error("unknown optimizer `{name}`; valid optimizers: {valid}")]
    UnknownOptimizer { name: String, valid: String },

    #[error("{optimizer} has no hyperparameter `{name}`; valid names: {valid}")]
    UnknownHyper {
        optimizer: &'static str,
        name: String,
        valid: String,
    },

    #[error("{optimizer}: hyperparameter `{name}` = {value} is invalid: it must be {rule}")]
    BadValue {
        optimizer: &'static str,
        name: &'static str,
        value: f64,
        rule: String,
    },

    #[error(
        "{optimizer}: hyperparameter `{name}` ({doc}) is required and has no default; set it (e.g. `--set {name}=...`)"
    )]
    MissingHyper {
        optimizer: &'static str,
        name: &'static str,
        doc: &'static str,
    },

    #[error("cannot parse `{text}` as a hyperparameter assignment; write `name=value` (value: a number, inf, true or false)")]
    BadAssignment { text: String },

    #[error("{optimizer}: {detail}")]
    Invalid { optimizer: &'static str, detail: String },

    #[error("building the {optimizer} update failed: {source}")]
    Graph {
        optimizer: &'static str,
        #[source]
        source: IrError,
    },
}

/// An optimizer: hyperparameters, a graph-building half and a host half (scalar values).
/// See the module documentation for the protocol.
pub trait Optimizer {
    /// The registry name (`"vsgd"`, `"ivon-poco"`, ...).
    fn name(&self) -> &'static str;

    fn hyper(&self) -> &Hyper;

    fn hyper_mut(&mut self) -> &mut Hyper;

    /// The graphs this optimizer needs (`[Step]`, or `[Step, Refresh]`).
    fn phases(&self) -> &'static [Phase] {
        &[Phase::Step]
    }

    /// Cross-checks between hyperparameters; by default only that required ones are set.
    fn check(&self) -> Result<(), OptimError> {
        self.hyper().check_complete()
    }

    /// The noise source, or `None` for deterministic optimizers.
    fn noise_source(&self) -> Option<NoiseSource> {
        None
    }

    /// Switch between Philox noise and injected noise inputs.
    fn set_noise_source(&mut self, _source: NoiseSource) -> Result<(), OptimError> {
        Err(OptimError::Invalid {
            optimizer: self.name(),
            detail: "this optimizer draws no random numbers, so there is no noise to inject".into(),
        })
    }

    /// Stage 1: the parameter versions the loss is evaluated at (see the module doc).
    fn eval_points(&self, phase: Phase, b: &GraphBuilder, params: &[ParamRef]) -> Result<Vec<EvalPoint>, OptimError> {
        let _ = b;
        match phase {
            Phase::Step => Ok(vec![EvalPoint {
                label: String::new(),
                params: params.iter().map(|p| p.tensor.clone()).collect(),
            }]),
            Phase::Refresh => Err(no_refresh(self.name())),
        }
    }

    /// Stage 3: append the update given `grads[point][param]`, the gradients at the
    /// evaluation points of stage 1.
    fn apply(
        &self,
        phase: Phase,
        b: &GraphBuilder,
        params: &[ParamRef],
        grads: &[Vec<Tensor>],
    ) -> Result<(), OptimError>;

    /// The runtime scalars of the step graph for step `step` (1-based), by full name.
    fn scalars(&self, step: u64) -> Result<Vec<(String, f64)>, OptimError>;

    /// The runtime scalars of the refresh graph for one micro-batch: `counter` numbers the
    /// micro-batches over the whole run (it keys the anchor noise), `first` starts a new
    /// refresh, `weight` is |micro-batch| / |mega-batch|.
    fn refresh_scalars(&self, counter: u64, first: bool, weight: f64) -> Result<Vec<(String, f64)>, OptimError> {
        let _ = (counter, first, weight);
        Err(no_refresh(self.name()))
    }

    /// What the graph's structure depends on besides the parameters: a changed value
    /// here means the graph must be rebuilt (everything else is a runtime scalar).
    fn structure(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .hyper()
            .structural_values()
            .into_iter()
            .map(|(n, x)| (n.to_string(), x.unwrap_or(f64::NAN)))
            .collect();
        if let Some(src) = self.noise_source() {
            v.push(("noise_input".into(), (src == NoiseSource::Input) as u8 as f64));
        }
        v
    }

    /// Set a hyperparameter by name (validated).
    fn set(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        self.hyper_mut().set(name, value)
    }

    /// A hyperparameter's current value.
    fn get(&self, name: &str) -> Result<f64, OptimError> {
        self.hyper().get(name)
    }
}

pub(crate) fn no_refresh(optimizer: &'static str) -> OptimError {
    OptimError::Invalid {
        optimizer,
        detail: "this optimizer has no refresh phase (only svrg and ivon-poco do)".into(),
    }
}

/// The error for a step number of 0 or beyond the i32 range the RNG step scalar holds.
pub(crate) fn check_step(optimizer: &'static str, step: u64) -> Result<f64, OptimError> {
    if step == 0 || step > i32::MAX as u64 {
        return Err(OptimError::Invalid {
            optimizer,
            detail: format!("step {step} is out of range: steps count from 1 up to {}", i32::MAX),
        });
    }
    Ok(step as f64)
}
