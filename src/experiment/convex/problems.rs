//! The convex problems of experiment `convex`: L2-regularised multinomial logistic
//! regression (kiln's `logreg` model, softmax cross-entropy) on a training split, and its
//! objective, gradient and Hessian in f64 on the host. Owns the data selection, the
//! parameter layout and the f64 maths; it runs no optimizer and draws nothing.
//!
//! Objective (the same one every optimizer minimises, see `runs`):
//! `F(θ) = (1/n) Σ_i CE(softmax(x_iᵀW + b), y_i) + (λ/2)(‖W‖² + ‖b‖²)`.
//!
//! Parameter layout: `θ[j·K + c]` with `j < D` is `logreg.weight[j, c]` (the `[D, K]`
//! weight, row-major as kiln stores it) and `θ[D·K + c]` is `logreg.bias[c]`; i.e. the
//! augmented input `x̃ = [x, 1]` times a `[(D+1), K]` matrix.
//!
//! The kiln graph of the same objective ([`objective_graph`]) is built with the DSL and
//! differentiated by kiln's autodiff (twice for Hessian–vector products); the tests run it
//! on the f64 interpreter as an independent check of the host maths.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use kiln_compiler::autodiff::grad_tensors;
use kiln_ir::interp::{evaluate_nodes, Bindings};
use kiln_ir::{DType, Graph, GraphBuilder, NodeId, Value};
use kiln_runtime::data::Dataset;

/// The problems the experiment knows: name, where it comes from, batch size (a divisor of
/// the training-set size, so every epoch and every refresh sees every example), and the
/// L2 strength λ of the experiment. Fashion gets λ = 1e-2: with 1e-3 its condition number
/// (~‖x‖²/(4λ) ≈ 5e4 for pixels in [0, 1]) leaves every stochastic method above 2e-2
/// after 40 epochs, which says nothing about variance reduction.
pub const PROBLEMS: &[(&str, &str, usize, f64)] = &[
    ("heart-scale", "LIBSVM heart_scale, training split (216 x 13)", 8, 1e-3),
    (
        "breast-cancer",
        "scikit-learn breast_cancer, standardised, training split (456 x 30)",
        8,
        1e-3,
    ),
    (
        "fashion-0v6",
        "Fashion-MNIST T-shirt (0) vs Shirt (6), embedded subset, training split (2000 x 784)",
        20,
        1e-2,
    ),
];

/// The experiment's λ for problem `name` (1e-3 for unknown names).
pub fn default_lambda(name: &str) -> f64 {
    PROBLEMS.iter().find(|p| p.0 == name).map(|p| p.3).unwrap_or(1e-3)
}

/// One L2-regularised logistic-regression problem.
pub struct Problem {
    pub name: String,
    pub description: String,
    /// The training split the optimizers see (f32 features, as loaded).
    pub train: Dataset,
    pub n: usize,
    /// Features D (without the bias).
    pub features: usize,
    /// Classes K.
    pub classes: usize,
    /// Features in f64 (exactly the f32 values the optimizers see), `[n, D]` row-major.
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    /// L2 strength λ (= every optimizer's weight decay).
    pub lambda: f64,
    /// Mini-batch size of the stochastic optimizers.
    pub batch: usize,
}

impl Problem {
    /// Load problem `name` (one of [`PROBLEMS`]) with L2 strength `lambda`.
    pub fn load(name: &str, data_dir: Option<&Path>, lambda: f64) -> Result<Problem> {
        let (_, description, batch, _) = PROBLEMS.iter().find(|(n, _, _, _)| *n == name).ok_or_else(|| {
            anyhow!(
                "unknown convex problem `{name}`; known: {}",
                PROBLEMS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            )
        })?;
        let train = match name {
            "fashion-0v6" => Dataset::load("fashion-mnist", data_dir)?
                .train
                .select_classes(&[0, 6])?
                .flattened(),
            other => Dataset::load(other, None)?.train.flattened(),
        };
        Problem::from_dataset(name, description, train, lambda, *batch)
    }

    /// A problem over an already loaded data set (tests use small synthetic ones).
    pub fn from_dataset(name: &str, description: &str, train: Dataset, lambda: f64, batch: usize) -> Result<Problem> {
        let n = train.len();
        if n == 0 || batch == 0 || !n.is_multiple_of(batch) {
            anyhow::bail!("problem {name}: batch size {batch} must divide the {n} training examples");
        }
        let features = train.feature_dim();
        let classes = train.num_classes();
        let x = train.features().iter().map(|&v| v as f64).collect();
        let y = train.labels().iter().map(|&l| l as usize).collect();
        Ok(Problem {
            name: name.to_string(),
            description: description.to_string(),
            train,
            n,
            features,
            classes,
            x,
            y,
            lambda,
            batch,
        })
    }

    /// Number of parameters d = (D + 1)·K.
    pub fn dim(&self) -> usize {
        (self.features + 1) * self.classes
    }

