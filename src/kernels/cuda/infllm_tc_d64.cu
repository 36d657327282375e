// Template instance: InfLLM v2 tensor-core kernels (stage-1 scores, sparse prefill), head_dim 64.
#include "kernels/cuda/infllm_tc.cuh"

MCPM_INSTANTIATE_INFLLM_TC(64)
