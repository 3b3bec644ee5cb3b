"""`report experiment NAME`: the experiment's two groups side by side, the differences with 95%
confidence intervals, and one line of verdict.

Definitions (issue 19; where it was silent, chosen here):

- The window: from the experiment's start to the day before its stop, or to `--as-of` if earlier
  (the whole days of both). Groups: every member enrolled by the window's end (erased members too,
  as in every report), assigned by the experiment's hash (experiments.py); control is everyone
  else, members who joined during the window included.
- Per member, over the window: sales (count), spend (sales less refunds, each on its own date),
  visits (days with a sale), points issued (signup, earn, bonus and referral credits less the
  reversals of refunds) and their cost (points × point_value of the programme in force at the
  window's end). A group's figure "per member" is the mean over all its members, buyers or not;
  active members bought at least once; the repeat rate is the share of active members with two
  visits or more.
- Differences are variant − control. The 95% interval is Welch's: the standard error
  √(s₁²/n₁ + s₂²/n₂) from the per-member sample variances (`statistics.variance`), the degrees of
  freedom by Welch-Satterthwaite, and the exact Student t quantile for those degrees of freedom
  (computed here from the regularised incomplete beta function, so no scipy: `t_quantile`).
- The verdict is about spend: when its interval excludes zero, "variant members spent X more
  (less) each (95% CI a to b); their points cost Y more (less) each". Otherwise, how many more
  weeks would be needed: spend per member and its variance both grow in proportion to the time
  an experiment runs (purchases arrive at a steady rate), so the t statistic grows as √time; for
  the interval to exclude zero with 80% power at the difference observed, t must reach
  z₀.₉₇₅ + z₀.₈₀ = 1.96 + 0.84, so the experiment needs weeks_so_far × ((1.96 + 0.84) / |t|)²
  weeks in all, and N is that less the weeks so far (rounded up, at least 1).

Pure: rows through store.experiments; floats only for the statistics, money shown in minor units
of the programme's currency.
"""

from __future__ import annotations

import math
from fractions import Fraction

from loyalty_cli import experiments, values
from loyalty_cli.errors import LoyaltyError, NotFound
from loyalty_cli.i18n import M_
from loyalty_cli.program import load_programme
from loyalty_cli.store import experiments as rows

Z_975 = 1.959963984540054
Z_80 = 0.8416212335729143
MAX_WEEKS = 520  # ten years: beyond this, the difference is too small to measure at this rate


# -- Student's t, without scipy -------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom (any df > 0, not only whole ones)."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T ≤ t) = p (0.5 < p < 1), by bisection on t_cdf (to 1e-12)."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def welch(control: list[float], variant: list[float]) -> dict | None:
    """Welch's comparison of the means (variant − control): difference, standard error, degrees of
    freedom, t, and the 95% interval; None when a group has fewer than 2 members."""
    import statistics

    n1, n2 = len(control), len(variant)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = statistics.fmean(control), statistics.fmean(variant)
    v1, v2 = statistics.variance(control, m1), statistics.variance(variant, m2)
    diff = m2 - m1
    a, b = v1 / n1, v2 / n2
    se = math.sqrt(a + b)
    if se == 0:
        return {"difference": diff, "se": 0.0, "df": None, "t": None, "low": diff, "high": diff}
    df = (a + b) ** 2 / ((a * a / (n1 - 1) if a else 0.0) + (b * b / (n2 - 1) if b else 0.0))
    q = t_quantile(0.975, df)
    return {"difference": diff, "se": se, "df": df, "t": diff / se, "low": diff - q * se, "high": diff + q * se}


# -- the report -------------------------------------------------------------------------------
def report(store, name: str, as_of: str) -> dict:
    """`report experiment NAME --as-of D`."""
    name = values.id_lookup(name, M_("experiment name"))
    with store.read() as tx:
        found = {e.name: e for e in experiments.load(tx).all}
        e = found.get(name)
        if e is None:
            hint = M_(" (experiments: {known})", known=', '.join(sorted(found))) if found else M_(" (there are no experiments)")
            raise NotFound(M_("experiment {name} not found{hint}", name=name, hint=hint))
        if as_of < e.starts_on:
            raise LoyaltyError(M_("experiment {name} starts on {starts_on}: nothing to report as of {as_of}", name=name, starts_on=e.starts_on, as_of=as_of))
        last_day = as_of if e.stops_on is None or as_of < e.stops_on else values.add_days(e.stops_on, -1)
        end = values.end_of_day(last_day)
        programme = load_programme(tx)
        decimals = programme.currency_decimals
        point_value = programme.for_date(last_day).point_value
        members = rows.members_joined_by(tx, end)
        purchases = {r[0]: r[1:] for r in rows.purchase_totals(tx, e.starts_on, end)}
        points = dict(rows.points_totals(tx, e.starts_on, end))
    days = values.days_between(e.starts_on, last_day) + 1
    groups = {"control": [], "variant": []}
    for member_id, _joined in members:
        sales, sold, refunded, visits = purchases.get(member_id, (0, 0, 0, 0))
        p = points.get(member_id, 0)
        groups["variant" if e.in_variant(member_id) else "control"].append(
            (sales, sold - refunded, visits, p))
    scale = point_value * 10**decimals  # a point's cost in minor units (exact)
    summary = {g: _group(figures, scale, decimals) for g, figures in groups.items()}
    measures = {}
    for key, at in (("sales", 0), ("spend", 1), ("visits", 2), ("points", 3)):
        measures[key] = welch([float(f[at]) for f in groups["control"]], [float(f[at]) for f in groups["variant"]])
    cost = welch([float(f[3] * scale) for f in groups["control"]], [float(f[3] * scale) for f in groups["variant"]])
    measures["points_cost"] = cost
    differences = {key: _shown(w, key, decimals) for key, w in measures.items()}
    verdict, weeks = _verdict(measures, decimals, days, summary)
    return {"experiment": name, "share": e.share_text, "from": e.starts_on, "to": last_day, "as_of": as_of,
            "stopped_from": e.stops_on, "days": days, "groups": summary, "differences": differences,
            "verdict": verdict, "more_weeks_needed": weeks, "interval": "95% Welch, Student t quantile"}


