//! Cranelift backend: kernel IR -> Cranelift `Function`s for the host CPU.
//!
//! Every [`LoopKernel`] (and every matmul epilogue) becomes one function with the ABI
//! of [`abi`]: it runs a half-open range of flat outer points, so the runtime can split
//! a kernel across threads. Before emission, adjacent outer dimensions are merged where
//! the indices allow (`collapse`) and memory safety is proven (`bounds`). The innermost
//! outer loop then runs in f32x4 lanes (FMA when the ISA has it) plus a scalar tail;
//! when an access pattern forbids that, each stage's innermost inner loop is tried
//! instead (row reductions), else the loop runs scalar (see [`plan`]). Scalar tails
//! call per-program support functions for transcendentals (`support`) instead of
//! repeating their expansion. Matmuls themselves are not generated: the runtime calls
//! a GEMM library and then the epilogue function on each finished block.
//!
//! This module emits plain `Function`s and a description of their ABI. It holds no JIT
//! module and never runs code; `kiln-runtime` defines, links and calls the functions.

pub mod abi;
mod bounds;
mod collapse;
mod emit;
pub mod index;
pub mod lanes;
mod loops;
pub mod math;
pub mod philox;
pub mod plan;
pub mod probe;
mod reduce;
pub mod support;

use std::collections::{BTreeSet, HashMap};

use cranelift_codegen::ir::{Function, InstBuilder, UserFuncName};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use kiln_ir::DType;
use thiserror::Error;

pub use abi::{Helper, KernelAbi, KernelFn, MathFn, HELPER_COUNT, SLACK_ELEMENTS, TABLE_LEN};
pub use math::TRIG_FAST_LIMIT;

use crate::kernel::{BufferId, Inst, Kernel, LoopKernel, Program};
use abi::EntryParams;
use emit::Emitter;
use lanes::HelperRefs;

/// Code-generation options. Every field changes the emitted code, so all of them are
/// part of a compile-cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClifOptions {
    /// Use the f32x4 main loop where the kernel allows it (needs SSE4.1 on x86-64).
    pub simd: bool,
    /// Use FMA where the ISA has it; `false` builds an ISA without FMA (mul + add).
    pub fma: bool,
}

impl Default for ClifOptions {
    fn default() -> Self {
        ClifOptions { simd: true, fma: true }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CodegenError {
    #[error("codegen: malformed kernel `{kernel}`: {detail}")]
    Malformed { kernel: String, detail: String },
    #[error("codegen: kernel `{kernel}` is not supported by the CPU backend: {detail}")]
    Unsupported { kernel: String, detail: String },
    #[error("codegen: kernel `{kernel}` could access memory out of bounds: {detail}")]
    OutOfBounds { kernel: String, detail: String },
    #[error("codegen: cannot set up the host ISA: {0}")]
    Isa(String),
    #[error("codegen: Cranelift rejected the function for `{kernel}` (a code generator bug): {detail}")]
    Verifier { kernel: String, detail: String },
}

/// One generated function and how to call it.
#[derive(Clone, Debug)]
pub struct ClifKernel {
    pub name: String,
    pub function: Function,
    pub abi: KernelAbi,
}

/// The generated code of one `Program` kernel.
#[derive(Clone, Debug)]
pub enum ClifCode {
    Loop(ClifKernel),
    /// The matmul runs in the runtime's GEMM; only its epilogue is generated.
    MatMul {
        epilogue: Option<ClifKernel>,
    },
}

/// Generated code for a whole program: one entry per `Program` kernel, plus the
/// support functions the kernels call (to be placed in the helper table at
/// `MathFn::table_index`).
#[derive(Clone, Debug)]
pub struct ClifProgram {
    pub kernels: Vec<ClifCode>,
    pub support: Vec<(MathFn, Function)>,
}

/// The host ISA with kiln's settings (`opt_level = speed`, no PIC). With
/// `options.fma == false` the ISA is told the CPU has no FMA.
pub fn native_isa(options: &ClifOptions) -> Result<OwnedTargetIsa, CodegenError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| CodegenError::Isa(e.to_string()));
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "is_pic", "false")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    // Functions are verified once, explicitly, in `compile_loop_kernel`.
    set(&mut flags, "enable_verifier", "false")?;
    let mut isa = cranelift_native::builder().map_err(|e| CodegenError::Isa(e.to_string()))?;
    if !options.fma && isa.triple().architecture.to_string() == "x86_64" {
        isa.set("has_fma", "false")
            .map_err(|e| CodegenError::Isa(e.to_string()))?;
    }
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError::Isa(e.to_string()))
}

