//! Shared helpers of the optimizer tests: a deterministic RNG, tolerance checks, and
//! `LibRun`, which builds an optimizer's graphs through the library API with the toy
//! quadratic loss ½Σa(θ−c)² differentiated by hand *inside the graph* (gradient
//! a⊙(θ_e − c) at each evaluation point θ_e) and runs them in the reference interpreter.
#![allow(dead_code)]

pub mod reference;

use kiln_ir::init::initial_bindings;
use kiln_ir::interp::{apply_updates, evaluate, Evaluation};
use kiln_ir::{Bindings, DType, Graph, GraphBuilder, Init, SourceKind, Value};
use kiln_models::optim::{build_phase, noise_input_name, Optimizer, Phase};

/// SplitMix64: small, deterministic, good enough for test inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| scale * self.normal()).collect()
    }
}

/// Assert `got` ≈ `want` elementwise: |got − want| <= rel·max(|want|, floor).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], rel: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(floor);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g:.15e}, want {w:.15e} (diff {:.3e}, tol {tol:.1e})",
            (g - w).abs()
        );
    }
}

/// An optimizer's graphs on one parameter `w` with the in-graph quadratic gradient.
pub struct LibRun {
    pub opt: Box<dyn Optimizer>,
    pub step_graph: Graph,
    pub refresh_graph: Option<Graph>,
    pub bindings: Bindings,
    pub t: u64,
    pub counter: u64,
    last: Option<(Phase, Evaluation)>,
}

fn build(opt: &dyn Optimizer, phase: Phase, n: usize) -> Graph {
    let b = GraphBuilder::new();
    let w = b.param("w", [n], Init::Zeros);
    let a = b.input("data.a", [n], DType::F32);
    let c = b.input("data.c", [n], DType::F32);
    build_phase(opt, phase, &b, &[w], &mut |point| {
        let suffix = if point.label.is_empty() {
            String::new()
        } else {
            format!("@{}", point.label)
        };
        let g = &a * &(&point.params[0] - &c);
        b.output(&format!("point{suffix}"), &point.params[0]);
        b.output(&format!("grad{suffix}"), &g);
        Ok(vec![g])
    })
    .unwrap_or_else(|e| panic!("building the {phase} graph of {}: {e}", opt.name()));
    b.finish().unwrap()
}

fn bind_scalars(g: &Graph, values: &[(String, f64)], bindings: &mut Bindings) {
    let declared: Vec<String> = g
        .sources_of(SourceKind::Scalar)
        .into_iter()
        .map(|id| g.node(id).op.source_name().unwrap().to_string())
        .collect();
    let mut given: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
    let mut want = declared.clone();
    given.sort();
    want.sort();
    assert_eq!(
        given, want,
        "the host scalars must be exactly the graph's runtime scalars"
    );
    for (name, v) in values {
        let id = g.source(name).unwrap();
        bindings.insert(name.clone(), Value::scalar(*v, g.node(id).dtype()));
    }
}

impl LibRun {
    pub fn new(opt: Box<dyn Optimizer>, theta0: &[f64]) -> Self {
        let n = theta0.len();
        let step_graph = build(opt.as_ref(), Phase::Step, n);
        let refresh_graph = opt
            .phases()
            .contains(&Phase::Refresh)
            .then(|| build(opt.as_ref(), Phase::Refresh, n));
        let mut bindings = initial_bindings(&step_graph, 0);
        if let Some(r) = &refresh_graph {
            for (k, v) in initial_bindings(r, 0) {
                bindings.entry(k).or_insert(v);
            }
        }
        bindings.insert("w".into(), Value::new([n], DType::F32, theta0.to_vec()).unwrap());
        LibRun {
            opt,
            step_graph,
            refresh_graph,
            bindings,
            t: 0,
            counter: 0,
            last: None,
        }
    }

    pub fn get(&self, name: &str) -> Vec<f64> {
        self.bindings
            .get(name)
            .unwrap_or_else(|| panic!("no binding `{name}`"))
            .data
            .clone()
    }

    pub fn set(&mut self, name: &str, data: &[f64]) {
        assert!(self.bindings.contains_key(name), "no binding `{name}`");
        let n = data.len();
        self.bindings
            .insert(name.into(), Value::new([n], DType::F32, data.to_vec()).unwrap());
    }

    /// An output of the last run: `point`, `point@anchor`, `grad`, ...
    pub fn out(&self, name: &str) -> Vec<f64> {
        let (phase, eval) = self.last.as_ref().expect("nothing ran yet");
        let g = match phase {
            Phase::Step => &self.step_graph,
            Phase::Refresh => self.refresh_graph.as_ref().unwrap(),
        };
        eval.output(g, name)
            .unwrap_or_else(|| panic!("no output `{name}`"))
            .data
            .clone()
    }

    fn inputs(&mut self, a: &[f64], c: &[f64], noise: &[(&str, &[f64])]) {
        let n = a.len();
        self.bindings
            .insert("data.a".into(), Value::new([n], DType::F32, a.to_vec()).unwrap());
        self.bindings
            .insert("data.c".into(), Value::new([n], DType::F32, c.to_vec()).unwrap());
        for (label, z) in noise {
            self.bindings.insert(
                noise_input_name("w", label),
                Value::new([n], DType::F32, z.to_vec()).unwrap(),
            );
        }
    }

    /// One step on the example (a, c) with injected noise per evaluation-point label.
    pub fn step(&mut self, a: &[f64], c: &[f64], noise: &[(&str, &[f64])]) {
        self.t += 1;
        self.inputs(a, c, noise);
        let scalars = self.opt.scalars(self.t).unwrap();
        bind_scalars(&self.step_graph, &scalars, &mut self.bindings);
        let eval = evaluate(&self.step_graph, &self.bindings).unwrap();
        apply_updates(&self.step_graph, &eval, &mut self.bindings);
        self.last = Some((Phase::Step, eval));
    }

    /// One refresh micro-batch.
    pub fn refresh(&mut self, first: bool, weight: f64, a: &[f64], c: &[f64], noise: &[(&str, &[f64])]) {
        self.inputs(a, c, noise);
        let scalars = self.opt.refresh_scalars(self.counter, first, weight).unwrap();
        self.counter += 1;
        let g = self.refresh_graph.as_ref().expect("no refresh graph");
        bind_scalars(g, &scalars, &mut self.bindings);
        let eval = evaluate(g, &self.bindings).unwrap();
        apply_updates(g, &eval, &mut self.bindings);
        self.last = Some((Phase::Refresh, eval));
    }
}
