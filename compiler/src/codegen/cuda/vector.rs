//! The float4 path of elementwise kernels: each thread step handles 4 consecutive outer
//! points along the innermost outer variable, with one 16-byte load/store for every
//! contiguous aligned access, one scalar load for values uniform across the 4 points,
//! and lane-by-lane code for the rest (gathers, div/mod indices, randoms). Decisions
//! come from `plan::vector_plan`; this file only emits.

use kiln_ir::DType;

use super::body::{Body, Names};
use super::launch::{blocks_for, params, signature, Launch};
use super::loops::{ir_comment, unravel};
use super::plan::{buffer_dtype, Access, LoopPlan, VectorPlan};
use super::types::{from_mem, literal, reg_type, to_mem, vec4_type};
use super::writer::Code;
use super::{CudaCodegenError, CudaOptions};
use crate::kernel::{Inst, LoopKernel, Program};

const LANES: [&str; 4] = ["x", "y", "z", "w"];

fn make_vec(t: DType, parts: &[String]) -> String {
    let f = match t {
        DType::I32 => "make_int4",
        DType::Bool => "make_uint4",
        _ => "make_float4",
    };
    format!("{f}({})", parts.join(", "))
}

/// The elementwise kernel `k` on the float4 path.
pub(crate) fn emit_vector_kernel(
    p: &Program,
    k: &LoopKernel,
    name: &str,
    plan: &LoopPlan,
    vp: &VectorPlan,
    o: &CudaOptions,
) -> Result<(String, Launch), CudaCodegenError> {
    let (args, decls) = params(p, &k.name, &plan.usage)?;
    let body = Body {
        p,
        kernel: &k.name,
        types: &plan.types,
        idx: plan.idx,
        forward: None,
    };
    let idx = plan.idx;
    let vv = vp.vv;
    let total: u128 = k.outer.iter().map(|&d| d as u128).product();
    let groups = total / 4;
    let st = &k.stages[0];
    let extents = k.outer.clone();

    let uniform_value = |v: crate::kernel::ValueId| format!("{v}");
    let base_var = |j: usize| format!("i{j}");
    let base = Names {
        value: &uniform_value,
        var: &base_var,
    };
    let lane_value = |lane: usize| {
        move |v: crate::kernel::ValueId| {
            if vp.uniform.contains(&v) {
                format!("{v}")
            } else {
                format!("{v}_{lane}")
            }
        }
    };
    let lane_var = |lane: usize| {
        move |j: usize| {
            if j == vv && lane > 0 {
                format!("(i{j} + {lane})")
            } else {
                format!("i{j}")
            }
        }
    };

    let mut c = Code::new();
    ir_comment(&mut c, k);
    c.comment(format!(
        "mapping: {}; float4: 4 consecutive points along i{vv} per thread step",
        plan.mode_reason
    ));
    c.open(signature(name, o.block_size, None, &decls));
    c.line(format!("const {idx} nthreads = ({idx})gridDim.x * blockDim.x;"));
    c.open(format!(
        "for ({idx} g = ({idx})blockIdx.x * blockDim.x + threadIdx.x; g < {groups}; g += nthreads)"
    ));
    c.line(format!(
        "const {idx} o = g * 4;  // the first of 4 consecutive outer points"
    ));
    unravel(&mut c, idx, "o", &k.outer, 0);
    for (id, inst) in &st.insts {
        if vp.uniform.contains(id) {
            c.line(body.def(*id, inst, &base, &extents)?);
            continue;
        }
        if let (
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            },
            Some(Access::Vector),
        ) = (inst, vp.loads.get(id))
        {
            let dt = buffer_dtype(p, *buf);
            let vt = vec4_type(dt);
            let ptr = format!(
                "*reinterpret_cast<const {vt}*>(&{buf}[{}])",
                body.index(index, &base, &extents)
            );
            let rhs = match body.guard(guards, &base, &extents) {
                Some(g) => {
                    let fill = match dt {
                        DType::Bool => (if *fill != 0.0 { "1u" } else { "0u" }).to_string(),
                        _ => literal(*fill, dt),
                    };
                    format!("({g}) ? {ptr} : {}", make_vec(dt, &vec![fill; 4]))
                }
                None => ptr,
            };
            c.line(format!(
                "const {vt} {id}_v = {rhs};  // 4 x {buf}: {:?}",
                p.buffers[buf.0 as usize].role
            ));
            let ty = reg_type(dt);
            for (lane, part) in LANES.iter().enumerate() {
                c.line(format!(
                    "const {ty} {id}_{lane} = {};",
                    from_mem(dt, &format!("{id}_v.{part}"))
                ));
            }
            continue;
        }
        for lane in 0..4 {
            let value = lane_value(lane);
            let var = lane_var(lane);
            let names = Names {
                value: &value,
                var: &var,
            };
            c.line(body.def(*id, inst, &names, &extents)?);
        }
    }
    for (store, access) in st.stores.iter().zip(&vp.stores) {
        match access {
            Access::Vector => {
                let dt = buffer_dtype(p, store.buf);
                if body.types.value(store.value) != dt {
                    return Err(CudaCodegenError::Malformed {
                        kernel: k.name.clone(),
                        detail: format!(
                            "stores a {} value into {} of dtype {dt}",
                            body.types.value(store.value),
                            store.buf
                        ),
                    });
                }
                let parts: Vec<String> = (0..4).map(|lane| to_mem(dt, &lane_value(lane)(store.value))).collect();
                c.line(format!(
                    "*reinterpret_cast<{}*>(&{}[{}]) = {};",
                    vec4_type(dt),
                    store.buf,
                    body.index(&store.index, &base, &extents),
                    make_vec(dt, &parts)
                ));
            }
            _ => {
                for lane in 0..4 {
                    let value = lane_value(lane);
                    let var = lane_var(lane);
                    let names = Names {
                        value: &value,
                        var: &var,
                    };
                    c.line(body.store(store, &names, &extents)?);
                }
            }
        }
    }
    c.close();
    c.close();
    let launch = Launch {
        grid: [
            blocks_for(groups.min(u64::MAX as u128) as u64, o.block_size as u64, o.max_blocks),
            1,
            1,
        ],
        block: [o.block_size, 1, 1],
        dynamic_shared_bytes: 0,
        args,
    };
    Ok((c.finish(), launch))
}