    /// Softmax probabilities of example `i` at `theta` into `p` (length K); returns the
    /// example's cross-entropy.
    fn probs(&self, theta: &[f64], i: usize, p: &mut [f64]) -> f64 {
        let (d, k) = (self.features, self.classes);
        let xi = &self.x[i * d..(i + 1) * d];
        p.copy_from_slice(&theta[d * k..d * k + k]);
        for (j, &xv) in xi.iter().enumerate() {
            if xv != 0.0 {
                let row = &theta[j * k..j * k + k];
                for c in 0..k {
                    p[c] += xv * row[c];
                }
            }
        }
        let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for v in p.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let picked = p[self.y[i]];
        for v in p.iter_mut() {
            *v /= sum;
        }
        -(picked.ln() - sum.ln())
    }

    /// The prior term (λ/2)‖θ‖².
    pub fn prior(&self, theta: &[f64]) -> f64 {
        0.5 * self.lambda * theta.iter().map(|v| v * v).sum::<f64>()
    }

    /// The objective F(θ) on the full training split.
    pub fn objective(&self, theta: &[f64]) -> f64 {
        let mut p = vec![0.0; self.classes];
        let data: f64 = (0..self.n).map(|i| self.probs(theta, i, &mut p)).sum::<f64>() / self.n as f64;
        data + self.prior(theta)
    }

    /// Mean cross-entropy over `rows` and its gradient (data part only, no prior).
    pub fn data_grad(&self, theta: &[f64], rows: &[usize]) -> (f64, Vec<f64>) {
        let (d, k) = (self.features, self.classes);
        let mut g = vec![0.0; self.dim()];
        let mut p = vec![0.0; k];
        let mut loss = 0.0;
        for &i in rows {
            loss += self.probs(theta, i, &mut p);
            p[self.y[i]] -= 1.0;
            let xi = &self.x[i * d..(i + 1) * d];
            for (j, &xv) in xi.iter().enumerate() {
                if xv != 0.0 {
                    for c in 0..k {
                        g[j * k + c] += xv * p[c];
                    }
                }
            }
            for c in 0..k {
                g[d * k + c] += p[c];
            }
        }
        let inv = 1.0 / rows.len() as f64;
        g.iter_mut().for_each(|v| *v *= inv);
        (loss * inv, g)
    }

    /// Objective and gradient on the full training split (data + prior).
    pub fn objective_grad(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let rows: Vec<usize> = (0..self.n).collect();
        let (f, mut g) = self.data_grad(theta, &rows);
        for (gv, &t) in g.iter_mut().zip(theta) {
            *gv += self.lambda * t;
        }
        (f + self.prior(theta), g)
    }

    /// Mean Hessian of the cross-entropy over `rows` (data part only), dense `d × d`
    /// row-major: `H[(j,c),(l,e)] = mean_i x̃_ij x̃_il (p_ic δ_ce − p_ic p_ie)`.
    pub fn data_hessian(&self, theta: &[f64], rows: &[usize]) -> Vec<f64> {
        let (d, k) = (self.features, self.classes);
        let d1 = d + 1;
        let pairs: Vec<(usize, usize)> = (0..k).flat_map(|c| (c..k).map(move |e| (c, e))).collect();
        // One lower-triangular weighted Gram matrix of x̃ per class pair (c <= e).
        let mut grams = vec![vec![0.0; d1 * d1]; pairs.len()];
        let mut p = vec![0.0; k];
        let mut xt = vec![0.0; d1];
        let mut nz: Vec<usize> = Vec::with_capacity(d1);
        for &i in rows {
            self.probs(theta, i, &mut p);
            xt[..d].copy_from_slice(&self.x[i * d..(i + 1) * d]);
            xt[d] = 1.0;
            nz.clear();
            nz.extend((0..d1).filter(|&j| xt[j] != 0.0));
            for (gram, &(c, e)) in grams.iter_mut().zip(&pairs) {
                let w = if c == e { p[c] - p[c] * p[c] } else { -p[c] * p[e] };
                for (a, &j) in nz.iter().enumerate() {
                    let wj = w * xt[j];
                    let row = &mut gram[j * d1..j * d1 + d1];
                    for &l in &nz[..=a] {
                        row[l] += wj * xt[l];
                    }
                }
            }
        }
        let dim = self.dim();
        let inv = 1.0 / rows.len() as f64;
        let mut h = vec![0.0; dim * dim];
        for (gram, &(c, e)) in grams.iter().zip(&pairs) {
            for j in 0..d1 {
                for l in 0..=j {
                    let v = gram[j * d1 + l] * inv;
                    // (j,c),(l,e) and its mirror images.
                    let set = |h: &mut Vec<f64>, r: usize, s: usize| {
                        h[r * dim + s] = v;
                        h[s * dim + r] = v;
                    };
                    set(&mut h, j * k + c, l * k + e);
                    set(&mut h, j * k + e, l * k + c);
                }
            }
        }
        h
    }

