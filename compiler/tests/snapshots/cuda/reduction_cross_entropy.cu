// launch table:
//   k0_log_softmax_nll                       Reduction grid [1, 1, 1] block [256, 1, 1] args [b0, b1, b2(rw)]  // thread per point: at most 5 inner points
//   k1_mean_loss                             Reduction grid [1, 1, 1] block [256, 1, 1] args [b2, b3(rw)]  // thread per point: at most 6 inner points

// kernel log_softmax_nll outer=[6]   // implements
//   stage 0 inner=[5]
//     v0 = load b0[(i0*5 + i1)]
//     acc0 Max= v0 : f32
//   stage 1 inner=[5]
//     v1 = load b0[(i0*5 + i1)]
//     v2 = acc0
//     v3 = Sub v1, v2
//     v4 = Exp v3
//     acc1 Sum= v4 : f32
//   stage 2 inner=[]
//     v5 = load b1[i0]
//     v6 = load b0[(i0*5 + v5)] if 0<=v5<5 else 0
//     v7 = acc1
//     v8 = acc0
//     v9 = Log v7
//     v10 = Add v9, v8
//     v11 = Sub v10, v6
//     store b2[i0] = v11
// mapping: thread per point: at most 5 inner points
extern "C" __global__ void __launch_bounds__(256) k0_log_softmax_nll(
    const float* __restrict__ b0  /* Input("logits") */,
    const int* __restrict__ b1  /* Input("labels") */,
    float* __restrict__ b2  /* Temp */
) {
    const long long nthreads = (long long)gridDim.x * blockDim.x;
    for (long long o = (long long)blockIdx.x * blockDim.x + threadIdx.x; o < 6; o += nthreads) {
        const long long i0 = o;
        // stage 0: inner [5] (5 points)
        float acc0 = __int_as_float(0xff800000);
        for (long long r = 0; r < 5; ++r) {
            const long long i1 = r;
            const float v0 = b0[(i0 * 5 + i1)];  // b0: Input("logits")
            acc0 = kiln_fmaxf(acc0, v0);
        }
        // stage 1: inner [5] (5 points)
        float acc1 = 0.0f;
        for (long long r = 0; r < 5; ++r) {
            const long long i1 = r;
            const float v1 = b0[(i0 * 5 + i1)];  // b0: Input("logits")
            const float v2 = acc0;
            const float v3 = v1 - v2;
            const float v4 = expf(v3);
            acc1 = acc1 + v4;
        }
        // stage 2: inner [] (1 point)
        {
            const int v5 = b1[i0];  // b1: Input("labels")
            const float v6 = (kiln_in(((long long)v5), (long long)5)) ? b0[(i0 * 5 + ((long long)v5))] : 0.0f;  // b0: Input("logits")
            const float v7 = acc1;
            const float v8 = acc0;
            const float v9 = logf(v7);
            const float v10 = v9 + v8;
            const float v11 = v10 - v6;
            b2[i0] = v11;
        }
    }
}

// kernel mean_loss outer=[]   // implements
//   stage 0 inner=[6]
//     v0 = load b2[i0]
//     acc2 Mean= v0 : f32
//   stage 1 inner=[]
//     v1 = acc2
//     store b3[0] = v1
// mapping: thread per point: at most 6 inner points
extern "C" __global__ void __launch_bounds__(256) k1_mean_loss(
    const float* __restrict__ b2  /* Temp */,
    float* __restrict__ b3  /* Output("loss") */
) {
    const int nthreads = (int)gridDim.x * blockDim.x;
    for (int o = (int)blockIdx.x * blockDim.x + threadIdx.x; o < 1; o += nthreads) {
        // stage 0: inner [6] (6 points)
        float acc2 = 0.0f;
        for (int r = 0; r < 6; ++r) {
            const int i0 = r;
            const float v0 = b2[i0];  // b2: Temp
            acc2 = acc2 + v0;
        }
        acc2 = kiln_fdiv(acc2, 6.0f);
        // stage 1: inner [] (1 point)
        {
            const float v1 = acc2;
            b3[0] = v1;
        }
    }
}
