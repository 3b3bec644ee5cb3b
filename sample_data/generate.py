"""Generate the sample data set of a small neighbourhood deli.

Writes, next to this script:

- members.csv   about 300 members (M0001..M0300), in joined_on order;
- purchases.csv about 6,000 sales and 100 refunds, 2025-05-01..2026-10-31,
                in time order, with a few patterns for the anomaly report
                (8 sales in a day, a burst of tiny sales, a serial refunder);
- program.toml  the shop's programme rules (SPEC.md section 6).

Run from the repository root:

    python sample_data/generate.py

The output is deterministic (seeded), so re-running it rewrites the same files.
Standard library only.
"""

import csv
import math
import random
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(2026)

N_MEMBERS = 300
TARGET_SALES = 6000
TARGET_REFUNDS = 100
START, END = date(2025, 5, 1), date(2026, 10, 31)  # purchases
JOIN_FROM, JOIN_TO = date(2025, 1, 1), date(2026, 6, 30)
OPEN, CLOSE = 8 * 3600, 20 * 3600  # opening hours, seconds after midnight
DOMAINS = ["example.com", "mail.example", "shop.example"]
CATEGORIES = {"grocery": 30, "produce": 15, "bakery": 14, "dairy": 12, "deli": 12,
              "drinks": 10, "household": 5, "tobacco": 4, "gifts": 2}

# (weight, first names, last names): names are drawn within one group.
NAMES = [
    (8, "Oliver Amelia George Isla Harry Olivia Jack Emily Thomas Sophie Margaret "
        "Peter Zoë Siobhán Niamh Seán Aoife Callum Eilidh Gareth Rhiannon".split(),
        "Smith Jones Taylor Brown Wilson Evans Walker Hughes O'Brien Murphy Kelly "
        "Byrne Campbell MacDonald Brontë Davies Price Fletcher".split()),
    (2, "José María Lucía Javier Ana Martín Inés Andrés Pilar".split(),
        "Núñez García Fernández López Martínez Pérez Gómez Peña Ibáñez".split()),
    (1, "João Gonçalo Beatriz Leonor Inês Tomás".split(),
        "Gonçalves Simões Araújo Conceição Fonseca".split()),
    (1, "François Renée Chloé Hélène Théo Élodie Amélie".split(),
        "Lefèvre Dubois Moreau Bérenger Girard Chevalier".split()),
    (1, "Jürgen Jörg Anneliese Søren Åsa Björn Käthe".split(),
        "Müller Schröder Weiß Jørgensen Sørensen Lindqvist".split()),
    (2, "Łukasz Małgorzata Zofia Krzysztof Agnieszka Wojciech".split(),
        "Nowak Wójcik Mazur Krawczyk Zając".split()),
    (1, "Mehmet Ayşe Emre Elif Özlem Can".split(),
        "Yılmaz Kaya Demir Şahin Çelik Öztürk".split()),
    (3, "Priya Arjun Aisha Rahul Ananya Imran Fatima Sanjay Deepa Harpreet".split(),
        "Patel Shah Sharma Khan Hussain Singh Iyer Chaudhry Begum".split()),
    (1, "Wei Mei Jun Xiaoling Hao".split(), "Chen Wang Li Zhang Liu".split()),
    (1, "Hiroshi Yuki Haruto Sakura".split(), "Tanaka Suzuki Watanabe Itō".split()),
    (1, "Thanh Linh Minh Huong".split(), "Nguyen Tran Pham Le".split()),
    (2, "Chinedu Ngozi Oluwaseun Adaeze Emeka Folake".split(),
        "Okafor Adeyemi Okonkwo Balogun Eze".split()),
    (1, "Kwame Ama Kofi Abena Yaw Akosua".split(), "Mensah Boateng Owusu Asante".split()),
    (2, "Giuseppe Francesca Luca Chiara Niccolò Giulia".split(),
        "Rossi Bianchi Esposito Romano Ricci Conti".split()),
    (1, "Omar Layla Yusuf Nour Karim Samira".split(),
        "Haddad Khalil Mansour Nasser Saleh".split()),
]

