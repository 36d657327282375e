# Emulates attn_prefill_tc_kernel (src/kernels/cuda/attention_prefill_tc.cuh): one block (4 warps,
# 64 flattened (token, head) rows, one kv head), swizzled shared memory, ldmatrix (+ trans), mma,
# causal masking, online softmax; against direct causal GQA attention.
import math, random, sys
from mma import mma, Smem, ldmatrix_x4, shfl_xor_reduce, exp2

INF = math.inf
BM, BN = 64, 64

def offset(D, r, c):
    chunks = D // 8
    sw = c ^ (r & 7) if chunks >= 8 else c ^ ((r >> 1) & 3)
    assert 0 <= sw < chunks
    return (r * chunks + sw) * 16

def check_swizzle(D):
    # Every (row, chunk) maps to a distinct slot; the 8 rows of any ldmatrix phase hit distinct
    # 16-byte bank groups (address / 16 mod 8).
    chunks = D // 8
    seen = set()
    for r in range(64):
        for c in range(chunks):
            o = offset(D, r, c); assert o not in seen; seen.add(o)
    for r0 in range(0, 64, 8):
        for c in range(chunks):
            banks = {(offset(D, r0 + i, c) // 16) % 8 for i in range(8)}
            assert len(banks) == 8, (D, r0, c, banks)

def run(D, T, group, pos0, rt, n_heads_total=None, seed=1):
    rnd = random.Random(seed)
    n_kv = 1; kvh = 0
    n_heads = group
    rows_total = T * group
    q = [[[rnd.uniform(-3, 3) for _ in range(D)] for _ in range(n_heads)] for _ in range(T)]
    nk = pos0 + T
    K = [[rnd.uniform(-1, 1) for _ in range(D)] for _ in range(nk)]
    V = [[rnd.uniform(-1, 1) for _ in range(D)] for _ in range(nk)]
    scale_log2 = 1.0 / math.sqrt(D) * 1.4426950408889634
    chunks = D // 8
    row0 = rt * BM
    t_first = row0 // group
    t_last = min(T - 1, (row0 + BM - 1) // group)
    n_keys = pos0 + t_last + 1
    full_keys = pos0 + t_first + 1
    n_tiles = (n_keys + BN - 1) // BN
    smem = Smem()
    TILE = BN * D * 2
    sq = 0
    sk = lambda b: b * TILE
    sv = lambda b: (2 + b) * TILE
    # 1. Q tile
    for r in range(BM):
        for c in range(chunks):
            gr = row0 + r
            vals = [0.0] * 8
            if gr < rows_total:
                t, hg = gr // group, gr % group
                vals = q[t][kvh * group + hg][c * 8: c * 8 + 8]
            smem.st16(sq + offset(D, r, c), vals)
    qf = {}
    for warp in range(4):
        for kk in range(D // 16):
            addrs = []
            for lane in range(32):
                mi, ri = lane // 8, lane % 8
                addrs.append(sq + offset(D, warp * 16 + (mi & 1) * 8 + ri, 2 * kk + (mi >> 1)))
            qf[(warp, kk)] = ldmatrix_x4(smem, addrs)
    def load_tile(tile, b):
        key0 = tile * BN
        for r in range(BN):
            for c in range(chunks):
                key = key0 + r
                ok = key < n_keys
                smem.st16(sk(b) + offset(D, r, c), K[key][c*8:c*8+8] if ok else [0.0]*8)
                smem.st16(sv(b) + offset(D, r, c), V[key][c*8:c*8+8] if ok else [0.0]*8)
    # (double buffering is a schedule; the emulation loads each tile into its buffer before use)
    state = {}
    for warp in range(4):
        state[warp] = dict(o=[[[0.0]*4 for _ in range(D // 8)] for _ in range(32)],
                           m_a=[-INF]*32, m_b=[-INF]*32, l_a=[0.0]*32, l_b=[0.0]*32)
    for tile in range(n_tiles):
        b = tile & 1
        load_tile(tile, b)
        masked = (tile + 1) * BN > full_keys
        for warp in range(4):
            st = state[warp]
            s = [[[0.0]*4 for _ in range(BN // 8)] for _ in range(32)]
            for kk in range(D // 16):
                for np_ in range(BN // 16):
                    addrs = []
                    for lane in range(32):
                        mi, ri = lane // 8, lane % 8
                        addrs.append(sk(b) + offset(D, np_ * 16 + (mi >> 1) * 8 + ri, 2 * kk + (mi & 1)))
                    r = ldmatrix_x4(smem, addrs)
                    a = qf[(warp, kk)]
                    mma([s[l][2*np_] for l in range(32)], a, [r[l][0] for l in range(32)], [r[l][1] for l in range(32)])
                    mma([s[l][2*np_+1] for l in range(32)], a, [r[l][2] for l in range(32)], [r[l][3] for l in range(32)])
            mx_a = [-INF]*32; mx_b = [-INF]*32
            for lane in range(32):
                g, qd = lane // 4, lane % 4
                row_a = row0 + warp * 16 + g; row_b = row_a + 8
                last_a = pos0 + row_a // group; last_b = pos0 + row_b // group
                for nt in range(BN // 8):
                    for e in range(2):
                        key = tile * BN + 8 * nt + 2 * qd + e
                        s[lane][nt][e] = -INF if (masked and key > last_a) else s[lane][nt][e] * scale_log2
                        s[lane][nt][2+e] = -INF if (masked and key > last_b) else s[lane][nt][2+e] * scale_log2
                        mx_a[lane] = max(mx_a[lane], s[lane][nt][e]); mx_b[lane] = max(mx_b[lane], s[lane][nt][2+e])
            mx_a = shfl_xor_reduce(mx_a, max); mx_b = shfl_xor_reduce(mx_b, max)
            for lane in range(32):
                mn_a, mn_b = max(st['m_a'][lane], mx_a[lane]), max(st['m_b'][lane], mx_b[lane])
                ref_a = 0.0 if mn_a == -INF else mn_a; ref_b = 0.0 if mn_b == -INF else mn_b
                al_a, al_b = exp2(st['m_a'][lane] - ref_a), exp2(st['m_b'][lane] - ref_b)
                sa = sb = 0.0
                for nt in range(BN // 8):
                    for e in range(2):
                        s[lane][nt][e] = exp2(s[lane][nt][e] - ref_a); s[lane][nt][2+e] = exp2(s[lane][nt][2+e] - ref_b)
                        sa += s[lane][nt][e]; sb += s[lane][nt][2+e]
                st['l_a'][lane] = st['l_a'][lane]*al_a + sa; st['l_b'][lane] = st['l_b'][lane]*al_b + sb
                st['m_a'][lane], st['m_b'][lane] = mn_a, mn_b
                for vt in range(D // 8):
                    o = st['o'][lane][vt]; o[0] *= al_a; o[1] *= al_a; o[2] *= al_b; o[3] *= al_b
            for kk in range(BN // 16):
                pa = [[(s[l][2*kk][0], s[l][2*kk][1]), (s[l][2*kk][2], s[l][2*kk][3]),
                       (s[l][2*kk+1][0], s[l][2*kk+1][1]), (s[l][2*kk+1][2], s[l][2*kk+1][3])] for l in range(32)]
                for dp in range(D // 16):
                    addrs = []
                    for lane in range(32):
                        mi, ri = lane // 8, lane % 8
                        addrs.append(sv(b) + offset(D, kk * 16 + (mi & 1) * 8 + ri, 2 * dp + (mi >> 1)))
                    r = ldmatrix_x4(smem, addrs, trans=True)
                    mma([st['o'][l][2*dp] for l in range(32)], pa, [r[l][0] for l in range(32)], [r[l][1] for l in range(32)])
                    mma([st['o'][l][2*dp+1] for l in range(32)], pa, [r[l][2] for l in range(32)], [r[l][3] for l in range(32)])
    out = {}
    for warp in range(4):
        st = state[warp]
        l_a = shfl_xor_reduce(st['l_a'], lambda x, y: x + y); l_b = shfl_xor_reduce(st['l_b'], lambda x, y: x + y)
        for lane in range(32):
            g, qd = lane // 4, lane % 4
            for row, l, half in ((row0 + warp*16 + g, l_a[lane], 0), (row0 + warp*16 + g + 8, l_b[lane], 1)):
                if row >= rows_total: continue
                t, hg = row // group, row % group
                for vt in range(D // 8):
                    for e in range(2):
                        out.setdefault((t, hg), [None]*D)[vt*8 + 2*qd + e] = st['o'][lane][vt][2*half + e] / l
    err = 0.0
    for (t, h), got in out.items():
        assert None not in got
        last = pos0 + t
        sc = [sum(q[t][h][i]*K[p][i] for i in range(D)) / math.sqrt(D) for p in range(last + 1)]
        mx = max(sc); w = [math.exp(x - mx) for x in sc]; z = sum(w)
        ref = [sum(w[p]*V[p][i] for p in range(last + 1)) / z for i in range(D)]
        err = max(err, max(abs(a - b) for a, b in zip(got, ref)))
    expected_rows = sum(1 for r in range(row0, row0 + BM) if r < rows_total)
    assert len(out) == expected_rows, (len(out), expected_rows)
    return err

for D in (32, 64, 128): check_swizzle(D)
print("swizzle: bijective and conflict-free for D = 32, 64, 128")
failed = 0
for D, T, group, pos0, rt in [(32, 5, 1, 0, 0), (64, 70, 1, 0, 1), (32, 9, 16, 0, 1), (64, 20, 4, 13, 0),
                              (128, 10, 8, 0, 1), (32, 40, 3, 70, 0), (64, 3, 16, 100, 0), (128, 4, 16, 0, 0)]:
    e = run(D, T, group, pos0, rt)
    print(f"prefill_tc D={D} T={T} group={group} pos0={pos0} row_tile={rt}: max err {e:.2e}", "OK" if e < 1e-9 else "FAIL")
    failed += e >= 1e-9
for D, T, group, pos0, rt in [(64, 200, 1, 0, 2), (32, 30, 2, 150, 0), (128, 40, 2, 100, 1)]:
    e = run(D, T, group, pos0, rt)
    print(f"prefill_tc D={D} T={T} group={group} pos0={pos0} row_tile={rt}: max err {e:.2e}", "OK" if e < 1e-9 else "FAIL")
    failed += e >= 1e-9
sys.exit(1 if failed else 0)
