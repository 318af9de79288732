//! Generated CUDA C checked against the kernel-IR evaluator WITHOUT a GPU: every sample
//! program is rendered, compiled as C++ with a host shim (`cuda_common/host_shim.h`:
//! one std::thread per CUDA thread, barriers for __syncthreads/__syncwarp, shuffles
//! through a per-warp buffer) and run on odd-sized random inputs; its outputs and
//! param/state updates must match `eval_program` (f32 vs f64 tolerance; i32, bool and
//! Philox-derived masks exactly). Two option sets are used: the defaults, and small
//! blocks with a tiny grid and low thresholds so that grid-stride loops, block-mode
//! combines and thread-mode reductions all run.
//!
//! This verifies the generated code's logic (indexing, thread mapping, reductions,
//! tiling, epilogues, Philox), not GPU behaviour. Skipped with a message when no C++20
//! compiler (`g++`, or `$CXX`) is available.

mod cuda_common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_compiler::codegen::cuda::{render_program, CudaOptions, CudaProgram, KernelArg};
use kiln_compiler::kernel::eval::eval_program;
use kiln_compiler::kernel::{BufferRole, Program, Storage};
use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Value};

use cuda_common::programs;

const SHIM: &str = include_str!("cuda_common/host_shim.h");

fn compiler() -> Option<String> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".to_string());
    let ok = Command::new(&cxx)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(cxx)
}

/// Word offset of every buffer's element 0 in the flat memory image, and its size.
fn layout(p: &Program) -> (Vec<usize>, usize) {
    let mut root_start = vec![0usize; p.buffers.len()];
    let mut total = 0;
    for (i, b) in p.buffers.iter().enumerate() {
        if b.storage == Storage::Own {
            root_start[i] = total;
            total += b.len + 4; // slack keeps roots apart
            total = total.div_ceil(4) * 4; // 16-byte aligned roots
        }
    }
    let mut start = vec![0usize; p.buffers.len()];
    for i in 0..p.buffers.len() {
        let (mut cur, mut off) = (i, 0);
        while let Storage::View { base, offset } = &p.buffers[cur].storage {
            off += offset;
            cur = base.0 as usize;
        }
        start[i] = root_start[cur] + off;
    }
    (start, total)
}

fn to_bits(dtype: DType, x: f64) -> u32 {
    match dtype {
        DType::F32 => (x as f32).to_bits(),
        DType::I32 => x as i32 as u32,
        DType::Bool => (x != 0.0) as u32,
        t => panic!("no {t} buffers in samples"),
    }
}

fn from_bits(dtype: DType, w: u32) -> f64 {
    match dtype {
        DType::F32 => f32::from_bits(w) as f64,
        DType::I32 => w as i32 as f64,
        DType::Bool => (w != 0) as u32 as f64,
        t => panic!("no {t} buffers in samples"),
    }
}

/// The C++ dispatcher of one program: `run_<tag>(mem, scalars)`.
fn dispatcher(tag: &str, p: &Program, cp: &CudaProgram) -> (String, String) {
    let (start, _) = layout(p);
    let mut kernels = String::new();
    let mut run = format!("static void run_{tag}(unsigned int* mem, const unsigned int* scal) {{\n");
    for k in &cp.kernels {
        let renamed = format!("{tag}_{}", k.name);
        let src = k.source.replacen(&format!(" {}(", k.name), &format!(" {renamed}("), 1);
        assert_ne!(src, k.source, "entry name not found in {}", k.name);
        kernels.push_str(&src);
        kernels.push('\n');
        let args: Vec<String> = k
            .launch
            .args
            .iter()
            .map(|a| match a {
                KernelArg::Buffer { id, .. } => {
                    let ty = match p.buffers[id.0 as usize].dtype {
                        DType::F32 => "float",
                        DType::I32 => "int",
                        _ => "unsigned int",
                    };
                    format!("({ty}*)(mem + {})", start[id.0 as usize])
                }
                KernelArg::Scalar { slot, dtype } => match dtype {
                    DType::F32 => format!("kiln_as_f32(scal[{slot}])"),
                    DType::I32 => format!("kiln_as_i32(scal[{slot}])"),
                    _ => format!("scal[{slot}]"),
                },
            })
            .collect();
        let [gx, gy, gz] = k.launch.grid;
        let [bx, by, bz] = k.launch.block;
        let _ = writeln!(
            run,
            "    kiln_launch({{{gx}u, {gy}u, {gz}u}}, {{{bx}u, {by}u, {bz}u}}, [&] {{ {renamed}({}); }});",
            args.join(", ")
        );
    }
    run.push_str("}\n");
    (kernels, run)
}

