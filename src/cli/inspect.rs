//! `kiln inspect`: print any compile stage of a built-in model's training step (text or
//! JSON), dump every stage to files, or draw the fusion plan as SVG. Presentation only;
//! the stages come from `kiln::inspect`.

use anyhow::Context;
use clap::Args;
use kiln::inspect::{self, fusion::FusionReport, InspectOptions, STAGES};

#[derive(Args)]
pub struct InspectArgs {
    /// Model: logreg, mlp or convnet.
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Optimizer (sgd, adam, adamw, vsgd, constant-vsgd, ivon, svrg, ivon-poco).
    #[arg(long, default_value = "vsgd")]
    pub optim: String,
    /// Stage: graph, grad, optim, rewrite, fusion, kernels, clif, cuda, ptx or all.
    #[arg(long, default_value = "fusion")]
    pub stage: String,
    /// One kernel per op (the unfused baseline).
    #[arg(long)]
    pub no_fuse: bool,
    /// Skip e-graph rewriting.
    #[arg(long)]
    pub no_rewrite: bool,
    /// Hyperparameters, e.g. --set lr=0.1 (required where the optimizer has no default,
    /// such as IVON's lr; runtime scalars do not change the compiled step).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Batch size of the example input.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Write every stage into this folder (.ir, .clif, .cu, .ptx, .json, .dot, .svg).
    #[arg(long)]
    pub dump_dir: Option<std::path::PathBuf>,
    /// Draw the fusion plan (nodes coloured by kernel) into this SVG file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// Print JSON: the fusion plan (default and `--stage fusion`) or the rewrite
    /// statistics (`--stage rewrite`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let stage = args.stage.as_str();
    anyhow::ensure!(
        stage == "all" || STAGES.contains(&stage),
        "unknown stage `{stage}`; valid stages: {}, all",
        STAGES.join(", ")
    );
    let p = inspect::build(&InspectOptions {
        model: args.model.clone(),
        optim: args.optim.clone(),
        batch: args.batch,
        fuse: !args.no_fuse,
        rewrite: !args.no_rewrite,
        hyper: args
            .set
            .iter()
            .map(|s| kiln::models::optim::parse_assignment(s))
            .collect::<Result<_, _>>()?,
    })?;
    if let Some(dir) = &args.dump_dir {
        let files = inspect::dump(&p, dir)?;
        eprintln!("wrote {} files to {}", files.len(), dir.display());
    }
    if let Some(path) = &args.svg {
        let svg = inspect::svg::render_svg(&inspect::svg::fusion_dot(&p.rewritten, &p.program))?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote the fusion plan ({} kernels) to {}",
            p.program.launches(),
            path.display()
        );
    }
    if args.json {
        let v = match stage {
            "rewrite" => inspect::rewrite_json(&p.rewrite_stats),
            "fusion" | "all" => FusionReport::new(&p.rewritten, &p.program).to_json(),
            other => anyhow::bail!("--json prints the fusion plan or the rewrite statistics; use --stage fusion or --stage rewrite, not `{other}`"),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let stages: Vec<&str> = if stage == "all" { STAGES.to_vec() } else { vec![stage] };
    for s in stages {
        if stage == "all" {
            println!("==================== {s} ====================");
        }
        match inspect::stage_text(&p, s) {
            Ok(t) => print!("{t}"),
            // `all` keeps going past a stage this machine cannot produce (PTX without NVRTC).
            Err(e) if stage == "all" => println!("(unavailable: {e:#})"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
