//! Text rendering of the kernel IR (`kiln inspect --stage kernels`). Read-only.

use std::fmt::{self, Display, Formatter};

use super::*;

impl Display for IndexExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            IndexExpr::Var(k) => write!(f, "i{k}"),
            IndexExpr::Const(c) => write!(f, "{c}"),
            IndexExpr::Add(a, b) => write!(f, "({a} + {b})"),
            IndexExpr::Mul(a, c) => write!(f, "{a}*{c}"),
            IndexExpr::Div(a, c) => write!(f, "({a} / {c})"),
            IndexExpr::Mod(a, c) => write!(f, "({a} % {c})"),
            IndexExpr::Value(v) => write!(f, "{v}"),
        }
    }
}

impl Display for Inst {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Inst::Load {
                buf,
                index,
                guards,
                fill,
            } => {
                write!(f, "load {buf}[{index}]")?;
                for g in guards {
                    write!(f, " if 0<={}<{}", g.expr, g.upper)?;
                }
                if !guards.is_empty() {
                    write!(f, " else {fill}")?;
                }
                Ok(())
            }
            Inst::Scalar { slot } => write!(f, "scalar #{slot}"),
            Inst::Const { value, dtype } => write!(f, "const {value} : {dtype}"),
            Inst::LoopVar(k) => write!(f, "i{k}"),
            Inst::Index(e) => write!(f, "index {e}"),
            Inst::Acc(a) => write!(f, "{a}"),
            Inst::Unary { op, x } => write!(f, "{op:?} {x}"),
            Inst::Binary { op, a, b } => write!(f, "{op:?} {a}, {b}"),
            Inst::PowConst { x, exponent } => write!(f, "pow {x}, {exponent}"),
            Inst::Compare { op, a, b } => write!(f, "{op:?} {a}, {b}"),
            Inst::Select {
                cond,
                on_true,
                on_false,
            } => write!(f, "select {cond}, {on_true}, {on_false}"),
            Inst::Cast { x, to } => write!(f, "cast {x} to {to}"),
            Inst::Random {
                dist,
                stream,
                seed,
                step,
                index,
            } => {
                write!(
                    f,
                    "random {dist:?} stream={stream} seed={seed} step={step} at [{index}]"
                )
            }
        }
    }
}

impl Display for LoopKernel {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let nodes = self.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
        writeln!(f, "kernel {} outer={:?}   // implements {nodes}", self.name, self.outer)?;
        for (s, stage) in self.stages.iter().enumerate() {
            writeln!(f, "  stage {s} inner={:?}", stage.inner)?;
            for (v, inst) in &stage.insts {
                writeln!(f, "    {v} = {inst}")?;
            }
            for acc in &stage.accumulators {
                match &acc.reduction {
                    Reduction::Fold { op, value } => writeln!(f, "    {} {op:?}= {value} : {}", acc.id, acc.dtype)?,
                    Reduction::ArgMax { value, index } => writeln!(f, "    {} argmax= ({value}, {index})", acc.id)?,
                }
            }
            for st in &stage.stores {
                writeln!(f, "    store {}[{}] = {}", st.buf, st.index, st.value)?;
            }
        }
        Ok(())
    }
}

impl Display for Kernel {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Kernel::Loop(k) => write!(f, "{k}"),
            Kernel::MatMul(k) => {
                let nodes = k.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
                writeln!(
                    f,
                    "matmul {} batch={:?} m={} n={} k={} a={}+{} (rs {}, cs {}) b={}+{} (rs {}, cs {}) -> {}   // implements {nodes}",
                    k.name, k.batch, k.m, k.n, k.k, k.a.buf, k.a.offset, k.a.row_stride, k.a.col_stride,
                    k.b.buf, k.b.offset, k.b.row_stride, k.b.col_stride, k.out
                )?;
                if let Some(e) = &k.epilogue {
                    write!(f, "  epilogue: {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Program {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, b) in self.buffers.iter().enumerate() {
            let storage = match &b.storage {
                Storage::Own => String::new(),
                Storage::View { base, offset } => format!(" = view of {base} at {offset}"),
            };
            writeln!(f, "buffer b{i}: {}[{}] {:?}{storage}", b.dtype, b.len, b.role)?;
        }
        for (i, s) in self.scalars.iter().enumerate() {
            writeln!(f, "scalar #{i}: {} {}", s.name, s.dtype)?;
        }
        for k in &self.kernels {
            write!(f, "{k}")?;
        }
        for (t, v) in &self.updates {
            writeln!(f, "update {t} <- {v}")?;
        }
        Ok(())
    }
}
