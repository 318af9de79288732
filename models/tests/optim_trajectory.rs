//! 100-step trajectories on random inputs for every optimizer: kiln's update graphs (run
//! by the reference interpreter through `Replayer`, gradients and noise as inputs) against
//! the independent straightforward f64 implementations in `optim_util::reference`. Also
//! the exact reductions (SVRG α=0 = SGD, IVON-PoCo α=0 = IVON), the Philox stream
//! contract, and learning-rate schedules that never rebuild.

mod optim_util;

use std::collections::HashMap;

use kiln_ir::philox::random_f64;
use kiln_ir::{DType, Distribution, Value};
use kiln_models::optim::{by_name, Interpreter, NoiseSource, Optimizer, Phase, Replayer};
use optim_util::reference::{
    Adam as RefAdam, ConstantVsgd as RefCvsgd, Ivon as RefIvon, Poco as RefPoco, Sgd as RefSgd, Svrg as RefSvrg,
    Vsgd as RefVsgd,
};
use optim_util::{assert_close, Rng};

const PARAMS: [(&str, &[usize]); 3] = [("mlp.0.weight", &[3, 5]), ("mlp.0.bias", &[17]), ("head", &[1])];
const STEPS: usize = 100;

/// Inputs of one run for one parameter: `grad[@label]` and `noise[@label]` -> data.
type PerParam = HashMap<String, Vec<f64>>;

/// The reference side of a trajectory: one call per parameter per event.
trait Reference {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, inputs: &PerParam);
    fn refresh(&mut self, _p: usize, _theta: &[f64], _first: bool, _weight: f64, _inputs: &PerParam) {
        panic!("this reference has no refresh");
    }
    /// Called once per step before the per-parameter calls.
    fn begin_step(&mut self, _t: u64) {}
    /// A learning-rate schedule's new value.
    fn set_lr(&mut self, _lr: f64) {
        panic!("this reference has no schedule");
    }
}

fn make(name: &str, hyper: &[(&str, f64)], noise: bool) -> Box<dyn Optimizer> {
    let mut o = by_name(name).unwrap();
    for (k, v) in hyper {
        o.set(k, *v).unwrap();
    }
    if noise {
        o.set_noise_source(NoiseSource::Input).unwrap();
    }
    o
}

fn split(inputs: &HashMap<String, Value>) -> Vec<PerParam> {
    PARAMS
        .iter()
        .map(|(p, _)| {
            let mut m = PerParam::new();
            for (k, v) in inputs {
                for kind in ["grad", "noise"] {
                    if let Some(rest) = k.strip_prefix(&format!("{kind}.{p}")) {
                        if rest.is_empty() || rest.starts_with('@') {
                            m.insert(format!("{kind}{rest}"), v.data.clone());
                        }
                    }
                }
            }
            m
        })
        .collect()
}

fn random_inputs(rng: &mut Rng, needed: &[(String, kiln_ir::Shape)]) -> HashMap<String, Value> {
    needed
        .iter()
        .map(|(n, s)| {
            let data = rng.normals(s.numel(), 1.0);
            (n.clone(), Value::new(s.clone(), DType::F32, data).unwrap())
        })
        .collect()
}

/// Run `opt` and `reference` side by side for STEPS steps; refreshes every
/// `refresh_every` steps with two micro-batches of weights 0.3 and 0.7. `schedule` may
/// change runtime hyperparameters before each step (applied to both sides by the caller).
fn trajectory(
    opt: Box<dyn Optimizer>,
    reference: &mut dyn Reference,
    refresh_every: Option<usize>,
    seed: u64,
    rel: f64,
    schedule: &mut dyn FnMut(u64, &mut Replayer, &mut dyn Reference),
) -> Vec<Vec<f64>> {
    let mut rng = Rng(seed);
    let params: Vec<(String, Value)> = PARAMS
        .iter()
        .map(|(n, s)| {
            let numel = s.iter().product();
            (
                n.to_string(),
                Value::new(s.to_vec(), DType::F32, rng.normals(numel, 0.5)).unwrap(),
            )
        })
        .collect();
    let mut thetas: Vec<Vec<f64>> = params.iter().map(|(_, v)| v.data.clone()).collect();
    let mut exec = Interpreter;
    let mut r = Replayer::new(opt, &params, &mut exec).unwrap();
    let (step_inputs, refresh_inputs) = (r.inputs(Phase::Step), r.inputs(Phase::Refresh));
    for t in 1..=STEPS as u64 {
        if let Some(every) = refresh_every {
            if (t - 1) % every as u64 == 0 {
                for (j, w) in [0.3, 0.7].into_iter().enumerate() {
                    let inputs = random_inputs(&mut rng, &refresh_inputs);
                    r.refresh_batch(j == 0, w, &inputs).unwrap();
                    for (p, per) in split(&inputs).iter().enumerate() {
                        reference.refresh(p, &thetas[p], j == 0, w, per);
                    }
                }
            }
        }
        schedule(t, &mut r, reference);
        let inputs = random_inputs(&mut rng, &step_inputs);
        r.step(&inputs).unwrap();
        reference.begin_step(t);
        for (p, per) in split(&inputs).iter().enumerate() {
            reference.step(p, &mut thetas[p], per);
        }
        for (p, (name, _)) in PARAMS.iter().enumerate() {
            let got = &r.value(name).unwrap().data;
            assert_close(&format!("{name} after step {t}"), got, &thetas[p], rel, 1e-3);
        }
    }
    thetas
}