struct Case {
    name: &'static str,
    program: Program,
    bindings: Bindings,
}

/// Builds one executable holding every case rendered with `opts`; returns its path.
fn build(dir: &Path, cxx: &str, label: &str, cases: &[Case], opts: &CudaOptions) -> PathBuf {
    let mut src = String::from(SHIM);
    let mut first = true;
    let mut table = String::from("typedef void (*kiln_runner)(unsigned int*, const unsigned int*);\n");
    let mut entries = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let cp = render_program(&c.program, opts).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        if first {
            // the prelude once (its text is the same for every program)
            let whole = cp.source();
            let end = whole.find("// ---- end of prelude").expect("prelude end marker");
            src.push_str(&whole[..end]);
            first = false;
        }
        let (kernels, run) = dispatcher(&format!("p{i}"), &c.program, &cp);
        src.push_str(&kernels);
        src.push_str(&run);
        entries.push(format!("run_p{i}"));
    }
    let _ = writeln!(table, "static kiln_runner kiln_runners[] = {{{}}};", entries.join(", "));
    src.push_str(&table);
    src.push_str(
        r#"
int main(int argc, char** argv) {
    if (argc != 5) return 2;
    const int which = atoi(argv[1]);
    const long words = atol(argv[2]);
    std::vector<unsigned int> mem(words);
    FILE* f = fopen(argv[3], "rb");
    if (!f || fread(mem.data(), 4, words, f) != (size_t)words) return 3;
    unsigned int scal[64] = {0};
    size_t ns = fread(scal, 4, 64, f);
    (void)ns;
    fclose(f);
    kiln_runners[which](mem.data(), scal);
    f = fopen(argv[4], "wb");
    if (!f || fwrite(mem.data(), 4, words, f) != (size_t)words) return 4;
    fclose(f);
    return 0;
}
"#,
    );
    let cpp = dir.join(format!("emulate_{label}.cpp"));
    std::fs::write(&cpp, &src).unwrap();
    let exe = dir.join(format!("emulate_{label}"));
    let out = Command::new(cxx)
        .args(["-std=c++20", "-O1", "-pthread", "-w", "-o"])
        .arg(&exe)
        .arg(&cpp)
        .output()
        .expect("run the C++ compiler");
    assert!(
        out.status.success(),
        "the generated CUDA C ({label}) does not compile under the host shim ({}):\n{}",
        cpp.display(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    exe
}

fn close(got: f64, want: f64, dtype: DType) -> bool {
    if dtype != DType::F32 {
        return got == want;
    }
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    (got - want).abs() <= 1e-4 * want.abs().max(1.0)
}

/// Runs case `i` in the executable and compares with the evaluator.
fn check(dir: &Path, exe: &Path, label: &str, i: usize, c: &Case) {
    let p = &c.program;
    let want = eval_program(p, &c.bindings).unwrap_or_else(|e| panic!("{}: oracle failed: {e}", c.name));
    let (start, words) = layout(p);
    let mut mem = vec![0x7fc0_0000u32; words]; // NaN poison
    for (bi, b) in p.buffers.iter().enumerate() {
        let name = match &b.role {
            BufferRole::Input(n) | BufferRole::Param(n) | BufferRole::State(n) => n,
            _ => continue,
        };
        let v = &c.bindings[name];
        for (e, &x) in v.data.iter().enumerate() {
            mem[start[bi] + e] = to_bits(b.dtype, x);
        }
    }
    let mut bytes: Vec<u8> = mem.iter().flat_map(|w| w.to_le_bytes()).collect();
    for s in &p.scalars {
        bytes.extend(to_bits(s.dtype, c.bindings[&s.name].data[0]).to_le_bytes());
    }
    let input = dir.join(format!("{label}_{i}.in"));
    let output = dir.join(format!("{label}_{i}.out"));
    std::fs::write(&input, bytes).unwrap();
    let run = Command::new(exe)
        .arg(i.to_string())
        .arg(words.to_string())
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} ({label}): emulator exited with {}",
        c.name,
        run.status
    );
    let got_bytes = std::fs::read(&output).unwrap();
    let got: Vec<u32> = got_bytes
        .chunks(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let read = |bi: usize| -> Vec<f64> {
        let b = &p.buffers[bi];
        (0..b.len).map(|e| from_bits(b.dtype, got[start[bi] + e])).collect()
    };
    let mut checked = 0;
    let mut compare = |what: &str, bi: usize, want: &Value| {
        let dtype = p.buffers[bi].dtype;
        let g = read(bi);
        for (e, (&x, &y)) in g.iter().zip(&want.data).enumerate() {
            assert!(
                close(x, y, dtype),
                "{} ({label}): {what}[{e}] = {x}, the evaluator says {y}",
                c.name
            );
        }
        checked += 1;
    };
    for (bi, b) in p.buffers.iter().enumerate() {
        if let BufferRole::Output(n) = &b.role {
            compare(n, bi, &want.outputs[n]);
        }
    }
    let names: HashMap<usize, String> = p
        .buffers
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match &b.role {
            BufferRole::Param(n) | BufferRole::State(n) => Some((i, n.clone())),
            _ => None,
        })
        .collect();
    for (t, v) in &p.updates {
        let n = &names[&(t.0 as usize)];
        compare(n, v.0 as usize, &want.updates[n]);
    }
    assert!(checked > 0, "{}: nothing compared", c.name);
}