# Shopping habits: weight, weekly visits (low, high), median basket.
PROFILES = {
    "never":      (5, (0, 0), 0),
    "rare":       (45, (0.02, 0.25), 11),
    "occasional": (34, (0.25, 0.9), 13),
    "regular":    (16, (0.9, 2.2), 17),
}


def rand_date(a, b):
    return a + timedelta(days=rng.randint(0, (b - a).days))


def at(day, seconds):
    return datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)


def slug(text):
    """'Małgorzata' -> 'malgorzata', "O'Brien" -> 'obrien'."""
    text = text.lower().translate(str.maketrans({"ł": "l", "ø": "o", "ß": "ss", "ı": "i"}))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in text if c.isalnum())


def make_members():
    joined = sorted(rand_date(JOIN_FROM, JOIN_TO) for _ in range(N_MEMBERS))
    weights = [w for w, _, _ in NAMES]
    emails, phones, members = set(), set(), []
    for i, joined_on in enumerate(joined):
        _, firsts, lasts = rng.choices(NAMES, weights)[0]
        first, last = rng.choice(firsts), rng.choice(lasts)
        email = ""
        if rng.random() > 0.10:
            local, n = f"{slug(first)}.{slug(last)}", 1
            while local in emails:
                n += 1
                local = f"{slug(first)}.{slug(last)}{n}"
            emails.add(local)
            email = f"{local}@{rng.choice(DOMAINS)}"
        phone = ""
        if rng.random() > 0.20:
            while not phone or phone in phones:  # mobile or London, fictional ranges
                phone = (f"+44 7700 900{rng.randint(0, 999):03d}" if rng.random() < 0.8
                         else f"+44 20 7946 0{rng.randint(0, 999):03d}")
            phones.add(phone)
        birthday = ""
        if rng.random() < 0.70:
            birthday = (date(2026, 6, 30) - timedelta(days=rng.randint(18 * 366, 85 * 365))).isoformat()
        referred_by = members[rng.randrange(i)]["member_id"] if i and rng.random() < 0.10 else ""
        members.append({"member_id": f"M{i + 1:04d}", "name": f"{first} {last}", "email": email,
                        "phone": phone, "birthday": birthday, "joined_on": joined_on,
                        "referred_by": referred_by})
    # Birthday reports around the demo date (November) should show something.
    late = [m for m in members if m["birthday"][5:7] in ("11", "12")]
    others = [m for m in members if m["birthday"] and m not in late]
    for m in rng.sample(others, max(0, 15 - len(late))):
        m["birthday"] = f"{m['birthday'][:4]}-11-{min(int(m['birthday'][8:]), 30):02d}"
    return members


def basket(median):
    """A basket's amount in cents: lognormal, 0.50 .. 250.00."""
    return max(50, min(25000, round(rng.lognormvariate(math.log(median), 0.75) * 100)))


def sale(member, when, cents=None, category=None, median=14):
    category = category or rng.choices(list(CATEGORIES), CATEGORIES.values())[0]
    if cents is None:
        cents = basket(median * (1.6 if category == "gifts" else 1))
    return {"member": member["member_id"], "at": when, "cents": cents,
            "category": category, "kind": "sale", "refund_of": None}