fn no_schedule() -> impl FnMut(u64, &mut Replayer, &mut dyn Reference) {
    |_, _, _| {}
}

struct Per<T>(Vec<T>);

impl Reference for Per<RefSgd> {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        self.0[p].step(theta, &i["grad"]);
    }
}

impl Reference for Per<RefAdam> {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        self.0[p].step(theta, &i["grad"]);
    }
    fn set_lr(&mut self, lr: f64) {
        self.0.iter_mut().for_each(|a| a.lr = lr);
    }
}

impl Reference for Per<RefVsgd> {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        self.0[p].step(theta, &i["grad"]);
    }
}

impl Reference for Per<RefCvsgd> {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        self.0[p].step(theta, &i["grad"]);
    }
}

fn numel(p: usize) -> usize {
    PARAMS[p].1.iter().product()
}

#[test]
fn sgd_variants() {
    for (mom, damp, wd, nesterov) in [(0.0, 0.0, 0.0, false), (0.9, 0.1, 0.01, false), (0.8, 0.0, 0.02, true)] {
        let hyper = [
            ("lr", 0.05),
            ("momentum", mom),
            ("dampening", damp),
            ("weight_decay", wd),
            ("nesterov", nesterov as u8 as f64),
        ];
        let mut reference = Per((0..3).map(|_| RefSgd::new(0.05, mom, damp, wd, nesterov)).collect());
        trajectory(
            make("sgd", &hyper, false),
            &mut reference,
            None,
            1,
            1e-10,
            &mut no_schedule(),
        );
    }
}

#[test]
fn adam_and_adamw_with_an_lr_schedule() {
    for (name, decoupled, wd) in [("adam", false, 0.01), ("adamw", true, 0.1)] {
        let hyper = [
            ("lr", 0.01),
            ("beta1", 0.8),
            ("beta2", 0.95),
            ("eps", 1e-6),
            ("weight_decay", wd),
        ];
        let mut reference = Per((0..3)
            .map(|p| RefAdam::new(numel(p), 0.01, 0.8, 0.95, 1e-6, wd, decoupled))
            .collect());
        // A cosine-like schedule set on both sides before every step; the graphs stay.
        let graph_before;
        {
            let mut exec = Interpreter;
            let r = Replayer::new(
                make(name, &hyper, false),
                &[("x".into(), Value::zeros([2], DType::F32))],
                &mut exec,
            )
            .unwrap();
            graph_before = r.graph(Phase::Step).unwrap().structural_hash();
        }
        let mut schedule = |t: u64, r: &mut Replayer, reference: &mut dyn Reference| {
            let lr = 0.01 * (1.0 + (t as f64).cos()) / 2.0;
            r.set_hyper("lr", lr).unwrap();
            reference.set_lr(lr);
        };
        trajectory(make(name, &hyper, false), &mut reference, None, 2, 1e-10, &mut schedule);
        // Changing lr does not change the graph.
        let mut o = make(name, &hyper, false);
        o.set("lr", 0.5).unwrap();
        let mut exec = Interpreter;
        let r = Replayer::new(o, &[("x".into(), Value::zeros([2], DType::F32))], &mut exec).unwrap();
        assert_eq!(r.graph(Phase::Step).unwrap().structural_hash(), graph_before);
    }
}

