"""生成示例数据：一家社区烘焙便利店（和记面包坊）的会员和消费。

Generate the Chinese sample shop (a neighbourhood bakery and convenience store) next to this
script, for `make demo-zh`:

- members.csv    200 members (H0001..H0200) with Chinese names and +86 mobile numbers;
- purchases.csv  about 3,000 sales and 40 refunds, 2025-05-01..2026-10-31, in time order;
- program.toml   the shop's programme: 铜卡/银卡/金卡/白金卡, yuan with currency_symbol "¥".

Run from the repository root:

    python sample_data/zh/generate.py

The output is deterministic (seeded), so re-running it rewrites the same files.
Standard library only.
"""

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
rng = random.Random(2121)

N_MEMBERS = 200
TARGET_SALES = 3000
TARGET_REFUNDS = 40
START, END = date(2025, 5, 1), date(2026, 10, 31)
JOIN_FROM, JOIN_TO = date(2025, 1, 1), date(2026, 8, 31)
OPEN, CLOSE = 7 * 3600, 22 * 3600  # 早七点到晚十点
CATEGORIES = {"烘焙": 30, "饮品": 20, "零食": 15, "乳品": 12, "日用": 10, "生鲜": 8, "礼盒": 3, "烟酒": 2}
SURNAMES = ("王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 "
            "彭 曾 萧 田 董 潘 袁 蔡 蒋 余 于 杜 叶 程 魏 苏 吕 丁 任 沈 欧阳 司马").split()
GIVEN = ("伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 华 慧 建华 子轩 欣怡 浩然 梓涵 "
         "雨桐 宇航 诗涵 一诺 思远 佳怡 俊杰 晓燕 海燕 志强 丽娟 文博 婷婷 晨曦 嘉怡").split()
PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187", "188", "177")
EMAIL_DOMAINS = ("qq.example", "163.example", "shop.example")


def mobile(i: int) -> str:
    """A +86 mobile number, written as people write them (+86 138 1234 5678); unique per member."""
    prefix = PREFIXES[i % len(PREFIXES)]
    rest = f"{(i * 7919 + 1234) % 10000:04d}{rng.randrange(10000):04d}"
    return f"+86 {prefix} {rest[:4]} {rest[4:]}"


def members() -> list[dict]:
    rows = []
    span = (JOIN_TO - JOIN_FROM).days
    joined = sorted(JOIN_FROM + timedelta(days=rng.randrange(span)) for __ in range(N_MEMBERS))
    for i, day in enumerate(joined, 1):
        surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
        born = date(rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 29))
        email = f"member{i:04d}@{rng.choice(EMAIL_DOMAINS)}" if rng.random() < 0.35 else ""
        referred = f"H{rng.randrange(1, i):04d}" if i > 10 and rng.random() < 0.08 else ""
        rows.append({"member_id": f"H{i:04d}", "name": surname + given, "email": email, "phone": mobile(i),
                     "birthday": born.isoformat() if rng.random() < 0.8 else "", "joined_on": day.isoformat(),
                     "referred_by": referred})
    return rows


