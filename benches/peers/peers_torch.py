"""PyTorch peers of `kiln bench`: the same cases, named as kiln names them.

- optim suite (`<opt>/flat/<size>`): one flat fp32 tensor, gradient already in memory.
  torch-eager: torch.optim.SGD / torch.optim.Adam (default foreach path) and VSGD
  written op by op as the reference implementation does it (one kernel per op);
  torch-fused: SGD/Adam with fused=True; torch-compile: torch.compile of the same step.
- step suite (`mlp/<opt>/b<batch>`): MLP 784-256-256-10 (ReLU), mean cross-entropy,
  forward + backward + optimizer step; eager, and torch.compile of the model/loss and
  of the optimizer step.
- fusion suite: `chain20/<size>` (kiln's 20-op chain, in place), `xent/<rows>x1000`,
  `xent-grad/<rows>x1000`, `mlp-fwdbwd/b<batch>`.

VSGD hyperparameters are the reference defaults (lr 0.1, K_g 30, gamma 1e-8, kappa
0.81/0.9, eps 1e-8, no weight decay); the step counter is held at t = 10 so every timed
step does the same work (kiln passes rho_t as a runtime scalar, too).

Usage: PYTHONPATH=.cache/peers/torch python3 benches/peers/peers_torch.py --help
"""

import sys
import traceback

from common import (CHAIN, MLP, XENT_CLASSES, BYTES_PER_ELEMENT, labels, missing, parse_args, result,
                    time_fn, wants, write)

args = parse_args("PyTorch peers of kiln bench")
try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    missing(args, "PyTorch", f"import failed: {e}; install it with "
            "`pip install --target .cache/peers/torch torch` and put that folder on PYTHONPATH")

torch.set_num_threads(args.threads)
torch.manual_seed(0)
results, notes = [], []

# VSGD reference constants (doubled rates, A2 with the reference's 1e-4 offset).
LR, KG, GAMMA, TAU1, TAU2, EPS, WD = 0.1, 30.0, 1e-8, 0.81, 0.9, 1e-8, 0.0
A2 = 2 * GAMMA + 1 + 1e-4
B2G0, B2H0 = 2 * GAMMA, 2 * KG * GAMMA
T = 10.0
RHO1, RHO2 = T ** -TAU1, T ** -TAU2


def vsgd_reference_(p, g, mu, bg, bh):
    """One VSGD step (t > 1) over one tensor, op by op in the reference's order, in place."""
    p.mul_(1 - LR * WD)
    sg = bg / A2
    sh = bh / A2
    mu_old = mu.clone()
    mu.copy_((g * sg + mu_old * sh) / (sg + sh))
    s2 = sg * sh / (sg + sh)
    m2 = s2 + mu ** 2
    bg_new = B2G0 + m2 - 2 * mu * mu_old + mu_old ** 2
    bh_new = B2H0 + m2 - 2 * g * mu + g ** 2
    bg.mul_(1 - RHO1).add_(RHO1 * bg_new)
    bh.mul_(1 - RHO2).add_(RHO2 * bh_new)
    p.sub_(LR / (m2.sqrt() + EPS) * mu)


class VSGD(torch.optim.Optimizer):
    """The reference VSGD as a torch optimizer: a Python loop over parameters, each
    updated op by op (state initialised to the branch-free prior values)."""

    def __init__(self, params):
        super().__init__(params, {})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["mu"] = torch.zeros_like(p)
                    st["bg"] = torch.full_like(p, A2 * B2G0 / (A2 - 1))
                    st["bh"] = torch.full_like(p, A2 * B2H0 / (A2 - 1))
                vsgd_reference_(p, p.grad, st["mu"], st["bg"], st["bh"])


def make_optimizer(name, params, fused=False):
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, fused=fused or None)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, fused=fused or None)
    return VSGD(params)


def try_compile(label, fn):
    """torch.compile(fn), or None with a note when compiling is off or fails."""
    if args.no_compile:
        return None
    try:
        return torch.compile(fn)
    except Exception as e:  # noqa: BLE001 - any compiler failure is reported, not raised
        notes.append(f"torch.compile of {label} failed: {type(e).__name__}: {str(e).splitlines()[0]}")
        return None


def run_case(suite, name, peer, fn, bytes_per_step=0):
    """Time fn; a failure (torch.compile on this CPU, say) becomes a note, not a traceback."""
    try:
        results.append(result(suite, name, peer, time_fn(fn, args.warmup, args.reps), bytes_per_step))
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0][:300]
        notes.append(f"{peer} {name}: failed: {type(e).__name__}: {first}")
        print(f"  {peer} {name}: FAILED ({type(e).__name__}: {first})", file=sys.stderr)
        if "--debug" in sys.argv:
            traceback.print_exc()


