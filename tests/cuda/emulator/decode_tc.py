# Emulates attn_decode_tc_kernel (one block: 4 warps, one split, one kv head, one row tile) and the
# combine, against direct attention. Transcribed from src/kernels/cuda/attention_decode_tc.cu.
import math, random, sys
from mma import mma, byte_perm, shfl_xor_reduce, exp2

INF = math.inf

def run(D, group, n_keys, kb, ke, tile_row0=0, seed=0):
    rnd = random.Random(seed)
    n_heads = group  # one kv head
    q = [[rnd.uniform(-3, 3) for _ in range(D)] for _ in range(group)]
    K = [[rnd.uniform(-1, 1) for _ in range(D)] for _ in range(n_keys + 16)]
    V = [[rnd.uniform(-1, 1) for _ in range(D)] for _ in range(n_keys + 16)]
    scale_log2 = 1.0 / math.sqrt(D) * 1.4426950408889634
    kSteps, kJ, kVTiles, kVWords = D // 16, D // 32, D // 8, D // 16
    warps_state = []
    for warp in range(4):
        # Q fragments
        qf = [[[None]*4 for _ in range(kSteps)] for _ in range(32)]
        for lane in range(32):
            g, qd = lane // 4, lane % 4
            ra, rb = tile_row0 + g, tile_row0 + g + 8
            va, vb = ra < group, rb < group
            for j in range(kJ):
                off = 32*j + 8*qd
                a = q[ra][off:off+8] if va else [0.0]*8
                b = q[rb][off:off+8] if vb else [0.0]*8
                qf[lane][2*j] = [(a[0], a[1]), (b[0], b[1]), (a[2], a[3]), (b[2], b[3])]
                qf[lane][2*j+1] = [(a[4], a[5]), (b[4], b[5]), (a[6], a[7]), (b[6], b[7])]
        o = [[[0.0]*4 for _ in range(kVTiles)] for _ in range(32)]
        m_a = [-INF]*32; m_b = [-INF]*32; l_a = [0.0]*32; l_b = [0.0]*32
        k0 = kb + warp * 16
        while k0 < ke:
            kw = [[[None]*kJ for _ in range(2)] for _ in range(32)]
            vw = [[[None]*kVWords for _ in range(4)] for _ in range(32)]
            for lane in range(32):
                g, qd = lane // 4, lane % 4
                for nt in range(2):
                    key = k0 + 8*nt + g
                    ok = key < ke
                    for j in range(kJ):
                        vals = K[key][32*j + 8*qd: 32*j + 8*qd + 8] if ok else [0.0]*8
                        kw[lane][nt][j] = [(vals[0], vals[1]), (vals[2], vals[3]), (vals[4], vals[5]), (vals[6], vals[7])]
                for kk in range(4):
                    key = k0 + 2*qd + (kk & 1) + 8*(kk >> 1)
                    ok = key < ke
                    run_ = V[key][g*(D//8): g*(D//8) + D//8] if ok else [0.0]*(D//8)
                    vw[lane][kk] = [(run_[2*i], run_[2*i+1]) for i in range(kVWords)]
            s = [[[0.0]*4 for _ in range(2)] for _ in range(32)]
            for nt in range(2):
                for st in range(kSteps):
                    a = [qf[l][st] for l in range(32)]
                    w = [kw[l][nt][st // 2] for l in range(32)]
                    b0 = [w[l][0] if st % 2 == 0 else w[l][2] for l in range(32)]
                    b1 = [w[l][1] if st % 2 == 0 else w[l][3] for l in range(32)]
                    d = [s[l][nt] for l in range(32)]
                    mma(d, a, b0, b1)
            mx_a = [-INF]*32; mx_b = [-INF]*32
            for lane in range(32):
                qd = lane % 4
                for nt in range(2):
                    for e in range(2):
                        ok = k0 + 8*nt + 2*qd + e < ke
                        s[lane][nt][e] = s[lane][nt][e]*scale_log2 if ok else -INF
                        s[lane][nt][2+e] = s[lane][nt][2+e]*scale_log2 if ok else -INF
                        mx_a[lane] = max(mx_a[lane], s[lane][nt][e]); mx_b[lane] = max(mx_b[lane], s[lane][nt][2+e])
            mx_a = shfl_xor_reduce(mx_a, max); mx_b = shfl_xor_reduce(mx_b, max)
            pa = []
            for lane in range(32):
                mn_a, mn_b = max(m_a[lane], mx_a[lane]), max(m_b[lane], mx_b[lane])
                ref_a = 0.0 if mn_a == -INF else mn_a; ref_b = 0.0 if mn_b == -INF else mn_b
                al_a, al_b = exp2(m_a[lane] - ref_a), exp2(m_b[lane] - ref_b)
                sa = sb = 0.0
                for nt in range(2):
                    for e in range(2):
                        s[lane][nt][e] = exp2(s[lane][nt][e] - ref_a); s[lane][nt][2+e] = exp2(s[lane][nt][2+e] - ref_b)
                        sa += s[lane][nt][e]; sb += s[lane][nt][2+e]
                l_a[lane] = l_a[lane]*al_a + sa; l_b[lane] = l_b[lane]*al_b + sb
                m_a[lane], m_b[lane] = mn_a, mn_b
                for vt in range(kVTiles):
                    o[lane][vt][0] *= al_a; o[lane][vt][1] *= al_a; o[lane][vt][2] *= al_b; o[lane][vt][3] *= al_b
                sl = s[lane]
                pa.append([(sl[0][0], sl[0][1]), (sl[0][2], sl[0][3]), (sl[1][0], sl[1][1]), (sl[1][2], sl[1][3])])
            for vt in range(kVTiles):
                wi = vt // 2; sel = 0x7632 if vt & 1 else 0x5410
                b0 = [byte_perm(vw[l][0][wi], vw[l][1][wi], sel) for l in range(32)]
                b1 = [byte_perm(vw[l][2][wi], vw[l][3][wi], sel) for l in range(32)]
                d = [o[l][vt] for l in range(32)]
                mma(d, pa, b0, b1)
            k0 += 4 * 16
        l_a = shfl_xor_reduce(l_a, lambda x, y: x + y); l_b = shfl_xor_reduce(l_b, lambda x, y: x + y)
        sm_o = [[None]*D for _ in range(16)]
        sm_m = [None]*16; sm_l = [None]*16
        for lane in range(32):
            g, qd = lane // 4, lane % 4
            for vt in range(kVTiles):
                d0 = qd*(D//4) + vt; d1 = d0 + D//8
                sm_o[g][d0] = o[lane][vt][0]; sm_o[g][d1] = o[lane][vt][1]
                sm_o[g+8][d0] = o[lane][vt][2]; sm_o[g+8][d1] = o[lane][vt][3]
            if qd == 0:
                sm_m[g], sm_l[g] = m_a[lane], l_a[lane]; sm_m[g+8], sm_l[g+8] = m_b[lane], l_b[lane]
        assert all(x is not None for row in sm_o for x in row), "O permutation does not cover every dim"
        warps_state.append((sm_o, sm_m, sm_l))
    out = {}
    for r in range(16):
        if tile_row0 + r >= group: continue
        M = max(ws[1][r] for ws in warps_state)
        L = 0.0; O = [0.0]*D
        for sm_o, sm_m, sm_l in warps_state:
            f = 0.0 if sm_m[r] == -INF else exp2(sm_m[r] - M)
            L += sm_l[r]*f
            for dim in range(D): O[dim] += sm_o[r][dim]*f
        out[tile_row0 + r] = [x / L for x in O]
    # direct reference over keys [kb, ke)
    err = 0.0
    for h, got in out.items():
        sc = [sum(q[h][i]*K[p][i] for i in range(D)) / math.sqrt(D) for p in range(kb, ke)]
        mx = max(sc); w = [math.exp(x - mx) for x in sc]; z = sum(w)
        ref = [sum(w[p - kb]*V[p][i] for p in range(kb, ke)) / z for i in range(D)]
        err = max(err, max(abs(a - b) for a, b in zip(got, ref)))
    return err

failed = 0
for D, group, n_keys, kb, ke, row0 in [(32, 4, 40, 0, 40, 0), (64, 16, 100, 0, 100, 0), (128, 8, 70, 3, 61, 0),
                                        (64, 20, 90, 64, 90, 16), (128, 16, 300, 0, 256, 0), (32, 1, 1, 0, 1, 0)]:
    e = run(D, group, n_keys, kb, ke, row0)
    print(f"decode_tc D={D} group={group} keys=[{kb},{ke}) row0={row0}: max err {e:.2e}", "OK" if e < 1e-9 else "FAIL")
    failed += e >= 1e-9
sys.exit(1 if failed else 0)
