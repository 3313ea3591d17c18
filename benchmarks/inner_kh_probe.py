"""inner_kh probe (experimental branch): resnet20's distinct conv shapes, each direct seed
with and without inner_kh, and MetaSchedule's 16->16 kernel in our genes (ms16); warm per-conv
timings, one sitting. PYTHONPATH=. .venv/bin/python -m benchmarks.inner_kh_probe [MODEL]"""
import os, sys
os.environ.setdefault("TVM_NUM_THREADS", "2")
from benchmarks import seed_schedules as ss
from evo.search import variation as v
from evo.networks import load_network
from evo.target import make_target
from genomes.genes import InnerKh, Tile, Vectorize, Fuse, Parallel, Unroll, TilePad, Reorder, CacheWrite
from genomes.genome import LayerGenome

rows = LayerGenome((Tile("co", 4), Tile("oh", 4), Tile("ow", 16), Vectorize("ow"),
                    Reorder(("oh", "co", "ow")), Fuse(2), Parallel(), Unroll(512), TilePad()))
extra = {"ms16": rows}
for name, s in list(v.SEED_SCHEDULES.items()) + list(extra.items()):
    if "winograd" in name:
        continue
    extra[name] = s
    extra[name + "+inner_kh"] = LayerGenome(s.genes + (InnerKh(),))
ss.SEED_SCHEDULES = extra
net = load_network(sys.argv[1] if len(sys.argv) > 1 else "resnet20", (1, 3, 32, 32))
times = ss.seed_times(net, make_target(None), cold=False)
count = {}
for slot in net.slots:
    count[slot.spec] = count.get(slot.spec, 0) + 1
best_plain = best_kh = 0.0
for spec, t in times.items():
    plain = {k: x for k, x in t.items() if "inner_kh" not in k}
    kh = t
    bp, bk = min(plain, key=plain.get), min(kh, key=kh.get)
    best_plain += count[spec] * plain[bp]; best_kh += count[spec] * kh[bk]
    print(f"{spec.short():<28} x{count[spec]}  best plain {bp} {plain[bp]:.4f}  best with inner_kh {bk} {kh[bk]:.4f}  ({plain[bp]/kh[bk]:.2f}x)")
    for k in sorted(t, key=t.get)[:6]:
        print(f"      {k:<28} {t[k]:.4f}")
print(f"sum over slots: plain {best_plain:.4f} ms, with inner_kh {best_kh:.4f} ms ({best_plain/best_kh:.2f}x)")
