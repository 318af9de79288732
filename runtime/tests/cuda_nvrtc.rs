//! The CUDA compile check that needs no GPU: every kernel kiln generates is compiled by
//! NVRTC for sm_90 with `--ptxas-options=-v`; any compile error fails, and so does any
//! register spill (optimizer updates live in elementwise kernels, matmul epilogues and
//! reductions, so every kernel kind is checked). A register/spill
//! table of every kernel is printed (`cargo test -p kiln-runtime --test cuda_nvrtc --
//! --nocapture`).
//!
//! Programs: the hand-built samples of `compiler/tests/cuda_common/programs.rs`, and the
//! training steps of the built-in models (logreg, mlp, convnet; forward + cross-entropy,
//! backward by autodiff) with every optimizer, lowered fused and unfused.
//!
//! NVRTC comes from `KILN_NVRTC` (a library file or its folder; an unusable value
//! fails the test), else the system search, else the workspace's `.cache/nvrtc` that
//! `.ci/install-nvrtc.sh` fills. Without any, the tests print a SKIP line and pass.

#[path = "cuda_common/models.rs"]
mod models;
#[path = "../../compiler/tests/cuda_common/programs.rs"]
#[allow(dead_code)]
mod programs;

use std::path::PathBuf;

use kiln_compiler::codegen::cuda::{c_ident, prelude, render_program, CudaOptions, KernelKind};
use kiln_compiler::kernel::Program;
use kiln_runtime::cuda::{
    compile_cuda, compile_program, devices, driver_present, load_nvrtc, nvrtc, CacheOutcome, CompileOptions, CudaError,
    KernelCache, Nvrtc,
};

/// The CI target: the check compiles for this architecture whatever the machine has.
const CI_ARCH: &str = "sm_90";

fn workspace_nvrtc() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/nvrtc/nvidia/cuda_nvrtc/lib");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("libnvrtc.so.") && !n.contains("builtins") && !n.contains("alt")
        })
        .collect();
    libs.sort();
    libs.into_iter().next().and_then(|p| std::fs::canonicalize(p).ok())
}

/// NVRTC, or `None` (after printing why) when this machine has none.
fn nvrtc_or_skip(test: &str) -> Option<&'static Nvrtc> {
    if std::env::var_os("KILN_NVRTC").is_some_and(|v| !v.is_empty()) {
        return Some(nvrtc().unwrap_or_else(|e| panic!("KILN_NVRTC is set but NVRTC does not load: {e}")));
    }
    match nvrtc() {
        Ok(n) => return Some(n),
        Err(CudaError::NoNvrtc { .. }) => {}
        Err(e) => panic!("NVRTC was found but does not load: {e}"),
    }
    if let Some(lib) = workspace_nvrtc() {
        return Some(
            load_nvrtc(Some(lib)).unwrap_or_else(|e| panic!("the workspace's .cache/nvrtc does not load: {e}")),
        );
    }
    eprintln!(
        "SKIP {test}: no NVRTC (KILN_NVRTC unset, none on the system, no .cache/nvrtc); run \
         `export KILN_NVRTC=$(.ci/install-nvrtc.sh | tail -n1)` to enable the CUDA compile check"
    );
    None
}

struct Row {
    /// The first program using the kernel, and how many use the same code.
    program: String,
    users: usize,
    kernel: String,
    kind: KernelKind,
    registers: u32,
    spill_stores: u32,
    spill_loads: u32,
    stack: u32,
    smem: u32,
    mapping: String,
}

/// A kernel as it appears in possibly many programs (same code, other entry name).
struct Unique {
    name: String,
    template: String,
    kind: KernelKind,
    mapping: String,
    program: String,
    users: usize,
}

