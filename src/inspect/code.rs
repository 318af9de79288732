//! Generated code of a lowered program as text: Cranelift IR of every generated
//! function, CUDA C of the whole step, and PTX plus NVRTC's register/spill report when
//! NVRTC can be loaded. Generates only; never JIT-links or runs anything.

use std::fmt::Write;

use anyhow::Context;
use kiln_compiler::codegen::clif::{self, ClifCode, ClifOptions};
use kiln_compiler::codegen::cuda::{render_program, CudaOptions};
use kiln_compiler::kernel::Program;
use kiln_runtime::cuda;

/// Cranelift IR (CLIF text) of every generated function, in launch order. Matmuls run
/// in the GEMM library, so only their epilogues appear.
pub fn clif_text(p: &Program) -> anyhow::Result<String> {
    let options = ClifOptions::default();
    let isa = clif::native_isa(&options).context("setting up the host ISA")?;
    let code = clif::compile_program(p, isa.as_ref(), &options).context("generating Cranelift IR")?;
    let mut s = String::new();
    for (i, (k, c)) in p.kernels.iter().zip(&code.kernels).enumerate() {
        match c {
            ClifCode::Loop(f) => {
                let _ = writeln!(s, "; kernel {i}: {}\n{}", k.name(), f.function.display());
            }
            ClifCode::MatMul { epilogue } => {
                let _ = writeln!(s, "; kernel {i}: {} (matmul: GEMM library call)", k.name());
                if let Some(f) = epilogue {
                    let _ = writeln!(s, "; epilogue\n{}", f.function.display());
                }
            }
        }
    }
    Ok(s)
}

/// The CUDA C translation unit of the step (prelude, then every kernel).
pub fn cuda_text(p: &Program) -> anyhow::Result<String> {
    let cuda = render_program(p, &CudaOptions::default()).context("generating CUDA C")?;
    Ok(cuda.source())
}

/// The architecture to compile PTX for: the first GPU's, else sm_80.
fn target_arch() -> String {
    match cuda::devices() {
        Ok(d) if !d.is_empty() => d[0].arch(),
        _ => "sm_80".to_string(),
    }
}

/// PTX of the step and, per kernel, NVRTC's ptxas report (registers, spills, stack,
/// shared memory). Errors clearly when NVRTC cannot be loaded.
pub fn ptx_text(p: &Program) -> anyhow::Result<String> {
    let nv = cuda::nvrtc().map_err(|e| {
        anyhow::anyhow!("--stage ptx needs NVRTC, which could not be loaded (every other stage works without it): {e}")
    })?;
    let arch = target_arch();
    let opts = cuda::CompileOptions::for_arch(arch.clone());
    let cache = cuda::KernelCache::new(None);
    let compiled =
        cuda::compile_program(p, &CudaOptions::default(), &opts, &cache).context("compiling CUDA C with NVRTC")?;
    let mut s = format!(
        "// NVRTC {} for {arch}\n// register/spill report (ptxas -v)\n",
        nv.version_string()
    );
    for k in &compiled.cuda.kernels {
        match compiled.stats(&k.name) {
            Some(st) => {
                let _ = writeln!(
                    s,
                    "// {}: {} registers, {} B spill stores, {} B spill loads, {} B stack, {} B smem",
                    k.name, st.registers, st.spill_stores, st.spill_loads, st.stack_frame, st.shared_bytes
                );
            }
            None => {
                let _ = writeln!(s, "// {}: no ptxas report", k.name);
            }
        }
    }
    s.push('\n');
    s.push_str(&compiled.compiled.ptx);
    Ok(s)
}
