"""JAX peers of `kiln bench` (jax.jit on the CPU backend): the same cases, named as kiln
names them, each step a pure function jitted with its parameters and state donated (so
XLA may update them in place, as kiln does).

- optim suite (`<opt>/flat/<size>`): SGD, Adam (PyTorch semantics, bias correction
  precomputed on the host) and VSGD (the reference math, §2.2 of the VSGD notes, step
  counter held at t = 10) over one flat fp32 tensor, gradient already in memory;
- step suite (`mlp/<opt>/b<batch>`): MLP 784-256-256-10 (ReLU), mean cross-entropy,
  value_and_grad + the optimizer update, all in one jit;
- fusion suite: `chain20/<size>`, `xent/<rows>x1000`, `xent-grad/<rows>x1000`,
  `mlp-fwdbwd/b<batch>`.

Threads: XLA's CPU backend picks its own thread pool; with `--threads 1` the script
asks XLA for one intra-op thread (XLA_FLAGS, set before jax is imported).

Usage: PYTHONPATH=.cache/peers/jax python3 benches/peers/peers_jax.py --help
"""

import os
import sys

from common import (CHAIN, MLP, XENT_CLASSES, BYTES_PER_ELEMENT, labels, missing, parse_args, result,
                    time_fn, wants, write)

args = parse_args("JAX peers of kiln bench")
if args.threads == 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
try:
    import jax
    import jax.numpy as jnp
except ImportError as e:
    missing(args, "JAX", f"import failed: {e}; install it with "
            "`pip install --target .cache/peers/jax 'jax[cpu]'` and put that folder on PYTHONPATH")

jax.config.update("jax_platforms", "cpu")
results, notes = [], []

LR, KG, GAMMA, TAU1, TAU2, EPS, WD = 0.1, 30.0, 1e-8, 0.81, 0.9, 1e-8, 0.0
A2 = 2 * GAMMA + 1 + 1e-4
B2G0, B2H0 = 2 * GAMMA, 2 * KG * GAMMA
T = 10.0
HOST = {  # per-step scalars, passed as traced arguments (no recompile when they change)
    "rho1": T ** -TAU1, "rho2": T ** -TAU2,
    "adam_step_size": 1e-3 / (1 - 0.9 ** T), "adam_bc2_sqrt": (1 - 0.999 ** T) ** 0.5,
}


def vsgd_update(p, g, mu, bg, bh, rho1, rho2):
    p = p * (1 - LR * WD)
    sg = bg / A2
    sh = bh / A2
    mu_new = (g * sg + mu * sh) / (sg + sh)
    s2 = sg * sh / (sg + sh)
    m2 = s2 + mu_new ** 2
    bg_new = B2G0 + m2 - 2 * mu_new * mu + mu ** 2
    bh_new = B2H0 + m2 - 2 * g * mu_new + g ** 2
    bg = (1 - rho1) * bg + rho1 * bg_new
    bh = (1 - rho2) * bh + rho2 * bh_new
    p = p - LR / (jnp.sqrt(m2) + EPS) * mu_new
    return p, (mu_new, bg, bh)


def adam_update(p, g, m, v, step_size, bc2_sqrt):
    m = m + (g - m) * 0.1
    v = v * 0.999 + g * g * 0.001
    p = p - step_size * m / (jnp.sqrt(v) / bc2_sqrt + 1e-8)
    return p, (m, v)


def sgd_update(p, g):
    return p - 1e-3 * g, ()


def init_state(o, p):
    if o == "vsgd":
        return (jnp.zeros_like(p), jnp.full_like(p, A2 * B2G0 / (A2 - 1)), jnp.full_like(p, A2 * B2H0 / (A2 - 1)))
    if o == "adam":
        return (jnp.zeros_like(p), jnp.zeros_like(p))
    return ()


def update(o, p, g, st, h):
    if o == "vsgd":
        return vsgd_update(p, g, *st, h["rho1"], h["rho2"])
    if o == "adam":
        return adam_update(p, g, *st, h["adam_step_size"], h["adam_bc2_sqrt"])
    return sgd_update(p, g)


def run_case(suite, name, peer, fn, bytes_per_step=0):
    try:
        results.append(result(suite, name, peer, time_fn(fn, args.warmup, args.reps, jax.block_until_ready),
                              bytes_per_step))
    except Exception as e:  # noqa: BLE001 - reported as a note, never a traceback
        first = (str(e).strip().splitlines() or [""])[0][:300]
        notes.append(f"{peer} {name}: failed: {type(e).__name__}: {first}")
        print(f"  {peer} {name}: FAILED ({type(e).__name__}: {first})", file=sys.stderr)