def _group(figures: list[tuple], scale: Fraction, decimals: int) -> dict:
    n = len(figures)
    active = sum(1 for f in figures if f[0] > 0)
    repeat = sum(1 for f in figures if f[2] >= 2)

    def mean(at: int) -> Fraction:
        return Fraction(sum(f[at] for f in figures), n) if n else Fraction(0)

    points = mean(3)
    return {
        "members": n, "active_members": active,
        "sales_per_member": _number(mean(0), 2),
        "spend_per_member": values.format_money(round(mean(1)), decimals),
        "visits_per_member": _number(mean(2), 2),
        "repeat_rate": _number(Fraction(repeat, active), 4) if active else None,
        "points_per_member": _number(points, 1),
        "points_cost_per_member": values.format_money(round(points * scale), decimals),
        "spend_total": values.format_money(sum(f[1] for f in figures), decimals),
        "points_total": sum(f[3] for f in figures),
    }


def _number(value, places: int) -> str:
    """A mean as text with `places` decimals (JSON keeps it as text, like money: never a float)."""
    return f"{float(value):.{places}f}"


def _money(minor: float, decimals: int) -> str:
    return values.format_money(round(minor), decimals)


def _shown(w: dict | None, key: str, decimals: int) -> dict | None:
    """A Welch result as shown: money in the currency's format, counts with 2 decimals."""
    if w is None:
        return None
    fmt = (lambda x: _money(x, decimals)) if key in ("spend", "points_cost") else (lambda x: _number(x, 2))
    return {"difference": fmt(w["difference"]), "ci_low": fmt(w["low"]), "ci_high": fmt(w["high"]),
            "df": None if w["df"] is None else round(w["df"], 1), "t": None if w["t"] is None else round(w["t"], 3),
            "excludes_zero": w["low"] > 0 or w["high"] < 0}


def _verdict(measures: dict, decimals: int, days: int, summary: dict) -> tuple[str, int | None]:
    """One line saying what the groups' difference means (English where JSON has it, a person reads
    it in their language: a Msg), and how many more weeks would be needed when none shows yet."""
    spend, cost = measures["spend"], measures["points_cost"]
    if spend is None:
        return M_("too few members to compare yet (control {control}, variant {variant}: each group needs at least 2)",
                  control=summary['control']['members'], variant=summary['variant']['members']), None
    if spend["low"] > 0 or spend["high"] < 0:
        shown = dict(amount=_money(abs(spend['difference']), decimals), low=_money(spend['low'], decimals),
                     high=_money(spend['high'], decimals))
        text = (M_("variant members spent {amount} more each (95% CI {low} to {high})", **shown) if spend["difference"] > 0
                else M_("variant members spent {amount} less each (95% CI {low} to {high})", **shown))
        if cost is not None:
            amount = _money(abs(cost['difference']), decimals)
            text = (M_("{spent}; their points cost {amount} more each", spent=text, amount=amount)
                    if cost['difference'] >= 0 else
                    M_("{spent}; their points cost {amount} less each", spent=text, amount=amount))
        return text, None
    t = abs(spend["t"] or 0.0)
    weeks = days / 7
    if t == 0:
        return M_("no difference distinguishable from chance yet: the groups spent the same per member so far, "
                  "so no number of weeks at this rate would tell them apart"), None
    needed = weeks * ((Z_975 + Z_80) / t) ** 2
    more = max(1, math.ceil(needed - weeks))
    if more > MAX_WEEKS:
        return M_("no difference distinguishable from chance yet: more than {weeks} more weeks at this rate would "
                  "be needed (the difference is too small to measure)", weeks=MAX_WEEKS), None
    if more == 1:
        return M_("no difference distinguishable from chance yet: 1 more week at this rate would be needed"), more
    return M_("no difference distinguishable from chance yet: {more} more weeks at this rate would be needed",
              more=more), more