def purchases(people: list[dict]) -> list[dict]:
    """Sales by members who come back at their own rhythm (a few regulars, many occasional),
    amounts in yuan, some refunds of earlier sales."""
    weights = [rng.paretovariate(1.3) for __ in people]
    joined = [date.fromisoformat(p["joined_on"]) for p in people]
    categories, category_weights = list(CATEGORIES), list(CATEGORIES.values())
    sales = []
    days = (END - START).days + 1
    while len(sales) < TARGET_SALES:
        k = rng.choices(range(len(people)), weights)[0]
        first = max(START, joined[k])
        if first > END:
            continue
        day = first + timedelta(days=rng.randrange((END - first).days + 1))
        at = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(OPEN, CLOSE))
        category = rng.choices(categories, category_weights)[0]
        base = {"礼盒": 168, "烟酒": 60, "生鲜": 35, "日用": 30}.get(category, 18)
        amount = round(max(2.5, rng.lognormvariate(0, 0.6) * base), 1)
        sales.append((at, people[k]["member_id"], f"{amount:.2f}", category))
    sales.sort()
    rows = [{"purchase_id": f"X{i:06d}", "member_id": m, "purchased_at": at.isoformat(), "amount": amount,
             "category": category, "kind": "sale", "refund_of": ""}
            for i, (at, m, amount, category) in enumerate(sales, 1)]
    refunds = []
    for sale in rng.sample(rows[:-50], TARGET_REFUNDS):
        at = datetime.fromisoformat(sale["purchased_at"]) + timedelta(hours=rng.randrange(1, 72))
        if at.date() > END:
            continue
        amount = sale["amount"] if rng.random() < 0.6 else f"{float(sale['amount']) / 2:.2f}"
        refunds.append({"purchase_id": "R" + sale["purchase_id"][1:], "member_id": sale["member_id"],
                        "purchased_at": at.replace(microsecond=0).isoformat(), "amount": amount,
                        "category": sale["category"], "kind": "refund", "refund_of": sale["purchase_id"]})
    return sorted(rows + refunds, key=lambda r: r["purchased_at"])


PROGRAM = '''# 和记面包坊的会员积分规则（示例）。加载：loyalty program load sample_data/zh/program.toml
# 金额和倍率写成文本（"1.50"），以保证精确。

currency_decimals = 2           # 人民币：金额两位小数（元、角、分）
currency_symbol = "¥"           # 只在给人看的输出中显示（JSON 和 CSV 中没有）
point_value = "0.01"            # 1 积分抵 1 分钱（积分负债报表用）

# 积分累积
[earn]
points_per_unit = "1"           # 每消费 1 元得 1 积分
rounding = "down"               # 不足 1 积分的部分舍去
min_amount = "5.00"             # 不满 5 元的消费不积分
stacking = "max"                # 多个活动同时适用时，只取倍率最高的
signup_bonus = 100              # 入会礼：100 积分
first_purchase_multiplier = "2" # 首单双倍积分
birthday_multiplier = "2"       # 生日当月双倍积分
referral_bonus = 200            # 推荐新会员，新会员首单后推荐人得 200 积分
pending_days = 0

[[earn.categories]]
name = "烟酒"
multiplier = "0"                # 烟酒不积分

[[earn.categories]]
name = "礼盒"
multiplier = "1.5"              # 节日礼盒 1.5 倍积分

# 营销活动，日期含首尾；categories = [] 表示全店
[[campaigns]]
name = "双十一"
from = "2025-11-11"
to = "2025-11-11"
multiplier = "2"
categories = []

[[campaigns]]
name = "春节"
from = "2026-02-14"
to = "2026-02-22"
multiplier = "1.5"
categories = ["礼盒", "烘焙"]

# 积分有效期：获得后 12 个月，到当月月底过期
[expiry]
months = 12
round_to = "month_end"

# 会员等级：按近 12 个月消费额，保级 12 个月；倍率加在每笔消费的积分上
[tiers]
basis = "spend"
window = "rolling_12m"
hold_months = 12
levels = [
  { name = "铜卡",   min = "0",    multiplier = "1" },
  { name = "银卡",   min = "800",  multiplier = "1.2" },
  { name = "金卡",   min = "2500", multiplier = "1.5" },
  { name = "白金卡", min = "6000", multiplier = "2" },
]

# 会员之间可以转赠积分，每人每月有上限
[transfers]
enabled = true
max_points_per_month = 5000

# 异常（防刷单）报表的阈值
[anomalies]
max_sales_per_day = 5
small_sale = "3.00"
small_burst = 5
small_burst_minutes = 60
refund_ratio_factor = "3"
award_redeem_points = 500
award_redeem_days = 7
'''


def write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    people = members()
    write("members.csv", people)
    write("purchases.csv", purchases(people))
    (HERE / "program.toml").write_text(PROGRAM, encoding="utf-8")
