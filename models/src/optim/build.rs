//! The graph-side plumbing every optimizer shares: parameter references, evaluation
//! points, the three-stage `build_phase` driver, and get-or-create helpers for runtime
//! scalars, state tensors, gradient/noise inputs and Philox noise. Owns naming
//! conventions (`optim.<scalar>`, `<param>.<optimizer>.<state>`, `grad.<param>`,
//! `noise.<param>`); it contains no update maths.

use kiln_ir::{DType, Distribution, GraphBuilder, Init, Op, Shape, SourceKind, Tensor, TensorType};

use super::{NoiseSource, OptimError, Optimizer, Phase};

/// Prefix of every optimizer runtime scalar.
pub const SCALAR_PREFIX: &str = "optim.";

/// RNG streams reserved per parameter (see the module doc of `optim`).
pub(crate) const STREAMS_PER_PARAM: u32 = 64;
/// Largest number of IVON MC samples (streams 0..MAX_SAMPLES of each parameter).
pub(crate) const MAX_SAMPLES: u32 = 32;
pub(crate) const SLOT_ANCHOR: u32 = MAX_SAMPLES;
pub(crate) const SLOT_REFRESH: u32 = MAX_SAMPLES + 1;

/// `optim.<short>`.
pub fn scalar_name(short: &str) -> String {
    format!("{SCALAR_PREFIX}{short}")
}

fn with_label(base: String, label: &str) -> String {
    if label.is_empty() {
        base
    } else {
        format!("{base}@{label}")
    }
}

/// The graph input holding the gradient of `param` at the evaluation point `label`:
/// `grad.<param>` for the first point, `grad.<param>@<label>` for the others.
pub fn grad_input_name(param: &str, label: &str) -> String {
    with_label(format!("grad.{param}"), label)
}

/// The graph input holding injected standard-normal noise for `param` at `label`.
pub fn noise_input_name(param: &str, label: &str) -> String {
    with_label(format!("noise.{param}"), label)
}

/// A trainable parameter as the optimizer sees it.
#[derive(Clone, Debug)]
pub struct ParamRef {
    /// The full (hierarchical) parameter name, e.g. `mlp.0.weight`.
    pub name: String,
    /// Position in the parameter list; keys the parameter's RNG streams.
    pub index: usize,
    /// The `Param` node.
    pub tensor: Tensor,
}

impl ParamRef {
    /// Check that every tensor is a distinct `Param` node and name them.
    pub fn collect(optimizer: &'static str, params: &[Tensor]) -> Result<Vec<ParamRef>, OptimError> {
        let mut out: Vec<ParamRef> = Vec::with_capacity(params.len());
        for (index, t) in params.iter().enumerate() {
            let id = t.check().map_err(|source| OptimError::Graph { optimizer, source })?;
            let name = t.builder().with_graph(|g| match &g.node(id).op {
                Op::Param { name, .. } => Ok(name.clone()),
                op => Err(OptimError::Invalid {
                    optimizer,
                    detail: format!(
                        "parameter {index} is a `{}` node, not a param; only `Param` nodes can be optimized",
                        op.name()
                    ),
                }),
            })?;
            if out.iter().any(|p| p.name == name) {
                return Err(OptimError::Invalid {
                    optimizer,
                    detail: format!("parameter `{name}` is listed twice"),
                });
            }
            out.push(ParamRef {
                name,
                index,
                tensor: t.clone(),
            });
        }
        Ok(out)
    }

    pub fn shape(&self) -> Shape {
        self.tensor.shape()
    }
}

/// One set of parameter versions the loss is evaluated at.
#[derive(Clone, Debug)]
pub struct EvalPoint {
    /// `""` for the first point; otherwise names the point in input names (`grad.w@snapshot`).
    pub label: String,
    /// One tensor per parameter, in parameter order, each of that parameter's shape.
    pub params: Vec<Tensor>,
}

