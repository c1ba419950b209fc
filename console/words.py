"""What the console says, in Chinese (the default) and English: its labels, and the platform's codes in words.

A code the catalogue does not know is shown as it is, never dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from devices.items import BUILTIN, ItemCatalogue
from devices.vocabulary import AREAS, CATEGORIES, KINDS, MEALS, METHODS, UNITS, VERDICTS, VIOLATIONS, short_reading
from rules.messages import RULES

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")

_W = dict[str, tuple[str, str]]  # key -> (zh, en)

LABELS: _W = {
    "app": ("食安监管平台", "Shian food-safety console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "logout_everywhere": ("退出所有设备", "Log out everywhere"),
    "username": ("账号", "Account"),
    "password": ("密码", "Password"),
    "login_failed": ("账号或密码错误", "Wrong account or password"),
    "throttled": ("尝试次数过多，请 {seconds} 秒后再试", "Too many attempts; try again in {seconds} s"),
    "inbox": ("告警", "Alerts"),
    "overview": ("概览", "Overview"),
    "canteens": ("食堂", "Canteens"),
    "canteen": ("食堂", "Canteen"),
    "district": ("区县", "District"),
    "all": ("全部", "All"),
    "state": ("状态", "State"),
    "severity": ("级别", "Severity"),
    "rule": ("规则", "Rule"),
    "from": ("起", "From"),
    "to": ("止", "To"),
    "filter": ("筛选", "Filter"),
    "opened": ("发生时间", "Opened"),
    "updated": ("更新时间", "Updated"),
    "message": ("内容", "Message"),
    "escalation": ("通报层级", "Escalated to"),
    "notified": ("已通知", "Notified"),
    "evidence": ("证据记录", "Evidence"),
    "audit": ("处理记录", "Audit trail"),
    "open_snapshot": ("查看抓拍", "Open the snapshot"),
    "hours": ("{hours} 小时", "{hours} h"),
    "yes": ("是", "Yes"),
    "no": ("否", "No"),
    "the_platform": ("平台", "The platform"),
    "audit_severity": ("级别：{severity}", "severity: {severity}"),
    "audit_to": ("通知：{to}", "to {to}"),
    "audit_disposition": ("处置：{disposition}", "disposition: {disposition}"),
    "audit_review": ("复核：{review}", "review: {review}"),
    "audit_reminders": ("第 {count} 次提醒", "reminder {count}"),
    "audit_note": ("备注：{text}", "note: {text}"),
    "audit_why": ("原因：{text}", "why: {text}"),
    "audit_error": ("错误：{text}", "error: {text}"),
    "trace_batch": ("追溯该批次", "Trace this batch"),
    "received_untested": ("已收货，未检测", "Received, not tested"),
    "foods": ("食品", "Foods"),
    "quantity_kg": ("数量（千克）", "Quantity (kg)"),
    "certificates": ("证明链接（检验报告、合格证，每行一个）", "Certificate links (one a line)"),
    "received_by": ("验收人", "Received by"),
    "received_at": ("收货时间", "Received at"),
    "enter_delivery": ("登记进货", "Record a delivery"),
    "deliveries_today": ("今日进货", "Today's deliveries"),
    "deliveries_day": ("当日进货", "Deliveries that day"),
    "foods_hint": ("以“、”分隔", "separated by 、"),
    "certificate": ("证明", "Certificate"),
    # an audit entry as a sentence (console.evidence)
    "did_opened": ("{who}发出告警", "{who} raised the alert"),
    "did_updated": ("{who}补充了证据", "{who} added evidence"),
    "did_escalated_severity": ("{who}提高了级别", "{who} raised the severity"),
    "did_acknowledged": ("{who}确认收到", "{who} acknowledged it"),
    "did_resolved": ("{who}处置完毕", "{who} resolved it"),
    "did_escalated": ("{who}逐级通报", "{who} escalated it"),
    "did_refused": ("{who}的操作被拒绝", "{who} was refused"),
    "did_reminded": ("{who}再次提醒", "{who} sent a reminder"),
    "did_notified": ("{who}已发送通知", "{who} sent the notification"),
    "did_notify_failed": ("{who}发送通知失败", "{who} could not send the notification"),
    "day_before": ("前一天", "Day before"),
    "visit_sheet": ("检查单", "Visit sheet"),
    "visit_by": ("完成期限", "Visit by"),
    "why_drawn": ("抽中原因", "Why it was drawn"),
    "not_in_plan": ("不在本周抽查计划中", "not in this week's plan"),
    "checklist": ("检查项目", "Checklist"),
    "check_item": ("项目", "Item"),
    "check_ok": ("符合", "Fine"),
    "check_problem": ("不符合", "Not fine"),
    "canteen_signature": ("食堂负责人", "Canteen's manager"),
    "print": ("打印", "Print"),
    "handled_returned_to_supplier": ("已退回供应商", "Returned to the supplier"),
    "handled_destroyed": ("已销毁", "Destroyed"),
    "handled_other": ("已处理", "Handled"),
    "handling_resolved": ("已处理", "Handled"),
    "handling_acknowledged": ("处理中", "Being handled"),
    "handling_open": ("待处理", "Awaiting action"),
    "day_after": ("后一天", "Day after"),
    "canteen_day": ("当天食堂记录", "The canteen's day"),
    "actor": ("操作人", "By"),
    "action": ("操作", "Action"),
    "detail": ("说明", "Detail"),
    "acknowledge": ("确认收到", "Acknowledge"),
    "resolve": ("处置完毕", "Resolve"),
    "note": ("备注", "Note"),
    "disposition": ("处置方式", "Disposition"),
    "review": ("复核结论", "Review"),
    "previous": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "page_of": ("第 {page} 页，共 {total} 条", "Page {page} of {total} alerts"),
    "no_alerts": ("没有符合条件的告警", "No alert matches"),
    "live": ("实时更新", "Live"),
    "new_alerts": ("有新告警", "New alerts"),
    "times_in": ("时间为 {tz}", "Times in {tz}"),
    "today_tests": ("今日快检", "Today's rapid tests"),
    "day_tests": ("当日快检", "Rapid tests that day"),
    "today": ("今天", "Today"),
    "time": ("时间", "Time"),
    "sample": ("样品", "Sample"),
    "item": ("检测项目", "Item"),
    "method": ("方法", "Method"),
    "value": ("结果值", "Value"),
    "verdict": ("结论", "Verdict"),
    "tester": ("检测人", "Tester"),
    "supplier": ("供应商", "Supplier"),
    "batch": ("批次", "Batch"),
    "entered_by": ("手工录入", "Entered by hand"),
    "no_tests": ("今日暂无检测", "No test today yet"),
    "samples_today": ("今日留样", "Samples kept today"),
    "samples_day": ("当日留样", "Samples kept that day"),
    "meal": ("餐次", "Meal"),
    "menu": ("菜单", "Menu"),
    "kept": ("已留样", "Kept"),
    "missing": ("未留样", "Missing"),
    "weight": ("重量", "Weight"),
    "cabinet_temp": ("留样柜温度（24 小时）", "Sample cabinet temperature (24 h)"),
    "cameras_online": ("摄像头在线", "Cameras online"),
    "camera_wall": ("后厨画面", "Camera wall"),
    "take_still": ("截图留证", "Take a still"),
    "picture_live": ("有画面", "Picture live"),
    "picture_none": ("无画面", "No picture"),
    "watching": ("观看", "watching"),
    "pictures": ("现场画面", "From the stream"),
    "no_cameras": ("没有接入画面的摄像头。", "No camera with a picture."),
    "open_alerts": ("未处置告警", "Open alerts"),
    "devices": ("设备", "Devices"),
    "device": ("设备", "Device"),
    "kind": ("类型", "Kind"),
    "last_message": ("最后消息", "Last message"),
    "never": ("从未", "never"),
    "coverage": ("今日检测覆盖", "Tested today"),
    "coverage_of": ("{tested} / {covered} 个食堂", "{tested} of {covered} canteens"),
    "pass_rate": ("合格率", "Pass rate"),
    "tests": ("检测数", "Tests"),
    "most_alerts": ("告警最多的食堂", "Canteens with the most alerts"),
    "open_by_district": ("各区县未处置告警", "Open alerts by district"),
    "open_by_rule": ("各规则未处置告警", "Open alerts by rule"),
    "count": ("数量", "Count"),
    "not_found": ("没有找到，或您无权查看", "Not found, or not yours to see"),
    "forbidden": ("您无权进行此操作", "You may not do this"),
    "store_down": ("暂时无法读取检测数据，请稍后再试", "The readings cannot be read just now; try again shortly"),
    "csrf": ("表单已过期，请刷新页面后重试", "The form has expired; reload the page and try again"),
    "foreign_origin": (
        "请求不是来自本平台的页面，已拒绝",
        "The request did not come from this console's own pages and was refused",
    ),
    "done": ("已保存", "Saved"),
    "language": ("English", "中文"),
    "enter_test": ("录入快检结果", "Enter a test result"),
    "save": ("保存", "Save"),
    "sample_no": ("样品编号", "Sample no."),
    "food_category": ("食品类别", "Food category"),
    "unit": ("单位", "Unit"),
    "method_std": ("检测标准", "Standard"),
    "tested_at": ("检测时间", "Tested at"),
    "receipt_stored": ("已入库", "Stored"),
    "read_at": ("检测时间", "Time read"),
    "verdict_note_device": (
        "检测仪判定{device}，平台按 {standard} 复核为{platform}",
        "the detector said {device}; the platform re-checked it against {standard}: {platform}",
    ),
    "verdict_note_entered": (
        "录入为{device}，平台按 {standard} 复核为{platform}",
        "entered as {device}; the platform re-checked it against {standard}: {platform}",
    ),
    "too_long": ("最多 {limit} 个字，现为 {length} 个字", "at most {limit} characters, not {length}"),
    "unknown_item": (
        "不是平台认可的检测项目，请从列表中选择",
        "not an item the platform knows; choose one from the list",
    ),
    "bad_read_time": ("请按 时:分 填写，如 09:30", "give it as hours:minutes, e.g. 09:30"),
    "future_read_time": (
        "不能晚于现在（{now}）；只能录入今天已读取的结果",
        "cannot be later than now ({now}); only today's results already read can be entered",
    ),
    "not_a_number": ("请填写数字，如 62.5", "give a number, e.g. 62.5"),
    "item_method": ("检测项目与标准", "Item and standard"),
    "row_field": ("第 {n} 行 {label}", "Row {n}, {label}"),
    "field_error": ("{where}：{reason}", "{where}: {reason}"),
    "required": ("必填", "required"),
    "not_a_choice": ("请从列表中选择", "choose one from the list"),
    "no_value_for_qualitative": ("定性检测不填数值，只选判定", "a qualitative test has no number: choose the verdict"),
    "value_required": ("请填写读数（{unit}）", "give the reading ({unit})"),
    "value_out_of_range": ("读数超出范围（{unit}）", "the reading is out of range ({unit})"),
    "invalid": ("填写有误", "is not valid"),
    "no_samples": ("请至少填写一个样品", "fill in at least one sample"),
    "shared_fields": ("本批共同信息", "What the samples share"),
    "samples": ("样品", "Samples"),
    "more_rows": ("增加行数", "More rows"),
    "sample_no_hint": ("留空自动编号", "left empty: numbered for you"),
    "receipt_rows": ("第 {n} 行（{sample}）：{receipt}", "Row {n} ({sample}): {receipt}"),
    "receipt_duplicate": ("重复提交，未重复入库", "Already stored: a duplicate"),
    "receipt_rejected": ("未入库：{reason}", "Not stored: {reason}"),
    "menu_import": ("导入菜单（CSV）", "Import a menu (CSV)"),
    "menu_hint": (
        "每行：日期,餐次,菜品（菜品以“、”分隔），如 2026-12-07,午餐,番茄炒蛋、米饭；Excel 另存为的 CSV（UTF-8 或"
        " GBK）均可；同一天同一餐次以新导入的为准。",
        "One line per meal: date,meal,dishes (dishes separated by '、' or ';'), e.g. 2026-12-07,午餐,番茄炒蛋、米饭; "
        "a CSV saved by Excel (UTF-8 or GBK) will do; a meal imported again replaces the earlier one.",
    ),
    "menu_encoding": (
        "文件既不是 UTF-8 也不是 GBK 编码，请在 Excel 中另存为 CSV",
        "the file is neither UTF-8 nor GBK: save it from Excel as CSV",
    ),
    "menu_columns": ("应为 日期,餐次,菜品 三列，实为 {count} 列", "expected date,meal,dishes; got {count} column(s)"),
    "menu_bad_date": ("“{text}”不是日期（如 2026-12-07）", "{text!r} is not a date (e.g. 2026-12-07)"),
    "menu_bad_meal": (
        "“{text}”不是餐次（早餐、午餐、晚餐、加餐）",
        "{text!r} is not a meal (breakfast, lunch, dinner, snack)",
    ),
    "menu_not_served": ("本食堂不供应{meal}", "this canteen does not serve {meal}"),
    "menu_no_dishes": ("没有菜品", "no dishes"),
    "menu_too_many": ("每餐最多 {dishes} 道菜，每道最多 {chars} 个字", "at most {dishes} dishes of {chars} characters"),
    "menu_control": ("菜名中有控制字符", "a dish name has a control character"),
    "menu_empty": ("没有菜单行（日期,餐次,菜品）", "no menu rows (date,meal,dishes)"),
    "menu_too_large": ("文件超过 {kb} KB", "the file is over {kb} KB"),
    "menu_past": ("{day} 早于今天；菜单只能从今天起设置", "{day} is before today; a menu can be set from today on"),
    "menu_paste": ("或粘贴 CSV 内容", "or paste the CSV"),
    "no_menu": (
        "未录入菜单：按登记的固定菜品检查留样",
        "No menu entered: samples are checked against the fixed dishes",
    ),
    "menus_saved": ("已保存 {count} 餐的菜单", "Saved the menu of {count} meals"),
    "date": ("日期", "Date"),
    "trace": ("溯源", "Trace"),
    "reports": ("通报", "Bulletins"),
    "inspections": ("线下检查", "Inspections"),
    "inspection_plan": ("{week} 突击检查计划", "Surprise visits planned for {week}"),
    "inspection_plan_hint": (
        "按风险加权随机抽取，种子由平台保管，不向学校展示",
        "Drawn at random, weighted by risk, from a seed the platform keeps; never shown to schools",
    ),
    "risk": ("风险", "risk"),
    "inspector": ("检查人", "Inspector"),
    "findings": ("检查发现", "Findings"),
    "photos": ("照片链接（每行一个）", "Photo links (one a line)"),
    "rectify_by": ("整改期限", "Rectify by"),
    "rectified": ("整改完成", "Rectified"),
    "confirm_rectified": ("确认已整改", "Confirm rectified"),
    "no_inspections": ("这段时间没有检查记录", "No inspection in this period"),
    "inspection_record": ("录入检查记录", "Record an inspection"),
    "inspection_saved": ("已保存对 {canteen} 的检查记录", "Saved the inspection of {canteen}"),
    "reports_hint": (
        "月度通报与周报：快检覆盖、合格率、不合格处置、留样、冷链、摄像头在线率、AI违规、告警响应、排名与线下检查",
        "The monthly bulletin and the weekly report: coverage, pass rate, failures and their disposition, samples, "
        "cold chain, cameras, AI violations, alert response, rankings and inspections",
    ),
    "monthly": ("月度通报", "Monthly bulletin"),
    "weekly": ("周报", "Weekly report"),
    "month": ("月份", "Month"),
    "week": ("周", "Week"),
    "scope_city": ("全市", "Whole city"),
    "scope_own": ("本辖区/本食堂", "Your district or canteen"),
    "print_hint": ("网页版可直接打印为A4", "The web page prints on A4"),
    "trace_hint": (
        "按批次或供应商查询：哪些食堂检测了这批食品、结果如何、不合格如何处置",
        "By batch or supplier: which canteens tested that food, the results, and what was done",
    ),
    "trace_summary": (
        "{tests} 次检测，涉及 {canteens} 个食堂，不合格 {failed} 次",
        "{tests} tests at {canteens} canteens, {failed} failed",
    ),
    "trace_none": ("这段时间没有相符的检测", "No test matches in this period"),
    "trace_truncated": ("结果过多，仅显示部分，请缩小日期范围", "Too many results: narrow the dates to see them all"),
    "handling": ("处置", "Handled"),
    "scorecard": ("供应商检测统计", "Supplier scorecard"),
    "scorecard_hint": (
        "所选期间各供应商的检测次数、不合格次数与不合格率，按不合格率排序；点击供应商查看明细",
        "Each supplier's tests, failures and failure rate in the period, worst first; a name opens its trace",
    ),
    "scorecard_none": ("这段时间没有检测", "No test in this period"),
    "failed_count": ("不合格", "Failed"),
    "failure_rate": ("不合格率", "Failure rate"),
    "batches": ("批次数", "Batches"),
    "unnamed_supplier": ("（未注明）", "(not named)"),
    "dishes": ("菜品", "Dishes"),
}

STATES: _W = {
    "open": ("待处理", "Open"),
    "acknowledged": ("已确认", "Acknowledged"),
    "resolved": ("已处置", "Resolved"),
}
SEVERITIES: _W = {"info": ("提示", "Info"), "warning": ("警告", "Warning"), "critical": ("严重", "Critical")}
LEVELS: _W = {"school": ("学校", "School"), "district": ("区县", "District"), "city": ("市级", "City")}
DISPOSITIONS: _W = {
    "returned_to_supplier": ("退回供应商", "Returned to the supplier"),
    "destroyed": ("销毁", "Destroyed"),
    "other": ("其他", "Other"),
}
REVIEWS: _W = {"confirmed": ("属实", "Confirmed"), "false_positive": ("误报", "False positive")}
ACTIONS: _W = {
    "opened": ("发生", "Opened"),
    "updated": ("更新", "Updated"),
    "escalated_severity": ("升级级别", "Severity raised"),
    "acknowledged": ("确认收到", "Acknowledged"),
    "resolved": ("处置完毕", "Resolved"),
    "escalated": ("逐级通报", "Escalated"),
    "refused": ("拒绝", "Refused"),
    "reminded": ("提醒", "Reminded"),
    "notified": ("已通知", "Notified"),
    "notify_failed": ("通知失败", "Notification failed"),
}
DEVICE_STATES: _W = {"online": ("在线", "Online"), "offline": ("离线", "Offline")}

CATALOGUES: dict[str, _W] = {
    "label": LABELS,
    "state": STATES,
    "severity": SEVERITIES,
    "level": LEVELS,
    "rule": RULES,
    "verdict": VERDICTS,
    "method": METHODS,
    "violation": VIOLATIONS,
    "area": AREAS,
    "unit": UNITS,
    "meal": MEALS,
    "kind": KINDS,
    "category": CATEGORIES,
    "disposition": DISPOSITIONS,
    "review": REVIEWS,
    "action": ACTIONS,
    "device_state": DEVICE_STATES,
}


class Words:
    """The console's words in one language: ``words("label", "inbox")`` or ``words.t("page_of", page=2)``."""

    def __init__(self, language: Language, items: ItemCatalogue = BUILTIN) -> None:
        self.language: Language = language
        self.items = items  # the region's item catalogue: item names are the contract's (devices/items.py)
        self._index = 0 if language == "zh" else 1

    def __call__(self, catalogue: str, code: str | None) -> str:
        if code is None:
            return ""
        if catalogue == "item":
            return self.items.name(code, self.language) or code
        entry = CATALOGUES[catalogue].get(code)
        return entry[self._index] if entry else code

    def t(self, key: str, **params: object) -> str:
        return self("label", key).format(**params)

    def reading(self, test: Any) -> str:
        """A test row's reading as every table shows it (62.5 %, 35.2 mg/kg, 阴性): ``value``, ``unit``, ``result``."""
        return short_reading(test.value, test.unit, test.result, self.language)

    def handling(self, alert: Any) -> str:
        """What was done with a failed food, from its ``test.failed`` alert (None: no alert yet)."""
        if alert is None:
            return self.t("handling_open")
        if alert.disposition is not None:
            return self.t(f"handled_{alert.disposition}")
        return self.t(f"handling_{alert.state}")

    def note_for(self, test: Any) -> str | None:
        """:meth:`verdict_note` of a test row (anything with ``result``, ``device_result``, ``method_std`` and
        ``entered_by``)."""
        return self.verdict_note(
            result=test.result, device_result=test.device_result, method_std=test.method_std, entered_by=test.entered_by
        )

    def verdict_note(
        self, *, result: str, device_result: str | None, method_std: str | None, entered_by: str | None
    ) -> str | None:
        """What the device (or the person who typed it) said, when the platform's verdict differs; None when it
        agrees. The verdict shown is always the platform's (``result``)."""
        if device_result is None or device_result == result:
            return None
        return self.t(
            "verdict_note_entered" if entered_by else "verdict_note_device",
            device=self("verdict", device_result),
            platform=self("verdict", result),
            standard=method_std or "",
        )
