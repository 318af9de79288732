//! What the `optimizers` experiment runs: the optimizer arms with their learning-rate
//! sweeps, epochs, seeds, the step-decay schedule, and which data it trains on (full
//! Fashion-MNIST when installed, else the embedded subset; a small stratified slice of
//! the subset in `--quick` mode). Owns the configuration and data preparation only: no
//! training, no statistics.

use std::path::PathBuf;

use anyhow::Context;
use kiln_runtime::data::registry::SYSTEM_FASHION_MNIST_DIR;
use kiln_runtime::data::Dataset;

use crate::experiment::ExperimentOptions;

/// One optimizer as compared here: a `kiln_models::optim` name, fixed hyperparameters
/// and the learning rates swept.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// Label in tables and plots (e.g. `sgd-momentum`).
    pub label: String,
    /// Name for `kiln_models::optim::by_name`.
    pub optimizer: String,
    /// Hyperparameters set before `lr` (e.g. `momentum = 0.9`).
    pub fixed: Vec<(String, f64)>,
    /// Learning rates swept, ascending.
    pub lrs: Vec<f64>,
}

impl Arm {
    fn new(label: &str, optimizer: &str, fixed: &[(&str, f64)], lrs: &[f64]) -> Arm {
        Arm {
            label: label.into(),
            optimizer: optimizer.into(),
            fixed: fixed.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            lrs: lrs.to_vec(),
        }
    }
}

/// The whole experiment's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub quick: bool,
    pub arms: Vec<Arm>,
    /// Model of the sweep (`mlp`).
    pub model: String,
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds 0..seeds for every (arm, lr).
    pub seeds: usize,
    /// Fractions of the run at which the learning rate is multiplied by `decay_factor`.
    pub decay_at: Vec<f64>,
    pub decay_factor: f64,
    /// Fraction of the training split held out (stratified) to choose the learning rate,
    /// so the test split is never used for selection.
    pub val_fraction: f64,
    /// Epochs of the conv-net follow-up (each arm at its selected MLP learning rate, one
    /// seed); 0 skips it.
    pub conv_epochs: usize,
    /// Examples of the training split the conv net uses (its epoch is ~50x the MLP's on
    /// this CPU); `None` = all.
    pub conv_train_examples: Option<usize>,
    /// Histogram bins of log10(1 - beta1) over [`BETA1_LOG_MIN`, 0].
    pub beta1_bins: usize,
}

/// Lower end of the log10(1 - beta1) histogram (beta1 = 1 - 1e-6; smaller values clamp).
pub const BETA1_LOG_MIN: f64 = -6.0;

impl Plan {
    /// The plan for `opts`: the full sweep, or the CI-sized `--quick` smoke run.
    pub fn for_options(opts: &ExperimentOptions) -> Plan {
        if opts.quick {
            return Plan {
                quick: true,
                arms: vec![
                    Arm::new("vsgd", "vsgd", &[], &[0.003, 0.01]),
                    Arm::new("adam", "adam", &[], &[1e-3, 3e-3]),
                    Arm::new("adamw", "adamw", &[("weight_decay", 1e-2)], &[1e-3]),
                    Arm::new("sgd-momentum", "sgd", &[("momentum", 0.9)], &[0.03]),
                ],
                model: "mlp".into(),
                epochs: 2,
                batch_size: 128,
                seeds: opts.seeds.unwrap_or(1).max(1),
                decay_at: vec![0.5],
                decay_factor: 0.5,
                val_fraction: 0.1,
                conv_epochs: 1,
                conv_train_examples: Some(256),
                beta1_bins: 30,
            };
        }
        Plan {
            quick: false,
            arms: vec![
                Arm::new("vsgd", "vsgd", &[], &[0.003, 0.01, 0.03, 0.1]),
                Arm::new("adam", "adam", &[], &[3e-4, 1e-3, 3e-3]),
                Arm::new("adamw", "adamw", &[("weight_decay", 1e-2)], &[3e-4, 1e-3, 3e-3]),
                Arm::new("sgd-momentum", "sgd", &[("momentum", 0.9)], &[0.01, 0.03, 0.1]),
            ],
            model: "mlp".into(),
            epochs: 15,
            batch_size: 128,
            seeds: opts.seeds.unwrap_or(3).max(1),
            decay_at: vec![0.5, 0.75],
            decay_factor: 0.5,
            val_fraction: 1.0 / 12.0,
            conv_epochs: 2,
            conv_train_examples: Some(10_000),
            beta1_bins: 60,
        }
    }

    /// Total number of MLP training runs in the sweep.
    pub fn sweep_runs(&self) -> usize {
        self.arms.iter().map(|a| a.lrs.len()).sum::<usize>() * self.seeds
    }
}

/// The three splits every run uses, and where they came from.
pub struct Prepared {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// Registry name actually loaded (`fashion-mnist-full` or `fashion-mnist`).
    pub dataset: String,
    /// Human-readable origin, for the log and the results file.
    pub description: String,
}

/// Loads the data for `plan`: `--data-dir` (full Fashion-MNIST IDX files) when given;
/// else Debian's full set when installed (not in `--quick` mode); else the embedded
/// subset. Holds out `val_fraction` of the training split (stratified, seed 0).
pub fn prepare(plan: &Plan, opts: &ExperimentOptions) -> anyhow::Result<Prepared> {
    let system = PathBuf::from(SYSTEM_FASHION_MNIST_DIR);
    let (name, dir, why) = match &opts.data_dir {
        Some(d) => ("fashion-mnist-full", Some(d.clone()), format!("from {}", d.display())),
        None if !plan.quick && system.is_dir() => (
            "fashion-mnist-full",
            None,
            format!("from {SYSTEM_FASHION_MNIST_DIR} (Debian dataset-fashion-mnist)"),
        ),
        None => (
            "fashion-mnist",
            None,
            if plan.quick {
                "embedded subset (--quick)".to_string()
            } else {
                format!("embedded subset ({SYSTEM_FASHION_MNIST_DIR} not installed)")
            },
        ),
    };
    let splits = Dataset::load(name, dir.as_deref()).with_context(|| format!("loading data set `{name}`"))?;
    let (mut train, mut test) = (splits.train, splits.test);
    if plan.quick {
        // A stratified slice keeps the smoke run small: 2,000 train, 500 test.
        train = train.split_holdout(0.2, 0)?.1;
        test = test.split_holdout(0.25, 0)?.1;
    }
    let (train, val) = train.split_holdout(plan.val_fraction, 0)?;
    let description = format!(
        "{name} {why}: {} train / {} validation (held out of train, stratified) / {} test examples",
        train.len(),
        val.len(),
        test.len()
    );
    Ok(Prepared {
        train,
        val,
        test,
        dataset: name.into(),
        description,
    })
}