    /// The full Hessian of F (data + λI).
    pub fn hessian(&self, theta: &[f64]) -> Vec<f64> {
        let rows: Vec<usize> = (0..self.n).collect();
        let mut h = self.data_hessian(theta, &rows);
        let dim = self.dim();
        for i in 0..dim {
            h[i * dim + i] += self.lambda;
        }
        h
    }

    /// Split θ into kiln's `logreg.weight` `[D, K]` and `logreg.bias` `[K]` data.
    pub fn split(&self, theta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let dk = self.features * self.classes;
        (theta[..dk].to_vec(), theta[dk..].to_vec())
    }
}

/// Names of the objective graph's inputs.
pub const GRAPH_X: &str = "x";
pub const GRAPH_Y: &str = "y";
pub const GRAPH_W: &str = "w";
pub const GRAPH_B: &str = "b";
pub const GRAPH_VW: &str = "v_w";
pub const GRAPH_VB: &str = "v_b";

/// F built with kiln's DSL on the full training split, with its gradient by kiln's
/// autodiff and the Hessian–vector product `H·v` by differentiating `⟨∇F, v⟩` again.
pub struct ObjectiveGraph {
    pub graph: Graph,
    pub loss: NodeId,
    pub grad_w: NodeId,
    pub grad_b: NodeId,
    pub hv_w: NodeId,
    pub hv_b: NodeId,
}

/// Build [`ObjectiveGraph`] for `p` (the same softmax cross-entropy the training steps use,
/// `Tensor::cross_entropy`, plus the L2 term).
pub fn objective_graph(p: &Problem) -> Result<ObjectiveGraph> {
    let (d, k) = (p.features, p.classes);
    let b = GraphBuilder::new();
    let x = b.input(GRAPH_X, [p.n, d], DType::F32);
    let y = b.input(GRAPH_Y, [p.n], DType::I32);
    let w = b.input(GRAPH_W, [d, k], DType::F32);
    let bias = b.input(GRAPH_B, [k], DType::F32);
    let vw = b.input(GRAPH_VW, [d, k], DType::F32);
    let vb = b.input(GRAPH_VB, [k], DType::F32);
    let logits = x.matmul(&w) + &bias;
    let l2 = ((&w * &w).sum_all() + &(&bias * &bias).sum_all()) * (0.5 * p.lambda);
    let loss = logits.cross_entropy(&y) + &l2;
    let g = grad_tensors(&loss, &[&w, &bias]).context("differentiating the objective")?;
    let gv = (&g[0] * &vw).sum_all() + &(&g[1] * &vb).sum_all();
    let hv = grad_tensors(&gv, &[&w, &bias]).context("differentiating the gradient (Hessian-vector product)")?;
    let ids = [&loss, &g[0], &g[1], &hv[0], &hv[1]]
        .iter()
        .map(|t| t.check())
        .collect::<Result<Vec<_>, _>>()?;
    let graph = b.finish()?;
    Ok(ObjectiveGraph {
        graph,
        loss: ids[0],
        grad_w: ids[1],
        grad_b: ids[2],
        hv_w: ids[3],
        hv_b: ids[4],
    })
}

/// What the f64 interpreter computes from [`ObjectiveGraph`] at θ (with direction v).
pub struct InterpretedObjective {
    pub loss: f64,
    pub grad: Vec<f64>,
    pub hv: Vec<f64>,
}

/// Evaluate the objective graph on kiln's f64 reference interpreter at `theta`, with the
/// Hessian–vector product along `v`.
pub fn interpret(p: &Problem, og: &ObjectiveGraph, theta: &[f64], v: &[f64]) -> Result<InterpretedObjective> {
    let (d, k) = (p.features, p.classes);
    let (w, b) = p.split(theta);
    let (vw, vb) = p.split(v);
    let mut bind = Bindings::new();
    bind.insert(GRAPH_X.into(), Value::new([p.n, d], DType::F32, p.x.clone())?);
    let labels = p.y.iter().map(|&l| l as f64).collect();
    bind.insert(GRAPH_Y.into(), Value::new([p.n], DType::I32, labels)?);
    bind.insert(GRAPH_W.into(), Value::new([d, k], DType::F32, w)?);
    bind.insert(GRAPH_B.into(), Value::new([k], DType::F32, b)?);
    bind.insert(GRAPH_VW.into(), Value::new([d, k], DType::F32, vw)?);
    bind.insert(GRAPH_VB.into(), Value::new([k], DType::F32, vb)?);
    let vals = evaluate_nodes(&og.graph, &bind, &[og.loss, og.grad_w, og.grad_b, og.hv_w, og.hv_b])?;
    let join = |a: &Value, b: &Value| a.data.iter().chain(&b.data).copied().collect::<Vec<f64>>();
    Ok(InterpretedObjective {
        loss: vals[0].data[0],
        grad: join(&vals[1], &vals[2]),
        hv: join(&vals[3], &vals[4]),
    })
}