#[test]
fn vsgd_and_constant_vsgd() {
    for wd in [0.0, 0.05] {
        let hyper = [("lr", 0.01), ("weight_decay", wd)];
        let mut reference = Per((0..3).map(|p| RefVsgd::new(numel(p), 0.01, wd)).collect());
        trajectory(
            make("vsgd", &hyper, false),
            &mut reference,
            None,
            3,
            1e-9,
            &mut no_schedule(),
        );
        let mut reference = Per((0..3)
            .map(|p| RefCvsgd {
                lr: 0.01,
                kg: 30.0,
                gamma: 1e-8,
                eps: 1e-8,
                wd,
                mu: vec![0.0; numel(p)],
            })
            .collect());
        trajectory(
            make("constant-vsgd", &hyper, false),
            &mut reference,
            None,
            4,
            1e-9,
            &mut no_schedule(),
        );
    }
}

#[test]
fn vsgd_properties_hold_over_a_trajectory() {
    // |Δθ| <= η (λ = 0) and positive rates, on gradients spanning 1e-4..1e4.
    let mut rng = Rng(9);
    let n = 31;
    let theta: Vec<f64> = rng.normals(n, 1.0);
    let mut exec = Interpreter;
    let mut r = Replayer::new(
        make("vsgd", &[("lr", 0.01)], false),
        &[("w".into(), Value::new([n], DType::F32, theta).unwrap())],
        &mut exec,
    )
    .unwrap();
    let scales: Vec<f64> = (0..n).map(|i| 10f64.powi(i as i32 % 9 - 4)).collect();
    for _ in 0..60 {
        let before = r.value("w").unwrap().data.clone();
        let g: Vec<f64> = (0..n).map(|i| scales[i] * (1.0 + 0.3 * rng.normal())).collect();
        r.step(&HashMap::from([(
            "grad.w".into(),
            Value::new([n], DType::F32, g).unwrap(),
        )]))
        .unwrap();
        let after = &r.value("w").unwrap().data;
        for i in 0..n {
            assert!(
                (after[i] - before[i]).abs() <= 0.01 * (1.0 + 1e-12),
                "step bound at {i}"
            );
        }
        for s in ["w.vsgd.bg", "w.vsgd.bh"] {
            assert!(
                r.value(s).unwrap().data.iter().all(|&x| x > 0.0),
                "{s} must stay positive"
            );
        }
    }
}

/// IVON reference over per-parameter instances; K samples read from `grad[@sampleK]`.
struct IvonRef {
    per: Vec<RefIvon>,
    k: usize,
    /// Philox noise instead of the injected inputs: (seed, current step).
    philox: Option<(i32, u64)>,
}

fn label(k: usize) -> String {
    if k == 0 {
        String::new()
    } else {
        format!("@sample{k}")
    }
}

fn philox_normals(seed: i32, step: u64, stream: u32, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| random_f64(Distribution::Normal, seed, step as i32, stream, i))
        .collect()
}

impl Reference for IvonRef {
    fn begin_step(&mut self, t: u64) {
        if let Some((_, step)) = &mut self.philox {
            *step = t;
        }
    }
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        let gs: Vec<Vec<f64>> = (0..self.k).map(|k| i[&format!("grad{}", label(k))].clone()).collect();
        let zs: Vec<Vec<f64>> = (0..self.k)
            .map(|k| match self.philox {
                None => i[&format!("noise{}", label(k))].clone(),
                Some((seed, t)) => philox_normals(seed, t, p as u32 * 64 + k as u32, theta.len()),
            })
            .collect();
        self.per[p].step(theta, &gs, &zs);
    }
}

fn ivon_ref(hyper: &[(&str, f64)], k: usize, philox: Option<i32>) -> IvonRef {
    let h = |n: &str, d: f64| hyper.iter().find(|(k, _)| *k == n).map_or(d, |(_, v)| *v);
    IvonRef {
        per: (0..3)
            .map(|p| {
                let mut r = RefIvon::new(
                    numel(p),
                    h("lr", f64::NAN),
                    h("ess", f64::NAN),
                    h("hess_init", 1.0),
                    h("beta1", 0.9),
                    h("beta2", 0.99999),
                    h("weight_decay", 1e-4),
                    h("clip_radius", f64::INFINITY),
                );
                // kiln stores state in f32: the initial h is hess_init rounded to f32
                // (the lr rescale uses the exact host value).
                r.h = vec![h("hess_init", 1.0) as f32 as f64; numel(p)];
                r.debias = h("debias", 1.0) != 0.0;
                r.rescale = h("rescale_lr", 1.0) != 0.0;
                r
            })
            .collect(),
        k,
        philox: philox.map(|s| (s, 0)),
    }
}