/// Append `opt`'s `phase` graph: evaluation points, gradients from `grads` (called once
/// per point with that point; it returns one gradient per parameter), then the update.
pub fn build_phase(
    opt: &dyn Optimizer,
    phase: Phase,
    b: &GraphBuilder,
    params: &[Tensor],
    grads: &mut dyn FnMut(&EvalPoint) -> Result<Vec<Tensor>, OptimError>,
) -> Result<(), OptimError> {
    let name = opt.name();
    if !opt.phases().contains(&phase) {
        return Err(super::no_refresh(name));
    }
    opt.check()?;
    if let Some(source) = b.error() {
        return Err(OptimError::Graph {
            optimizer: name,
            source,
        });
    }
    let refs = ParamRef::collect(name, params)?;
    let points = opt.eval_points(phase, b, &refs)?;
    let mut all = Vec::with_capacity(points.len());
    for point in &points {
        let g = grads(point)?;
        if g.len() != refs.len() {
            return Err(OptimError::Invalid {
                optimizer: name,
                detail: format!(
                    "{} gradients were given for {} parameters at evaluation point `{}`",
                    g.len(),
                    refs.len(),
                    point.label
                ),
            });
        }
        for (p, gi) in refs.iter().zip(&g) {
            let ty = gi.ty();
            if gi.id().is_some() && (ty.shape != p.shape() || ty.dtype != DType::F32) {
                return Err(OptimError::Invalid {
                    optimizer: name,
                    detail: format!(
                        "the gradient of `{}` has type {ty}, but the parameter is f32{}",
                        p.name,
                        p.shape()
                    ),
                });
            }
        }
        all.push(g);
    }
    opt.apply(phase, b, &refs, &all)?;
    match b.error() {
        Some(source) => Err(OptimError::Graph {
            optimizer: name,
            source,
        }),
        None => Ok(()),
    }
}

/// Gradient inputs for `point` (one f32 input per parameter, named by [`grad_input_name`]).
pub fn grad_inputs(b: &GraphBuilder, params: &[ParamRef], point: &EvalPoint) -> Result<Vec<Tensor>, OptimError> {
    params
        .iter()
        .map(|p| input(b, "gradient inputs", &grad_input_name(&p.name, &point.label), p.shape()))
        .collect()
}

/// Look up a source by name and check it is the expected kind and type.
fn existing(
    b: &GraphBuilder,
    optimizer: &'static str,
    name: &str,
    kind: SourceKind,
    ty: &TensorType,
) -> Result<Option<Tensor>, OptimError> {
    let Some(t) = b.source(name) else {
        return Ok(None);
    };
    let (found_kind, found_ty) = b.with_graph(|g| {
        let n = g.node(t.id().expect("sources are never poisoned"));
        (SourceKind::of(&n.op), n.ty.clone())
    });
    if found_kind != Some(kind) || &found_ty != ty {
        return Err(OptimError::Invalid {
            optimizer,
            detail: format!(
                "the graph already has a source `{name}` ({}, type {found_ty}), but the optimizer needs it as {} of type {ty}; rename yours",
                found_kind.map_or("node", SourceKind::as_str),
                kind.as_str()
            ),
        });
    }
    Ok(Some(t))
}

fn graph_err(optimizer: &'static str, t: Tensor) -> Result<Tensor, OptimError> {
    match t.check() {
        Ok(_) => Ok(t),
        Err(source) => Err(OptimError::Graph { optimizer, source }),
    }
}

/// The runtime scalar `optim.<short>` (created on first use).
pub(crate) fn scalar(
    b: &GraphBuilder,
    optimizer: &'static str,
    short: &str,
    dtype: DType,
) -> Result<Tensor, OptimError> {
    let name = scalar_name(short);
    let ty = TensorType::new(Shape::scalar(), dtype);
    match existing(b, optimizer, &name, SourceKind::Scalar, &ty)? {
        Some(t) => Ok(t),
        None => graph_err(optimizer, b.scalar(&name, dtype)),
    }
}