def refund(of, full=None):
    """A refund of sale `of`, same day (later) or up to 30 days after, never past END."""
    sold = of["at"]
    day = sold.date() + timedelta(days=rng.randint(0, min(30, (END - sold.date()).days)))
    lo = sold.hour * 3600 + sold.minute * 60 + sold.second + 60 if day == sold.date() else OPEN
    if lo >= CLOSE:
        day, lo = day + timedelta(days=1), OPEN
    full = rng.random() < 0.5 if full is None else full
    cents = of["cents"] if full else rng.randint(max(1, of["cents"] // 10), of["cents"] - 1)
    return {"member": of["member"], "at": at(day, rng.randint(lo, CLOSE - 1)), "cents": cents,
            "category": "", "kind": "refund", "refund_of": of}


def visits(member, first, last, per_week, median):
    p = min(per_week / 7, 0.95)
    return [sale(member, at(first + timedelta(days=d), rng.randint(OPEN, CLOSE - 1)), median=median)
            for d in range((last - first).days + 1) if rng.random() < p]


def make_purchases(members):
    early = [m for m in members if m["joined_on"] < date(2025, 9, 1)]
    picked = rng.sample(early, 7)
    heavy, special = picked[:4], picked[4:]  # special: the anomaly members
    heavy_median = dict(zip((m["member_id"] for m in heavy), (30, 26, 15, 12)))
    plans = []  # (member, first day, last day, visits per week, median basket)
    for m in members:
        first = max(m["joined_on"], START)
        if m in heavy:  # the regulars who come in most days
            plans.append((m, first, END, rng.uniform(3.5, 5.5), heavy_median[m["member_id"]]))
            continue
        weights = [p[0] for p in PROFILES.values()]
        name = "occasional" if m in special else rng.choices(list(PROFILES), weights)[0]
        _, (lo, hi), median = PROFILES[name]
        last = rand_date(first, END) if rng.random() < 0.2 else END  # some churn
        plans.append((m, first, last, rng.uniform(lo, hi), median))
    # Scale habits (not the heavy regulars) so the total comes out near TARGET_SALES.
    expected = [w * ((b - a).days + 1) / 7 for m, a, b, w, _ in plans]
    fixed = sum(e for e, p in zip(expected, plans) if p[0] in heavy)
    scale = (TARGET_SALES - fixed) / (sum(expected) - fixed)
    sales = []
    for m, first, last, per_week, median in plans:
        sales += visits(m, first, last, per_week * (1 if m in heavy else scale), median)

    # Anomalies. A: 8 sales in one day. B: 6 sales under 2.00 within 40 minutes.
    # C: 6 refunds out of 15 sales.
    a, b, c = special
    day_a, day_b = (rand_date(date(2026, 1, 5), date(2026, 9, 30)) for _ in range(2))
    sales = [s for s in sales if not (s["member"] == a["member_id"] and s["at"].date() == day_a)
             and not (s["member"] == b["member_id"] and s["at"].date() == day_b)
             and s["member"] != c["member_id"]]
    times = sorted(rng.sample(range(OPEN, CLOSE, 60), 8))
    sales += [sale(a, at(day_a, t)) for t in times]
    t = rng.randint(10 * 3600, 17 * 3600)
    for _ in range(6):
        sales.append(sale(b, at(day_b, t), rng.randint(50, 195), rng.choice(["drinks", "bakery", "tobacco"])))
        t += rng.randint(240, 450)
    days_c = sorted(rng.sample(range((END - max(c["joined_on"], START)).days), 15))
    sales_c = [sale(c, at(max(c["joined_on"], START) + timedelta(days=d), rng.randint(OPEN, CLOSE - 1)))
               for d in days_c]
    sales += sales_c
    refunds = [refund(s, full=i % 2 == 0) for i, s in enumerate(rng.sample(sales_c, 6))]

    # A handful of visits that bought nothing.
    ordinary = [s for s in sales if s["member"] not in {x["member_id"] for x in special}]
    for s in rng.sample(ordinary, 5):
        s["cents"], s["category"] = 0, ""

    # Ordinary refunds, at most one per 25 sales of a member, so that only
    # member C stands out in the refund-ratio report.
    per_member = {}
    for s in ordinary:
        per_member[s["member"]] = per_member.get(s["member"], 0) + 1
    used = {}
    for s in rng.sample(ordinary, len(ordinary)):
        if len(refunds) == TARGET_REFUNDS:
            break
        if s["cents"] and s["at"].date() < END and used.get(s["member"], 0) < per_member[s["member"]] // 25:
            used[s["member"]] = used.get(s["member"], 0) + 1
            refunds.append(refund(s))

    rows = sorted(sales + refunds, key=lambda r: (r["at"], r["kind"] == "refund", r["member"]))
    for n, r in enumerate(rows, 1):
        r["id"] = f"T{n:06d}"
    return rows


def write_csv(name, header, rows):
    with open(HERE / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


PROGRAM = """\
# Loyalty programme of the deli (sample). Load with: loyalty program load sample_data/program.toml
# Money values and multipliers are written as text ("1.50") so they are exact.

currency_decimals = 2           # pence: amounts have two decimals
point_value = "0.01"            # one point is worth 1p (used by the liability report)

# How customers earn points.
[earn]
points_per_unit = "1"           # 1 point per 1.00 spent
rounding = "down"               # fractions of a point are dropped
min_amount = "1.00"             # baskets under 1.00 earn nothing
stacking = "max"                # when several promotions apply, only the biggest counts
signup_bonus = 50               # welcome points when someone joins
first_purchase_multiplier = "2" # double points on a member's first purchase
birthday_multiplier = "2"       # double points during the member's birthday month
referral_bonus = 100            # to the member who referred a friend, on the friend's first purchase

# Categories that earn differently ("0" = no points; not listed = normal).
[[earn.categories]]
name = "tobacco"
multiplier = "0"                # no points on tobacco

[[earn.categories]]
name = "gifts"
multiplier = "1.5"              # hampers and gifts earn half as much again

# Promotions, dates inclusive; categories = [] means everything in the shop.
[[campaigns]]
name = "double-weekend"
from = "2025-12-06"
to = "2025-12-07"
multiplier = "2"
categories = []

[[campaigns]]
name = "bakery-week"
from = "2026-03-09"
to = "2026-03-15"
multiplier = "1.5"
categories = ["bakery"]

# Points expire 12 months after they were earned, at the end of that month.
[expiry]
months = 12
round_to = "month_end"

# Tiers by what a member spent in the last 12 months; a tier is kept at least 12 months.
# Each tier's multiplier boosts every purchase's points.
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
levels = [
  { name = "Bronze",   min = "0",    multiplier = "1" },
  { name = "Silver",   min = "500",  multiplier = "1.25" },
  { name = "Gold",     min = "1500", multiplier = "1.5" },
  { name = "Platinum", min = "5000", multiplier = "2" },
]

# Members may give points to each other, up to a monthly limit per sender.
[transfers]
enabled = true
max_points_per_month = 10000

# What the anomaly (fraud) report looks for.
[anomalies]
max_sales_per_day = 5           # more sales than this by one member in a day
small_sale = "2.00"             # a burst: this many small sales ...
small_burst = 5
small_burst_minutes = 60        # ... within this many minutes
refund_ratio_factor = "3"       # a member refunding 3x more often than the shop average
award_redeem_points = 500       # a manual award of at least this much ...
award_redeem_days = 7           # ... redeemed within this many days
"""


def main():
    members = make_members()
    write_csv("members.csv", ["member_id", "name", "email", "phone", "birthday", "joined_on", "referred_by"],
              [[m["member_id"], m["name"], m["email"], m["phone"], m["birthday"],
                m["joined_on"].isoformat(), m["referred_by"]] for m in members])
    rows = make_purchases(members)
    write_csv("purchases.csv",
              ["purchase_id", "member_id", "purchased_at", "amount", "category", "kind", "refund_of"],
              [[r["id"], r["member"], r["at"].isoformat(), f"{r['cents'] // 100}.{r['cents'] % 100:02d}",
                r["category"], r["kind"], r["refund_of"]["id"] if r["refund_of"] else ""] for r in rows])
    (HERE / "program.toml").write_text(PROGRAM, encoding="utf-8")
    print(f"wrote {len(members)} members, {len(rows)} purchases and program.toml to {HERE}")


if __name__ == "__main__":
    main()
