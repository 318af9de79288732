// ---- kiln prelude: device helpers shared by every kernel ----------------------

// Philox 4x32-10 (Salmon et al., SC'11), bit-identical to kiln_ir::philox::philox4x32_10.
__device__ __forceinline__ uint4 kiln_philox4x32_10(uint4 c, uint2 k) {
    #pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k.x += 0x9E3779B9u;
            k.y += 0xBB67AE85u;
        }
        const unsigned int hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The Philox words of element `index` of a Random node (kiln_ir::philox::random_words).
__device__ __forceinline__ uint4 kiln_random_words(int seed, int step, unsigned int stream,
                                                   unsigned long long index) {
    const uint4 counter = make_uint4((unsigned int)index, (unsigned int)(index >> 32),
                                     (unsigned int)step, stream);
    return kiln_philox4x32_10(counter, make_uint2((unsigned int)seed, 0u));
}

// ((x >> 8) + 0.5) * 2^-24 in double, as kiln_ir::philox::uniform_from_u32.
__device__ __forceinline__ double kiln_uniform_from_u32(unsigned int x) {
    return ((double)(x >> 8) + 0.5) * (1.0 / 16777216.0);
}

// Uniform on (0, 1): exact in double, rounded once to float like a stored f32.
__device__ __forceinline__ float kiln_random_uniform(int seed, int step, unsigned int stream,
                                                     unsigned long long index) {
    return (float)kiln_uniform_from_u32(kiln_random_words(seed, step, stream, index).x);
}

// Standard normal by Box-Muller on the first two words, in double like the reference.
__device__ __forceinline__ float kiln_random_normal(int seed, int step, unsigned int stream,
                                                    unsigned long long index) {
    const uint4 w = kiln_random_words(seed, step, stream, index);
    const double u1 = kiln_uniform_from_u32(w.x), u2 = kiln_uniform_from_u32(w.y);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

// IEEE-754 round-to-nearest a / b without the out-of-line slow path of `/`, whose call
// makes ptxas report spills in otherwise spill-free kernels. Markstein's correction of
// a correctly rounded reciprocal is exact when operands and quotient lie in
// [2^-100, 2^100] (no intermediate underflows or overflows); everything else (zeros,
// infinities, NaN, extreme exponents) takes `__fdiv_rn`, the same IEEE division.
__device__ __forceinline__ float kiln_fdiv(float a, float b) {
    const float r = __frcp_rn(b);
    const float q0 = a * r;
    const float e = fmaf(-b, q0, a);
    const float q = fmaf(e, r, q0);
    const float lo = 7.88860905e-31f, hi = 1.26765060e30f;  // 2^-100, 2^100
    const float aa = fabsf(a), ab = fabsf(b), aq = fabsf(q);
    if (aa >= lo && aa <= hi && ab >= lo && ab <= hi && aq >= lo && aq <= hi) {
        return q;
    }
    return __fdiv_rn(a, b);
}

// max/min that propagate NaN (the reference interpreter's rule; fmaxf would drop it).
__device__ __forceinline__ float kiln_fmaxf(float a, float b) {
    return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fmaxf(a, b);
}
__device__ __forceinline__ float kiln_fminf(float a, float b) {
    return (isnan(a) || isnan(b)) ? __int_as_float(0x7fc00000) : fminf(a, b);
}

// relu(NaN) = NaN, relu(x <= 0) = 0.
__device__ __forceinline__ float kiln_reluf(float x) {
    return (x > 0.0f || isnan(x)) ? x : 0.0f;
}

// -1, 0 or +1; NaN stays NaN; sign(-0) = 0.
__device__ __forceinline__ float kiln_signf(float x) {
    return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == 0.0f ? 0.0f : x));
}

// The overflow-free logistic function of the reference interpreter.
__device__ __forceinline__ float kiln_sigmoidf(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    const float e = expf(x);
    return e / (1.0f + e);
}

// 0 <= e < upper, the bounds test of a guarded load.
template <typename T> __device__ __forceinline__ bool kiln_in(T e, T upper) {
    return e >= 0 && e < upper;
}

// Wrapping i32 arithmetic (signed overflow is undefined in C, so go through unsigned).
__device__ __forceinline__ int kiln_iadd(int a, int b) { return (int)((unsigned int)a + (unsigned int)b); }
__device__ __forceinline__ int kiln_isub(int a, int b) { return (int)((unsigned int)a - (unsigned int)b); }
__device__ __forceinline__ int kiln_imul(int a, int b) { return (int)((unsigned int)a * (unsigned int)b); }
__device__ __forceinline__ int kiln_ineg(int a) { return (int)(0u - (unsigned int)a); }
__device__ __forceinline__ int kiln_iabs(int a) { return a < 0 ? kiln_ineg(a) : a; }
__device__ __forceinline__ int kiln_isign(int a) { return (a > 0) - (a < 0); }

// Floor division and modulo by a positive constant, for possibly negative dividends.
template <typename T> __device__ __forceinline__ T kiln_floordiv(T a, T c) {
    const T q = a / c;
    return (a % c != 0 && a < 0) ? q - 1 : q;
}
template <typename T> __device__ __forceinline__ T kiln_floormod(T a, T c) {
    const T r = a % c;
    return r < 0 ? r + c : r;
}

// Argmax state: the value, the index to report, and the inner position (the first
// maximum in iteration order wins; a NaN counts as the maximum, the first NaN wins).
struct kiln_argmax {
    double value;  // double holds every f32 and i32 exactly
    int index;
    int pos;  // 0x7fffffff when empty
};

__device__ __forceinline__ kiln_argmax kiln_argmax_empty() {
    kiln_argmax a;
    a.value = 0.0;
    a.index = 0;
    a.pos = 0x7fffffff;
    return a;
}

// Fold one more point, later in iteration order than every point already folded.
__device__ __forceinline__ void kiln_argmax_push(kiln_argmax& a, double v, int index, int pos) {
    if (a.pos == 0x7fffffff || (!isnan(a.value) && (isnan(v) || v > a.value))) {
        a.value = v;
        a.index = index;
        a.pos = pos;
    }
}

// Combine two partial states folded over disjoint sets of points.
__device__ __forceinline__ kiln_argmax kiln_argmax_combine(kiln_argmax a, kiln_argmax b) {
    if (a.pos == 0x7fffffff) return b;
    if (b.pos == 0x7fffffff) return a;
    const kiln_argmax first = a.pos < b.pos ? a : b;
    const kiln_argmax second = a.pos < b.pos ? b : a;
    if (isnan(first.value)) return first;
    if (isnan(second.value) || second.value > first.value) return second;
    return first;
}

__device__ __forceinline__ kiln_argmax kiln_argmax_shfl_xor(kiln_argmax a, int lane_mask) {
    kiln_argmax o;
    o.value = __shfl_xor_sync(0xffffffffu, a.value, lane_mask);
    o.index = __shfl_xor_sync(0xffffffffu, a.index, lane_mask);
    o.pos = __shfl_xor_sync(0xffffffffu, a.pos, lane_mask);
    return o;
}

// ---- end of prelude -----------------------------------------------------------------