/// A kernel's code with comments removed and buffers / scalars renamed in order of
/// first appearance (`b17` -> `b0`, `s3` -> `s0`): kernels that differ only in which
/// buffers of which program they touch become one text.
fn canonical(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut buffers: Vec<String> = Vec::new();
    let mut scalars: Vec<String> = Vec::new();
    for line in src.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut code = code.to_string();
        while let (Some(a), Some(b)) = (code.find("/*"), code.find("*/")) {
            if b < a {
                break;
            }
            code.replace_range(a..b + 2, "");
        }
        let code = code.trim_end().to_string();
        if code.trim().is_empty() {
            continue;
        }
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i] as char;
            if c.is_ascii_alphabetic() || c == '_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let ident = &code[start..i];
                let (kind, digits) = ident.split_at(1);
                let table = match kind {
                    "b" => Some(&mut buffers),
                    "s" => Some(&mut scalars),
                    _ => None,
                };
                match table {
                    Some(t) if !digits.is_empty() && digits.bytes().all(|d| d.is_ascii_digit()) => {
                        let n = t.iter().position(|x| x == ident).unwrap_or_else(|| {
                            t.push(ident.to_string());
                            t.len() - 1
                        });
                        out.push_str(&format!("{kind}{n}"));
                    }
                    _ => out.push_str(ident),
                }
            } else if c.is_ascii_digit() {
                // numbers (including hex and float literals) stay as they are
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                out.push_str(&code[start..i]);
            } else {
                out.push(c);
                i += 1;
            }
        }
        out.push('\n');
    }
    out
}

/// Kernels per NVRTC translation unit (NVRTC time grows with unit size; few units keep
/// the per-call overhead low).
const KERNELS_PER_UNIT: usize = 48;

/// Generate every program's kernels, compile each distinct kernel once with NVRTC for
/// sm_90 (in translation units of KERNELS_PER_UNIT, on two threads) and read the
/// ptxas report. Identical kernels of different programs (the forward and backward
/// pass are the same for every optimizer) differ only in their entry name.
fn compile_all(nv: &Nvrtc, programs: &[(String, Program)]) -> Vec<Row> {
    let codegen = CudaOptions::default();
    let mut uniques: Vec<Unique> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (label, p) in programs {
        let cuda = render_program(p, &codegen).unwrap_or_else(|e| panic!("{label}: {e}"));
        for k in &cuda.kernels {
            let named = k.source.replacen(&format!(" {}(", k.name), " @KERNEL@(", 1);
            assert_ne!(named, k.source, "{label}: entry {} not found in its source", k.name);
            let template = canonical(&named);
            if let Some(&u) = index.get(&template) {
                uniques[u].users += 1;
                continue;
            }
            let name = format!("u{}_{}", uniques.len(), c_ident(&k.ir_name));
            index.insert(template.clone(), uniques.len());
            uniques.push(Unique {
                name,
                template,
                kind: k.kind,
                mapping: k.mapping.clone(),
                program: label.clone(),
                users: 1,
            });
        }
    }
    let units: Vec<(usize, String)> = uniques
        .chunks(KERNELS_PER_UNIT)
        .enumerate()
        .map(|(i, chunk)| {
            let mut src = prelude();
            for u in chunk {
                src.push('\n');
                src.push_str(&u.template.replacen("@KERNEL@", &u.name, 1));
            }
            (i, src)
        })
        .collect();
    let opts = CompileOptions::for_arch(CI_ARCH);
    let work = std::sync::Mutex::new(units.iter());
    let stats = std::sync::Mutex::new(std::collections::HashMap::new());
    let nvrtc_seconds = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((i, src)) = work.lock().unwrap().next() else {
                    break;
                };
                let t = std::time::Instant::now();
                let c = nv
                    .compile(&format!("kiln_unit{i}"), src, &opts)
                    .unwrap_or_else(|e| panic!("translation unit {i}: {e}"));
                nvrtc_seconds.lock().unwrap().push(t.elapsed().as_secs_f64());
                assert!(
                    c.cubin.as_ref().is_some_and(|b| !b.is_empty()),
                    "unit {i}: no sm_90 cubin"
                );
                assert!(c.ptx.contains(".target sm_90"), "unit {i}: PTX is not for sm_90");
                let mut map = stats.lock().unwrap();
                for st in c.stats {
                    map.insert(st.name.clone(), st);
                }
            });
        }
    });
    let stats = stats.into_inner().unwrap();
    let secs = nvrtc_seconds.into_inner().unwrap();
    println!(
        "NVRTC: {} translation units, {:.1} s in total, slowest {:.1} s",
        secs.len(),
        secs.iter().sum::<f64>(),
        secs.iter().cloned().fold(0.0, f64::max)
    );
    uniques
        .into_iter()
        .map(|u| {
            let s = stats
                .get(&u.name)
                .unwrap_or_else(|| panic!("no ptxas report for {}", u.name));
            Row {
                program: u.program,
                users: u.users,
                kernel: u.name,
                kind: u.kind,
                registers: s.registers,
                spill_stores: s.spill_stores,
                spill_loads: s.spill_loads,
                stack: s.stack_frame,
                smem: s.shared_bytes,
                mapping: u.mapping,
            }
        })
        .collect()
}

