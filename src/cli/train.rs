//! `kiln train`: train a built-in model on a data set through the whole compiler
//! (autodiff -> optimizer -> rewrite -> fusion -> JIT) and write metrics, curves and a
//! checkpoint. The defaults train the MLP with VSGD on the embedded Fashion-MNIST subset.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use kiln::train_task::{CompiledTask, LrSchedule};
use kiln_models::{nets, optim};
use kiln_runtime::compile::{Backend, CompileOptions};
use kiln_runtime::data::Dataset;
use kiln_runtime::train::{train, RunMetrics, TrainConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Cranelift-JIT kernels on this CPU.
    Cpu,
    /// NVRTC-compiled kernels on an NVIDIA GPU.
    Cuda,
    /// CUDA when a driver, a GPU and NVRTC are present, else CPU (with a note saying why).
    Auto,
}

/// The backend to compile for: `--backend auto` probes the driver, the GPU and NVRTC
/// and falls back to the CPU with a one-line note; `cuda` is passed on as is, so that a
/// missing driver is reported by `compile` itself.
fn choose_backend(choice: BackendChoice, ordinal: usize) -> Backend {
    match choice {
        BackendChoice::Cpu => Backend::Cpu,
        BackendChoice::Cuda => Backend::Cuda { ordinal },
        BackendChoice::Auto => match kiln_runtime::cuda::probe(ordinal) {
            Ok((info, _)) => {
                eprintln!(
                    "backend auto: using CUDA device {ordinal} ({}, {})",
                    info.name,
                    info.arch()
                );
                Backend::Cuda { ordinal }
            }
            Err(e) => {
                eprintln!("backend auto: using the CPU: {}", e.summary());
                Backend::Cpu
            }
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleChoice {
    Constant,
    Step,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Model: logreg, mlp or convnet.
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Optimizer: sgd, adam, adamw, vsgd, constant-vsgd, ivon, svrg, ivon-poco.
    #[arg(long, default_value = "vsgd")]
    pub optim: String,
    /// Learning rate (default: the value kiln suggests for the optimizer).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Other hyperparameters, e.g. --set kg=20 --set weight_decay=1e-4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data set: fashion-mnist (embedded subset), fashion-mnist-full, digits, breast-cancer, heart-scale.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// Directory with the data set's files (e.g. full Fashion-MNIST IDX files).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where to run: cpu, cuda (not run on a GPU yet: see README) or auto.
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// CUDA device ordinal (with --backend cuda or auto).
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Compile every CUDA kernel with NVRTC again instead of using the kernel cache
    /// (memory and disk; the env variable KILN_NO_CACHE=1 does the same).
    #[arg(long)]
    pub no_kernel_cache: bool,
    /// Run one kernel per op (the unfused baseline).
    #[arg(long)]
    pub no_fuse: bool,
    /// Skip e-graph rewriting.
    #[arg(long)]
    pub no_rewrite: bool,
    /// Output directory (default: runs/<timestamp>-<model>-<optim>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from a checkpoint.safetensors written by an earlier run.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Learning-rate schedule: `step` halves the rate at 50% and 75% of the epochs, `constant` keeps it.
    #[arg(long, value_enum, default_value_t = ScheduleChoice::Step)]
    pub schedule: ScheduleChoice,
    /// No progress bar or per-epoch lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Learning rates that work for each optimizer on the built-in models (VSGD's step is
/// bounded by lr per element, so its paper default 0.1 is too large here).
pub fn suggested_lr(optim: &str) -> Option<f64> {
    match optim {
        "sgd" | "svrg" => Some(0.05),
        "adam" | "adamw" => Some(1e-3),
        "vsgd" | "constant-vsgd" => Some(0.01),
        _ => None,
    }
}

fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 || args.epochs == 0 {
        bail!("--batch-size and --epochs must be at least 1");
    }
    let backend = choose_backend(args.backend, args.device);
    let data = Dataset::load(&args.dataset, args.data_dir.as_deref())
        .with_context(|| format!("loading data set `{}`", args.dataset))?;
    let model = nets::by_name(&args.model, data.train.sample_shape(), data.train.num_classes())?;
    let mut optimizer = optim::by_name(&args.optim)?;
    if let Some(lr) = args.lr.or_else(|| suggested_lr(&args.optim)) {
        optimizer.set("lr", lr)?;
    }
    for s in &args.set {
        let (key, value) = optim::parse_assignment(s)?;
        optimizer.set(&key, value)?;
    }
    optimizer.check()?;
    let hyper = optimizer
        .hyper()
        .values()
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-{}-{}", timestamp(), args.model, args.optim)));
    if !args.quiet {
        println!(
            "kiln train: {} + {} on {} ({} train / {} test examples, {} classes), batch {}, seed {}, {} epochs -> {}",
            args.model,
            args.optim,
            args.dataset,
            data.train.len(),
            data.test.len(),
            data.train.num_classes(),
            args.batch_size,
            args.seed,
            args.epochs,
            out_dir.display()
        );
    }
    let options = CompileOptions {
        fuse: !args.no_fuse,
        rewrite: !args.no_rewrite,
        seed: args.seed,
        backend,
        kernel_cache: !args.no_kernel_cache,
        ..Default::default()
    };
    let mut task = CompiledTask::new(model.as_ref(), optimizer, args.batch_size, &options)?;
    let schedule = match args.schedule {
        ScheduleChoice::Constant => LrSchedule::Constant,
        ScheduleChoice::Step => LrSchedule::StepDecay {
            at: vec![0.5, 0.75],
            factor: 0.5,
        },
    };
    task.set_schedule(schedule, args.epochs);
    if !args.quiet {
        let target = match task.step_executable().cuda() {
            Some(gpu) => format!(
                " for CUDA device {} ({}, {})",
                gpu.device().ordinal,
                gpu.device().name,
                gpu.code().arch
            ),
            None => String::new(),
        };
        println!(
            "compiled the training step into {} kernels{target} in {:.2} s",
            task.step_executable().launches(),
            kiln_runtime::train::TrainTask::compile_seconds(&task)
        );
    }
    let metrics = RunMetrics {
        model: args.model.clone(),
        optimizer: args.optim.clone(),
        dataset: args.dataset.clone(),
        backend: backend.to_string(),
        seed: args.seed,
        batch_size: args.batch_size,
        hyper,
        epochs: Vec::new(),
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        out_dir: out_dir.clone(),
        progress: !args.quiet,
        verbose: !args.quiet,
    };
    let result = train(&mut task, &data, &config, metrics, args.resume.as_deref())?;
    if let Some(last) = result.epochs.last() {
        println!(
            "final test accuracy {:.2}% (test loss {:.4}); wrote metrics.json, metrics.csv, curves.png, checkpoint.safetensors to {}",
            last.test_accuracy * 100.0,
            last.test_loss,
            out_dir.display()
        );
    }
    Ok(())
}
