# Port of the radix-descent thresholds of src/kernels/cuda/sampling.cu, checked against the host
# sampler's candidate set (sorted walk, runtime/sampler.cpp semantics).
import math, random, struct

FIXED = 2.0 ** 40

def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
def key(f):
    if math.isnan(f): f = -math.inf
    u = struct.unpack('I', struct.pack('f', f))[0]
    return (~u) & 0xffffffff if u & 0x80000000 else u | 0x80000000

def find_bin_from_top(hist, target):
    found = (0, 0)
    lanes = []
    for lane in range(32):
        mine = sum(hist[255 - (lane * 8 + j)] for j in range(8))
        lanes.append(mine)
    incl = 0
    for lane in range(32):
        excl = incl; incl += lanes[lane]
        if excl < target <= incl:
            above = excl
            for j in range(8):
                b = 255 - (lane * 8 + j)
                if above + hist[b] >= target:
                    found = (b, above); break
                above += hist[b]
    return found

def weight(l, inv_t, mx): return math.exp(f32(f32(l * inv_t) - mx))
def fixed(w): return int(w * FIXED)

def descend(logits, inv_t, mx, min_key, target, mass):
    prefix = mask = 0
    for p in range(4):
        shift = 8 * (3 - p)
        hist = [0] * 256
        for l in logits:
            k = key(l)
            if (k & mask) != prefix or k < min_key: continue
            hist[(k >> shift) & 255] += fixed(weight(l, inv_t, mx)) if mass else 1
        b, above = find_bin_from_top(hist, target)
        prefix |= b << shift; mask |= 255 << shift; target -= above
    return prefix

def gpu_kept(logits, temp, top_k, top_p, min_p):
    V = len(logits)
    inv_t = f32(1.0 / temp); mx = f32(max(logits) * inv_t)
    min_key = 0
    if 0 < top_k < V: min_key = descend(logits, inv_t, mx, 0, top_k, False)
    if top_p < 1.0:
        z = sum(fixed(weight(l, inv_t, mx)) for l in logits if key(l) >= min_key)
        target = min(max(math.ceil(top_p * z), 1), z)
        cut = descend(logits, inv_t, mx, min_key, target, True)
        min_key = max(min_key, cut)
    kept = set()
    for i, l in enumerate(logits):
        if key(l) < min_key: continue
        w = weight(l, inv_t, mx)
        if min_p > 0 and w < min_p: continue
        if fixed(w) == 0: continue
        kept.add(i)
    return kept

def host_kept(logits, temp, top_k, top_p, min_p):
    V = len(logits)
    ids = sorted(range(V), key=lambda i: (-logits[i], i))
    limit = min(top_k, V) if top_k > 0 else V
    mx = logits[ids[0]] / temp
    z = sum(math.exp(logits[ids[i]] / temp - mx) for i in range(limit))
    kept = set(); cum = 0.0
    for i in range(limit):
        w = math.exp(logits[ids[i]] / temp - mx)
        if i > 0 and min_p > 0 and w < min_p: break
        kept.add(ids[i]); cum += w / z
        if cum >= top_p: break
    return kept

rnd = random.Random(3)
bad = 0; n = 0
for trial in range(600):
    V = rnd.choice([5, 11, 100, 1000, 3000])
    logits = [f32(rnd.uniform(-8, 8)) for _ in range(V)]
    ties = trial % 3 == 0  # ties at a threshold: the GPU keeps every tied token (documented)
    if ties:
        for i in range(0, V, 7): logits[i] = logits[0]
    temp = rnd.choice([0.5, 0.8, 1.0, 1.7])
    top_k = rnd.choice([0, 1, 3, 40, V - 1, V])
    top_p = rnd.choice([1.0, 0.9, 0.5, 0.1])
    min_p = rnd.choice([0.0, 0.05, 0.3])
    g, h = gpu_kept(logits, temp, top_k, top_p, min_p), host_kept(logits, temp, top_k, top_p, min_p)
    mx = max(logits) / temp  # tokens below 2^-40 of the top weight have zero fixed-point mass on the GPU
    h = {i for i in h if math.exp(logits[i] / temp - mx) * FIXED >= 1.0}
    if ties:
        continue
    n += 1
    if g != h:
        bad += 1
        print("MISMATCH", V, temp, top_k, top_p, min_p, len(g), len(h), sorted(g ^ h)[:5])
print(f"sampling candidate sets: {n - bad}/{n} equal (trials without ties)")
import sys
sys.exit(1 if bad else 0)
