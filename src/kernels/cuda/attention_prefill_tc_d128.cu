// Template instance: tensor-core prefill attention, head_dim 128.
#include "kernels/cuda/attention_prefill_tc.cuh"

MCPM_INSTANTIATE_PREFILL_TC(128)
