"""The bench's one table: metric, direct, haproxy, mailgate, mailgate as a ratio of direct and
of haproxy, the target and whether it was met. Targets are reported, never enforced."""
import operator
from dataclasses import dataclass

HEADER = ("metric", "direct", "haproxy", "mailgate", "vs direct", "vs haproxy", "target",
          "met?")
SIDES = ("direct", "haproxy", "mailgate")


@dataclass
class Target:
    """mailgate's value (on="value") or its ratio to direct (on="direct") compared with limit
    by op (">=", "<=" or "<")."""
    on: str
    op: str
    limit: float

    def text(self):
        return f"{self.op} {self.limit:g}" + ("x direct" if self.on == "direct" else "")

    def met(self, value, ratio):
        x = ratio if self.on == "direct" else value
        if x is None:
            return "?"
        compare = {">=": operator.ge, "<=": operator.le, "<": operator.lt}[self.op]
        return "yes" if compare(x, self.limit) else "no"


@dataclass
class Row:
    metric: str
    values: dict  # side -> number (missing: does not apply)
    digits: int = 1
    target: Target = None
    note: str = ""


def _num(x, digits):
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(a, b):
    return a / b if a is not None and b else None


def cells(row):
    v = row.values
    mg = v.get("mailgate")
    vs_direct, vs_haproxy = _ratio(mg, v.get("direct")), _ratio(mg, v.get("haproxy"))
    target = row.target.text() if row.target else ""
    met = row.target.met(mg, vs_direct) if row.target else ""
    return (row.metric, *(_num(v.get(s), row.digits) for s in SIDES),
            _num(vs_direct, 2) + ("x" if vs_direct is not None else ""),
            _num(vs_haproxy, 2) + ("x" if vs_haproxy is not None else ""), target, met)


def render(rows):
    lines = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for line in lines:
        out.append("  ".join(c.ljust(w) if i in (0, 6, 7) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths))).rstrip())
    notes = [f"  note: {r.metric}: {r.note}" for r in rows if r.note]
    return "\n".join(out + notes)


def render_markdown(rows):
    """The same table for docs/design.md."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(out)
