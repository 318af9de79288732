// launch table:
//   k0_pad_gather                            Elementwise grid [1, 1, 1] block [256, 1, 1] args [b0, b1(rw), b2(rw)]  // elementwise, scalar (innermost extent 5 is not a multiple of 4)

// kernel pad_gather outer=[1, 4, 5]   // implements
//   stage 0 inner=[]
//     v0 = load b0[((i0*6 + (i1 + -1)*3) + (i2 + -1))] if 0<=(i1 + -1)<2 if 0<=(i2 + -1)<3 else 0
//     v1 = load b0[(i0*6 + (i2 + -1))] if 0<=(i2 + -1)<9223372036854775807 else 0.5
//     v2 = Add v0, v1
//     v3 = index ((i2 + -1) % 3)
//     v4 = index ((i1 + -1) / 2)
//     v5 = Add v3, v4
//     v6 = Neg v5
//     store b1[((i0*20 + i1*5) + i2)] = v2
//     store b2[((i0*20 + i1*5) + i2)] = v6
// mapping: elementwise; scalar: innermost extent 5 is not a multiple of 4
extern "C" __global__ void __launch_bounds__(256) k0_pad_gather(
    const float* __restrict__ b0  /* Input("x") */,
    float* __restrict__ b1  /* Output("y") */,
    int* __restrict__ b2  /* Output("ids") */
) {
    const int nthreads = (int)gridDim.x * blockDim.x;
    for (int o = (int)blockIdx.x * blockDim.x + threadIdx.x; o < 20; o += nthreads) {
        const int i0 = 0;
        const int i1 = (o / 5) % 4;
        const int i2 = o % 5;
        // stage 0: inner [] (1 point)
        {
            const float v0 = (kiln_in((i1 - 1), 2) && kiln_in((i2 - 1), 3)) ? b0[((i0 * 6 + (i1 - 1) * 3) + (i2 - 1))] : 0.0f;  // b0: Input("x")
            const float v1 = (((i2 - 1) >= 0)) ? b0[(i0 * 6 + (i2 - 1))] : 0.5f;  // b0: Input("x")
            const float v2 = v0 + v1;
            const int v3 = kiln_floormod((i2 - 1), 3);
            const int v4 = kiln_floordiv((i1 - 1), 2);
            const int v5 = kiln_iadd(v3, v4);
            const int v6 = kiln_ineg(v5);
            b1[((i0 * 20 + i1 * 5) + i2)] = v2;
            b2[((i0 * 20 + i1 * 5) + i2)] = v6;
        }
    }
}
