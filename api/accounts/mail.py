"""Invitations by email: the invitation's link goes to the address invited, and only there.

Accepting an invitation into a new account is what proves the address: whoever holds the link becomes that
person. So with a mail server configured (BEANPAY_SMTP_HOST) the link is sent to the email and never shown
to the inviter, who could otherwise take the account themselves. Without one the inviter is shown the link
to pass on, as the only way it can travel: in development and tests only. In production no invitation is
made without mail (503 naming BEANPAY_SMTP_HOST): the rest of the platform runs without it.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from beanpay.config import Settings
from beanpay.errors import Unavailable


def sends_invitations(settings: Settings) -> bool:
    """Whether an invitation's link goes by email; a 503 in production without a mail server (the inviter
    would be shown the link, and could become the invitee)."""
    if settings.smtp_host is not None:
        return True
    if settings.env == "prod":
        raise Unavailable("invitations are sent by email in production, and no mail server is set: the operator "
                          "must set BEANPAY_SMTP_HOST")
    return False


async def send_invitation(settings: Settings, *, to: str, shop_name: str, role: str, link: str) -> None:
    """Sends the invitation's link to `to`; a 503 if the mail server does not take it (nothing is kept)."""
    message = EmailMessage()
    message["From"], message["To"] = settings.smtp_from, to
    message["Subject"] = f"You are invited to {shop_name} on beanpay"
    message.set_content(f"You are invited to join {shop_name} as {role}.\n\nAccept the invitation here (it works "
                        f"once, and only for {to}):\n\n{link}\n\nIf you did not expect this, ignore this email.\n")
    try:
        await aiosmtplib.send(message, hostname=settings.smtp_host, port=settings.smtp_port,
                              username=settings.smtp_username, password=settings.smtp_password,
                              start_tls=settings.smtp_starttls, timeout=settings.smtp_timeout_seconds)
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise Unavailable(f"the invitation could not be sent to {to} (the mail server said: "
                              f"{type(exc).__name__}); nothing was kept, try again") from None