#[test]
fn ivon_variants() {
    let configs: [(&[(&str, f64)], usize); 3] = [
        (&[("lr", 0.05), ("ess", 50.0)], 1),
        (
            &[
                ("lr", 0.2),
                ("ess", 20.0),
                ("hess_init", 0.3),
                ("beta2", 0.99),
                ("weight_decay", 0.01),
                ("clip_radius", 0.05),
            ],
            3,
        ),
        (
            &[
                ("lr", 0.02),
                ("ess", 200.0),
                ("debias", 0.0),
                ("rescale_lr", 0.0),
                ("beta1", 0.5),
            ],
            2,
        ),
    ];
    for (hyper, k) in configs {
        let mut full = hyper.to_vec();
        full.push(("mc_samples", k as f64));
        let mut reference = ivon_ref(hyper, k, None);
        trajectory(
            make("ivon", &full, true),
            &mut reference,
            None,
            5,
            1e-9,
            &mut no_schedule(),
        );
    }
}

#[test]
fn ivon_philox_noise_follows_the_stream_contract() {
    // Noise regenerated in-graph from (optim.seed, optim.step = t, stream = index*64 + k)
    // must be exactly kiln_ir::philox's numbers for those keys.
    let hyper = [("lr", 0.05), ("ess", 50.0), ("seed", 1234.0), ("mc_samples", 2.0)];
    let mut reference = ivon_ref(&hyper, 2, Some(1234));
    trajectory(
        make("ivon", &hyper, false),
        &mut reference,
        None,
        6,
        1e-9,
        &mut no_schedule(),
    );
}

struct SvrgRef(Vec<RefSvrg>);

impl Reference for SvrgRef {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        self.0[p].step(theta, &i["grad"], &i["grad@snapshot"]);
    }
    fn refresh(&mut self, p: usize, theta: &[f64], first: bool, weight: f64, i: &PerParam) {
        if first {
            self.0[p].begin_refresh(theta);
        }
        self.0[p].accumulate(weight, &i["grad"]);
    }
}

#[test]
fn svrg_with_refreshes() {
    for (alpha, mom, nesterov) in [(1.0, 0.0, false), (0.6, 0.9, false), (0.3, 0.5, true)] {
        let hyper = [
            ("lr", 0.03),
            ("alpha", alpha),
            ("momentum", mom),
            ("weight_decay", 0.01),
            ("nesterov", nesterov as u8 as f64),
        ];
        let mut reference = SvrgRef(
            (0..3)
                .map(|_| RefSvrg {
                    sgd: RefSgd::new(0.03, mom, 0.0, 0.01, nesterov),
                    alpha,
                    snapshot: vec![],
                    mu: vec![],
                })
                .collect(),
        );
        trajectory(
            make("svrg", &hyper, false),
            &mut reference,
            Some(10),
            7,
            1e-10,
            &mut no_schedule(),
        );
    }
}

struct PocoRef {
    per: Vec<RefPoco>,
    shared: bool,
}

impl Reference for PocoRef {
    fn step(&mut self, p: usize, theta: &mut Vec<f64>, i: &PerParam) {
        let z_out = if self.shared { &i["noise"] } else { &i["noise@anchor"] };
        self.per[p].step(theta, &i["grad"], &i["noise"], &i["grad@anchor"], z_out);
    }
    fn refresh(&mut self, p: usize, theta: &[f64], first: bool, weight: f64, i: &PerParam) {
        if first {
            self.per[p].begin_refresh(theta);
        }
        self.per[p].accumulate(weight, &i["grad"], &i["noise"]);
    }
}