def optim_suite():
    n = args.size
    for o in args.optim:
        name = f"{o}/flat/{n}"
        nbytes = BYTES_PER_ELEMENT[o] * n
        variants = [("torch-eager", False)] + ([("torch-fused", True)] if o in ("sgd", "adam") else [])
        for peer, fused in variants:
            p = torch.nn.Parameter(torch.randn(n) * 0.1)
            p.grad = torch.randn(n) * 1e-2
            try:
                opt = make_optimizer(o, [p], fused)
            except Exception as e:  # noqa: BLE001 - e.g. fused=True unsupported on this build
                notes.append(f"{peer} {name}: {type(e).__name__}: {str(e).splitlines()[0]}")
                continue
            run_case("optim", name, peer, lambda: opt.step(), nbytes)
            del p, opt
        # torch.compile of the same step.
        p = torch.nn.Parameter(torch.randn(n) * 0.1)
        p.grad = torch.randn(n) * 1e-2
        opt = make_optimizer(o, [p])
        if o == "vsgd":
            st = (torch.zeros(n), torch.full((n,), A2 * B2G0 / (A2 - 1)), torch.full((n,), A2 * B2H0 / (A2 - 1)))
            step = try_compile("vsgd", lambda: vsgd_reference_(p.data, p.grad, *st))
        else:
            step = try_compile(o, lambda: opt.step())
        if step is not None:
            run_case("optim", name, "torch-compile", step, nbytes)
        del p, opt


def mlp(batch):
    layers = []
    for i in range(len(MLP) - 1):
        layers.append(torch.nn.Linear(MLP[i], MLP[i + 1]))
        if i < len(MLP) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    x = torch.rand(batch, MLP[0]) * 2 - 1
    y = torch.tensor(labels(batch, MLP[-1]), dtype=torch.long)
    return model, x, y


def step_suite():
    b = args.batch
    for o in args.optim:
        name = f"mlp/{o}/b{b}"
        for compiled in (False, True):
            model, x, y = mlp(b)
            opt = make_optimizer(o, model.parameters())
            if compiled:
                loss_fn = try_compile("the MLP loss", lambda x, y: F.cross_entropy(model(x), y))
                opt_step = try_compile(f"the {o} step", lambda: opt.step())
                if loss_fn is None or opt_step is None:
                    continue
            else:
                loss_fn = lambda x, y: F.cross_entropy(model(x), y)  # noqa: E731
                opt_step = opt.step

            def train_step():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(x, y)
                loss.backward()
                opt_step()
                return loss

            run_case("step", name, "torch-compile" if compiled else "torch-eager", train_step)


def fusion_suite():
    n, rows = args.size, args.xent_rows
    # chain20: eager in place (20 passes over a); compiled: the same function, fused.
    a, c = torch.rand(n) * 2 - 1, torch.ones(n)

    def chain_(a, c):
        for op in CHAIN:
            if op == "a":
                a.add_(c)
            elif op == "m":
                a.mul_(c)
            elif op == "s":
                a.sub_(c)
            elif op == "x":
                torch.maximum(a, c, out=a)
            elif op == "n":
                torch.minimum(a, c, out=a)
            elif op == "-":
                a.neg_()
            else:
                a.abs_()

    def chain(a, c):
        t = a
        for op in CHAIN:
            t = {"a": lambda: t + c, "m": lambda: t * c, "s": lambda: t - c, "x": lambda: torch.maximum(t, c),
                 "n": lambda: torch.minimum(t, c), "-": lambda: -t, "|": lambda: t.abs()}[op]()
        a.copy_(t)

    run_case("fusion", f"chain20/{n}", "torch-eager", lambda: chain_(a, c), 12 * n)
    cc = try_compile("chain20", chain)
    if cc is not None:
        run_case("fusion", f"chain20/{n}", "torch-compile", lambda: cc(a, c), 12 * n)
    del a, c

    logits = torch.randn(rows, XENT_CLASSES) * 2
    y = torch.tensor(labels(rows, XENT_CLASSES), dtype=torch.long)
    xbytes = 4 * (rows * XENT_CLASSES + rows)
    gbytes = 4 * (2 * rows * XENT_CLASSES + rows)

    def xent_grad(fn):
        def run():
            logits.grad = None
            loss = fn(logits, y)
            loss.backward()
            return loss
        return run

    for compiled in (False, True):
        fn = try_compile("xent", F.cross_entropy) if compiled else F.cross_entropy
        if fn is None:
            continue
        peer = "torch-compile" if compiled else "torch-eager"
        with torch.no_grad():
            run_case("fusion", f"xent/{rows}x{XENT_CLASSES}", peer, lambda: fn(logits, y), xbytes)
        logits.requires_grad_(True)
        run_case("fusion", f"xent-grad/{rows}x{XENT_CLASSES}", peer, xent_grad(fn), gbytes)
        logits.requires_grad_(False)
        logits.grad = None

    for compiled in (False, True):
        model, x, yb = mlp(args.batch)
        fn = (lambda x, y: F.cross_entropy(model(x), y))
        if compiled:
            fn = try_compile("the MLP loss", fn)
            if fn is None:
                continue

        def fwdbwd():
            model.zero_grad(set_to_none=True)
            loss = fn(x, yb)
            loss.backward()
            return loss

        run_case("fusion", f"mlp-fwdbwd/b{args.batch}", "torch-compile" if compiled else "torch-eager", fwdbwd)


print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
      f"{torch.backends.cpu.get_cpu_capability()}", file=sys.stderr)
if wants(args, "optim"):
    optim_suite()
if wants(args, "step"):
    step_suite()
if wants(args, "fusion"):
    fusion_suite()
for n in notes:
    print(f"note: {n}", file=sys.stderr)
write(args, results, {"torch": torch.__version__, "threads": torch.get_num_threads()}, notes)
