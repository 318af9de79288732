//! Differential test of the CUDA executor on a real GPU: every hand-built sample
//! program runs on the device and must match the kernel-IR evaluator (f32 vs f64
//! tolerance; i32, bool and Philox masks exactly), twice in a row (parameters and
//! state stay on the device between runs).
//!
//! Needs libcuda, a GPU and NVRTC. Without a driver it checks that the executor
//! reports the missing driver as an error (never a panic) and passes; this is what runs
//! in CI and on the development machines, none of which has a GPU. The GPU part has
//! NOT been run yet. The whole-step check through the public `compile` API (an MLP
//! trained 20 steps on the GPU against the CPU) is `cuda_backend.rs`.

#[path = "../../compiler/tests/cuda_common/programs.rs"]
#[allow(dead_code)]
mod programs;

use kiln_compiler::codegen::cuda::CudaOptions;
use kiln_compiler::kernel::eval::eval_program;
use kiln_compiler::kernel::BufferRole;
use kiln_ir::DType;
use kiln_runtime::cuda::{devices, driver_present, CudaError, CudaExecutor, KernelCache};

fn close(got: f64, want: f64, dtype: DType) -> bool {
    if dtype != DType::F32 {
        return got == want;
    }
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    (got - want).abs() <= 1e-4 * want.abs().max(1.0)
}

#[test]
fn samples_match_the_evaluator_on_the_gpu() {
    if !driver_present() {
        let (p, _) = programs::softmax(3, 5);
        let e = CudaExecutor::new(p, 0, &CudaOptions::default(), &KernelCache::disabled())
            .err()
            .expect("no driver, yet the executor was created");
        assert!(matches!(e, CudaError::NoDriver), "{e}");
        eprintln!("SKIP samples_match_the_evaluator_on_the_gpu: no CUDA driver on this machine ({e})");
        return;
    }
    match devices() {
        Ok(d) => eprintln!(
            "GPU 0: {} (sm_{}{})",
            d[0].name, d[0].compute_capability.0, d[0].compute_capability.1
        ),
        Err(e) => {
            eprintln!("SKIP samples_match_the_evaluator_on_the_gpu: {e}");
            return;
        }
    }
    for (name, p, bindings) in programs::all() {
        let mut run = eval_program(&p, &bindings).unwrap_or_else(|e| panic!("{name}: oracle: {e}"));
        let mut bound = bindings.clone();
        let mut ex = CudaExecutor::new(p.clone(), 0, &CudaOptions::default(), &KernelCache::from_env())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for b in &p.buffers {
            if let BufferRole::Input(n) | BufferRole::Param(n) | BufferRole::State(n) = &b.role {
                let mut v = bindings[n].clone();
                v.shape = vec![v.data.len()].into();
                ex.set(n, &v).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        for s in &p.scalars {
            ex.set_scalar(&s.name, bindings[&s.name].data[0]).unwrap();
        }
        for round in 0..2 {
            ex.run().unwrap_or_else(|e| panic!("{name}: {e}"));
            ex.synchronize().unwrap_or_else(|e| panic!("{name}: {e}"));
            for (out, want) in run.outputs.iter().chain(run.updates.iter()) {
                let got = ex.get(out).unwrap_or_else(|e| panic!("{name}: {e}"));
                for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
                    assert!(
                        close(g, w, got.dtype),
                        "{name} round {round}: {out}[{i}] = {g}, evaluator {w}"
                    );
                }
            }
            // the next round starts from the updated params/state, on both sides
            run.apply_updates(&mut bound);
            run = eval_program(&p, &bound).unwrap();
        }
    }
}
