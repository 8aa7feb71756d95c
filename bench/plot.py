#!/usr/bin/python3
"""Charts (gnuplot) from the committed results: start.png from start.json,
density.png from density.json, beside them in the results directory.

  bench/plot.py [DIR]      (default bench/results)
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import REPO, install

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#000000", "#7f7f7f",
          "#17becf", "#bcbd22"]


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def label(s):
    return s.replace('"', "'").replace("_", "\\\\_")


def start_chart(d, png):
    rows = [(x, "") for x in d["host"]] + [(x, ", v1 view") for x in d["cgroup_v1_only"]]
    rows += [(x, ", v1 view") for x in d["guests"]]
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        for i, (x, tag) in enumerate(reversed(rows)):
            vs = 1 if x["what"].startswith("vserver") else 0
            f.write(f'{i} {x["median_ms"]:.3f} {x["min_ms"]:.3f} {x["p90_ms"]:.3f} {vs} '
                    f'"{label(x["what"] + tag)}"\n')
    h = 120 + 26 * len(rows)
    gnuplot(f"""
set terminal pngcairo size 1400,{h} font "DejaVu Sans,10"
set output "{png}"
set title "Start: /bin/true in a fresh context, and guests (median; whiskers: min to p90)\\n{label(d['machine'])}, {d['date']}"
set xlabel "milliseconds"
set style fill solid 0.7 border -1
set grid xtics
set ytics nomirror
set yrange [-0.7:{len(rows) - 0.3}]
set xrange [0:*]
set lmargin 85
unset key
plot "{f.name}" using ($2/2):1:($2/2):(0.35):($5 == 1 ? 0x1f77b4 : 0x999999):ytic(6) \
       with boxxyerror lc rgb variable, \
     "" using 2:1:3:4 with xerrorbars pt 0 lc rgb "black", \
     "" using ($2):1:(sprintf(" %.1f", $2)) with labels left offset 0.5,0.5 font ",8"
""")
    Path(f.name).unlink()


def density_chart(d, png):
    files = []
    for name, s in d["series"].items():
        rows = s.get("rows") or []
        if not rows:
            continue
        f = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
        for r in rows:
            f.write(f"{r['n']} {r['start_s']:.3f} {r['beyond_kib'] / r['n']:.1f} "
                    f"{r['total_kib'] / r['n']:.1f}\n")
        f.close()
        files.append((name, f.name))
    plots = lambda col: ", ".join(
        f'"{fn}" using 1:{col} with linespoints lw 2 pt 7 lc rgb "{COLORS[i % len(COLORS)]}" '
        f'title "{label(name)}"' for i, (name, fn) in enumerate(files))
    gnuplot(f"""
set terminal pngcairo size 1300,480 font "DejaVu Sans,10"
set output "{png}"
set multiplot layout 1,2 title "Density: idle guests started one after another\\n{label(d['machine'])}, {d['date']}"
set key top left
set grid
set xlabel "guests running"
set ylabel "seconds to start them all"
plot {plots(2)}
set ylabel "host memory per guest beyond its own processes, KiB"
set yrange [0:*]
set key bottom right
plot {plots(3)}
unset multiplot
""")
    for _, fn in files:
        Path(fn).unlink()


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "bench/results"
    install({"gnuplot": "gnuplot-nox"})
    if (out / "start.json").exists():
        start_chart(json.loads((out / "start.json").read_text()), out / "start.png")
    if (out / "density.json").exists():
        density_chart(json.loads((out / "density.json").read_text()), out / "density.png")


if __name__ == "__main__":
    main()