#[test]
fn generated_cuda_matches_the_evaluator_under_host_emulation() {
    let Some(cxx) = compiler() else {
        eprintln!("SKIP cuda_emulate: no C++ compiler (set CXX or install g++); generated CUDA was not run");
        return;
    };
    let cases: Vec<Case> = programs::all()
        .into_iter()
        .map(|(name, program, bindings)| Case {
            name,
            program,
            bindings,
        })
        .collect();
    let dir = tempfile_dir();
    let small = CudaOptions {
        block_size: 64,
        max_blocks: 2,
        thread_inner_max: 2,
        warp_inner_max: 12,
        column_outer_min: 1 << 30,
        ..CudaOptions::default()
    };
    let sets = [("default", CudaOptions::default()), ("small", small)];
    let exes: Vec<(String, PathBuf)> = std::thread::scope(|s| {
        let handles: Vec<_> = sets
            .iter()
            .map(|(label, o)| {
                let (dir, cxx, cases) = (&dir, &cxx, &cases);
                s.spawn(move || (label.to_string(), build(dir, cxx, label, cases, o)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (label, exe) in &exes {
        for (i, c) in cases.iter().enumerate() {
            check(&dir, exe, label, i, c);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh scratch directory (removed on success, kept for inspection on failure).
fn tempfile_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("kiln-cuda-emulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The prelude's functions under the host shim: Philox words and uniforms bit-identical
/// to `kiln_ir::philox`, `kiln_fdiv` bit-identical to IEEE division (random operands
/// over the whole float range plus zeros, infinities, NaN, denormals).
#[test]
fn prelude_is_bit_exact_under_host_emulation() {
    let Some(cxx) = compiler() else {
        eprintln!("SKIP cuda_emulate prelude: no C++ compiler (set CXX or install g++)");
        return;
    };
    let dir = tempfile_dir().join("prelude");
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = String::from(SHIM);
    src.push_str(&kiln_compiler::codegen::cuda::prelude());
    src.push_str(
        r#"
int main() {
    // Philox: counters/keys from a small LCG, printed as hex words.
    unsigned long long s = 12345;
    auto next = [&]() { s = s * 6364136223846793005ull + 1442695040888963407ull; return (unsigned int)(s >> 32); };
    for (int i = 0; i < 64; ++i) {
        uint4 c = make_uint4(next(), next(), next(), next());
        uint2 k = make_uint2(next(), next());
        uint4 w = kiln_philox4x32_10(c, k);
        printf("P %u %u %u %u %u %u %u %u %u %u\n", c.x, c.y, c.z, c.w, k.x, k.y, w.x, w.y, w.z, w.w);
    }
    for (int i = 0; i < 64; ++i) {
        int seed = (int)next(), step = (int)next();
        unsigned int stream = next() % 8;
        unsigned long long index = ((unsigned long long)next() << 20) ^ next();
        float u = kiln_random_uniform(seed, step, stream, index);
        unsigned int ub;
        memcpy(&ub, &u, 4);
        printf("U %d %d %u %llu %u\n", seed, step, stream, index, ub);
    }
    // Division: every bit pattern class, compared bit for bit with IEEE a / b.
    long mismatches = 0, checked = 0;
    for (long i = 0; i < 4000000; ++i) {
        unsigned int ab = next(), bb = next();
        if (i % 4 == 1) bb = (bb & 0x807fffffu) | ((0x70u + (next() % 32)) << 23);  // exponents near 1
        if (i % 4 == 2) ab = (ab & 0x807fffffu) | ((0x60u + (next() % 64)) << 23);
        float a = __int_as_float(ab), b = __int_as_float(bb);
        float want = a / b, got = kiln_fdiv(a, b);
        unsigned int wb, gb;
        memcpy(&wb, &want, 4);
        memcpy(&gb, &got, 4);
        ++checked;
        if (wb != gb && !(isnan(want) && isnan(got))) {
            if (mismatches < 5) printf("D %08x %08x want %08x got %08x\n", ab, bb, wb, gb);
            ++mismatches;
        }
    }
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, 1e-40f, 1.17549435e-38f, 3.4028235e38f,
                             __int_as_float(0x7f800000), __int_as_float(0xff800000), __int_as_float(0x7fc00000)};
    for (float a : special)
        for (float b : special) {
            float want = a / b, got = kiln_fdiv(a, b);
            ++checked;
            if (memcmp(&want, &got, 4) != 0 && !(isnan(want) && isnan(got))) ++mismatches;
        }
    printf("DIV %ld %ld\n", checked, mismatches);
    return 0;
}
"#,
    );
    let cpp = dir.join("prelude.cpp");
    std::fs::write(&cpp, &src).unwrap();
    let exe = dir.join("prelude");
    let out = Command::new(&cxx)
        .args(["-std=c++20", "-O1", "-pthread", "-w", "-ffp-contract=off", "-o"])
        .arg(&exe)
        .arg(&cpp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let (mut words, mut uniforms) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "P" => {
                let n: Vec<u32> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
                let want = kiln_ir::philox::philox4x32_10([n[0], n[1], n[2], n[3]], [n[4], n[5]]);
                assert_eq!([n[6], n[7], n[8], n[9]], want, "philox words differ for {line}");
                words += 1;
            }
            "U" => {
                let seed: i32 = f[1].parse().unwrap();
                let step: i32 = f[2].parse().unwrap();
                let stream: u32 = f[3].parse().unwrap();
                let index: u64 = f[4].parse().unwrap();
                let bits: u32 = f[5].parse().unwrap();
                let want =
                    kiln_ir::philox::random_f64(kiln_ir::Distribution::Uniform, seed, step, stream, index) as f32;
                assert_eq!(bits, want.to_bits(), "uniform differs for {line}");
                uniforms += 1;
            }
            "D" => eprintln!("division mismatch: {line}"),
            "DIV" => {
                let mismatches: u64 = f[2].parse().unwrap();
                assert_eq!(mismatches, 0, "kiln_fdiv differs from IEEE division ({} checked)", f[1]);
            }
            _ => panic!("unexpected line {line}"),
        }
    }
    assert_eq!((words, uniforms), (64, 64));
    assert!(text.contains("DIV "));
    let _ = std::fs::remove_dir_all(&dir);
}
