"""The workbench's words in Chinese (the default) and English.

Templates call ``t("key")`` (with ``{name}`` fields filled from keyword arguments); a key missing from
the catalogue of the page's language raises `MissingMessage`, and a test checks that both catalogues
hold the same keys and every key the templates use.
"""

from __future__ import annotations

from collections.abc import Callable

from api.workbench.desk_messages import DESK
from api.workbench.oversight_messages import OVERSIGHT

DEFAULT = "zh-CN"
LANGUAGES = ("zh-CN", "en")
#: How each language names itself, for the switch (a person looks for their own language's name).
NAMES = {"zh-CN": "中文", "en": "English"}


class MissingMessage(KeyError):
    pass


CATALOGUE: dict[str, dict[str, str]] = {
    "zh-CN": {
        "site.name": "nocert 协查工作台",
        "site.tagline": "无证明省份：在线协查与可离线核验的电子证明",
        "nav.label": "主导航",
        "nav.about": "关于",
        "nav.sign_in": "登录",
        "nav.enrol": "首次设置密码",
        "nav.home": "我的工作台",
        "nav.api_docs": "接口文档",
        "skip.to_main": "跳到正文",
        "lang.label": "语言",
        "lang.switch": "切换语言",
        "messages.label": "提示信息",
        "about.title": "关于协查工作台",
        "about.lead": "各部门工作人员在此办理协查：开具部门答复协查、审批部门发起并办结协查、审计部门回放与核验、运营方查看覆盖情况。",
        "about.offline": "本工作台的所有页面、样式和文档均由本服务自身提供，不从其他网站加载任何内容，可在内网中使用。",
        "about.docs": "对接系统的开发人员请参阅接口文档：",
        "about.swagger": "Swagger UI",
        "about.redoc": "ReDoc",
        "form.optional": "（选填）",
        "form.submit_sign_in": "登录",
        "form.submit_enrol": "设置密码",
        "form.submit_sign_out": "退出登录",
        "form.error_summary": "请更正以下问题",
        "field.department": "部门编号",
        "field.department_hint": "例如 fz-gulou-police",
        "field.login": "登录名",
        "field.password": "密码",
        "field.new_password": "新密码",
        "field.new_password_hint": "至少 {min} 个字符，且不得包含登录名",
        "field.repeat_password": "再次输入新密码",
        "field.totp": "动态口令",
        "field.totp_hint": "已启用双因素认证时填写验证器中的 6 位数字",
        "field.enrolment_code": "开通码",
        "field.enrolment_code_hint": "管理员创建账号时提供的开通码，例如 K7QM-3XHD-PA9F-2WTR",
        "error.required": "请填写{field}",
        "error.sign_in_failed": "部门编号、登录名、密码或动态口令不正确",
        "error.locked": "登录失败次数过多，该账号已锁定，请于 {until}（UTC）之后再试",
        "error.address_limited": "来自您所在网络地址的登录失败次数过多，请于 {seconds} 秒后再试",
        "error.enrolment_refused": "开通码不正确或已使用",
        "error.password.too_short": "密码至少需要 {min} 个字符",
        "error.password.too_long": "密码不得超过 {max} 个字符",
        "error.password.contains_login": "密码不得包含登录名",
        "error.password_mismatch": "两次输入的新密码不一致",
        "sign_in.title": "登录",
        "sign_in.lead": "请使用本部门为您开通的账号登录。",
        "enrol.title": "首次设置密码",
        "enrol.lead": "请输入管理员提供的开通码并设置您的密码。开通码只能使用一次。",
        "home.title": "我的工作台",
        "home.signed_in_as": "您已以 {login}（{department}）的身份登录。",
        "home.session": "本次登录于 {started}（UTC）开始；闲置 {idle} 分钟或登录满 {absolute} 小时后需重新登录。",
        "done.signed_out": "您已退出登录。",
        "done.enrolled": "密码已设置，请登录。",
        "done.expired": "登录已过期，请重新登录。",
        "csrf.title": "请求未被接受",
        "csrf.body": "该表单已过期或不是从本工作台提交的。请返回后重新提交。",
        "csrf.back": "返回工作台首页",
        "chart.no_data": "无数据",
    },
    "en": {
        "site.name": "nocert workbench",
        "site.tagline": "No-certificate province: online checks and offline-verifiable proofs",
        "nav.label": "Main",
        "nav.about": "About",
        "nav.sign_in": "Sign in",
        "nav.enrol": "Set your first password",
        "nav.home": "My workbench",
        "nav.api_docs": "API documentation",
        "skip.to_main": "Skip to main content",
        "lang.label": "Language",
        "lang.switch": "Change language",
        "messages.label": "Messages",
        "about.title": "About the workbench",
        "about.lead": "Officers of every department work on checks here: issuers answer them, approvers raise and close them, auditors replay and verify, and the operator follows coverage.",
        "about.offline": "Every page, style sheet and document of this workbench is served by this service itself; nothing is loaded from another site, so it works on a closed network.",
        "about.docs": "Developers of connected systems, see the API documentation:",
        "about.swagger": "Swagger UI",
        "about.redoc": "ReDoc",
        "form.optional": "(optional)",
        "form.submit_sign_in": "Sign in",
        "form.submit_enrol": "Set password",
        "form.submit_sign_out": "Sign out",
        "form.error_summary": "There is a problem",
        "field.department": "Department id",
        "field.department_hint": "for example fz-gulou-police",
        "field.login": "Login",
        "field.password": "Password",
        "field.new_password": "New password",
        "field.new_password_hint": "At least {min} characters, not containing your login",
        "field.repeat_password": "New password again",
        "field.totp": "One-time code",
        "field.totp_hint": "The 6 digits of your authenticator app, if you turned two-factor sign-in on",
        "field.enrolment_code": "Enrolment code",
        "field.enrolment_code_hint": "The code your administrator gave you, for example K7QM-3XHD-PA9F-2WTR",
        "error.required": "{field} is required",
        "error.sign_in_failed": "The department id, login, password or one-time code is not right",
        "error.locked": "Too many failed sign-ins: this login is locked until {until} (UTC)",
        "error.address_limited": "Too many failed sign-ins from your network address: try again in {seconds} seconds",
        "error.enrolment_refused": "The enrolment code is not right, or has been used",
        "error.password.too_short": "The password needs at least {min} characters",
        "error.password.too_long": "The password must not be longer than {max} characters",
        "error.password.contains_login": "The password must not contain your login",
        "error.password_mismatch": "The two new passwords differ",
        "sign_in.title": "Sign in",
        "sign_in.lead": "Sign in with the account your department opened for you.",
        "enrol.title": "Set your first password",
        "enrol.lead": "Enter the enrolment code your administrator gave you and choose your password. The code works once.",
        "home.title": "My workbench",
        "home.signed_in_as": "You are signed in as {login} ({department}).",
        "home.session": "This session started at {started} (UTC); you sign in again after {idle} minutes idle or {absolute} hours.",
        "done.signed_out": "You have signed out.",
        "done.enrolled": "Your password is set. Please sign in.",
        "done.expired": "Your session has ended. Please sign in again.",
        "csrf.title": "Request not accepted",
        "csrf.body": "This form has expired or was not sent from this workbench. Go back and send it again.",
        "csrf.back": "Back to the workbench",
        "chart.no_data": "no data",
    },
}


for _words in (DESK, OVERSIGHT):
    for _lang, _messages in _words.items():
        CATALOGUE[_lang].update(_messages)


def language(requested: str | None) -> str:
    """The supported language ``requested`` names (``zh``, ``zh-CN``, ``en``, any case), else the default."""
    if requested:
        wanted = requested.strip().lower()
        for code in LANGUAGES:
            if wanted in (code.lower(), code.split("-")[0].lower()):
                return code
    return DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **fields)`` in ``lang``."""
    messages = CATALOGUE[lang]

    def t(key: str, **fields: object) -> str:
        try:
            text = messages[key]
        except KeyError:
            raise MissingMessage(f"no message {key!r} in {lang}") from None
        return text.format(**fields) if fields else text

    return t
