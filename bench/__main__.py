"""Run the benchmarks: ``python -m bench [--quick] [--only routing,tickets,...]``.

Prints a table as figures come in and writes bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench.report import Report

#: Every part, in the order they run; ``--only`` picks some.
PARTS = ("routing", "validate", "tickets", "load", "hold", "emergency", "fuzz", "soak")
#: What runs without ``--only``: the soak (30 minutes) is asked for by name.
DEFAULT_PARTS = tuple(part for part in PARTS if part != "soak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a ~2 minute subset: smaller sizes, one load step per variant")
    parser.add_argument("--only", default=",".join(DEFAULT_PARTS),
                        help=f"comma-separated parts among: {', '.join(PARTS)}")
    parser.add_argument("--variants", default="fastagi,native,classic",
                        help="load variants: fastagi (a), native (b), classic (c)")
    parser.add_argument("--rates", default="",
                        help="load steps in calls/s, e.g. 2,4,6 (default depends on --quick)")
    parser.add_argument("--soak-minutes", type=float, default=30.0,
                        help="soak part: how long to call at 80%% of the highest rate held")
    parser.add_argument("--step-seconds", type=float, default=0.0,
                        help="how long each load step places calls (default 10, quick 8)")
    args = parser.parse_args(argv)
    chosen = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose among {', '.join(PARTS)}")

    from ivr.logs import configure_logging

    configure_logging(json=False, level="WARNING")
    report = Report()
    quick = args.quick
    runners: dict[str, Callable[[], None]] = {}

    def routing() -> None:
        from bench.micro import bench_routing

        bench_routing(report, communities=5000, decisions=5_000 if quick else 50_000)

    def validate() -> None:
        from bench.micro import bench_validate

        bench_validate(report, nodes=500 if quick else 2000, repeat=3 if quick else 5)

    def tickets() -> None:
        from bench.micro import bench_tickets

        bench_tickets(report, calls=300 if quick else 2000, concurrency=50)

    def live() -> None:
        from bench.load import LoadOptions, bench_live

        rates = [float(r) for r in args.rates.split(",") if r.strip()]
        options = LoadOptions.make(
            quick=quick, rates=rates, step_seconds=args.step_seconds,
            variants=[v.strip() for v in args.variants.split(",") if v.strip()])
        bench_live(report, options if "load" in chosen else None,
                   options.emergency_calls if "emergency" in chosen else 0,
                   hold="hold" in chosen and not quick,
                   soak_minutes=args.soak_minutes if "soak" in chosen else 0.0)

    def fuzz() -> None:
        from bench.fuzz import bench_fuzz

        bench_fuzz(report, calls=60 if quick else 300, at_once=8)

    # One live stack serves the load, hold and emergency figures.
    runners.update(routing=routing, validate=validate, tickets=tickets, fuzz=fuzz)
    live_part = next(
        (part for part in ("load", "hold", "emergency", "soak") if part in chosen), None
    )
    if live_part is not None:
        runners[live_part] = live
    failed = False
    for part in PARTS:
        if part not in chosen or part not in runners:
            continue
        try:
            runners[part]()
        except Exception as exc:
            failed = True
            report.note(f"{part} failed: {type(exc).__name__}: {exc}")
    path = report.write(sys.argv[1:] if argv is None else argv)
    print(f"\nfigures written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
