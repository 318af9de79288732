//! The gradient-check harness: autodiff gradients (the backward graph built by
//! `kiln_compiler::autodiff::grad`, evaluated by the f64 reference interpreter) against
//! central finite differences of the forward graph, also evaluated in f64.
//!
//! Tolerance (honest for f64, documented in one place):
//! - step `h = 1e-6` (absolute); the denominator is the step actually realised,
//!   `(x + h) - (x - h)`, so rounding of `x ± h` does not bias the quotient;
//! - an element passes when `|ad - fd| <= 1e-8 · max(1, |loss|) + 1e-6 · max(|ad|, |fd|)`.
//!
//! Why: central differences have truncation error `h²/6 · |f'''| ≈ 2e-13 · |f'''|` and
//! rounding error `≈ ε·|f| / h ≈ 2e-10 · |f|` (ε = 2.2e-16). The absolute term covers
//! the rounding error with a margin, also when the loss and its intermediates are ~1e3
//! (the huge-logit tests); the relative term covers the truncation error of functions
//! with large third derivatives. Measured over this suite, the worst element uses ~3%
//! of its allowance and the largest absolute error is ~4e-9 (1e-7 with 1e3 logits), so
//! a gradient off by a relative 1e-5 fails (`harness_rejects_a_slightly_wrong_gradient`).
//! Inputs are drawn away from 0 (|x| in [0.1, 1]) so relu/abs/sign kinks are never
//! within `h` of an input.

use kiln_compiler::autodiff::grad;
use kiln_ir::interp::{evaluate_nodes, Bindings};
use kiln_ir::{DType, Graph, NodeId, Tensor, Value};

pub const STEP: f64 = 1e-6;
/// Relative part of the pass rule.
pub const REL_TOL: f64 = 1e-6;
/// Absolute part of the pass rule, scaled by `max(1, |loss|)`.
pub const ABS_TOL: f64 = 1e-8;

/// SplitMix64: a tiny deterministic generator so the tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform on [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// Random sign times U(0.1, 1): never near the kinks of relu/abs/sign.
    pub fn away_from_zero(&mut self) -> f64 {
        let m = self.uniform(0.1, 1.0);
        if self.next_u64() & 1 == 0 {
            m
        } else {
            -m
        }
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Random values (`Rng::away_from_zero`) for every f32 source of `graph`. Integer and
/// bool sources (labels, indices) are left for the test to bind.
pub fn random_bindings(graph: &Graph, seed: u64) -> Bindings {
    let mut rng = Rng::new(seed);
    let mut b = Bindings::new();
    for node in graph.nodes() {
        if let (Some(name), DType::F32) = (node.op.source_name(), node.ty.dtype) {
            let data = (0..node.ty.shape.numel()).map(|_| rng.away_from_zero()).collect();
            b.insert(
                name.to_string(),
                Value::new(node.ty.shape.clone(), DType::F32, data).unwrap(),
            );
        }
    }
    b
}

/// What one gradcheck saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub elements: usize,
    /// Largest `|ad - fd|`.
    pub max_abs_err: f64,
    /// Largest error as a fraction of what the tolerance allowed (<= 1 when it passed).
    pub worst_ratio: f64,
}

pub fn eval1(graph: &Graph, bindings: &Bindings, id: NodeId) -> Value {
    evaluate_nodes(graph, bindings, &[id])
        .unwrap_or_else(|e| panic!("evaluating {id}: {e}"))
        .remove(0)
}

fn scalar(graph: &Graph, bindings: &Bindings, id: NodeId) -> f64 {
    eval1(graph, bindings, id).item().expect("the loss is a scalar")
}

/// The autodiff gradients of `loss` w.r.t. `wrt`, evaluated by the interpreter.
pub fn ad_grads(graph: &Graph, loss: NodeId, wrt: &[NodeId], bindings: &Bindings) -> Vec<Value> {
    let (g2, ids) = grad(graph, loss, wrt).unwrap_or_else(|e| panic!("grad failed: {e}"));
    let vals = evaluate_nodes(&g2, bindings, &ids).unwrap_or_else(|e| panic!("evaluating gradients: {e}"));
    for (w, v) in wrt.iter().zip(&vals) {
        assert_eq!(v.shape, graph.node(*w).ty.shape, "gradient of {w} has the wrong shape");
        assert_eq!(v.dtype, DType::F32, "gradients are f32");
    }
    vals
}

