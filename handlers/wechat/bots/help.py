"""帮助, the fallback, and polite answers to media and to events that need none."""

from __future__ import annotations

from ..router import router

CAPABILITIES = (
    "您好！这里是江城市总工会职工服务号，可以为您办理：\n"
    "1. 回复“绑定”：关联您的会员信息\n"
    "2. 回复“补贴”：查看学历与技能提升补助政策\n"
    "3. 回复“申请进度”：查询您的补助申请\n"
    "4. 回复“竞赛”：查看正在报名的职业技能竞赛\n"
    "5. 回复“报名”：查看您的竞赛报名情况\n"
    "6. 回复“热线”：工会服务热线\n"
    "也可以点击下方菜单，或打开“职工之家”小程序在线办理。"
)


@router.keyword("帮助", "help", "?", "？", "菜单", "你好", "您好", inline=True)
@router.menu("MENU_HELP", inline=True)
def help_bot(ctx):
    return CAPABILITIES


@router.fallback
def fallback_bot(ctx):
    if ctx.msg_type == "text":
        return "抱歉，暂时没能理解您的意思。\n" + CAPABILITIES
    return None


@router.message("image", "voice", "video", "shortvideo", "location", "link", "file", inline=True)
def media_bot(ctx):
    kind = {
        "image": "图片",
        "voice": "语音",
        "video": "视频",
        "shortvideo": "小视频",
        "location": "位置",
        "link": "链接",
        "file": "文件",
    }.get(ctx.msg_type, "消息")
    return (
        f"已收到您的{kind}，谢谢！公众号暂不能直接处理{kind}。\n"
        "办理补助请在“职工之家”小程序上传材料；其他问题请回复文字，或回复“帮助”查看服务。"
    )


# Events that need no answer: WeChat only wants "success" (they are still logged).
@router.event(
    "view", "location", "view_miniprogram", "kf_create_session", "kf_close_session", "kf_switch_session",
    "qualification_verify_success", "qualification_verify_fail", "naming_verify_success", "naming_verify_fail",
    "annual_renew", "verify_expired", "merchant_order", "shakearoundusershake", "wificonnected",
    "user_authorize_invoice", "update_invoice_status", "submit_invoice_title", "bind", "unbind",
    "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select",
    inline=True,
)
def silent_event_bot(ctx):
    return None
