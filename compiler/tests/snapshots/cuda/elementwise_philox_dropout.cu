// launch table:
//   k0_dropout_noise                         Elementwise grid [1, 1, 1] block [256, 1, 1] args [b0, b1(rw), b2(rw), b3(rw), s0:i32, s1:i32, s2:f32]  // elementwise, scalar (innermost extent 9 is not a multiple of 4)

// kernel dropout_noise outer=[9]   // implements
//   stage 0 inner=[]
//     v0 = load b0[i0]
//     v1 = scalar #0
//     v2 = scalar #1
//     v3 = scalar #2
//     v4 = const 3 : i32
//     v5 = const 4 : i32
//     v6 = random Uniform stream=v4 seed=v1 step=v2 at [i0]
//     v7 = random Normal stream=v5 seed=v1 step=v2 at [i0]
//     v8 = Ge v6, v3
//     v9 = const 0 : f32
//     v10 = select v8, v0, v9
//     store b1[i0] = v10
//     store b2[i0] = v7
//     store b3[i0] = v8
// mapping: elementwise; scalar: innermost extent 9 is not a multiple of 4
extern "C" __global__ void __launch_bounds__(256) k0_dropout_noise(
    const float* __restrict__ b0  /* Input("x") */,
    float* __restrict__ b1  /* Output("y") */,
    float* __restrict__ b2  /* Output("z") */,
    unsigned int* __restrict__ b3  /* Output("mask") */,
    const int s0  /* seed */,
    const int s1  /* step */,
    const float s2  /* rate */
) {
    const int nthreads = (int)gridDim.x * blockDim.x;
    for (int o = (int)blockIdx.x * blockDim.x + threadIdx.x; o < 9; o += nthreads) {
        const int i0 = o;
        // stage 0: inner [] (1 point)
        {
            const float v0 = b0[i0];  // b0: Input("x")
            const int v1 = s0;
            const int v2 = s1;
            const float v3 = s2;
            const int v4 = 3;
            const int v5 = 4;
            const float v6 = kiln_random_uniform(v1, v2, (unsigned int)(v4), (unsigned long long)(i0));
            const float v7 = kiln_random_normal(v1, v2, (unsigned int)(v5), (unsigned long long)(i0));
            const bool v8 = (v6 >= v3);
            const float v9 = 0.0f;
            const float v10 = (v8 ? v0 : v9);
            b1[i0] = v10;
            b2[i0] = v7;
            b3[i0] = (v8 ? 1u : 0u);
        }
    }
}