/// Central finite differences of `loss` w.r.t. the source node `w` (its binding is
/// perturbed element by element).
pub fn fd_grad(graph: &Graph, loss: NodeId, w: NodeId, bindings: &Bindings) -> Vec<f64> {
    let name = graph
        .node(w)
        .op
        .source_name()
        .unwrap_or_else(|| panic!("gradcheck perturbs sources; {w} is a {}", graph.node(w).op.name()))
        .to_string();
    let mut b = bindings.clone();
    let n = b[&name].data.len();
    (0..n)
        .map(|i| {
            let x = bindings[&name].data[i];
            let (xp, xm) = (x + STEP, x - STEP);
            b.get_mut(&name).unwrap().data[i] = xp;
            let fp = scalar(graph, &b, loss);
            b.get_mut(&name).unwrap().data[i] = xm;
            let fm = scalar(graph, &b, loss);
            b.get_mut(&name).unwrap().data[i] = x;
            (fp - fm) / (xp - xm)
        })
        .collect()
}

/// Gradcheck: autodiff vs finite differences; panics naming the offending element.
pub fn gradcheck(graph: &Graph, loss: NodeId, wrt: &[NodeId], bindings: &Bindings) -> Report {
    let ads = ad_grads(graph, loss, wrt, bindings);
    compare_with_fd(graph, loss, wrt, bindings, &ads).unwrap_or_else(|e| panic!("{e}"))
}

/// Compare gradient values `ads` (one per `wrt`) with central finite differences.
pub fn compare_with_fd(
    graph: &Graph,
    loss: NodeId,
    wrt: &[NodeId],
    bindings: &Bindings,
    ads: &[Value],
) -> Result<Report, String> {
    let f0 = scalar(graph, bindings, loss);
    if !f0.is_finite() {
        return Err(format!("the loss is not finite: {f0}"));
    }
    let mut rep = Report::default();
    for (&w, ad) in wrt.iter().zip(ads) {
        let fd = fd_grad(graph, loss, w, bindings);
        for (i, (&a, &f)) in ad.data.iter().zip(&fd).enumerate() {
            let err = (a - f).abs();
            let allowed = ABS_TOL * f0.abs().max(1.0) + REL_TOL * a.abs().max(f.abs());
            // A NaN error fails too.
            if err.is_nan() || err > allowed {
                return Err(format!(
                    "gradcheck failed for {w} ({}) element {i} (index {:?}): autodiff {a:e}, finite \
                     difference {f:e}, |diff| {err:e} > allowed {allowed:e} (loss {f0:e})",
                    graph.node(w).op.source_name().unwrap_or(""),
                    ad.shape.unravel(i)
                ));
            }
            rep.elements += 1;
            rep.max_abs_err = rep.max_abs_err.max(err);
            rep.worst_ratio = rep.worst_ratio.max(if allowed > 0.0 { err / allowed } else { 0.0 });
        }
    }
    Ok(rep)
}

/// DSL form: finish the loss's graph and gradcheck w.r.t. the given source tensors.
pub fn check(loss: &Tensor, wrt: &[&Tensor], bindings: &Bindings) -> Report {
    let graph = loss
        .builder()
        .finish()
        .unwrap_or_else(|e| panic!("building the test graph: {e}"));
    let ids: Vec<NodeId> = wrt.iter().map(|t| t.id().expect("valid handle")).collect();
    gradcheck(&graph, loss.id().expect("valid loss"), &ids, bindings)
}

/// Random bindings for the loss's graph (see [`random_bindings`]).
pub fn bindings_for(loss: &Tensor, seed: u64) -> Bindings {
    loss.builder().with_graph(|g| random_bindings(g, seed))
}

/// `sum(t * probe)` with a fresh random f32 input `probe_<n>` of t's shape: a scalar
/// loss whose upstream gradient into `t` is an arbitrary (random) tensor, not ones.
pub fn probe_loss(t: &Tensor) -> Tensor {
    let b = t.builder();
    let n = b.with_graph(|g| g.len());
    let probe = b.input(&format!("probe_{n}"), t.shape(), DType::F32);
    (t * &probe).sum_all()
}

#[test]
fn harness_rejects_a_slightly_wrong_gradient() {
    let b = kiln_ir::GraphBuilder::new();
    let x = b.input("x", [3, 2], DType::F32);
    let loss = (x.tanh() * &x.exp()).sum_all();
    let graph = b.finish().unwrap();
    let bind = random_bindings(&graph, 1);
    let (l, w) = (loss.id().unwrap(), x.id().unwrap());
    let good = ad_grads(&graph, l, &[w], &bind);
    assert!(compare_with_fd(&graph, l, &[w], &bind, &good).is_ok());
    for k in 0..6 {
        let mut bad = good.clone();
        bad[0].data[k] *= 1.0 + 1e-5;
        assert!(compare_with_fd(&graph, l, &[w], &bind, &bad).is_err(), "element {k}");
        bad[0].data[k] = f64::NAN;
        assert!(compare_with_fd(&graph, l, &[w], &bind, &bad).is_err(), "NaN at {k}");
    }
}
