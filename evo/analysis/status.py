"""`run_status`: where a run stands — progress, best legal latency, whether it runs now
and how it last stopped — as a JSON-ready dict, and its text form."""

from __future__ import annotations

import shlex
import time
from typing import Any

from evo.analysis.snapshot import RunSnapshot
from evo.host import distinct_hosts, host_label
from evo.options import GENERATIONS

FINISHED = ("completed", "time budget")


def run_status(snap: RunSnapshot) -> dict[str, Any]:
    """The status of the run in `snap`; every value is JSON-ready."""
    config, last = snap.config, snap.last
    legal = sum(e.legal for e in snap.evaluations.values())
    best = snap.best
    best_ms = snap.evaluations[best].latency_ms if best is not None else None
    original_ms = snap.original_ms
    state, stop = _last_stop(snap)
    return {
        "run": str(snap.folder),
        "model": config.model,
        "strategy": config.strategy,
        "evaluator": config.evaluator,
        "population": config.population,
        "generations_configured": config.generations,
        "time_budget_s": config.time_budget_s,
        "neural": config.neural,
        "capacity": config.capacity,
        "threshold": config.threshold,
        "without_genes": list(config.without_genes or ()),
        "generation": last.generation if last else None,
        "evaluations": last.evaluations if last else 0,
        "individuals": len(snap.individuals),
        "legal_share": legal / len(snap.evaluations) if snap.evaluations else None,
        "elapsed_s": last.elapsed_s if last else 0.0,
        "last_generation_at": snap.finished_at.get(last.generation) if last else None,
        "best_id": best,
        "best_ms": best_ms,
        "original_ms": original_ms,
        "speedup": original_ms / best_ms if original_ms and best_ms else None,
        "template_ms": snap.template_ms,
        "speedup_vs_template": snap.template_ms / best_ms if snap.template_ms and best_ms
        else None,
        "front_size": len(snap.front),
        "running": snap.holder is not None,
        "pid": snap.holder,
        "state": state,
        "last_stop": stop,
        "sessions": len(snap.sessions),
        "hosts": distinct_hosts(snap.sessions),
    }


def _last_stop(snap: RunSnapshot) -> tuple[str, dict[str, Any] | None]:
    """(state, how the last session ended). State is one of running, completed,
    stopped, crashed, not started."""
    session = snap.sessions[-1] if snap.sessions else None
    if snap.holder is not None:
        if session is not None and session["ended_at"] is None:  # the session running now
            previous = snap.sessions[-2] if len(snap.sessions) > 1 else None
            return "running", _session_stop(previous)
        return "running", _session_stop(session)
    if session is None:
        return "not started", None
    stop = _session_stop(session)
    if session["ended_at"] is None:
        return "crashed", stop
    return ("completed" if session["reason"] in FINISHED else "stopped"), stop


def _session_stop(session: dict[str, Any] | None) -> dict[str, Any] | None:
    if session is None:
        return None
    reason = session["reason"]
    if session["ended_at"] is None:
        reason = f"crashed or killed (pid {session['pid']} no longer running)"
    return {"reason": reason, "session": session["id"], "pid": session["pid"],
            "started_at": session["started_at"], "ended_at": session["ended_at"],
            "command": session["command"]}


def _check_text(status: dict[str, Any]) -> str:
    """What made a neural change legal in the run, and the gene kinds it never drew."""
    if not status["neural"]:
        return "program-only: the network is never changed"
    text = f"{status['capacity']} at {status['threshold']:g}x the original's"
    if status["without_genes"]:
        text += f"; never draws {', '.join(status['without_genes'])}"
    return text


def format_status(status: dict[str, Any]) -> str:
    """The status as aligned `key  value` lines."""
    s = status
    rows = [("run", s["run"]),
            ("model", f"{s['model']} (strategy {s['strategy']}, evaluator {s['evaluator']}, "
                      f"population {s['population']})"),
            ("check", _check_text(s))]
    if s["generation"] is None:
        rows.append(("generation", "none finished yet"))
    else:
        configured = s["generations_configured"]
        if configured >= GENERATIONS.high:  # a budget-bound run: no generation limit
            where = f"{s['generation']} (no generation limit)"
        elif s["generation"] > configured:  # `evo resume --generations` went past it
            where = f"{s['generation']} (past the configured {configured}: resumed for more)"
        else:
            where = f"{s['generation']} of {configured}"
        rows.append(("generation", where
                     + (f", time budget {_duration(s['time_budget_s'])}"
                        if s["time_budget_s"] else "")))
    share = f" ({s['legal_share']:.0%} of individuals legal)" if s["legal_share"] is not None \
        else ""
    rows.append(("evaluations", f"{s['evaluations']}{share}"))
    elapsed = f"{_duration(s['elapsed_s'])} of search"
    if s["last_generation_at"]:
        elapsed += f", last generation finished {_ago(s['last_generation_at'])}"
    rows.append(("elapsed", elapsed))
    if s["best_id"] is None:
        rows.append(("best legal", "none yet"))
    else:
        best = f"#{s['best_id']}: {s['best_ms']:.4f} ms"
        if s["speedup"]:
            best += f", {s['speedup']:.2f}x faster than the original ({s['original_ms']:.4f} ms)"
        rows.append(("best legal", best))
        if s["speedup_vs_template"]:
            rows.append(("", f"{s['speedup_vs_template']:.2f}x faster than the template schedule "
                             f"({s['template_ms']:.4f} ms)"))
    rows.append(("pareto set", f"{s['front_size']} individual(s)"))
    rows.extend(_host_rows(s["hosts"]))
    rows.append(("running now", f"yes (pid {s['pid']})" if s["running"] else "no"))
    stop = s["last_stop"]
    if stop is None:
        rows.append(("last stop", "never stopped" if s["running"] else "never started"))
    else:
        when = f", {_ago(stop['ended_at'])}" if stop["ended_at"] else ""
        rows.append(("last stop", f"{stop['reason']} (session {stop['session']}{when})"))
    if s["state"] in ("stopped", "crashed"):
        rows.append(("resume with", f"evo resume {shlex.quote(s['run'])}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _host_rows(hosts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    if not hosts:
        return []
    if len(hosts) == 1:
        return [("measured on", host_label(hosts[0]["host"]))]
    rows = [("measured on", f"{len(hosts)} machines: its latencies mix them")]
    rows += [("", f"{host_label(h['host'])}: session(s) {', '.join(map(str, h['sessions']))}")
             for h in hosts]
    return rows


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def _ago(timestamp: float) -> str:
    delta = max(0.0, time.time() - timestamp)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
    return f"{stamp} ({_duration(delta)} ago)"