fn print_table(title: &str, nv: &Nvrtc, rows: &[Row]) {
    println!(
        "\n{title}: {} distinct kernels ({} uses), NVRTC {} for {CI_ARCH} (--ptxas-options=-v)",
        rows.len(),
        rows.iter().map(|r| r.users).sum::<usize>(),
        nv.version_string()
    );
    println!(
        "{:<34} {:>4} {:<40} {:<11} {:>4} {:>7} {:>7} {:>6} {:>6}  mapping",
        "first program", "uses", "kernel", "kind", "regs", "spill-s", "spill-l", "stack", "smem"
    );
    for r in rows {
        println!(
            "{:<34} {:>4} {:<40} {:<11} {:>4} {:>7} {:>7} {:>6} {:>6}  {}",
            r.program,
            r.users,
            r.kernel,
            format!("{:?}", r.kind),
            r.registers,
            r.spill_stores,
            r.spill_loads,
            r.stack,
            r.smem,
            r.mapping
        );
    }
}

/// No kernel may spill: optimizer updates live in elementwise (horizontal) kernels, in
/// matmul epilogues and in reductions' last stages, so the rule covers every kind.
fn check_rows(rows: &[Row]) {
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.spill_stores > 0 || r.spill_loads > 0)
        .map(|r| {
            format!(
                "{} ({:?}, first used by {}): {} B spill stores, {} B spill loads",
                r.kernel, r.kind, r.program, r.spill_stores, r.spill_loads
            )
        })
        .collect();
    assert!(bad.is_empty(), "kernels spill registers:\n{}", bad.join("\n"));
    let most = rows.iter().max_by_key(|r| r.registers).map_or(0, |r| r.registers);
    println!(
        "{} kernels compiled for {CI_ARCH}, none spills; at most {most} registers",
        rows.len()
    );
}

#[test]
fn sample_kernels_compile_for_sm_90_without_spills() {
    let Some(nv) = nvrtc_or_skip("sample_kernels_compile_for_sm_90_without_spills") else {
        return;
    };
    let programs: Vec<(String, Program)> = programs::all()
        .into_iter()
        .map(|(n, p, _)| (n.to_string(), p))
        .collect();
    let rows = compile_all(nv, &programs);
    print_table("hand-built sample programs", nv, &rows);
    check_rows(&rows);
}

#[test]
fn model_training_steps_compile_for_sm_90_without_spills() {
    let Some(nv) = nvrtc_or_skip("model_training_steps_compile_for_sm_90_without_spills") else {
        return;
    };
    let t = std::time::Instant::now();
    let programs = models::training_programs();
    println!(
        "built and lowered {} model programs in {:.1?}",
        programs.len(),
        t.elapsed()
    );
    assert!(programs.len() >= 3 * 8 * 2, "only {} model programs", programs.len());
    let t = std::time::Instant::now();
    let rows = compile_all(nv, &programs);
    println!("generated and compiled them in {:.1?}", t.elapsed());
    print_table("built-in models x optimizers, fused and unfused", nv, &rows);
    check_rows(&rows);
}