#[test]
fn ivon_poco_with_refreshes() {
    for (alpha, prox, shared) in [(1.0, true, false), (0.5, false, false), (0.7, true, true)] {
        let hyper = [
            ("lr", 0.05),
            ("ess", 30.0),
            ("beta2", 0.999),
            ("weight_decay", 0.01),
            ("alpha", alpha),
            ("prox", prox as u8 as f64),
            ("shared_noise", shared as u8 as f64),
        ];
        let base = ivon_ref(&hyper, 1, None);
        let mut reference = PocoRef {
            per: base
                .per
                .into_iter()
                .map(|ivon| RefPoco {
                    ivon,
                    alpha,
                    prox,
                    m_out: vec![],
                    h_out: vec![],
                    g_out: vec![],
                    hbar_out: vec![],
                })
                .collect(),
            shared,
        };
        trajectory(
            make("ivon-poco", &hyper, true),
            &mut reference,
            Some(10),
            8,
            1e-9,
            &mut no_schedule(),
        );
    }
}

// ------------------------------------------------------------- exact reductions

fn run_inputs(opt: Box<dyn Optimizer>, per_step: &[HashMap<String, Value>], refresh: bool) -> Vec<Vec<f64>> {
    let params: Vec<(String, Value)> = PARAMS
        .iter()
        .map(|(n, s)| {
            let numel = s.iter().product();
            (
                n.to_string(),
                Value::new(s.to_vec(), DType::F32, Rng(11).normals(numel, 0.5)).unwrap(),
            )
        })
        .collect();
    let mut exec = Interpreter;
    let mut r = Replayer::new(opt, &params, &mut exec).unwrap();
    let mut rng = Rng(12);
    let refresh_inputs = r.inputs(Phase::Refresh);
    for (t, inputs) in per_step.iter().enumerate() {
        if refresh && t % 7 == 0 {
            let i = random_inputs(&mut rng, &refresh_inputs);
            r.refresh_batch(true, 1.0, &i).unwrap();
        }
        let needed = r.inputs(Phase::Step);
        let mine: HashMap<String, Value> = inputs
            .iter()
            .filter(|(k, _)| needed.iter().any(|(n, _)| n == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        r.step(&mine).unwrap();
    }
    PARAMS.iter().map(|(n, _)| r.value(n).unwrap().data.clone()).collect()
}

fn step_inputs(opt: &dyn Optimizer, rng: &mut Rng, steps: usize) -> Vec<HashMap<String, Value>> {
    let params: Vec<(String, Value)> = PARAMS
        .iter()
        .map(|(n, s)| (n.to_string(), Value::zeros(s.to_vec(), DType::F32)))
        .collect();
    let mut exec = Interpreter;
    let name = opt.name();
    let mut o = by_name(name).unwrap();
    for (k, v) in opt.hyper().values() {
        if let Some(v) = v {
            o.set(k, v).unwrap();
        }
    }
    if let Some(src) = opt.noise_source() {
        o.set_noise_source(src).unwrap();
    }
    let r = Replayer::new(o, &params, &mut exec).unwrap();
    let needed = r.inputs(Phase::Step);
    (0..steps).map(|_| random_inputs(rng, &needed)).collect()
}

#[test]
fn svrg_with_alpha_zero_is_sgd_exactly() {
    let hyper = [
        ("lr", 0.05),
        ("momentum", 0.9),
        ("weight_decay", 0.01),
        ("nesterov", 1.0),
    ];
    let mut svrg_h = hyper.to_vec();
    svrg_h.push(("alpha", 0.0));
    let svrg = make("svrg", &svrg_h, false);
    let inputs = step_inputs(svrg.as_ref(), &mut Rng(13), 40);
    let a = run_inputs(svrg, &inputs, true);
    let b = run_inputs(make("sgd", &hyper, false), &inputs, false);
    assert_eq!(a, b);
}

#[test]
fn ivon_poco_with_alpha_zero_is_ivon_exactly_with_philox_noise() {
    let hyper = [
        ("lr", 0.1),
        ("ess", 40.0),
        ("beta2", 0.999),
        ("seed", 77.0),
        ("clip_radius", 0.2),
    ];
    let mut poco_h = hyper.to_vec();
    poco_h.push(("alpha", 0.0));
    let poco = make("ivon-poco", &poco_h, false);
    let inputs = step_inputs(poco.as_ref(), &mut Rng(14), 40);
    let a = run_inputs(poco, &inputs, true);
    let b = run_inputs(make("ivon", &hyper, false), &inputs, false);
    assert_eq!(a, b);
    // ...and with α > 0 it differs (the reduction is not vacuous).
    poco_h.retain(|(k, _)| *k != "alpha");
    poco_h.push(("alpha", 0.5));
    let c = run_inputs(make("ivon-poco", &poco_h, false), &inputs, true);
    assert_ne!(a, c);
}
