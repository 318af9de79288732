//! Generated support functions: the scalar transcendentals of `math`, each compiled
//! once per program and called (through the helper table) from the cold scalar tails of
//! vector kernels instead of being expanded inline there. Owns their signature and body
//! and the rule which of them a kernel needs; the runtime places their addresses in the
//! helper table at `MathFn::table_index`.

use std::collections::BTreeSet;

use cranelift_codegen::ir::{Function, InstBuilder, UserFuncName};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use kiln_ir::{Distribution, UnaryOp};

use super::abi::{self, MathFn};
use super::lanes::{HelperRefs, Lanes, Width};
use super::{isa_has_fma, math, CodegenError};
use crate::kernel::{Inst, LoopKernel};

/// The support functions the scalar tail of a vector kernel `k` calls.
pub fn needed_by(k: &LoopKernel) -> BTreeSet<MathFn> {
    let mut out = BTreeSet::new();
    for (_, inst) in k.stages.iter().flat_map(|s| &s.insts) {
        match inst {
            Inst::Unary { op, .. } => {
                let f = match op {
                    UnaryOp::Exp => MathFn::Exp,
                    UnaryOp::Log => MathFn::Log,
                    UnaryOp::Tanh => MathFn::Tanh,
                    UnaryOp::Sigmoid => MathFn::Sigmoid,
                    UnaryOp::Sin => MathFn::Sin,
                    UnaryOp::Cos => MathFn::Cos,
                    _ => continue,
                };
                out.insert(f);
            }
            Inst::Random {
                dist: Distribution::Normal,
                ..
            } => {
                out.insert(MathFn::Log);
                out.insert(MathFn::Cos);
            }
            _ => {}
        }
    }
    out
}

/// `extern "C" fn(x: f32, helpers: *const *const u8) -> f32` computing `f(x)` with the
/// inline expansion of `math`.
pub fn support_function(f: MathFn, isa: &dyn TargetIsa) -> Result<Function, CodegenError> {
    let ptr = isa.pointer_type();
    let cc = isa.default_call_conv();
    let name = format!("kiln_support_{f:?}").to_lowercase();
    let mut func = Function::with_name_signature(UserFuncName::testcase(&name), abi::math_signature(cc, ptr));
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let (x, table) = (b.block_params(entry)[0], b.block_params(entry)[1]);
        let helpers = HelperRefs {
            table,
            sig_unary: b.import_signature(abi::helper_signature(cc, false)),
            sig_pow: b.import_signature(abi::helper_signature(cc, true)),
            sig_math: b.import_signature(abi::math_signature(cc, ptr)),
            ptr_ty: ptr,
            outline: false,
        };
        let mut l = Lanes::new(&mut b, Width::Scalar, isa_has_fma(isa), helpers);
        let r = math::inline(&mut l, f, x);
        b.ins().return_(&[r]);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    cranelift_codegen::verify_function(&func, isa).map_err(|e| CodegenError::Verifier {
        kernel: name,
        detail: e.to_string(),
    })?;
    Ok(func)
}
