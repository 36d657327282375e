# Pure-Python emulation of the warp-level PTX fragment semantics used by the kernels.
# A "word" is a tuple (lo, hi) of two bf16 values (kept as Python floats).
import math

def mma(d, a, b0, b1):
    """d[lane][4] += A(16x16) * B(16x8) with fragments a[lane][4], b0[lane], b1[lane] (words)."""
    A = [[0.0] * 16 for _ in range(16)]
    B = [[0.0] * 8 for _ in range(16)]
    for lane in range(32):
        g, q = lane // 4, lane % 4
        A[g][2*q], A[g][2*q+1] = a[lane][0]
        A[g+8][2*q], A[g+8][2*q+1] = a[lane][1]
        A[g][2*q+8], A[g][2*q+9] = a[lane][2]
        A[g+8][2*q+8], A[g+8][2*q+9] = a[lane][3]
        B[2*q][g], B[2*q+1][g] = b0[lane]
        B[2*q+8][g], B[2*q+9][g] = b1[lane]
    C = [[sum(A[i][k] * B[k][j] for k in range(16)) for j in range(8)] for i in range(16)]
    for lane in range(32):
        g, q = lane // 4, lane % 4
        d[lane][0] += C[g][2*q]; d[lane][1] += C[g][2*q+1]
        d[lane][2] += C[g+8][2*q]; d[lane][3] += C[g+8][2*q+1]

def byte_perm(a, b, sel):
    if sel == 0x5410: return (a[0], b[0])
    if sel == 0x7632: return (a[1], b[1])
    raise ValueError(sel)

class Smem:
    """Shared memory as 16-byte chunks: address -> list of 8 bf16 values."""
    def __init__(self): self.m = {}
    def st16(self, addr, vals):
        assert addr % 16 == 0 and len(vals) == 8
        self.m[addr] = list(vals)
    def ld16(self, addr):
        assert addr % 16 == 0, addr
        return self.m[addr]

def ldmatrix_x4(smem, addrs, trans=False):
    """addrs[lane]: row address given by each lane. Returns r[lane][4] words."""
    r = [[None] * 4 for _ in range(32)]
    for m in range(4):
        rows = [smem.ld16(addrs[8*m + i]) for i in range(8)]
        for t in range(32):
            if not trans:
                row = rows[t // 4]
                r[t][m] = (row[2*(t % 4)], row[2*(t % 4) + 1])
            else:
                r[t][m] = (rows[2*(t % 4)][t // 4], rows[2*(t % 4) + 1][t // 4])
    return r

def shfl_xor_reduce(vals, op, masks=(1, 2)):
    out = list(vals)
    for m in masks:
        out = [op(out[l], out[l ^ m]) for l in range(32)]
    return out

def exp2(x):
    if x == -math.inf: return 0.0
    return 2.0 ** x
