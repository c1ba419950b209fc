"""A bulletin's opening paragraph, in words: what the period's figures say, set against the period before."""

from __future__ import annotations

from console.bulletin.figures import Bulletin
from console.words import Language


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f} %"


def opening(b: Bulletin, lang: Language = "zh") -> str:
    c = b.coverage
    failed = len(b.failures)
    disposed = sum(1 for f in b.failures if f.disposition is not None)
    retention = b.dishes_retained / b.dishes_expected if b.dishes_expected else None
    zh = lang == "zh"
    scope = b.scope or ("全市" if zh else "the city")
    if zh:
        text = (
            f"{b.period.first.isoformat()} 至 {b.period.last.isoformat()}，{scope} {c.total} 所学校食堂中 {c.tested} 所"
            f"开展了快检，共检测样品 {b.tests} 个，合格率 {_pct(b.pass_rate)}；不合格 {failed} 个，已处置 {disposed} 个"
            f"{f'，待处置 {failed - disposed} 个' if failed - disposed else ''}。"
            f"留样率 {_pct(retention)}，后厨时段摄像头在线率 {_pct(b.camera_online_rate)}。"
        )
    else:
        text = (
            f"From {b.period.first.isoformat()} to {b.period.last.isoformat()}, {c.tested} of the {scope}'s {c.total} "
            f"school canteens tested {b.tests} samples; {_pct(b.pass_rate)} passed. {failed} failed, {disposed} of "
            f"them disposed of. Samples were kept of {_pct(retention)} of the dishes; cameras were online "
            f"{_pct(b.camera_online_rate)} of kitchen hours."
        )
    p = b.previous
    if p is None or not p.tests:
        return text + ("上期无检测记录可比。" if zh else " The period before has no tests to compare with.")
    change = b.tests - p.tests
    if b.pass_rate is None or p.pass_rate is None:
        return text
    points = (b.pass_rate - p.pass_rate) * 100
    if zh:
        more = f"增加 {change} 个" if change > 0 else (f"减少 {-change} 个" if change < 0 else "持平")
        rate = (
            f"上升 {points:.2f} 个百分点" if points > 0 else (f"下降 {-points:.2f} 个百分点" if points < 0 else "持平")
        )
        return text + f"与上期（{p.label}）相比，检测样品{more}，合格率{rate}，不合格由 {p.failed} 个变为 {failed} 个。"
    more = f"{abs(change)} {'more' if change > 0 else 'fewer'} samples" if change else "as many samples"
    return text + (
        f" Against the period before ({p.label}): {more}, the pass rate {points:+.2f} points, failures "
        f"{p.failed} → {failed}."
    )