fn isa_flag(isa: &dyn TargetIsa, name: &str) -> Option<bool> {
    isa.isa_flags()
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.as_bool())
}

/// Whether the ISA has a native fused multiply-add.
pub fn isa_has_fma(isa: &dyn TargetIsa) -> bool {
    match isa.triple().architecture.to_string().as_str() {
        "x86_64" => isa_flag(isa, "has_fma").unwrap_or(false),
        "aarch64" => true,
        _ => false,
    }
}

/// Whether the f32x4 loops can be lowered on this ISA.
pub fn isa_has_simd(isa: &dyn TargetIsa) -> bool {
    match isa.triple().architecture.to_string().as_str() {
        "x86_64" => isa_flag(isa, "has_sse41").unwrap_or(false),
        "aarch64" => true,
        _ => false,
    }
}

/// Generate code for every kernel of `p`, after checking the program's memory safety.
pub fn compile_program(p: &Program, isa: &dyn TargetIsa, options: &ClifOptions) -> Result<ClifProgram, CodegenError> {
    let mut kernels = Vec::with_capacity(p.kernels.len());
    let mut needed = BTreeSet::new();
    let mut loop_kernel = |l: &LoopKernel| -> Result<ClifKernel, CodegenError> {
        let c = compile_loop_kernel(p, l, isa, options)?;
        if c.abi.lanes > 1 || c.abi.vector_stages > 0 {
            needed.extend(support::needed_by(l));
        }
        Ok(c)
    };
    for k in &p.kernels {
        kernels.push(match k {
            Kernel::Loop(l) => ClifCode::Loop(loop_kernel(l)?),
            Kernel::MatMul(m) => {
                bounds::check_matmul(p, m)?;
                let epilogue = match &m.epilogue {
                    Some(e) => Some(loop_kernel(e)?),
                    None => None,
                };
                ClifCode::MatMul { epilogue }
            }
        });
    }
    let support = needed
        .into_iter()
        .map(|f| Ok((f, support::support_function(f, isa)?)))
        .collect::<Result<_, CodegenError>>()?;
    Ok(ClifProgram { kernels, support })
}

fn buffers_touched(k: &LoopKernel) -> (Vec<BufferId>, Vec<BufferId>) {
    let mut reads = BTreeSet::new();
    let mut writes = BTreeSet::new();
    for s in &k.stages {
        for (_, i) in &s.insts {
            if let Inst::Load { buf, .. } = i {
                reads.insert(*buf);
            }
        }
        for st in &s.stores {
            writes.insert(st.buf);
        }
    }
    (reads.into_iter().collect(), writes.into_iter().collect())
}

fn uses_helpers(k: &LoopKernel) -> bool {
    use kiln_ir::{Distribution, UnaryOp};
    k.stages.iter().flat_map(|s| &s.insts).any(|(_, i)| {
        matches!(
            i,
            Inst::Unary {
                op: UnaryOp::Sin | UnaryOp::Cos,
                ..
            } | Inst::PowConst { .. }
                | Inst::Random {
                    dist: Distribution::Normal,
                    ..
                }
        )
    })
}

