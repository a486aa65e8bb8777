"""`quanyi enterprises users ...`: the people of an enterprise who log in to its portal (企业门户账号)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run
from quanyi.staff.cli import PasswordStdin
from quanyi.staff.cli import _password as read_password

__all__ = ["users_app"]

users_app = typer.Typer(help="Enterprise portal users (/portal): add, list, role, disable, password, second factor.",
                        no_args_is_help=True)
Code = Annotated[str, typer.Argument(help="The enterprise's code, e.g. ACME")]
Username = Annotated[str, typer.Argument(help="Login name within the enterprise (a-z, 0-9, '.', '_', '-')")]
_CLI_ACTOR = "cli"


async def _audit(session, code: str, action: str, summary: str) -> None:  # type: ignore[no-untyped-def]
    from quanyi.staff.audit import Actor, record_action

    await record_action(session=session, actor=Actor(name=_CLI_ACTOR, staff_id=None), action=action,
                        object_type="enterprise", object_id=code, summary=summary)


@users_app.command("list")
def list_(code: Code) -> None:
    """The enterprise's portal users with role, state and last login."""
    from quanyi.enterprises import users

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(u.username, u.display_name, u.role, u.active, u.totp_enabled_at is not None, u.last_login_at)
                    for u in await users.list_users(session=session, code=code)]

    table = Table("username", "name", "role", "active", "2FA", "last login")
    for name, display, role, active, totp, last in _run(job):
        table.add_row(name, display, role, "yes" if active else "no", "on" if totp else "off",
                      last.strftime("%Y-%m-%d %H:%M") if last else "-")
    console.print(table)


@users_app.command("add")
def add(code: Code, username: Username,
        role: Annotated[str, typer.Option(help="admin | purchaser | viewer")] = "viewer",
        name: Annotated[str, typer.Option(help="Display name")] = "",
        password_stdin: PasswordStdin = False) -> None:
    """Add a portal user; the password is prompted for (or read from stdin)."""
    from quanyi.enterprises import users

    password = read_password(password_stdin)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await users.create_user(session=session, code=code, username=username, password=password,
                                           role=role, display_name=name, actor=_CLI_ACTOR)
            await _audit(session, code, "enterprise_user_created", f"{user.username} ({user.role})")
            return user.username

    console.print(f"Portal user [bold]{_run(job)}[/bold] of {code} created ({role}); they log in at /portal.")


@users_app.command("set")
def set_(code: Code, username: Username,
         role: Annotated[str | None, typer.Option(help="admin | purchaser | viewer")] = None,
         disable: Annotated[bool, typer.Option("--disable", help="No more logins; ends their sessions")] = False,
         enable: Annotated[bool, typer.Option("--enable", help="May log in again")] = False) -> None:
    """Change a portal user's role, or disable / enable them."""
    from quanyi.enterprises import users

    if disable and enable:
        raise typer.BadParameter("--disable or --enable, not both")
    active = False if disable else True if enable else None

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await users.update_user(session=session, code=code, username=username, role=role, active=active)
            await _audit(session, code, "enterprise_user_changed",
                         f"{user.username}: role {user.role}, {'active' if user.active else 'disabled'}")
            return user.role, user.active

    new_role, is_active = _run(job)
    console.print(f"{username} of {code}: role {new_role}, {'active' if is_active else 'disabled'}.")


@users_app.command("passwd")
def passwd(code: Code, username: Username, password_stdin: PasswordStdin = False) -> None:
    """Set a portal user's password (ends their sessions)."""
    from quanyi.enterprises import users

    password = read_password(password_stdin)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await users.set_password(session=session, code=code, username=username, password=password)
            await _audit(session, code, "enterprise_user_password", user.username)

    _run(job)
    console.print(f"Password of {username} of {code} changed; their sessions were ended.")


@users_app.command("reset-2fa")
def reset_second_factor(code: Code, username: Username) -> None:
    """Turn off a portal user's second factor (a lost phone); ends their sessions."""
    from quanyi.enterprises import users

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await users.reset_second_factor(session=session, code=code, username=username)
            await _audit(session, code, "enterprise_user_2fa_reset", user.username)

    _run(job)
    console.print(f"Second factor of {username} of {code} turned off; they log in with their password.")


@users_app.command("logout")
def logout(code: Code, username: Username) -> None:
    """End every portal session of a user now."""
    from quanyi.enterprises import users

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await users.get_user(session=session, code=code, username=username)
            ended = await users.end_sessions(session=session, user_id=user.id)
            await _audit(session, code, "enterprise_user_logged_out", f"{user.username}: {ended} sessions")
            return ended

    console.print(f"{_run(job)} session(s) of {username} of {code} ended.")
