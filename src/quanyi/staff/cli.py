"""`quanyi staff ...`: staff accounts, passwords and permissions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, merchant_scope
from quanyi.cli_support import run_job as _run

__all__ = ["staff_app"]

staff_app = typer.Typer(help="Staff accounts (员工账号): login, passwords, permissions.", no_args_is_help=True)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="Read the password from the first line of stdin (scripts)")]
Permissions = Annotated[list[str] | None, typer.Option("--grant", "-g", help="Permission to grant (repeatable); "
                                                                             "see `quanyi staff permissions`")]
Roles = Annotated[list[str] | None, typer.Option("--role", "-r", help="Role to give (repeatable); see `quanyi staff "
                                                                      "roles`")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@staff_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name (a-z, 0-9, '.', '_', '-')")],
    grant: Permissions = None,
    role: Roles = None,
    password_stdin: PasswordStdin = False,
    merchant: MerchantOption = None,
) -> None:
    """Create a staff member (of a merchant with --merchant); the password is prompted for (or read from stdin)."""
    from quanyi.staff import service as staff_service

    password = _password(password_stdin)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            user = await staff_service.create_staff(session=session, username=username, password=password,
                                                    permissions=grant or [], roles=role or [],
                                                    merchant_id=scope.merchant_id)
            return user.username, user.permissions, user.roles

    name, permissions, roles = _run(job)
    whose = f" of merchant {merchant.lower()}" if merchant else " (platform)"
    console.print(f"Staff member [bold]{name}[/bold]{whose} created with roles: {roles or '(none)'}; "
                  f"permissions: {permissions or '(none)'}")


@staff_app.command("passwd")
def passwd(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a staff member's password (ends their open sessions)."""
    from quanyi.staff import service as staff_service

    password = _password(password_stdin)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await staff_service.set_password(session=session, username=username, password=password)

    _run(job)
    console.print(f"Password of {username} changed; their sessions were ended.")


def _change(username: str, permissions: list[str], *, add: bool) -> None:
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            change = staff_service.grant if add else staff_service.revoke
            return (await change(session=session, username=username, permissions=permissions)).permissions

    console.print(f"{username} now has: {_run(job) or '(no permissions)'}")


@staff_app.command("grant")
def grant_cmd(username: str, permissions: Annotated[list[str], typer.Argument(help="Permissions to add")]) -> None:
    """Give a staff member more permissions."""
    _change(username, permissions, add=True)


@staff_app.command("revoke")
def revoke_cmd(username: str, permissions: Annotated[list[str], typer.Argument(help="Permissions to remove")]) -> None:
    """Take permissions away from a staff member."""
    _change(username, permissions, add=False)


def _change_roles(username: str, roles: list[str], *, add: bool) -> None:
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            change = staff_service.assign_roles if add else staff_service.unassign_roles
            return (await change(session=session, username=username, roles=roles)).roles

    console.print(f"{username} now has the roles: {_run(job) or '(none)'}")


@staff_app.command("assign")
def assign_cmd(username: str, roles: Annotated[list[str], typer.Argument(help="Roles to give")]) -> None:
    """Give a staff member roles (bundles of permissions)."""
    _change_roles(username, roles, add=True)


@staff_app.command("unassign")
def unassign_cmd(username: str, roles: Annotated[list[str], typer.Argument(help="Roles to take away")]) -> None:
    """Take roles away from a staff member."""
    _change_roles(username, roles, add=False)


@staff_app.command("reset-2fa")
def reset_second_factor(username: str) -> None:
    """Turn off a staff member's second factor (a lost phone) and end their sessions; they enrol again."""
    from quanyi.staff import second_factor
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            user = await staff_service.get_staff(session=session, username=username)
            await second_factor.disable(session=session, staff_id=user.id)
            await staff_service.end_sessions(session=session, staff_id=user.id)

    _run(job)
    console.print(f"Second factor of {username} turned off; their sessions were ended.")


@staff_app.command("disable")
def disable(username: str) -> None:
    """Disable a staff member's login and end their sessions."""
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await staff_service.set_active(session=session, username=username, active=False)

    _run(job)
    console.print(f"{username} disabled.")


@staff_app.command("enable")
def enable(username: str) -> None:
    """Allow a disabled staff member to log in again."""
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await staff_service.set_active(session=session, username=username, active=True)

    _run(job)
    console.print(f"{username} enabled.")


@staff_app.command("list")
def list_cmd(merchant: MerchantOption = None) -> None:
    """Every staff member with their merchant, roles and permissions (--merchant: only that merchant's)."""
    from quanyi.merchants import service as merchants_service
    from quanyi.staff import service as staff_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            users = await staff_service.list_staff(session=session, scope=await merchant_scope(session, merchant))
            codes = await merchants_service.merchant_codes(
                session=session, merchant_ids=[u.merchant_id for u in users if u.merchant_id is not None])
            return [(u.username, codes.get(u.merchant_id, "") if u.merchant_id else "(platform)", u.roles,
                     u.permissions, u.totp_enabled_at is not None, u.active, u.created_at) for u in users]

    table = Table(title="Staff")
    for column in ("username", "merchant", "roles", "permissions", "2FA", "active", "created"):
        table.add_column(column)
    for name, whose, roles, permissions, second, active, created in _run(job):
        table.add_row(name, whose, roles, permissions, "yes" if second else "-",
                      "yes" if active else "[red]no[/red]", f"{created:%Y-%m-%d %H:%M}")
    console.print(table)


@staff_app.command("permissions")
def permissions_cmd() -> None:
    """The permissions a staff member can hold."""
    from quanyi.staff.service import PERMISSIONS

    table = Table(title="Permissions")
    table.add_column("permission")
    table.add_column("allows")
    for name, what in PERMISSIONS.items():
        table.add_row(name, what)
    console.print(table)
    err.print("Grant with `quanyi staff grant <username> <permission>...`.")


@staff_app.command("roles")
def roles_cmd() -> None:
    """The roles (bundles of permissions) a staff member can be given."""
    from quanyi.staff.roles import ROLES

    table = Table(title="Roles")
    for column in ("role", "title", "scope", "permissions"):
        table.add_column(column)
    for role in ROLES.values():
        table.add_row(role.name, f"{role.title_zh} / {role.title_en}", role.scope, " ".join(sorted(role.permissions)))
    console.print(table)
    err.print("Give with `quanyi staff assign <username> <role>...`.")
