# Prints the tables of docs/performance.md, session 15: python3 table.py LABEL RUN.json [LABEL RUN.json ...]
import json,sys
order=["rtb","tpcl","tpcl-windowed","subtb","tpcl-surrogate","reinforce-kl","flawed"]
print("| run | dtype | statistic | copy / read GB/s | RTB | TPCL | TPCL-win | SubTB | surrogate | REINFORCE-KL | flawed | under 85 % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for label,f in zip(sys.argv[1::2],sys.argv[2::2]):
    d=json.load(open(f))
    for run in d["runs"]:
        m={(r["name"],r["form"]):r for r in run["measurements"]}
        for stat,key in [("best","fraction_of_floor"),("pair","paired_fraction_of_floor")]:
            cells=[];under=0
            for k in order:
                a=m[(k,"per-trajectory")][key]; b=m[(k,"dense")][key]
                under+= (a<0.85)+(b<0.85)
                cells.append("%d / %d"%(round(100*a),round(100*b)))
            print("| %s | %s | %s | %.1f / %.1f | %s | %d |"%(label,run["dtype"],stat,run["copy_gbps"],run["read_gbps"]," | ".join(cells),under))
