// launch table:
//   k0_adam_update                           Elementwise grid [1, 1, 1] block [256, 1, 1] args [b0, b1, b2, b3, b4(rw), b5(rw), b6(rw), s0:f32, s1:f32, s2:f32, s3:f32]  // elementwise, float4

// kernel adam_update outer=[16]   // implements
//   stage 0 inner=[]
//     v0 = load b0[i0]
//     v1 = load b1[i0]
//     v2 = load b2[i0]
//     v3 = load b3[i0]
//     v4 = scalar #0
//     v5 = scalar #1
//     v6 = scalar #2
//     v7 = scalar #3
//     v8 = const 1 : f32
//     v9 = Sub v8, v5
//     v10 = Sub v8, v6
//     v11 = Mul v5, v2
//     v12 = Mul v9, v1
//     v13 = Add v11, v12
//     v14 = Mul v1, v1
//     v15 = Mul v6, v3
//     v16 = Mul v10, v14
//     v17 = Add v15, v16
//     v18 = Sqrt v17
//     v19 = Max v18, v7
//     v20 = Div v13, v19
//     v21 = Mul v4, v20
//     v22 = Sub v0, v21
//     store b4[i0] = v22
//     store b5[i0] = v13
//     store b6[i0] = v17
// mapping: elementwise; float4: 4 consecutive points along i0 per thread step
extern "C" __global__ void __launch_bounds__(256) k0_adam_update(
    const float* b0  /* Param("w") */,
    const float* __restrict__ b1  /* Input("g") */,
    const float* b2  /* State("m") */,
    const float* b3  /* State("v") */,
    float* b4  /* Temp */,
    float* b5  /* Temp */,
    float* b6  /* Temp */,
    const float s0  /* lr */,
    const float s1  /* b1 */,
    const float s2  /* b2 */,
    const float s3  /* eps */
) {
    const int nthreads = (int)gridDim.x * blockDim.x;
    for (int g = (int)blockIdx.x * blockDim.x + threadIdx.x; g < 4; g += nthreads) {
        const int o = g * 4;  // the first of 4 consecutive outer points
        const int i0 = o;
        const float4 v0_v = *reinterpret_cast<const float4*>(&b0[i0]);  // 4 x b0: Param("w")
        const float v0_0 = v0_v.x;
        const float v0_1 = v0_v.y;
        const float v0_2 = v0_v.z;
        const float v0_3 = v0_v.w;
        const float4 v1_v = *reinterpret_cast<const float4*>(&b1[i0]);  // 4 x b1: Input("g")
        const float v1_0 = v1_v.x;
        const float v1_1 = v1_v.y;
        const float v1_2 = v1_v.z;
        const float v1_3 = v1_v.w;
        const float4 v2_v = *reinterpret_cast<const float4*>(&b2[i0]);  // 4 x b2: State("m")
        const float v2_0 = v2_v.x;
        const float v2_1 = v2_v.y;
        const float v2_2 = v2_v.z;
        const float v2_3 = v2_v.w;
        const float4 v3_v = *reinterpret_cast<const float4*>(&b3[i0]);  // 4 x b3: State("v")
        const float v3_0 = v3_v.x;
        const float v3_1 = v3_v.y;
        const float v3_2 = v3_v.z;
        const float v3_3 = v3_v.w;
        const float v4 = s0;
        const float v5 = s1;
        const float v6 = s2;
        const float v7 = s3;
        const float v8 = 1.0f;
        const float v9 = v8 - v5;
        const float v10 = v8 - v6;
        const float v11_0 = v5 * v2_0;
        const float v11_1 = v5 * v2_1;
        const float v11_2 = v5 * v2_2;
        const float v11_3 = v5 * v2_3;
        const float v12_0 = v9 * v1_0;
        const float v12_1 = v9 * v1_1;
        const float v12_2 = v9 * v1_2;
        const float v12_3 = v9 * v1_3;
        const float v13_0 = v11_0 + v12_0;
        const float v13_1 = v11_1 + v12_1;
        const float v13_2 = v11_2 + v12_2;
        const float v13_3 = v11_3 + v12_3;
        const float v14_0 = v1_0 * v1_0;
        const float v14_1 = v1_1 * v1_1;
        const float v14_2 = v1_2 * v1_2;
        const float v14_3 = v1_3 * v1_3;
        const float v15_0 = v6 * v3_0;
        const float v15_1 = v6 * v3_1;
        const float v15_2 = v6 * v3_2;
        const float v15_3 = v6 * v3_3;
        const float v16_0 = v10 * v14_0;
        const float v16_1 = v10 * v14_1;
        const float v16_2 = v10 * v14_2;
        const float v16_3 = v10 * v14_3;
        const float v17_0 = v15_0 + v16_0;
        const float v17_1 = v15_1 + v16_1;
        const float v17_2 = v15_2 + v16_2;
        const float v17_3 = v15_3 + v16_3;
        const float v18_0 = sqrtf(v17_0);
        const float v18_1 = sqrtf(v17_1);
        const float v18_2 = sqrtf(v17_2);
        const float v18_3 = sqrtf(v17_3);
        const float v19_0 = kiln_fmaxf(v18_0, v7);
        const float v19_1 = kiln_fmaxf(v18_1, v7);
        const float v19_2 = kiln_fmaxf(v18_2, v7);
        const float v19_3 = kiln_fmaxf(v18_3, v7);
        const float v20_0 = kiln_fdiv(v13_0, v19_0);
        const float v20_1 = kiln_fdiv(v13_1, v19_1);
        const float v20_2 = kiln_fdiv(v13_2, v19_2);
        const float v20_3 = kiln_fdiv(v13_3, v19_3);
        const float v21_0 = v4 * v20_0;
        const float v21_1 = v4 * v20_1;
        const float v21_2 = v4 * v20_2;
        const float v21_3 = v4 * v20_3;
        const float v22_0 = v0_0 - v21_0;
        const float v22_1 = v0_1 - v21_1;
        const float v22_2 = v0_2 - v21_2;
        const float v22_3 = v0_3 - v21_3;
        *reinterpret_cast<float4*>(&b4[i0]) = make_float4(v22_0, v22_1, v22_2, v22_3);
        *reinterpret_cast<float4*>(&b5[i0]) = make_float4(v13_0, v13_1, v13_2, v13_3);
        *reinterpret_cast<float4*>(&b6[i0]) = make_float4(v17_0, v17_1, v17_2, v17_3);
    }
}
