// launch table:
//   k0_softmax                               Reduction grid [1, 1, 1] block [256, 1, 1] args [b0, b1(rw)]  // warp per point: up to 40 inner points

// kernel softmax outer=[4]   // implements
//   stage 0 inner=[40]
//     v0 = load b0[(i0*40 + i1)]
//     acc0 Max= v0 : f32
//   stage 1 inner=[40]
//     v1 = load b0[(i0*40 + i1)]
//     v2 = acc0
//     v3 = Sub v1, v2
//     v4 = Exp v3
//     acc1 Sum= v4 : f32
//   stage 2 inner=[40]
//     v5 = load b0[(i0*40 + i1)]
//     v6 = acc0
//     v7 = Sub v5, v6
//     v8 = Exp v7
//     v9 = acc1
//     v10 = Div v8, v9
//     store b1[(i0*40 + i1)] = v10
// mapping: warp per point: up to 40 inner points
extern "C" __global__ void __launch_bounds__(256) k0_softmax(
    const float* __restrict__ b0  /* Input("x") */,
    float* __restrict__ b1  /* Output("y") */
) {
    const int lane = threadIdx.x & 31;
    const int ngroups = ((int)gridDim.x * blockDim.x) >> 5;
    for (int o = ((int)blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < 4; o += ngroups) {
        const int i0 = o;
        // stage 0: inner [40] (40 points)
        float acc0 = __int_as_float(0xff800000);
        for (int r = lane; r < 40; r += 32) {
            const int i1 = r;
            const float v0 = b0[(i0 * 40 + i1)];  // b0: Input("x")
            acc0 = kiln_fmaxf(acc0, v0);
        }
        // combine the partial accumulators of the group's threads
        for (int m = 16; m > 0; m >>= 1) {
            acc0 = kiln_fmaxf(acc0, __shfl_xor_sync(0xffffffffu, acc0, m));
        }
        // stage 1: inner [40] (40 points)
        float acc1 = 0.0f;
        for (int r = lane; r < 40; r += 32) {
            const int i1 = r;
            const float v1 = b0[(i0 * 40 + i1)];  // b0: Input("x")
            const float v2 = acc0;
            const float v3 = v1 - v2;
            const float v4 = expf(v3);
            acc1 = acc1 + v4;
        }
        // combine the partial accumulators of the group's threads
        for (int m = 16; m > 0; m >>= 1) {
            acc1 = acc1 + __shfl_xor_sync(0xffffffffu, acc1, m);
        }
        // stage 2: inner [40] (40 points)
        for (int r = lane; r < 40; r += 32) {
            const int i1 = r;
            const float v5 = b0[(i0 * 40 + i1)];  // b0: Input("x")
            const float v6 = acc0;
            const float v7 = v5 - v6;
            const float v8 = expf(v7);
            const float v9 = acc1;
            const float v10 = kiln_fdiv(v8, v9);
            b1[(i0 * 40 + i1)] = v10;
        }
    }
}
