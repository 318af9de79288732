//! Test probes: tiny functions that expose one building block of the generated code to
//! tests that cannot reach it through a kernel program. Today: the Philox words, so the
//! CLIF Philox can be compared bit for bit with `kiln_ir::philox` at both widths.
//! Nothing in the compile pipeline uses this module.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, Function, InstBuilder, MemFlagsData, Signature, UserFuncName, Value};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::lanes::{HelperRefs, Lanes, Width};
use super::{abi, philox, CodegenError};

/// The probe's Rust type: `(counters, key, out, n)`. `counters` and `out` hold four
/// arrays of `n` u32 each (word 0 of every element, then word 1, ...); `key` holds 2.
pub type PhiloxProbeFn = unsafe extern "C" fn(*const u32, *const u32, *mut u32, i64);

/// A function computing `philox4x32_10(counter[i], key)` for `i in 0..n`: elements
/// `[0, n - n % 4)` at width 4 when `simd`, the rest one by one.
pub fn philox_probe(isa: &dyn TargetIsa, simd: bool) -> Result<Function, CodegenError> {
    let ptr = isa.pointer_type();
    let cc = isa.default_call_conv();
    let mut sig = Signature::new(cc);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.params.push(AbiParam::new(types::I64));
    let mut func = Function::with_name_signature(UserFuncName::testcase("philox_probe"), sig);
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let (ctr, key, out, n) = (p[0], p[1], p[2], p[3]);
        let sig_unary = b.import_signature(abi::helper_signature(cc, false));
        let sig_pow = b.import_signature(abi::helper_signature(cc, true));
        let sig_math = b.import_signature(abi::math_signature(cc, ptr));
        let helpers = HelperRefs {
            table: ctr,
            sig_unary,
            sig_pow,
            sig_math,
            ptr_ty: ptr,
            outline: false,
        };
        let flags = MemFlagsData::new().with_notrap();
        let k0 = b.ins().load(types::I32, flags, key, 0);
        let k1 = b.ins().load(types::I32, flags, key, 4);
        let vec_end = if simd {
            b.ins().band_imm_s(n, !3)
        } else {
            b.ins().iconst(types::I64, 0)
        };
        let zero = b.ins().iconst(types::I64, 0);
        let mut start = zero;
        for (w, end) in [(Width::X4, vec_end), (Width::Scalar, n)] {
            let step = w.lanes() as i64;
            let header = b.create_block();
            let body = b.create_block();
            let exit = b.create_block();
            b.append_block_param(header, types::I64);
            b.ins().jump(header, &[start.into()]);
            b.switch_to_block(header);
            let i = b.block_params(header)[0];
            let next = b.ins().iadd_imm_s(i, step);
            let ok = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, end);
            b.ins().brif(ok, body, &[], exit, &[]);
            b.switch_to_block(body);
            let ty = if w == Width::X4 { types::I32X4 } else { types::I32 };
            let byte = b.ins().ishl_imm_u(i, 2);
            let nbytes = b.ins().ishl_imm_u(n, 2);
            let mut words: Vec<Value> = Vec::new();
            let mut addr_c = b.ins().iadd(ctr, byte);
            let mut addr_o = b.ins().iadd(out, byte);
            let mut addrs_o = Vec::new();
            for _ in 0..4 {
                words.push(b.ins().load(ty, flags, addr_c, 0));
                addrs_o.push(addr_o);
                addr_c = b.ins().iadd(addr_c, nbytes);
                addr_o = b.ins().iadd(addr_o, nbytes);
            }
            let mut l = Lanes::new(&mut b, w, false, helpers);
            let key = [l.splat(types::I32X4, k0), l.splat(types::I32X4, k1)];
            let r = philox::philox4x32_10(&mut l, [words[0], words[1], words[2], words[3]], key);
            for (v, a) in r.iter().zip(&addrs_o) {
                b.ins().store(flags, *v, *a, 0);
            }
            b.ins().jump(header, &[next.into()]);
            b.switch_to_block(exit);
            start = i;
        }
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
    }
    cranelift_codegen::verify_function(&func, isa).map_err(|e| CodegenError::Verifier {
        kernel: "philox_probe".into(),
        detail: e.to_string(),
    })?;
    Ok(func)
}