#[test]
fn compile_errors_name_the_kernel_and_carry_the_log() {
    let Some(_) = nvrtc_or_skip("compile_errors_name_the_kernel_and_carry_the_log") else {
        return;
    };
    let (p, _) = programs::cross_entropy(5, 7);
    let mut cuda = render_program(&p, &CudaOptions::default()).unwrap();
    let broken = cuda.kernels[1].name.clone();
    cuda.kernels[1].source = cuda.kernels[1]
        .source
        .replacen(") {\n", ") {\n    undefined_thing = 1;\n", 1);
    let e = compile_cuda(cuda, &CompileOptions::for_arch(CI_ARCH), &KernelCache::disabled()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, CudaError::Compile { .. }), "{msg}");
    assert!(msg.contains(&broken), "the error does not name {broken}: {msg}");
    assert!(
        msg.contains("undefined_thing"),
        "the error does not carry NVRTC's log: {msg}"
    );
}

#[test]
fn the_disk_cache_skips_nvrtc_on_a_second_run() {
    let Some(_) = nvrtc_or_skip("the_disk_cache_skips_nvrtc_on_a_second_run") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = programs::softmax(4, 9);
    let opts = CompileOptions::for_arch(CI_ARCH);
    let first = compile_program(
        &p,
        &CudaOptions::default(),
        &opts,
        &KernelCache::new(Some(dir.path().into())),
    )
    .unwrap();
    assert_eq!(first.outcome, CacheOutcome::Compiled);
    let again = compile_program(
        &p,
        &CudaOptions::default(),
        &opts,
        &KernelCache::new(Some(dir.path().into())),
    )
    .unwrap();
    assert_eq!(again.outcome, CacheOutcome::Disk);
    assert_eq!(again.compiled.cubin, first.compiled.cubin);
    assert_eq!(again.compiled.stats, first.compiled.stats);
    // another codegen flag is another key
    let other = CudaOptions {
        block_size: 128,
        ..CudaOptions::default()
    };
    let third = compile_program(&p, &other, &opts, &KernelCache::new(Some(dir.path().into()))).unwrap();
    assert_eq!(third.outcome, CacheOutcome::Compiled);
}

#[test]
fn ptx_needs_only_nvrtc() {
    let Some(_) = nvrtc_or_skip("ptx_needs_only_nvrtc") else {
        return;
    };
    let (p, _) = programs::adam_like(1024);
    let opts = CompileOptions {
        arch: "compute_90".into(),
        ptxas_verbose: false,
        fast_math: false,
    };
    let c = compile_program(&p, &CudaOptions::default(), &opts, &KernelCache::disabled()).unwrap();
    assert!(
        c.compiled.ptx.contains(".entry k0_adam_update"),
        "{}",
        &c.compiled.ptx[..400.min(c.compiled.ptx.len())]
    );
    assert!(c.compiled.cubin.is_none());
}

#[test]
fn no_driver_is_a_clear_error() {
    if driver_present() {
        eprintln!("SKIP no_driver_is_a_clear_error: this machine has libcuda");
        return;
    }
    let e = devices().unwrap_err();
    assert!(matches!(e, CudaError::NoDriver));
    assert!(e.to_string().contains("no CUDA driver (libcuda) found"), "{e}");
}

#[test]
fn canonical_kernels_ignore_buffer_numbering_and_comments() {
    let a = "// kernel x\nvoid k(float* b3 /* Param(\"w\") */, const float s2) {\n    b3[0] = s2 * __int_as_float(0x7fb00000);  // b3: Param\n}\n";
    let b = "// kernel y\nvoid k(float* b7 /* Temp */, const float s0) {\n    b7[0] = s0 * __int_as_float(0x7fb00000);\n}\n";
    let c = "void k(float* b7, const float s0) {\n    b7[1] = s0 * __int_as_float(0x7fb00000);\n}\n";
    assert_eq!(canonical(a), canonical(b));
    assert_ne!(canonical(b), canonical(c));
    assert!(canonical(a).contains("0x7fb00000") && canonical(a).contains("b0[0] = s0"));
}