/// Generate the function for one loop kernel of `p`.
pub fn compile_loop_kernel(
    p: &Program,
    k: &LoopKernel,
    isa: &dyn TargetIsa,
    options: &ClifOptions,
) -> Result<ClifKernel, CodegenError> {
    bounds::check_loop_kernel(p, k)?;
    let collapsed = collapse::collapse(k);
    let k = &collapsed;
    let simd = options.simd && isa_has_simd(isa);
    let plan = plan::plan(p, k, simd)?;
    let ptr_ty = isa.pointer_type();
    if ptr_ty.bits() != 64 {
        return Err(CodegenError::Unsupported {
            kernel: k.name.clone(),
            detail: format!("{}-bit pointers; the CPU backend needs a 64-bit host", ptr_ty.bits()),
        });
    }
    for slot in &p.scalars {
        if matches!(slot.dtype, DType::F16 | DType::BF16) {
            return Err(CodegenError::Unsupported {
                kernel: k.name.clone(),
                detail: format!("runtime scalar `{}` has storage-only dtype {}", slot.name, slot.dtype),
            });
        }
    }
    let call_conv = isa.default_call_conv();
    let sig = abi::kernel_signature(call_conv, ptr_ty);
    let mut func = Function::with_name_signature(UserFuncName::testcase(&k.name), sig);
    let mut fctx = FunctionBuilderContext::new();
    let (reads, writes) = buffers_touched(k);
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ps = b.block_params(entry).to_vec();
        let params = EntryParams {
            bufs: ps[0],
            scalars: ps[1],
            helpers: ps[2],
            begin: ps[3],
            end: ps[4],
        };
        let sig_unary = b.import_signature(abi::helper_signature(call_conv, false));
        let sig_pow = b.import_signature(abi::helper_signature(call_conv, true));
        let sig_math = b.import_signature(abi::math_signature(call_conv, ptr_ty));
        let helpers = HelperRefs {
            table: params.helpers,
            sig_unary,
            sig_pow,
            sig_math,
            ptr_ty,
            outline: false,
        };
        let mut bufs = HashMap::new();
        for &id in reads.iter().chain(&writes) {
            if let std::collections::hash_map::Entry::Vacant(e) = bufs.entry(id) {
                e.insert(abi::load_buffer_ptr(&mut b, ptr_ty, &params, id));
            }
        }
        let mut scalars = HashMap::new();
        for (_, inst) in k.stages.iter().flat_map(|s| &s.insts) {
            if let Inst::Scalar { slot } = inst {
                if scalars.contains_key(slot) {
                    continue;
                }
                let dt = p.scalars[*slot].dtype;
                let v = match dt {
                    DType::F32 => abi::load_scalar(&mut b, &params, *slot, cranelift_codegen::ir::types::F32),
                    _ => {
                        let raw = abi::load_scalar(&mut b, &params, *slot, cranelift_codegen::ir::types::I32);
                        if dt == DType::Bool {
                            b.ins()
                                .icmp_imm_s(cranelift_codegen::ir::condcodes::IntCC::NotEqual, raw, 0)
                        } else {
                            raw
                        }
                    }
                };
                scalars.insert(*slot, v);
            }
        }
        let mut mul_operands = HashMap::new();
        for (id, inst) in k.stages.iter().flat_map(|s| &s.insts) {
            if let Inst::Binary { a, b: bb, .. } = inst {
                if plan.fused_muls.contains(id) {
                    mul_operands.insert(*id, (*a, *bb));
                }
            }
        }
        let mut em = Emitter {
            b,
            p,
            k,
            plan: &plan,
            fma: isa_has_fma(isa),
            helpers,
            bufs,
            scalars,
            mul_operands,
        };
        em.emit_outer(params.begin, params.end);
        em.b.seal_all_blocks();
        em.b.finalize(isa.frontend_config());
    }
    cranelift_codegen::verify_function(&func, isa).map_err(|e| CodegenError::Verifier {
        kernel: k.name.clone(),
        detail: e.to_string(),
    })?;
    Ok(ClifKernel {
        name: k.name.clone(),
        function: func,
        abi: KernelAbi {
            outer_total: k.outer.iter().product(),
            lanes: if plan.is_vector() { 4 } else { 1 },
            vector_stages: plan.vector_stages(),
            row: k.outer.last().copied().unwrap_or(1),
            work_per_point: plan.work_per_point,
            scalar_reason: plan.scalar_reason.clone(),
            reads,
            writes,
            uses_helpers: uses_helpers(k),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Buffer, BufferRole, IndexExpr, Stage, Storage, Store, ValueId};
    use kiln_ir::BinaryOp;

    fn axpy(n: usize, transposed: bool) -> Program {
        let buf = |role| Buffer {
            len: n * 3,
            dtype: DType::F32,
            role,
            storage: Storage::Own,
        };
        let idx = IndexExpr::Var(0).mul(n as i64).add(IndexExpr::Var(1));
        let x_idx = if transposed {
            IndexExpr::Var(1).mul(3).add(IndexExpr::Var(0))
        } else {
            idx.clone()
        };
        let load = |b: u32, index| Inst::Load {
            buf: BufferId(b),
            index,
            guards: vec![],
            fill: 0.0,
        };
        Program {
            buffers: vec![
                buf(BufferRole::Input("x".into())),
                buf(BufferRole::Input("y".into())),
                buf(BufferRole::Output("z".into())),
            ],
            kernels: vec![Kernel::Loop(LoopKernel {
                name: "axpy".into(),
                nodes: vec![],
                outer: vec![3, n],
                stages: vec![Stage {
                    inner: vec![],
                    insts: vec![
                        (ValueId(0), load(0, x_idx)),
                        (ValueId(1), load(1, idx.clone())),
                        (
                            ValueId(2),
                            Inst::Binary {
                                op: BinaryOp::Mul,
                                a: ValueId(0),
                                b: ValueId(0),
                            },
                        ),
                        (
                            ValueId(3),
                            Inst::Binary {
                                op: BinaryOp::Add,
                                a: ValueId(2),
                                b: ValueId(1),
                            },
                        ),
                    ],
                    accumulators: vec![],
                    stores: vec![Store {
                        buf: BufferId(2),
                        index: idx,
                        value: ValueId(3),
                    }],
                }],
            })],
            ..Program::default()
        }
    }

    fn text(p: &Program, options: &ClifOptions) -> (String, KernelAbi) {
        let isa = native_isa(options).unwrap();
        let code = compile_program(p, isa.as_ref(), options).unwrap();
        match &code.kernels[0] {
            ClifCode::Loop(k) => (k.function.display().to_string(), k.abi.clone()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn fma_only_when_the_isa_has_it_and_vectors_only_when_allowed() {
        let isa = native_isa(&ClifOptions::default()).unwrap();
        let simd = isa_has_simd(isa.as_ref());
        let p = axpy(17, false);
        let (t, abi) = text(&p, &ClifOptions::default());
        assert_eq!(t.contains(" fma "), isa_has_fma(isa.as_ref()), "{t}");
        assert_eq!(abi.lanes == 4, simd);
        assert_eq!(t.contains("f32x4"), simd);
        let (t, _) = text(&p, &ClifOptions { simd: true, fma: false });
        assert!(!t.contains(" fma "), "{t}");
        assert!(t.contains("fmul") && t.contains("fadd"));
        let (t, abi) = text(&p, &ClifOptions { simd: false, fma: true });
        assert!(!t.contains("f32x4") && abi.lanes == 1);
        assert_eq!(abi.scalar_reason.as_deref(), Some("SIMD disabled (options or ISA)"));
    }

    #[test]
    fn strided_access_in_the_vector_variable_falls_back_to_scalar() {
        let (t, abi) = text(&axpy(17, true), &ClifOptions::default());
        assert_eq!(abi.lanes, 1);
        assert!(!t.contains("f32x4"));
        assert!(abi.scalar_reason.unwrap().contains("Affine(3)"));
        assert_eq!(abi.outer_total, 51);
        assert_eq!(abi.reads, vec![BufferId(0), BufferId(1)]);
        assert_eq!(abi.writes, vec![BufferId(2)]);
    }
}