/// An f32 runtime scalar `optim.<short>`.
pub(crate) fn f(b: &GraphBuilder, optimizer: &'static str, short: &str) -> Result<Tensor, OptimError> {
    scalar(b, optimizer, short, DType::F32)
}

/// The state tensor `<param>.<suffix>` with the parameter's shape (created on first use;
/// the name is absolute, not affected by the builder's scope).
pub(crate) fn state(
    b: &GraphBuilder,
    optimizer: &'static str,
    p: &ParamRef,
    suffix: &str,
    init: Init,
) -> Result<Tensor, OptimError> {
    let name = format!("{}.{suffix}", p.name);
    let ty = TensorType::new(p.shape(), DType::F32);
    match existing(b, optimizer, &name, SourceKind::State, &ty)? {
        Some(t) => Ok(t),
        None => graph_err(optimizer, b.node(Op::State { name, init }, &[], Some(ty))),
    }
}

/// An f32 graph input (created on first use).
pub(crate) fn input(b: &GraphBuilder, optimizer: &'static str, name: &str, shape: Shape) -> Result<Tensor, OptimError> {
    let ty = TensorType::new(shape.clone(), DType::F32);
    match existing(b, optimizer, name, SourceKind::Input, &ty)? {
        Some(t) => Ok(t),
        None => graph_err(optimizer, b.input(name, shape, DType::F32)),
    }
}

/// Standard-normal noise of `p`'s shape: an injected input `noise.<param>[@label]`, or
/// Philox draws keyed by `optim.seed`, the i32 scalar `optim.<step_scalar>` and the
/// stream `index * 64 + slot`. Calling it twice regenerates the same numbers.
pub(crate) fn noise(
    b: &GraphBuilder,
    optimizer: &'static str,
    p: &ParamRef,
    source: NoiseSource,
    label: &str,
    slot: u32,
    step_scalar: &str,
) -> Result<Tensor, OptimError> {
    match source {
        NoiseSource::Input => input(b, optimizer, &noise_input_name(&p.name, label), p.shape()),
        NoiseSource::Philox => {
            let stream = u32::try_from(p.index)
                .ok()
                .and_then(|i| i.checked_mul(STREAMS_PER_PARAM))
                .and_then(|s| s.checked_add(slot))
                .ok_or_else(|| OptimError::Invalid {
                    optimizer,
                    detail: format!("too many parameters for distinct RNG streams (index {})", p.index),
                })?;
            let seed = scalar(b, optimizer, "seed", DType::I32)?;
            let step = scalar(b, optimizer, step_scalar, DType::I32)?;
            graph_err(
                optimizer,
                Tensor::random(&seed, &step, p.shape(), Distribution::Normal, stream),
            )
        }
    }
}

/// The bool scalar `optim.refresh_first > 0.5` (true on the first micro-batch of a refresh).
pub(crate) fn refresh_first(b: &GraphBuilder, optimizer: &'static str) -> Result<Tensor, OptimError> {
    let first = f(b, optimizer, "refresh_first")?;
    graph_err(optimizer, first.gt(0.5))
}

/// The host values of the refresh scalars every refresh graph reads (`optim.refresh_step`
/// only when the refresh draws Philox noise).
pub(crate) fn refresh_values(
    optimizer: &'static str,
    counter: u64,
    first: bool,
    weight: f64,
    rng: bool,
) -> Result<Vec<(String, f64)>, OptimError> {
    if !(weight.is_finite() && weight >= 0.0) {
        return Err(OptimError::Invalid {
            optimizer,
            detail: format!("refresh weight {weight} must be finite and >= 0 (|micro-batch| / |mega-batch|)"),
        });
    }
    if counter > i32::MAX as u64 {
        return Err(OptimError::Invalid {
            optimizer,
            detail: format!("refresh counter {counter} exceeds the i32 range of the RNG step"),
        });
    }
    let mut v = vec![
        (scalar_name("refresh_first"), first as u8 as f64),
        (scalar_name("refresh_weight"), weight),
    ];
    if rng {
        v.push((scalar_name("refresh_step"), counter as f64));
    }
    Ok(v)
}
