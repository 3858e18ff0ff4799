"""Before/after: the same benchmarks against an older tree of this repository and this one,
alternated in one run (before, after, floor, before, after, floor, …), medians of each.

    git worktree add /tmp/seminar-before <commit before the change>
    python -m bench.compare --before /tmp/seminar-before [--only signup,mail,platform] [--repeats 3]

Both trees run with this checkout's .venv. Prints a markdown table; raw figures go to
bench/results/compare-*.json.
"""
from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path

from .common import ROOT, log, median, pg_available, save_json


def _fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}".replace(",", " ")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="a checkout of the older tree")
    p.add_argument("--only", default="signup,mail,platform")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--signups", type=int, default=600)
    p.add_argument("--attendees", type=int, default=650)
    p.add_argument("--zoom-attendees", type=int, default=330)
    args = p.parse_args()
    before = Path(args.before).resolve()
    trees = {"before": before, "after": ROOT}
    only = args.only.split(",")
    backends = [b for b in args.backends.split(",") if b != "postgresql" or pg_available()]
    from .sink import Sink

    sink = Sink()
    out: dict = {}
    lines = ["| benchmark | database | before | after | floor / bound | before ÷ floor | after ÷ floor |",
             "|---|---|---|---|---|---|---|"]
    try:
        if "signup" in only:
            from . import signup

            for backend in backends:
                runs = {"before": [], "after": [], "floor": []}
                for r in range(args.repeats):
                    for name in ("before", "after", "floor"):
                        log(f"compare · sign-up · {backend} · {r + 1}/{args.repeats} · {name}")
                        if name == "floor":
                            res = signup.run_floor(backend, args.signups, 32, 64, f"c{r}")
                        else:
                            res = signup.run_candidate(backend, sink, args.signups, 32, 64, f"c{r}{name}",
                                                       root=trees[name])
                        log(f"  {res['signups_per_s']:.0f}/s p99 {res['p99_ms']:.0f} ms RSS {res['peak_rss_mb']}")
                        runs[name].append(res)
                out.setdefault("signup", {})[backend] = runs
                m = {k: median([x["signups_per_s"] for x in v]) for k, v in runs.items()}
                p99 = {k: median([x["p99_ms"] for x in v]) for k, v in runs.items()}
                rss = {k: max((x["peak_rss_mb"].get("web", 0) for x in v), default=None) for k, v in runs.items()}
                wrss = {k: max((x["peak_rss_mb"].get("worker", 0) for x in v), default=None) for k, v in runs.items()}
                lines.append(f"| 1 sign-ups/s | {backend} | {_fmt(m['before'])} | {_fmt(m['after'])} | {_fmt(m['floor'])} "
                             f"| {m['before'] / m['floor']:.2f}× | {m['after'] / m['floor']:.2f}× |")
                lines.append(f"| 1 p99 sign-up ms | {backend} | {_fmt(p99['before'])} | {_fmt(p99['after'])} | "
                             f"{_fmt(p99['floor'])} | | |")
                lines.append(f"| 4 peak RSS web / worker MB (sign-ups) | {backend} | {_fmt(rss['before'])} / "
                             f"{_fmt(wrss['before'])} | {_fmt(rss['after'])} / {_fmt(wrss['after'])} | | | |")
        if "mail" in only:
            from . import mail

            for backend in backends:
                runs = {"before": [], "after": [], "floor": []}
                templates = {name: mail.seed(backend, args.attendees, root=tree) for name, tree in trees.items()}
                try:
                    with tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
                        for r in range(args.repeats):
                            kept = None
                            for name in ("before", "after"):
                                log(f"compare · mail · {backend} · {r + 1}/{args.repeats} · {name}")
                                template, seminar_id = templates[name]
                                res, kept_now = mail.run_candidate(template, seminar_id, args.attendees, sink,
                                                                   Path(tmp), root=trees[name])
                                kept = kept_now if name == "after" else kept
                                log(f"  {res['mails_per_s']:.0f} mails/s, change→last {res['change_to_last_s']:.1f} s")
                                runs[name].append(res)
                            runs["floor"].append(mail.run_floor(kept, sink, Path(tmp)))
                finally:
                    for template, _ in templates.values():
                        template.drop()
                out.setdefault("mail", {})[backend] = runs
                m = {k: median([x["mails_per_s"] for x in v]) for k, v in runs.items()}
                c = {k: median([x["change_to_last_s"] for x in v]) for k, v in runs.items() if k != "floor"}
                cli = {k: median([x["cli_s"] for x in v]) for k, v in runs.items() if k != "floor"}
                rss = {k: max(x["peak_rss_mb"].get("worker", 0) for x in v) for k, v in runs.items() if k != "floor"}
                lines.append(f"| 2 mails/s first→last | {backend} | {_fmt(m['before'])} | {_fmt(m['after'])} | "
                             f"{_fmt(m['floor'])} | {m['before'] / m['floor']:.2f}× | {m['after'] / m['floor']:.2f}× |")
                lines.append(f"| 2 change → last informed, s (the command) | {backend} | {_fmt(c['before'], 1)} "
                             f"({_fmt(cli['before'], 1)}) | {_fmt(c['after'], 1)} ({_fmt(cli['after'], 1)}) | | | |")
                lines.append(f"| 4 peak RSS worker MB (fan-out) | {backend} | {_fmt(rss['before'])} | "
                             f"{_fmt(rss['after'])} | | | |")
        if "platform" in only:
            from . import platform_fanout

            for backend in backends:
                runs = {"before": [], "after": []}
                for r in range(args.repeats):
                    for name in ("before", "after"):
                        log(f"compare · platform · {backend} · {r + 1}/{args.repeats} · {name}")
                        with tempfile.TemporaryDirectory(prefix="seminar-bench-") as tmp:
                            res = platform_fanout.run_once(backend, args.zoom_attendees, sink, 1000 + r, Path(tmp),
                                                           root=trees[name])
                        log(f"  {'' if res['complete'] else '> '}{res['seconds']:.1f} s, {res['registrant_calls']} calls, "
                            f"lost {res['lost']}, late {res['late']}, twice {res['added_twice']}")
                        runs[name].append(res)
                out.setdefault("platform", {})[backend] = runs
                s = {k: median([x["seconds"] for x in v]) for k, v in runs.items()}
                calls = {k: median([x["registrant_calls"] for x in v]) for k, v in runs.items()}
                inc = {k: "> " if any(not x["complete"] for x in v) else "" for k, v in runs.items()}
                bound = median([x["bound_s"] for x in runs["after"]])
                lines.append(f"| 3 s until all added ({args.zoom_attendees}) | {backend} | {inc['before']}{_fmt(s['before'], 1)} | "
                             f"{inc['after']}{_fmt(s['after'], 1)} | {_fmt(bound, 1)} | {s['before'] / bound:.2f}× | "
                             f"{s['after'] / bound:.2f}× |")
                lines.append(f"| 3 registrant calls made | {backend} | {_fmt(calls['before'])} | {_fmt(calls['after'])} "
                             f"| {runs['after'][0]['needed_calls']} needed | | |")
    finally:
        sink.close()
    table = "\n".join(lines)
    print(table)
    path = save_json(f"compare-{datetime.now():%Y%m%d-%H%M%S}.json", {"table": table, "runs": out,
                                                                     "before": str(before), "repeats": args.repeats})
    log(f"raw figures: {path}")


if __name__ == "__main__":
    main()
