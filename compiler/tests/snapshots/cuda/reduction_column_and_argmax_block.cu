// launch table:
//   k0_column_sum_max                        Reduction grid [5, 1, 1] block [256, 1, 1] args [b0, b1(rw), b2(rw)]  // thread per point: at most 3 inner points
//   k1_argmax_count_rows                     Reduction grid [3, 1, 1] block [256, 1, 1] args [b0, b3(rw), b4(rw)]  // block per point: up to 1100 inner points

// kernel column_sum_max outer=[1100]   // implements
//   stage 0 inner=[3]
//     v0 = load b0[(i1*1100 + i0)]
//     acc0 Sum= v0 : f32
//     acc1 Max= v0 : f32
//   stage 1 inner=[]
//     v1 = acc0
//     v2 = acc1
//     store b1[i0] = v1
//     store b2[i0] = v2
// mapping: thread per point: at most 3 inner points
extern "C" __global__ void __launch_bounds__(256) k0_column_sum_max(
    const float* __restrict__ b0  /* Input("x") */,
    float* __restrict__ b1  /* Output("colsum") */,
    float* __restrict__ b2  /* Output("colmax") */
) {
    const int nthreads = (int)gridDim.x * blockDim.x;
    for (int o = (int)blockIdx.x * blockDim.x + threadIdx.x; o < 1100; o += nthreads) {
        const int i0 = o;
        // stage 0: inner [3] (3 points)
        float acc0 = 0.0f;
        float acc1 = __int_as_float(0xff800000);
        for (int r = 0; r < 3; ++r) {
            const int i1 = r;
            const float v0 = b0[(i1 * 1100 + i0)];  // b0: Input("x")
            acc0 = acc0 + v0;
            acc1 = kiln_fmaxf(acc1, v0);
        }
        // stage 1: inner [] (1 point)
        {
            const float v1 = acc0;
            const float v2 = acc1;
            b1[i0] = v1;
            b2[i0] = v2;
        }
    }
}

// kernel argmax_count_rows outer=[3]   // implements
//   stage 0 inner=[1100]
//     v0 = load b0[(i0*1100 + i1)]
//     v1 = i1
//     v2 = const 0 : f32
//     v3 = Gt v0, v2
//     v4 = cast v3 to i32
//     acc0 argmax= (v0, v1)
//     acc1 Sum= v4 : i32
//   stage 1 inner=[]
//     v5 = acc0
//     v6 = acc1
//     store b3[i0] = v5
//     store b4[i0] = v6
// mapping: block per point: up to 1100 inner points
extern "C" __global__ void __launch_bounds__(256) k1_argmax_count_rows(
    const float* __restrict__ b0  /* Input("x") */,
    int* __restrict__ b3  /* Output("argmax") */,
    int* __restrict__ b4  /* Output("positives") */
) {
    __shared__ int kiln_red_i[1][8];
    __shared__ kiln_argmax kiln_red_a[1][8];
    const int lane = threadIdx.x;
    for (int o = blockIdx.x; o < 3; o += gridDim.x) {
        const int i0 = o;
        // stage 0: inner [1100] (1100 points)
        kiln_argmax acc0_state = kiln_argmax_empty();
        int acc1 = 0;
        for (int r = lane; r < 1100; r += 256) {
            const int i1 = r;
            const float v0 = b0[(i0 * 1100 + i1)];  // b0: Input("x")
            const int v1 = i1;
            const float v2 = 0.0f;
            const bool v3 = (v0 > v2);
            const int v4 = (int)v3;
            kiln_argmax_push(acc0_state, (double)v0, v1, (int)r);
            acc1 = kiln_iadd(acc1, v4);
        }
        // combine the partial accumulators of the group's threads
        for (int m = 16; m > 0; m >>= 1) {
            acc0_state = kiln_argmax_combine(acc0_state, kiln_argmax_shfl_xor(acc0_state, m));
            acc1 = kiln_iadd(acc1, __shfl_xor_sync(0xffffffffu, acc1, m));
        }
        if ((threadIdx.x & 31) == 0) {
            kiln_red_a[0][threadIdx.x >> 5] = acc0_state;
            kiln_red_i[0][threadIdx.x >> 5] = acc1;
        }
        __syncthreads();
        acc0_state = kiln_argmax_empty();
        for (int w = 0; w < 8; ++w) {
            acc0_state = kiln_argmax_combine(acc0_state, kiln_red_a[0][w]);
        }
        acc1 = 0;
        for (int w = 0; w < 8; ++w) {
            acc1 = kiln_iadd(acc1, kiln_red_i[0][w]);
        }
        __syncthreads();  // the shared slots may be reused
        const int acc0 = acc0_state.index;
        // stage 1: inner [] (1 point)
        for (int r = lane; r < 1; r += 256) {
            const int v5 = acc0;
            const int v6 = acc1;
            b3[i0] = v5;
            b4[i0] = v6;
        }
    }
}