class Loop:
    """Holds donated arrays and feeds each step's outputs into the next call."""

    def __init__(self, step, carry, *const):
        self.step, self.carry, self.const = step, carry, const

    def __call__(self):
        self.carry = self.step(self.carry, *self.const)
        return self.carry


def optim_suite():
    n = args.size
    key = jax.random.PRNGKey(0)
    h = {k: jnp.float32(v) for k, v in HOST.items()}
    for o in args.optim:
        k1, k2, key = jax.random.split(key, 3)
        p = jax.random.normal(k1, (n,), jnp.float32) * 0.1
        g = jax.random.normal(k2, (n,), jnp.float32) * 1e-2
        step = jax.jit(lambda c, g, h, o=o: update(o, c[0], g, c[1], h), donate_argnums=0)
        run_case("optim", f"{o}/flat/{n}", "jax-jit", Loop(step, (p, init_state(o, p)), g, h),
                 BYTES_PER_ELEMENT[o] * n)


def mlp_params(key):
    params = []
    for i in range(len(MLP) - 1):
        k1, k2, key = jax.random.split(key, 3)
        bound = 1 / MLP[i] ** 0.5
        params.append((jax.random.uniform(k1, (MLP[i], MLP[i + 1]), jnp.float32, -bound, bound),
                       jax.random.uniform(k2, (MLP[i + 1],), jnp.float32, -bound, bound)))
    return params


def mlp_loss(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return xent(h, y)


def xent(logits, y):
    logp = jax.nn.log_softmax(logits, axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def batch(b, key):
    x = jax.random.uniform(key, (b, MLP[0]), jnp.float32, -1, 1)
    y = jnp.array(labels(b, MLP[-1]), jnp.int32)
    return x, y


def step_suite():
    b = args.batch
    h = {k: jnp.float32(v) for k, v in HOST.items()}
    for o in args.optim:
        key = jax.random.PRNGKey(1)
        params = mlp_params(key)
        flat, tree = jax.tree_util.tree_flatten(params)
        state = [init_state(o, p) for p in flat]
        x, y = batch(b, key)

        def train_step(carry, x, y, h, o=o, tree=tree):
            flat, state = carry
            loss, grads = jax.value_and_grad(mlp_loss)(jax.tree_util.tree_unflatten(tree, flat), x, y)
            gflat = jax.tree_util.tree_leaves(grads)
            new = [update(o, p, g, s, h) for p, g, s in zip(flat, gflat, state)]
            return [u[0] for u in new], [u[1] for u in new]

        step = jax.jit(train_step, donate_argnums=0)
        run_case("step", f"mlp/{o}/b{b}", "jax-jit", Loop(step, (flat, state), x, y, h))


def fusion_suite():
    n, rows = args.size, args.xent_rows
    key = jax.random.PRNGKey(2)
    a = jax.random.uniform(key, (n,), jnp.float32, -1, 1)
    c = jnp.ones((n,), jnp.float32)
    ops = {"a": lambda t, c: t + c, "m": lambda t, c: t * c, "s": lambda t, c: t - c,
           "x": jnp.maximum, "n": jnp.minimum, "-": lambda t, c: -t, "|": lambda t, c: jnp.abs(t)}

    def chain(t, c):
        for op in CHAIN:
            t = ops[op](t, c)
        return t

    run_case("fusion", f"chain20/{n}", "jax-jit", Loop(jax.jit(chain, donate_argnums=0), a, c), 12 * n)

    logits = jax.random.normal(key, (rows, XENT_CLASSES), jnp.float32) * 2
    y = jnp.array(labels(rows, XENT_CLASSES), jnp.int32)
    f = jax.jit(xent)
    run_case("fusion", f"xent/{rows}x{XENT_CLASSES}", "jax-jit", lambda: f(logits, y),
             4 * (rows * XENT_CLASSES + rows))
    fg = jax.jit(jax.value_and_grad(xent))
    run_case("fusion", f"xent-grad/{rows}x{XENT_CLASSES}", "jax-jit", lambda: fg(logits, y),
             4 * (2 * rows * XENT_CLASSES + rows))

    params = mlp_params(jax.random.PRNGKey(1))
    x, yb = batch(args.batch, key)
    fb = jax.jit(jax.value_and_grad(mlp_loss))
    run_case("fusion", f"mlp-fwdbwd/b{args.batch}", "jax-jit", lambda: fb(params, x, yb))


print(f"JAX {jax.__version__}, devices {jax.devices()}", file=sys.stderr)
if wants(args, "optim"):
    optim_suite()
if wants(args, "step"):
    step_suite()
if wants(args, "fusion"):
    fusion_suite()
for n in notes:
    print(f"note: {n}", file=sys.stderr)
write(args, results, {"jax": jax.__version__, "threads": args.threads}, notes)
