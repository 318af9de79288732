//! Turning the compiler's Cranelift functions into callable machine code: one
//! `cranelift_jit::JITModule` per compiled program, every kernel defined in it, then
//! finalized once. Owns the module's lifetime (its code memory is freed when the
//! [`JitProgram`] is dropped) and the per-kernel compile timings. It does not decide
//! how kernels are scheduled or run.

use std::time::{Duration, Instant};

use cranelift_codegen::ir::UserFuncName;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use kiln_compiler::codegen::clif::{ClifCode, ClifKernel, ClifProgram, KernelAbi, KernelFn};

use super::helpers::HelperTable;
use crate::error::RuntimeError;

/// A callable generated kernel.
#[derive(Clone, Debug)]
pub struct JitKernel {
    pub name: String,
    pub f: KernelFn,
    pub abi: KernelAbi,
    /// Cranelift compile time of this function (define_function).
    pub compile_time: Duration,
    /// Machine-code bytes.
    pub code_size: usize,
}

/// Callable code of one program kernel, parallel to `Program::kernels`.
#[derive(Clone, Debug)]
pub enum JitCode {
    Loop(JitKernel),
    MatMul { epilogue: Option<JitKernel> },
}

/// All code of one program, alive as long as this value.
pub struct JitProgram {
    module: Option<JITModule>,
    pub kernels: Vec<JitCode>,
    /// The helper table every kernel of this program is called with (runtime helpers
    /// plus this program's support functions).
    pub helpers: HelperTable,
    /// Wall time of defining and finalizing everything.
    pub total_time: Duration,
}

// SAFETY: after `jit` returns, the module is never used again except to free its
// memory in `Drop` (which needs `&mut self`); the finalized code is immutable and the
// function pointers may be called from any thread.
unsafe impl Send for JitProgram {}
unsafe impl Sync for JitProgram {}

impl Drop for JitProgram {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: nothing can call the kernels any more: every `JitKernel` handed
            // out lives inside `self.kernels`, which is being dropped with us.
            unsafe { m.free_memory() };
        }
    }
}

impl std::fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitProgram")
            .field("kernels", &self.kernels.len())
            .field("total_time", &self.total_time)
            .finish()
    }
}

fn jit_err(kernel: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Jit {
        kernel: kernel.to_string(),
        detail: e.to_string(),
    }
}

/// Compile every function of `program` with `isa` (the ISA the functions were
/// generated for) into one module.
pub fn jit(program: ClifProgram, isa: OwnedTargetIsa) -> Result<JitProgram, RuntimeError> {
    let start = Instant::now();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut ctx = module.make_context();
    let mut pending: Vec<(cranelift_module::FuncId, JitKernelMeta)> = Vec::new();
    let mut define = |module: &mut JITModule, ck: ClifKernel| -> Result<usize, RuntimeError> {
        let idx = pending.len();
        let symbol = format!("kiln_k{idx}");
        let id = module
            .declare_function(&symbol, Linkage::Local, &ck.function.signature)
            .map_err(|e| jit_err(&ck.name, e))?;
        ctx.func = ck.function;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let t = Instant::now();
        module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_err(&ck.name, format!("{e:?}")))?;
        let compile_time = t.elapsed();
        let code_size = ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        module.clear_context(&mut ctx);
        pending.push((
            id,
            JitKernelMeta {
                name: ck.name,
                abi: ck.abi,
                compile_time,
                code_size,
            },
        ));
        Ok(idx)
    };
    let mut shapes = Vec::new();
    for code in program.kernels {
        match code {
            ClifCode::Loop(k) => {
                let i = define(&mut module, k)?;
                shapes.push((true, Some(i)));
            }
            ClifCode::MatMul { epilogue } => {
                let i = match epilogue {
                    Some(k) => Some(define(&mut module, k)?),
                    None => None,
                };
                shapes.push((false, i));
            }
        }
    }
    let mut support_ids = Vec::new();
    for (f, func) in program.support {
        let name = format!("support {f:?}");
        let id = module
            .declare_function(&format!("kiln_support_{}", f as usize), Linkage::Local, &func.signature)
            .map_err(|e| jit_err(&name, e))?;
        ctx.func = func;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_err(&name, format!("{e:?}")))?;
        module.clear_context(&mut ctx);
        support_ids.push((f, id));
    }
    module
        .finalize_definitions()
        .map_err(|e| jit_err("<finalize>", format!("{e:?}")))?;
    let mut helpers = HelperTable::new();
    for (f, id) in support_ids {
        helpers.set_support(f, module.get_finalized_function(id));
    }
    let fns: Vec<JitKernel> = pending
        .into_iter()
        .map(|(id, meta)| {
            let ptr = module.get_finalized_function(id);
            // SAFETY: every function was generated with the `KernelFn` signature
            // (`abi::kernel_signature`) for the host calling convention.
            let f = unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) };
            JitKernel {
                name: meta.name,
                f,
                abi: meta.abi,
                compile_time: meta.compile_time,
                code_size: meta.code_size,
            }
        })
        .collect();
    let kernels = shapes
        .into_iter()
        .map(|(is_loop, i)| {
            let k = i.map(|i| fns[i].clone());
            if is_loop {
                JitCode::Loop(k.expect("loop kernels have code"))
            } else {
                JitCode::MatMul { epilogue: k }
            }
        })
        .collect();
    Ok(JitProgram {
        module: Some(module),
        kernels,
        helpers,
        total_time: start.elapsed(),
    })
}

struct JitKernelMeta {
    name: String,
    abi: KernelAbi,
    compile_time: Duration,
    code_size: usize,
}

/// JIT a single free-standing function (test probes) and return its address; the
/// returned module must outlive every call through the address.
pub fn jit_function(
    function: cranelift_codegen::ir::Function,
    isa: OwnedTargetIsa,
) -> Result<(JitModuleHandle, *const u8), RuntimeError> {
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut ctx = module.make_context();
    let id = module
        .declare_function("kiln_probe", Linkage::Local, &function.signature)
        .map_err(|e| jit_err("probe", e))?;
    ctx.func = function;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    module
        .define_function(id, &mut ctx)
        .map_err(|e| jit_err("probe", format!("{e:?}")))?;
    module
        .finalize_definitions()
        .map_err(|e| jit_err("probe", format!("{e:?}")))?;
    let ptr = module.get_finalized_function(id);
    Ok((JitModuleHandle(Some(module)), ptr))
}

/// Owns a JIT module and frees its code on drop.
pub struct JitModuleHandle(Option<JITModule>);

impl Drop for JitModuleHandle {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            // SAFETY: the owner promised no call through the module's code outlives it.
            unsafe { m.free_memory() };
        }
    }
}
